"""The ISO 8583 profile and codec (core.iso8583): round trips, golden bytes, malformed input, framing over TCP."""

import asyncio
import contextlib
import dataclasses
import datetime as dt
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tasdid.core import iso8583 as iso
from tasdid.core import response_codes as rc

NOW = dt.datetime(2026, 12, 7, 17, 30, 5, tzinfo=dt.UTC)
SENT = dt.datetime(2026, 12, 7, 17, 30, 0, tzinfo=dt.UTC)
PAN = "4111111111111111"
CAVV = "kZ3Uq5W0yKp8c1tH9m2Lr7sXa0E="
DS_TRANS_ID = "5b8e7c1a-3f2d-4e6b-9a0c-1d2e3f4a5b6c"

# --- strategies -------------------------------------------------------------------------------------------------


def text(pattern: str) -> st.SearchStrategy[str]:
    return st.from_regex(pattern, fullmatch=True)


digits = {n: text(f"[0-9]{{{n}}}") for n in (2, 3, 4, 6, 11)}
times = st.datetimes(min_value=dt.datetime(2001, 1, 1), max_value=dt.datetime(2098, 12, 31),
                     timezones=st.just(dt.UTC)).map(lambda t: t.replace(microsecond=0))
merchant_ids = text(r"[!-~]([ -~]{0,13}[!-~])?")
merchant_names = st.one_of(st.just(""), text(r"[!-~]([ -~]{0,38}[!-~])?"))
amounts = st.integers(min_value=0, max_value=10**12 - 1)
pans = text(r"[0-9]{12,19}")
order_ids = st.one_of(st.just(""), text(r"[A-Za-z0-9._:/-]{1,64}"))
rrns = text(r"[0-9A-Za-z]{12}")
auth_codes = text(r"[0-9A-Za-z]{6}")


def optional(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), strategy)


def originals(mtis=("0100",)) -> st.SearchStrategy[iso.OriginalData]:
    # Its time is set from the message's by with_original_times: DE7 has no year, both are read near "now".
    return st.builds(iso.OriginalData, mti=st.sampled_from(mtis), stan=digits[6], transmitted_at=st.just(NOW),
                     acquirer_id=digits[11], forwarder_id=digits[11])


def with_original_times(strategy):
    def shift(message, before):
        if getattr(message, "original", None) is None:
            return message
        original = dataclasses.replace(message.original, transmitted_at=message.transmitted_at - before)
        return dataclasses.replace(message, original=original)

    return st.builds(shift, strategy, st.integers(0, 30 * 86400).map(lambda s: dt.timedelta(seconds=s)))


three_ds = {
    "cvv": optional(text(r"[0-9]{3,4}")), "eci": optional(digits[2]),
    "authentication_value": optional(text(r"[A-Za-z0-9+/=]{1,40}")),
    "ds_trans_id": optional(text(r"[0-9A-Za-z-]{1,36}")), "trans_status": optional(text(r"[A-Z]")),
}
common = {"amount_minor": amounts, "currency": digits[3], "stan": digits[6], "transmitted_at": times,
          "merchant_id": merchant_ids}

