"""Bad input from an acquirer: answered 30 where a response can be built, else that connection alone is closed;
the switch goes on serving the others, and nothing is ever forwarded or approved."""

import contextlib
import socket

import pytest

from tasdid.core import iso8583 as iso

from .fakes import Acquirer, authorization

rc = iso.rc
pytestmark = pytest.mark.django_db(transaction=True)


def with_amount_letters() -> bytes:
    payload = iso.encode(authorization(amount=123456789012, stan="000321"))
    assert payload.count(b"123456789012") == 1
    return iso.frame(payload.replace(b"123456789012", b"12345678901X"))


def with_bad_bitmap() -> bytes:
    payload = iso.encode(authorization())
    return iso.frame(payload[:4] + b"ZZZZZZZZZZZZZZZZ" + payload[20:])


CLOSED = {
    "length prefix 0": b"\x00\x00" + iso.encode_frame(authorization()),
    "oversized frame": (5000).to_bytes(2, "big") + b"0" * 5000,
    "bad bitmap": with_bad_bitmap(),
    "unknown MTI": iso.frame(b"0900" + iso.encode(authorization())[4:]),
}


def good_request_still_served(port: int) -> None:
    answer = Acquirer(port).ask(authorization())
    assert answer.response_code == rc.APPROVED


@pytest.mark.parametrize("name", sorted(CLOSED))
def test_unanswerable_input_closes_that_connection_only(switch, atlas, name):
    bystander = Acquirer(switch.port)
    client = Acquirer(switch.port)

    client.send_raw(CLOSED[name])

    assert client.closed_by_peer()
    assert atlas.requests("0100") == []
    assert bystander.ask(authorization()).response_code == rc.APPROVED
    good_request_still_served(switch.port)


def test_wrong_field_format_is_answered_30_and_the_connection_stays(switch, atlas):
    client = Acquirer(switch.port)
    client.send_raw(with_amount_letters())

    answer = client.receive()

    assert (answer.MTI, answer.response_code, answer.stan) == ("0110", rc.FORMAT_ERROR, "000321")
    assert atlas.requests("0100") == []
    assert client.ask(authorization()).response_code == rc.APPROVED


def test_truncated_frame_then_end_of_stream(switch, atlas):
    client = Acquirer(switch.port)
    client.send_raw(b"\x00\x64" + iso.encode(authorization())[:10])
    client.sock.shutdown(socket.SHUT_WR)

    assert client.closed_by_peer()
    assert atlas.requests("0100") == []
    good_request_still_served(switch.port)


def test_a_client_that_says_nothing_is_closed_after_the_idle_timeout(start_switch, atlas):
    switch = start_switch(idle_timeout=0.3)
    silent = Acquirer(switch.port)
    half = Acquirer(switch.port)
    half.send_raw(b"\x00\x64abc")  # a frame begun and never finished

    assert silent.closed_by_peer()
    assert half.closed_by_peer()
    good_request_still_served(switch.port)


def test_ten_megabytes_close_the_connection(switch, atlas):
    client = Acquirer(switch.port)
    # The switch closes the connection while the bytes are still coming: what is asked.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        client.send_raw(b"\x7f" * (10 * 1024 * 1024))

    assert client.closed_by_peer()
    assert atlas.requests("0100") == []
    good_request_still_served(switch.port)


def test_a_response_sent_by_an_acquirer_is_ignored(switch, atlas):
    client = Acquirer(switch.port)
    stray = iso.respond(authorization(), rc.APPROVED)
    client.send(stray)

    echo = client.ask(iso.NetworkRequest(stan="000777", transmitted_at=stray.transmitted_at, network_code="301"))
    assert (echo.MTI, echo.stan) == ("0810", "000777")
    assert atlas.requests("0110") == [] and atlas.requests("0100") == []


# Found by bench/iso_fuzz_switch.py: bit 65 set in the secondary bitmap sent pyiso8583 looking for DE160.
THIRD_BITMAP = (b"0400B220000000000000900400000000000000000001001207174210000126600000001      504"
                b"010000000112071742100000000000000000")


def test_a_secondary_bitmap_that_announces_a_third_one_is_a_format_error_not_a_crash():
    with pytest.raises(iso.MessageError) as caught:
        iso.decode(THIRD_BITMAP)
    assert (caught.value.where, caught.value.stream_lost) == ("bitmap", False)


def test_that_frame_closes_only_its_connection(switch, atlas):
    client = Acquirer(switch.port)
    client.send_raw(iso.frame(THIRD_BITMAP))
    assert client.closed_by_peer()
    good_request_still_served(switch.port)
