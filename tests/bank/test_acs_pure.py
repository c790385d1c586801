"""The ACS's pure side: AReq checks, the CAVV, ECI, amounts as the page shows them."""

import base64
import datetime as dt

import pytest

from tasdid.bank import acs, sandbox
from tasdid.core.cards import fingerprint

from .conftest import areq_message

MAIN = sandbox.card_by_outcome("00", "challenge")


def test_a_good_areq_is_read_without_keeping_the_number_in_its_repr():
    message = areq_message(MAIN, server_url="https://gw.example.ma", purchaseDate="20261126174900")
    areq = acs.parse_areq(message)
    assert areq.pan == MAIN.number
    assert areq.expiry_yymm == "2812"
    assert areq.amount_minor == 28500
    assert areq.purchase_date == dt.datetime(2026, 11, 26, 17, 49, tzinfo=dt.UTC)
    assert areq.merchant_name == "Tasdid Télécom"
    assert areq.notification_url == "https://gw.example.ma/3ds/notification"
    assert MAIN.number not in repr(areq)


@pytest.mark.parametrize(
    ("change", "code", "detail"),
    [
        ({"acctNumber": ""}, "201", "acctNumber"),
        ({"merchantName": None}, "201", "merchantName"),
        ({"purchaseAmount": 28500}, "201", "purchaseAmount"),  # a number, not the string the spec wants
        ({"messageVersion": "1.0.2"}, "203", "messageVersion"),
        ({"threeDSServerTransID": "not-a-uuid"}, "203", "threeDSServerTransID"),
        ({"acctNumber": "4000 11"}, "203", "acctNumber"),
        # protocol fields are ASCII: int() would read Arabic-Indic digits
        ({"acctNumber": "٥٢٢٠١١٠٠٠٠٠٠٠٠٢٦"}, "203", "acctNumber"),
        ({"cardExpiryDate": "٢٨١٢"}, "203", "cardExpiryDate"),
        ({"purchaseAmount": "٢٨٥٠٠"}, "203", "purchaseAmount"),
        ({"purchaseAmount": "²"}, "203", "purchaseAmount"),
        ({"cardExpiryDate": "2813"}, "203", "cardExpiryDate"),
        ({"purchaseAmount": "0"}, "203", "purchaseAmount"),
        ({"purchaseAmount": "-5"}, "203", "purchaseAmount"),
        ({"purchaseCurrency": "978"}, "203", "purchaseCurrency"),
        ({"purchaseExponent": "3"}, "203", "purchaseExponent"),
        ({"purchaseDate": "2026-11-26"}, "203", "purchaseDate"),
        ({"threeDSServerURL": "javascript:alert(1)"}, "203", "threeDSServerURL"),
        ({"notificationURL": "ftp://x"}, "203", "notificationURL"),
        ({"deviceChannel": "01"}, "203", "deviceChannel"),
        ({"messageCategory": "02"}, "203", "messageCategory"),
        ({"acquirerMerchantID": 7}, "203", "acquirerMerchantID"),
    ],
)
def test_a_bad_areq_names_its_bad_element(change, code, detail):
    with pytest.raises(acs.AReqError) as caught:
        acs.parse_areq(areq_message(MAIN, server_url="https://gw.example.ma", **change))
    assert caught.value.code == code
    assert caught.value.detail == detail


def test_the_cavv_is_a_20_byte_hmac_bound_to_transaction_card_and_amount(settings):
    fp = fingerprint(MAIN.number)
    value = acs.cavv(acs_trans_id="a", card_fingerprint=fp, amount_minor=28500)
    assert len(base64.b64decode(value)) == 20 and len(value) == 28
    assert acs.cavv_matches(value, acs_trans_id="a", card_fingerprint=fp, amount_minor=28500)
    assert not acs.cavv_matches(value, acs_trans_id="b", card_fingerprint=fp, amount_minor=28500)
    assert not acs.cavv_matches(value, acs_trans_id="a", card_fingerprint=fp, amount_minor=28501)
    assert not acs.cavv_matches(value, acs_trans_id="a", card_fingerprint=fingerprint("4000110000000017"),
                                amount_minor=28500)
    assert not acs.cavv_matches("", acs_trans_id="a", card_fingerprint=fp, amount_minor=28500)
    # The bank's own key, which no other party holds (not the gateway's "cards" key): another key, another value.
    settings.TASDID_KEYS = {**settings.TASDID_KEYS, "cards": "another-key"}
    assert acs.cavv(acs_trans_id="a", card_fingerprint=fp, amount_minor=28500) == value
    settings.TASDID_KEYS = {**settings.TASDID_KEYS, "cavv": "another-key"}
    assert acs.cavv(acs_trans_id="a", card_fingerprint=fp, amount_minor=28500) != value


@pytest.mark.parametrize(
    ("brand", "status", "eci"),
    [("VISA", "Y", "05"), ("CMI", "Y", "05"), ("MASTERCARD", "Y", "02"), ("VISA", "A", "06"),
     ("MASTERCARD", "A", "01"), ("VISA", "N", "07"), ("MASTERCARD", "N", "00"), ("CMI", "U", "07")],
)
def test_eci(brand, status, eci):
    assert acs.eci_for(brand, status) == eci


def test_erro_message():
    assert acs.erro(code="203", description="Bad", detail="acctNumber", three_ds_server_trans_id="t") == {
        "messageType": "Erro", "messageVersion": "2.2.0", "errorCode": "203", "errorComponent": "A",
        "errorDescription": "Bad", "errorDetail": "acctNumber", "errorMessageType": "AReq",
        "threeDSServerTransID": "t",
    }