MESSAGES = {
    "0100": st.builds(iso.AuthorizationRequest, pan=pans, expiry_yymm=digits[4], processing_code=text("00[0-9]{4}"),
                      merchant_name=merchant_names, order_id=order_ids, **common, **three_ds),
    "0200": st.one_of(
        st.builds(iso.FinancialRequest, processing_code=text("00[0-9]{4}"), pan=pans, expiry_yymm=digits[4],
                  merchant_name=merchant_names, order_id=order_ids, **common, **three_ds),
        st.builds(iso.FinancialRequest, processing_code=text("20[0-9]{4}"), rrn=rrns, original=originals(),
                  merchant_name=merchant_names, order_id=order_ids, **common),
        st.builds(iso.FinancialRequest, processing_code=text("20[0-9]{4}"), pan=pans, expiry_yymm=optional(digits[4]),
                  order_id=order_ids, **common),
    ),
    "0220": st.builds(iso.CompletionRequest, rrn=rrns, original=originals(), auth_code=optional(auth_codes),
                      order_id=order_ids, **common),
    "0400": st.builds(iso.ReversalRequest, original=originals(("0100", "0200")), rrn=optional(rrns),
                      auth_code=optional(auth_codes), processing_code=st.sampled_from(["000000", "200000"]),
                      order_id=order_ids, **common),
    "0800": st.builds(iso.NetworkRequest, stan=digits[6], transmitted_at=times,
                      network_code=st.sampled_from(iso.NETWORK_CODES)),
    "0810": st.builds(iso.NetworkResponse, stan=digits[6], transmitted_at=times, response_code=text("[0-9A-Z]{2}"),
                      network_code=st.sampled_from(iso.NETWORK_CODES)),
}
for _mti, _cls in (("0110", iso.AuthorizationResponse), ("0210", iso.FinancialResponse),
                   ("0230", iso.CompletionResponse), ("0410", iso.ReversalResponse)):
    MESSAGES[_mti] = st.builds(
        _cls, stan=digits[6], transmitted_at=times, response_code=st.sampled_from(sorted(rc.TABLE)),
        merchant_id=optional(merchant_ids), processing_code=optional(text("(00|20)[0-9]{4}")),
        amount_minor=st.one_of(st.none(), amounts), currency=optional(digits[3]), rrn=optional(rrns),
        auth_code=optional(auth_codes))

MESSAGES = {mti: with_original_times(strategy) for mti, strategy in MESSAGES.items()}
any_message = st.one_of(*MESSAGES.values())
# "now" for the decoder: the receiver's clock, within five months of the sender's.
drift = st.timedeltas(min_value=-dt.timedelta(days=150), max_value=dt.timedelta(days=150))


def test_every_message_type_of_the_profile_has_a_strategy():
    assert set(MESSAGES) == set(iso.MESSAGES) == {"0100", "0110", "0200", "0210", "0220", "0230", "0400", "0410",
                                                   "0800", "0810"}


# --- round trips ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mti", sorted(MESSAGES))
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(mti, data):
    message = data.draw(MESSAGES[mti])
    now = message.transmitted_at + data.draw(drift)
    payload = iso.encode(message)
    assert payload[:4] == mti.encode()
    assert iso.decode(payload, now=now) == message
    assert iso.decode_frame(iso.encode_frame(message), now=now) == message
    assert iso.encode(iso.decode(payload, now=now)) == payload


@settings(max_examples=200)
@given(message=any_message, data=st.data())
def test_a_response_matches_its_request(message, data):
    if message.MTI not in iso.REQUESTS:
        return
    code = data.draw(st.sampled_from(sorted(rc.TABLE)))
    answer = iso.respond(message, code)
    assert iso.RESPONSE_MTI[message.MTI] == answer.MTI
    assert iso.match_key(answer) == iso.match_key(message)
    assert answer.response_code == code
    assert iso.decode(iso.encode(answer), now=message.transmitted_at) == answer


def test_de7_takes_the_year_nearest_to_the_receivers_clock():
    message = iso.NetworkRequest(stan="000001", transmitted_at=dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
                                 network_code=iso.ECHO)
    after_new_year = dt.datetime(2027, 1, 1, 0, 0, 10, tzinfo=dt.UTC)
    assert iso.decode(iso.encode(message), now=after_new_year).transmitted_at == message.transmitted_at
    leap = iso.NetworkRequest(stan="000001", transmitted_at=dt.datetime(2028, 2, 29, 12, 0, tzinfo=dt.UTC),
                              network_code=iso.ECHO)
    assert iso.decode(iso.encode(leap), now=dt.datetime(2027, 12, 1, tzinfo=dt.UTC)).transmitted_at.year == 2028


