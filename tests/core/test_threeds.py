import pytest

from tasdid.core.threeds import (
    MessageError,
    decode_browser_message,
    encode_browser_message,
    sign_body,
    verify_body,
)


def test_signed_body_round_trip_and_tampering():
    body, signature = sign_body({"messageType": "RReq", "transStatus": "Y", "acsTransID": "a"})
    assert verify_body(body, signature, message_type="RReq")["transStatus"] == "Y"
    with pytest.raises(MessageError):
        verify_body(body.replace(b'"Y"', b'"N"'), signature, message_type="RReq")
    with pytest.raises(MessageError):
        verify_body(body, signature, message_type="ARes")
    with pytest.raises(MessageError):
        verify_body(b"not json", signature, message_type="RReq")
    with pytest.raises(MessageError):
        verify_body(body, None, message_type="RReq")


def test_browser_message_round_trip_and_forgery():
    text = encode_browser_message({"messageType": "CRes", "transStatus": "Y"})
    assert decode_browser_message(text, message_type="CRes") == {"messageType": "CRes", "transStatus": "Y"}
    forged = encode_browser_message({"messageType": "CRes", "transStatus": "N"})
    assert decode_browser_message(forged, message_type="CRes")["transStatus"] == "N"
    for junk in ("", "!!!", "e30", text[:-4]):
        with pytest.raises(MessageError):
            decode_browser_message(junk, message_type="CRes")
