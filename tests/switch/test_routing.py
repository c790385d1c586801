"""The switch between acquirers and issuers over real sockets: routing, STAN mapping, out-of-order answers,
duplicates, the sign-on and the echo, the journal."""

import dataclasses

import pytest

from tasdid.core import iso8583 as iso
from tasdid.core.cards import find_card_numbers
from tasdid.switch.models import JournalEntry, PendingReversal
from tasdid.switch.routing import RouteEntry, route_for

from .fakes import Acquirer, authorization, wait_until

rc = iso.rc
pytestmark = pytest.mark.django_db(transaction=True)


def test_longest_prefix_wins():
    routes = [RouteEntry("40", "B", "h", 1), RouteEntry("400011", "A", "h", 2), RouteEntry("4000", "C", "h", 3)]
    assert route_for("4000110000000017", routes).bank_name == "A"
    assert route_for("4000990000000017", routes).bank_name == "C"
    assert route_for("4099990000000017", routes).bank_name == "B"
    assert route_for("5220110000000026", routes) is None


@pytest.mark.parametrize(("pan", "bank"), [
    ("4000110000000017", "atlas"),  # Banque Atlas, Visa
    ("6061010000000036", "atlas"),  # Banque Atlas, CMI (domestic)
    ("5220110000000026", "sahel"),  # Crédit du Sahel, MasterCard
    ("4099990000000018", "sahel"),  # the shorter prefix "40", when no longer one matches
])
def test_routes_each_card_to_its_bank_under_the_switch_stan(switch, atlas, sahel, pan, bank):
    issuer, other = (atlas, sahel) if bank == "atlas" else (sahel, atlas)
    client = Acquirer(switch.port)
    request = authorization(pan, stan="000042", amount=28500)

    answer = client.ask(request)

    assert type(answer) is iso.AuthorizationResponse
    assert (answer.response_code, answer.stan, answer.transmitted_at) == ("00", "000042", request.transmitted_at)
    assert (answer.amount_minor, answer.currency, answer.merchant_id) == (28500, "504", "600000001")
    assert answer.auth_code and answer.rrn
    [forwarded] = issuer.requests("0100")
    assert forwarded.pan == pan and forwarded.amount_minor == 28500 and forwarded.cvv == "417"
    assert forwarded.stan == "000002"  # the link's own STAN (its sign-on took 000001), not the acquirer's
    assert other.requests("0100") == []


def test_unknown_bin_is_answered_92_and_reaches_no_issuer(switch, atlas, sahel):
    client = Acquirer(switch.port)
    request = authorization("9999990000000010")

    answer = client.ask(request)

    assert (answer.MTI, answer.response_code, answer.stan) == ("0110", rc.NO_ROUTE, request.stan)
    assert atlas.requests("0100") == [] and sahel.requests("0100") == []


def test_two_acquirers_with_the_same_stan_answered_out_of_order(switch, atlas):
    atlas.decide = lambda message: ("hold",)
    first, second = Acquirer(switch.port), Acquirer(switch.port)
    a = authorization(stan="000007", amount=100, merchant="600000001")
    b = dataclasses.replace(a, amount_minor=200, merchant_id="600000002")
    c = authorization(stan="000008", amount=300, merchant="600000001")
    first.send(a)
    second.send(b)
    first.send(c)
    wait_until(lambda: len(atlas.held) == 3, "three requests held at the issuer")
    assert len({m.stan for _w, m in atlas.held}) == 3  # the switch's STANs never collide at the issuer

    atlas.release(reverse=True)  # c, then b, then a

    answers = [first.receive(), first.receive()]
    assert [(x.stan, x.amount_minor, x.response_code) for x in answers] == [("000008", 300, "00"),
                                                                              ("000007", 100, "00")]
    only = second.receive()
    assert (only.stan, only.amount_minor, only.merchant_id, only.response_code) == ("000007", 200, "600000002", "00")


def test_duplicate_transmission_in_flight_and_after_is_answered_94(switch, atlas):
    atlas.decide = lambda message: ("hold",)
    client = Acquirer(switch.port)
    request = authorization()
    client.send(request)
    wait_until(lambda: atlas.held, "the first request at the issuer")

    duplicate = client.ask(request)
    assert (duplicate.response_code, duplicate.stan) == (rc.DUPLICATE_TRANSMISSION, request.stan)

    atlas.release()
    assert client.receive().response_code == rc.APPROVED
    other_connection = Acquirer(switch.port)
    assert other_connection.ask(request).response_code == rc.DUPLICATE_TRANSMISSION
    assert len(atlas.requests("0100")) == 1