def test_de7_is_utc_and_whole_seconds():
    casablanca = dt.timezone(dt.timedelta(hours=1))
    sent = dt.datetime(2026, 12, 7, 18, 30, 0, 999_999, tzinfo=casablanca)
    message = iso.NetworkRequest(stan="000001", transmitted_at=sent, network_code=iso.SIGN_ON)
    assert iso.de7(sent) == "1207173000"
    assert iso.decode(iso.encode(message), now=NOW).transmitted_at == dt.datetime(2026, 12, 7, 17, 30, tzinfo=dt.UTC)


# --- golden vectors: fixed messages, exact bytes ----------------------------------------------------------------

ORIGINAL = iso.OriginalData(mti="0100", stan="000001", transmitted_at=SENT)
AUTHORIZATION = iso.AuthorizationRequest(
    pan=PAN, expiry_yymm="2812", amount_minor=28500, currency="504", stan="000001", transmitted_at=SENT,
    merchant_id="600000000", merchant_name="Maroc Telecom", order_id="ORDER-0001", cvv="123", eci="05",
    authentication_value=CAVV, ds_trans_id=DS_TRANS_ID, trans_status="Y",
)
REFUND = iso.FinancialRequest(processing_code=iso.REFUND, amount_minor=9900, currency="504", stan="000004",
                              transmitted_at=SENT, merchant_id="600000000", rrn="634117000001", original=ORIGINAL,
                              order_id="ORDER-0001")
COMPLETION = iso.CompletionRequest(amount_minor=28500, currency="504", stan="000002", transmitted_at=SENT,
                                   merchant_id="600000000", rrn="634117000001", auth_code="654321",
                                   original=ORIGINAL, order_id="ORDER-0001")
REVERSAL = iso.ReversalRequest(amount_minor=28500, currency="504", stan="000003", transmitted_at=SENT,
                               merchant_id="600000000", original=ORIGINAL, order_id="ORDER-0001")
SIGN_ON = iso.NetworkRequest(stan="000005", transmitted_at=SENT, network_code=iso.SIGN_ON)

# The pairs docs/iso8583.md shows; each request with the answer an issuer gives it.
PAIRS = {
    "0100/0110": (AUTHORIZATION, iso.respond(AUTHORIZATION, rc.APPROVED, rrn="634117000001", auth_code="654321")),
    "0200/0210": (REFUND, iso.respond(REFUND, rc.APPROVED)),
    "0220/0230": (COMPLETION, iso.respond(COMPLETION, rc.APPROVED)),
    "0400/0410": (REVERSAL, iso.respond(REVERSAL, rc.APPROVED, rrn="634117000001")),
    "0800/0810": (SIGN_ON, iso.respond(SIGN_ON, rc.APPROVED)),
}

