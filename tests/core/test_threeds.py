import base64
import json

import pytest

from tasdid.core.threeds import (
    LINK_DIRECTORY_ACS,
    MAX_MESSAGE_BYTES,
    MessageError,
    SignatureError,
    decode_browser_message,
    encode_browser_message,
    sign_body,
    verify_body,
)
from tasdid.core.threeds import LINK_SERVER_DIRECTORY as LINK


def test_each_link_has_its_own_key():
    body, signature = sign_body({"messageType": "AReq", "acsTransID": "a"}, link=LINK)
    assert verify_body(body, signature, message_type="AReq", link=("switch", "gateway"))["acsTransID"] == "a"
    with pytest.raises(SignatureError):  # the directory <-> ACS key does not verify the gateway's messages
        verify_body(body, signature, message_type="AReq", link=LINK_DIRECTORY_ACS)
    with pytest.raises(ValueError):  # the gateway and the bank share no key
        sign_body({"messageType": "AReq"}, link=("gateway", "bank"))


def test_signed_body_round_trip_and_tampering():
    body, signature = sign_body({"messageType": "RReq", "transStatus": "Y", "acsTransID": "a"}, link=LINK)
    assert verify_body(body, signature, message_type="RReq", link=LINK)["transStatus"] == "Y"
    with pytest.raises(MessageError):
        verify_body(body.replace(b'"Y"', b'"N"'), signature, message_type="RReq", link=LINK)
    with pytest.raises(MessageError):
        verify_body(body, signature, message_type="ARes", link=LINK)
    with pytest.raises(MessageError):
        verify_body(b"not json", signature, message_type="RReq", link=LINK)
    with pytest.raises(MessageError):
        verify_body(body, None, message_type="RReq", link=LINK)


CRES = {"messageType": "CRes", "messageVersion": "2.2.0",
        "threeDSServerTransID": "5b2c7a2e-7d1f-4c59-9f7e-3c1f0e7f6a11",
        "acsTransID": "0f6d7c1a-58b1-4f0e-8d0c-0c1a8b9e2d33", "transStatus": "Y", "challengeCompletionInd": "Y"}


def test_browser_messages_are_base64url_json_under_no_key():
    """EMV 3DS's browser flow: a creq/cres is base64url JSON, no signature (the 3DS Server and the ACS share no
    key); anyone can write one, so the receivers take from it only which transaction it names."""
    text = encode_browser_message(CRES)
    assert "=" not in text and json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))) == CRES
    assert decode_browser_message(text, message_type="CRes") == CRES
    forged = encode_browser_message({**CRES, "transStatus": "N"})
    assert decode_browser_message(forged, message_type="CRes")["transStatus"] == "N"
    creq = {"messageType": "CReq", "messageVersion": "2.2.0", "threeDSServerTransID": CRES["threeDSServerTransID"],
            "acsTransID": CRES["acsTransID"], "challengeWindowSize": "05"}
    assert decode_browser_message(encode_browser_message(creq), message_type="CReq") == creq
    with pytest.raises(MessageError):
        decode_browser_message(text, message_type="CReq")
    for bad in ({**creq, "challengeWindowSize": "09"}, {**creq, "acsTransID": "a"}, {**creq, "messageVersion": 2},
                {k: v for k, v in creq.items() if k != "threeDSServerTransID"}):
        with pytest.raises(MessageError):
            decode_browser_message(encode_browser_message(bad), message_type="CReq")
    for junk in ("", "!!!", "e30", text[:-4]):
        with pytest.raises(MessageError):
            decode_browser_message(junk, message_type="CRes")


DEEP = b"[" * 10_000  # under the size cap, nested far deeper than the JSON parser's recursion allows


@pytest.mark.parametrize("body", [DEEP, b'{"messageType": "RReq", "x": ' + DEEP + b"}", b"[" * 200_000,
                                  b'{"messageType": "RReq", "pad": "' + b"x" * 16_400 + b'"}'])
def test_a_body_too_deep_or_too_large_is_a_message_error_not_a_crash(body):
    with pytest.raises(MessageError):
        verify_body(body, "sig", message_type="RReq", link=LINK)


def test_a_signed_body_at_the_size_cap_is_still_read():
    payload = {"messageType": "RReq", "pad": "x" * 16_000}
    body, signature = sign_body(payload, link=LINK)
    assert len(body) <= MAX_MESSAGE_BYTES
    assert verify_body(body, signature, message_type="RReq", link=LINK) == payload


@pytest.mark.parametrize("raw", [DEEP, b"[" * 200_000])
def test_a_browser_message_too_deep_or_too_large_is_a_message_error_not_a_crash(raw):
    text = base64.urlsafe_b64encode(raw).decode()
    with pytest.raises(MessageError):
        decode_browser_message(text, message_type="CRes")


@pytest.mark.parametrize("sig", [5, None, ["a"], {"b": 1}])
def test_a_browser_message_whose_signature_is_not_text_is_refused(sig):
    text = base64.urlsafe_b64encode(json.dumps({"messageType": "CRes", "sig": sig}).encode()).decode()
    with pytest.raises(MessageError):
        decode_browser_message(text, message_type="CRes")


def test_a_lone_surrogate_in_a_message_is_refused():
    with pytest.raises(MessageError):
        verify_body(b'{"messageType": "RReq", "x": "\\ud800"}', "sig", message_type="RReq", link=LINK)