def test_sign_on_at_connect_then_echo(start_switch, atlas):
    switch = start_switch(echo_interval=0.05, echo_timeout=10.0)
    assert atlas.network("001")[0].network_code == "001"
    wait_until(lambda: switch.link(atlas).echoes >= 2, "two echoes answered")
    assert len(atlas.network("301")) >= 2
    assert switch.link(atlas).sign_ons == 1

    answer = Acquirer(switch.port).ask(iso.NetworkRequest(stan="000900", transmitted_at=authorization().transmitted_at,
                                                          network_code="301"))
    assert (answer.MTI, answer.response_code, answer.network_code, answer.stan) == ("0810", "00", "301", "000900")


def test_dead_link_found_by_echo_and_reconnected(start_switch, atlas):
    switch = start_switch(echo_interval=0.05, echo_timeout=0.2)
    link = switch.link(atlas)
    connections = atlas.connections
    atlas.answer_network = False  # the host still accepts, but is dead to the network messages

    wait_until(lambda: atlas.connections > connections, "the switch dropped the silent link and reconnected")
    atlas.answer_network = True
    wait_until(lambda: link.sign_ons >= 2 and link.up.is_set(), "signed on again")

    assert Acquirer(switch.port).ask(authorization()).response_code == rc.APPROVED


def test_issuer_down_is_answered_91_then_back(switch, atlas):
    atlas.die()
    wait_until(lambda: not switch.link(atlas).up.is_set(), "the link seen down")
    client = Acquirer(switch.port)

    assert client.ask(authorization()).response_code == rc.ISSUER_UNAVAILABLE

    atlas.revive()
    wait_until(lambda: switch.link(atlas).up.is_set(), "the link up again")
    assert client.ask(authorization()).response_code == rc.APPROVED


def test_journal_keeps_every_message_masked(switch, atlas):
    request = authorization("4000110000000017")
    Acquirer(switch.port).ask(request)

    rows = wait_until(lambda: (r := list(JournalEntry.objects.filter(stan__in=[request.stan, "000002"])
                                         .exclude(mti="0800").exclude(mti="0810"))) and len(r) == 4 and r,
                      "four journal rows")
    by_direction = {row.direction: row for row in rows}
    assert set(by_direction) == {"acq_in", "iss_out", "iss_in", "acq_out"}
    assert by_direction["acq_in"].masked_pan == "400011******0017"
    assert by_direction["iss_out"].masked_pan == "400011******0017"
    assert (by_direction["iss_out"].stan, by_direction["iss_out"].related_stan) == ("000002", request.stan)
    assert by_direction["acq_out"].response_code == "00" and by_direction["acq_out"].latency_ms is not None
    assert by_direction["acq_out"].related_stan == "000002"
    assert by_direction["iss_out"].bank_name == "Banque Atlas"
    text = " ".join(str(v) for row in JournalEntry.objects.values_list() for v in row)
    assert find_card_numbers(text) == []
    assert "4000110000000017" not in text


def test_no_card_data_at_rest_or_in_logs_after_every_kind_of_exchange(start_switch, atlas):
    from tests.support.pci import card_data_findings

    switch = start_switch(issuer_timeout=0.3)
    client = Acquirer(switch.port)
    assert client.ask(authorization("4000110000000017")).response_code == rc.APPROVED
    assert client.ask(authorization("9999990000000010")).response_code == rc.NO_ROUTE
    atlas.decide = lambda message: ("drop",) if message.MTI == "0100" else ("answer", rc.APPROVED)
    assert client.ask(authorization("6061010000000036")).response_code == rc.ISSUER_UNAVAILABLE
    bad = iso.encode(authorization("5220110000000026", amount=123456789012))
    client.send_raw(iso.frame(bad.replace(b"123456789012", b"1234567890AB")))
    assert client.receive().response_code == rc.FORMAT_ERROR
    wait_until(lambda: PendingReversal.objects.filter(acknowledged_at__isnull=False).exists(), "the reversal")
    wait_until(lambda: JournalEntry.objects.filter(response_code=rc.FORMAT_ERROR).exists(), "the journal")

    assert card_data_findings(extra_secrets=("4000110000000017", "6061010000000036", "5220110000000026")) == []