# Frames (length prefix included) as the codec writes them for PAIRS; the bytes docs/iso8583.md shows.
GOLDEN_HEX = {
    "0100/0110": (
        ("00f7303130303732323430303030303036313830303031363431313131313131313131313131313130303030303030303030"
         "303030323835303031323037313733303030303030303031323831323630303030303030302020202020204d61726f632054"
         "656c65636f6d20202020202020202020202020202020202020202020202020202031313041563032386b5a33557135573079"
         "4b703863317448396d324c723773586130453d4356303033313233445330333635623865376331612d336632642d34653662"
         "2d396130632d316432653366346135623663454330303230354f493031304f524445522d30303031545330303159353034"),
        ("005c303131303332323030303030304534303830303030303030303030303030303030323835303031323037313733303030"
         "3030303030313633343131373030303030313635343332313030363030303030303030202020202020353034"),
    ),
    "0200/0210": (
        ("00a0303230304232323030303030303834313830303030303030303034303030303030303030323030303030303030303030"
         "3030393930303132303731373330303030303030303436333431313730303030303136303030303030303020202020202030"
         "31354f493031304f524445522d30303031353034303130303030303030313132303731373330303030303030303030303030"
         "303030303030303030303030"),
        ("0056303231303332323030303030304134303830303032303030303030303030303030303939303031323037313733303030"
         "3030303030343633343131373030303030313030363030303030303030202020202020353034"),
    ),
    "0220/0230": (
        ("00a6303232304232323030303030304334313830303030303030303034303030303030303030303030303030303030303030"
         "3032383530303132303731373330303030303030303236333431313730303030303136353433323136303030303030303020"
         "20202020203031354f493031304f524445522d30303031353034303130303030303030313132303731373330303030303030"
         "303030303030303030303030303030303030"),
        ("0056303233303332323030303030304134303830303030303030303030303030303030323835303031323037313733303030"
         "3030303030323633343131373030303030313030363030303030303030202020202020353034"),
    ),
    "0400/0410": (
        ("0094303430304232323030303030303034313830303030303030303034303030303030303030303030303030303030303030"
         "303238353030313230373137333030303030303030333630303030303030302020202020203031354f493031304f52444552"
         "2d30303031353034303130303030303030313132303731373330303030303030303030303030303030303030303030303030"),
        ("0056303431303332323030303030304134303830303030303030303030303030303030323835303031323037313733303030"
         "3030303030333633343131373030303030313030363030303030303030202020202020353034"),
    ),
    "0800/0810": (
        ("0037303830303832323030303030303030303030303030343030303030303030303030303030313230373137333030303030"
         "30303035303031"),
        ("0039303831303832323030303030303230303030303030343030303030303030303030303030313230373137333030303030"
         "303030353030303031"),
    ),
}


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_golden_bytes(pair):
    for message, expected in zip(PAIRS[pair], GOLDEN_HEX[pair], strict=True):
        assert iso.encode_frame(message).hex() == expected
        assert iso.decode_frame(bytes.fromhex(expected), now=NOW) == message


def test_golden_bytes_read_by_hand():
    # Bitmaps worked out from the elements present, independently of the codec.
    assert iso.encode_frame(SIGN_ON) == (b"\x00\x37" b"0800" b"8220000000000000" b"0400000000000000"
                                         b"1207173000" b"000005" b"001")
    approval = PAIRS["0100/0110"][1]  # DE3 4 7 11 37 38 39 42 49
    assert iso.encode_frame(approval) == (b"\x00\x5c" b"0110" b"322000000E408000" b"000000" b"000000028500"
                                          b"1207173000" b"000001" b"634117000001" b"654321" b"00"
                                          b"600000000      " b"504")
    reversal = iso.encode(REVERSAL)  # DE1 3 4 7 11 42 48 49 90
    assert reversal[:36] == b"0400" b"B220000000418000" b"0000004000000000"
    assert reversal.endswith(b"015OI010ORDER-0001" b"504" b"0100" b"000001" b"1207173000" + b"0" * 22)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Maroc Télécom", "Maroc Telecom"), ("  Café\t«Atlas»  ", "Cafe ?Atlas?"), ("اتصالات المغرب", "??????? ??????"),
     ("x" * 39 + " y", "x" * 39), ("", "")],
)
def test_a_merchant_name_as_de43_takes_it(name, expected):
    assert iso.ascii_text(name) == expected
    assert iso.MERCHANT_NAME.check(expected) is None


def test_de48_tags():
    assert iso.de48_encode({"CV": "123", "EC": "05", "TS": ""}) == "CV003123EC00205"
    assert iso.de48_decode("CV003123EC00205") == {"CV": "123", "EC": "05"}
    for bad in ("CV00312", "CV", "cv003123", "CV0a3123", "CV000", "CV003123CV003456"):
        with pytest.raises(ValueError):
            iso.de48_decode(bad)


def test_card_data_is_never_shown():
    shown = repr(AUTHORIZATION)
    assert PAN not in shown and "411111******1111" in shown
    assert "cvv=<hidden>" in shown and "'123'" not in shown and CAVV not in shown


