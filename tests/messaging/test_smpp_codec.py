"""The pure part of the SMPP channel: texts, addresses, receipts, statuses."""

from tasdid.messaging.smpp_codec import (
    Address,
    Receipt,
    address,
    decode_text,
    encode_text,
    is_transient,
    parse_receipt,
    received_address,
    status_name,
)


def test_texts_take_the_narrowest_coding_and_come_back_the_same():
    assert encode_text("Code 482193") == (0, b"Code 482193")
    assert encode_text("enregistré") == (3, "enregistré".encode("latin-1"))
    assert encode_text("رمز 482193") == (8, "رمز 482193".encode("utf-16-be"))
    for text in ("Code 482193", "enregistré", "رمز 482193"):
        assert decode_text(*encode_text(text)) == text
    assert decode_text(8, b"\x00a\xd8") == "a\ufffd"  # a cut UCS-2 text does not raise


def test_addresses():
    assert address("+212661000001") == Address("212661000001", 1, 1)
    assert address("1111") == Address("1111", 0, 1)
    assert address("Tasdid Paiements") == Address("Tasdid Paie", 5, 0)
    assert received_address("212661000001", 1) == "+212661000001"
    assert received_address("1111", 1) == "1111"
    assert received_address("0661000001", 0) == "0661000001"


def test_receipts_from_text_and_from_tlvs():
    text = "id:7f3a sub:001 dlvrd:001 submit date:2612071200 done date:2612071201 stat:DELIVRD err:000 text:id:x"
    assert parse_receipt(text) == Receipt("7f3a", "DELIVRD", "000")
    assert parse_receipt(text).delivered and not parse_receipt(text).failed
    assert parse_receipt("id:9 stat:undeliv err:012").failed
    assert parse_receipt("stat:DELIVRD", receipted_message_id="abc", message_state=5) == Receipt("abc", "UNDELIV", "")
    assert parse_receipt("hello") is None


def test_statuses():
    assert is_transient(0x58) and is_transient(0x14) and is_transient(0x08)
    assert not is_transient(0x0B) and not is_transient(0x0A)
    assert status_name(0x58) == "ESME_RTHROTTLED" and status_name(0x1234) == "0x00001234"