def test_the_codec_is_pure():
    code = ("import sys, tasdid.core.iso8583, tasdid.core.response_codes, tasdid.switch.iso8583; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_switch_reads_the_same_codec():
    from tasdid.switch import iso8583 as switch_iso

    assert switch_iso.decode is iso.decode and switch_iso.AuthorizationRequest is iso.AuthorizationRequest
    assert set(switch_iso.__all__) == set(iso.__all__)


# --- the sender's mistakes: ValueError at encode ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"pan": "41111111111"}, "DE2"),
        ({"pan": "4111 1111 1111 1111"}, "DE2"),
        ({"amount_minor": -1}, "DE4"),
        ({"amount_minor": 10**12}, "DE4"),
        ({"amount_minor": 285.0}, "DE4"),
        ({"stan": "12345"}, "DE11"),
        ({"stan": "١٢٣٤٥٦"}, "DE11"),
        ({"transmitted_at": dt.datetime(2026, 12, 7, 17, 30)}, "DE7"),
        ({"merchant_id": "6" * 16}, "DE42"),
        ({"merchant_id": ""}, "DE42"),
        ({"merchant_name": "Maroc Télécom"}, "DE43"),
        ({"cvv": "12"}, "DE48.CV"),
        ({"order_id": "ORDER 1"}, "DE48.OI"),
        ({"processing_code": iso.REFUND}, "DE3"),
    ],
)
def test_encode_refuses_what_the_profile_does_not_allow(change, where):
    with pytest.raises(ValueError, match=f"0100 {where}[ :]"):
        iso.encode(dataclasses.replace(AUTHORIZATION, **change))


def test_a_purchase_needs_the_card_and_a_refund_its_card_or_original():
    with pytest.raises(ValueError, match="0200 DE2"):
        iso.encode(dataclasses.replace(REFUND, processing_code=iso.PURCHASE))
    with pytest.raises(ValueError, match="0200 DE2"):
        iso.encode(dataclasses.replace(REFUND, original=None))
    assert iso.encode(dataclasses.replace(REFUND, original=None, rrn="", pan=PAN))


# --- the peer's mistakes: MessageError at decode, and nothing else ----------------------------------------------

VALID = iso.encode(AUTHORIZATION)
APPROVAL = iso.encode(PAIRS["0100/0110"][1])


def decode_error(payload: bytes) -> iso.MessageError:
    with pytest.raises(iso.MessageError) as caught:
        iso.decode(payload, now=NOW)
    return caught.value


def replace_element(payload: bytes, old: bytes, new: bytes) -> bytes:
    assert payload.count(old) == 1
    return payload.replace(old, new)


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        (b"", "MTI"),
        (b"01", "MTI"),
        (b"0900" + VALID[4:], "MTI"),  # not a type of the profile
        (b"0120" + VALID[4:], "MTI"),
        (b"01\xff0" + VALID[4:], "MTI"),
        (VALID[:4] + b"7224000000618G00" + VALID[20:], "bitmap"),  # not hex
        (VALID[:4] + b"7220000000618000" + VALID[20:], "DE48"),  # DE14 dropped: what follows is misread
        (VALID[:4] + b"F224000000618000" + b"0000000000000000" + VALID[20:], "bitmap"),  # empty secondary bitmap
        (APPROVAL[:4] + APPROVAL[4:20].lower() + APPROVAL[20:], "bitmap"),
        (VALID[:4] + b"7224000000610000" + VALID[20:], "message"),  # DE49 dropped: extra data after the last
        (replace_element(VALID, b"000000028500", b"0000000285.0"), "DE4"),
        (replace_element(VALID, b"1207173000", b"1307173000"), "DE7"),
        (replace_element(VALID, b"1207173000", b"12071730 0"), "DE7"),
        (replace_element(VALID, b"164111111111111111", b"1641111111111111x1"), "DE2"),
        (replace_element(VALID, b"164111111111111111", b" 9411111111"), "length"),  # " 9" for "09"
        (replace_element(VALID, b"0000012812", b"000 012812"), "DE11"),
        (replace_element(VALID, b"600000000      ", b"               "), "DE42"),
        (replace_element(VALID, b"CV003123", b"CV00312a"), "DE48.CV"),
        (replace_element(VALID, b"CV003123", b"ZZ003123"), "DE48.ZZ"),
        (replace_element(VALID, b"EC00205", b"CV00205"), "DE48"),  # CV twice
        (replace_element(VALID, b"TS001Y", b"TS005Y"), "DE48"),
        (replace_element(VALID, b"504", b"5\x014"), "DE49"),
        (VALID[:-3], "DE49"),  # truncated
        (VALID + b"0", "message"),  # trailing byte
    ],
)
def test_malformed_messages_raise_the_named_error(payload, where):
    error = decode_error(payload)
    assert error.where == where and error.reason
    assert not error.stream_lost
    assert PAN not in str(error) and PAN not in repr(error.__dict__)


def test_an_element_another_type_does_not_carry_is_refused():
    payload = iso.encode(iso.respond(SIGN_ON, rc.APPROVED))
    assert payload.startswith(b"0810")
    error = decode_error(b"0800" + payload[4:])  # 0800 with DE39
    assert (error.where, error.reason) == ("DE39", "not an element of 0800")
    missing = decode_error(b"0110" + iso.encode(SIGN_ON)[4:])  # 0110 without DE39, with DE70
    assert missing.where == "DE70"


def test_a_bad_request_with_a_readable_key_is_answered_30():
    error = decode_error(replace_element(VALID, b"CV003123", b"CV00312a"))
    assert (error.mti, error.stan, error.transmitted_at, error.merchant_id) == ("0100", "000001", SENT, "600000000")
    answer = iso.format_error_answer(error)
    assert answer == iso.AuthorizationResponse(stan="000001", transmitted_at=SENT, response_code="30",
                                               merchant_id="600000000")
    assert iso.match_key(answer) == iso.match_key(AUTHORIZATION)
    assert iso.decode(iso.encode(answer), now=NOW) == answer


def test_nobody_to_answer_without_a_key_a_request_type_or_the_stream():
    no_stan = decode_error(replace_element(VALID, b"0000012812", b"000 012812"))
    assert no_stan.stan is None and iso.format_error_answer(no_stan) is None
    response = decode_error(iso.encode(PAIRS["0100/0110"][1])[:-1])
    assert response.mti == "0110" and iso.format_error_answer(response) is None
    with pytest.raises(iso.MessageError) as caught:
        iso.decode_frame(b"\x00\x05" + VALID)
    assert caught.value.stream_lost and iso.format_error_answer(caught.value) is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated length prefix"),
        (b"\x00", "truncated length prefix"),
        (b"\x00\x00", "length 0"),
        (b"\x08\x01" + b"0" * 2049, "length 2049 over the limit of 2048"),
        (b"\x00\xf7" + VALID[:-1], "length prefix says 247 bytes, 246 follow"),
        (b"\x00\x10" + VALID, f"length prefix says 16 bytes, {len(VALID)} follow"),
    ],
)
def test_bad_frames(data, reason):
    with pytest.raises(iso.MessageError) as caught:
        iso.decode_frame(data)
    assert (caught.value.where, caught.value.reason, caught.value.stream_lost) == ("frame", reason, True)


def mutations() -> st.SearchStrategy[bytes]:
    """Valid messages of every type with bytes changed, cut, repeated or inserted."""

    def mutate(payload: bytes, data) -> bytes:
        out = bytearray(payload)
        for _ in range(data.draw(st.integers(1, 4))):
            action = data.draw(st.sampled_from(["set", "cut", "insert", "truncate", "digit"]))
            i = data.draw(st.integers(0, max(0, len(out) - 1)))
            if action == "set" and out:
                out[i] = data.draw(st.integers(0, 255))
            elif action == "digit" and out:
                out[i] = data.draw(st.sampled_from(b"0123456789ABCDEF aZ"))
            elif action == "cut":
                del out[i:i + data.draw(st.integers(1, 8))]
            elif action == "insert":
                out[i:i] = data.draw(st.binary(min_size=1, max_size=8))
            else:
                del out[i:]
        return bytes(out)

    return st.builds(lambda m, d: mutate(iso.encode(m), d), any_message, st.data())


def raw_frame(payload: bytes) -> bytes:
    """A length prefix in front of any bytes, even none (iso.frame refuses that)."""
    return len(payload).to_bytes(2, "big") + payload


def decodes_or_names_the_error(payload: bytes) -> None:
    try:
        message = iso.decode(payload, now=NOW)
    except iso.MessageError as error:
        assert error.where and error.reason
        answer = iso.format_error_answer(error)
        if answer is not None:
            assert iso.decode(iso.encode(answer), now=NOW) == answer
        return
    # What decodes is a message of the profile, which encodes back to the very same bytes.
    assert iso.encode(message) == payload


@settings(max_examples=300)
@given(payload=st.one_of(st.binary(max_size=300), mutations()))
@example(payload=b"0100" + b"F" * 16)
@example(payload=b"0800" + b"0" * 16)
def test_any_bytes_decode_or_raise_the_named_error(payload):
    decodes_or_names_the_error(payload)


@settings(max_examples=300)
@given(data=st.one_of(st.binary(max_size=300), mutations().map(raw_frame), any_message.map(iso.encode_frame)))
def test_any_frame_decodes_or_raises_the_named_error(data):
    with contextlib.suppress(iso.MessageError):
        iso.decode_frame(data, now=NOW)


# --- framing over a real TCP connection -------------------------------------------------------------------------


async def exchange(chunks: list[bytes], *, max_size: int = iso.MAX_FRAME) -> list:
    """A loopback server that reads messages until the peer closes or the framing fails; the client writes
    ``chunks`` (split anywhere) and closes. Returns what the server read, an exception last if any."""
    read: list = []
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    message = await iso.read_message(reader, max_size=max_size, now=NOW)
                except iso.MessageError as error:
                    read.append(error)
                    if error.stream_lost:
                        break
                    continue
                if message is None:
                    break
                read.append(message)
        finally:
            writer.close()
            done.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        await asyncio.wait_for(done.wait(), timeout=10)
    return read


def test_frames_over_tcp_split_anywhere():
    stream = b"".join(iso.encode_frame(m) for m in (SIGN_ON, AUTHORIZATION, COMPLETION))
    chunks = [stream[:1], stream[1:60], stream[60:61], stream[61:]]
    assert asyncio.run(exchange(chunks)) == [SIGN_ON, AUTHORIZATION, COMPLETION]


def test_a_bad_message_over_tcp_leaves_the_stream_in_step():
    bad = iso.frame(replace_element(VALID, b"CV003123", b"CV00312a"))
    read = asyncio.run(exchange([bad + iso.encode_frame(SIGN_ON)]))
    assert [type(x) for x in read] == [iso.MessageError, iso.NetworkRequest]
    assert iso.format_error_answer(read[0]).response_code == "30"


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (b"\x00", "connection closed inside the length prefix"),
        (b"\x00\xf7" + VALID[:100], "connection closed after 100 of 247 bytes"),
        (b"\x00\x00", "length 0"),
        (b"\x01\x00" + b"0" * 256, "length 256 over the limit of 255"),
    ],
)
def test_framing_errors_over_tcp_lose_the_stream(tail, reason):
    read = asyncio.run(exchange([iso.encode_frame(SIGN_ON) + tail], max_size=255))
    assert read[0] == SIGN_ON
    assert (read[1].where, read[1].reason, read[1].stream_lost) == ("frame", reason, True)
    assert len(read) == 2
