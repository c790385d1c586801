"""The verification code printed on a receipt and the public check of a receipt: keyed, bound to the payment,
forgiving of how people type it, rate-limited per client address, recorded."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import resolve

from tasdid.billing.models import Payment, PaymentOrder, ReceiptCheck
from tasdid.billing.receipts import (
    VERIFICATION_ALPHABET,
    grouped_code,
    normalize_receipt_number,
    normalize_verification_code,
    verification_code,
    verification_code_matches,
    verification_path,
    verification_url,
)
from tasdid.billing.selectors.payments import CheckedReceipt, receipt_for
from tasdid.billing.services.receipt_checks import Genuine, NotGenuine, TooManyChecks, receipt_check
from tasdid.core.keys import secret_key
from tasdid.portal import verify_views
from tests.billing.test_receipts import paid

NUMBER, TRANS_ID = "R2026-00000001", "26101ABCD1234"
T0 = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)


def test_verification_code_is_ten_unambiguous_characters_keyed_and_bound_to_the_payment(settings):
    code = verification_code(receipt_number=NUMBER, trans_id=TRANS_ID)
    assert re.fullmatch(f"[{VERIFICATION_ALPHABET}]{{10}}", code)
    assert not set(code) & set("ILOU")
    assert code == verification_code(receipt_number=NUMBER, trans_id=TRANS_ID)
    assert code != verification_code(receipt_number="R2026-00000002", trans_id=TRANS_ID)
    # The same number given to another payment (a database started afresh) has another code.
    assert code != verification_code(receipt_number=NUMBER, trans_id="26102EFGH5678")
    # Its own key: not the receipt links' key, and another key gives other codes.
    assert secret_key("receipt-checks") != secret_key("receipts")
    settings.TASDID_KEYS = {**settings.TASDID_KEYS, "receipt-checks": "another key"}
    assert verification_code(receipt_number=NUMBER, trans_id=TRANS_ID) != code


def test_verification_code_is_read_as_people_type_it():
    code = verification_code(receipt_number=NUMBER, trans_id=TRANS_ID)
    assert grouped_code(code) == f"{code[:5]}-{code[5:]}"
    for typed in (code, code.lower(), grouped_code(code), f"  {code[:5]} {code[5:]} ", grouped_code(code).lower()):
        assert normalize_verification_code(typed) == code, typed
    assert normalize_verification_code("0O1IL23456") == "0011123456"  # O read as zero, I and L as one
    assert normalize_verification_code("٠١٢٣٤٥٦٧٨٩") == "0123456789"
    for junk in ("", "ABCDEFGHJ", "ABCDEFGHJKM", "ABCDEFGHJU", "ABC\x00EFGHJK", "é" * 10, "A" * 100_000):
        assert normalize_verification_code(junk) == "", junk
    assert verification_code_matches(receipt_number=NUMBER, trans_id=TRANS_ID, code=code)
    assert not verification_code_matches(receipt_number=NUMBER, trans_id=TRANS_ID, code=code[:-1])
    assert not verification_code_matches(receipt_number=NUMBER, trans_id=TRANS_ID, code="")


def test_receipt_number_is_read_as_people_type_it():
    for typed in (NUMBER, NUMBER.lower(), f" {NUMBER} ", "R٢٠٢٦-٠٠٠٠٠٠٠١", "R2026\u201100000001"):
        assert normalize_receipt_number(typed) == NUMBER, typed
    for junk in ("", "R2026-1", "2026-00000001", "R2026-00000001X", "R" * 100_000, "R2026-0000\x0001"):
        assert normalize_receipt_number(junk) == "", junk


def test_verification_link_is_on_the_biller_and_matches_the_route():
    code = verification_code(receipt_number=NUMBER, trans_id=TRANS_ID)
    assert verification_path(receipt_number=NUMBER, code=code) == f"/verifier/{NUMBER}/{code}"
    assert verification_url(receipt_number=NUMBER, code=code) == f"{settings.BILLER_URL}/verifier/{NUMBER}/{code}"
    match = resolve(verification_path(receipt_number=NUMBER, code=code))
    assert (match.func, match.kwargs) == (verify_views.receipt_verify_link, {"receipt_number": NUMBER, "code": code})
    assert resolve("/verifier").func == verify_views.receipt_verify


@pytest.mark.django_db
def test_receipt_carries_its_verification_code_and_link():
    payment, _ = paid()
    receipt = receipt_for(receipt_number=payment.receipt_number)
    code = verification_code(receipt_number=payment.receipt_number, trans_id=payment.trans_id)
    assert (receipt.verify_code, receipt.verify_code_grouped) == (code, grouped_code(code))
    assert receipt.verify_url == f"{settings.BILLER_URL}/verifier/{payment.receipt_number}/{code}"


def checks() -> list[tuple]:
    return list(ReceiptCheck.objects.order_by("pk").values_list("client_ip", "receipt_number", "genuine", "limited"))


@pytest.mark.django_db
def test_a_genuine_receipt_shows_its_public_facts_only():
    payment, _ = paid()
    code = verification_code(receipt_number=payment.receipt_number, trans_id=payment.trans_id)

    outcome = receipt_check(receipt_number=f" {payment.receipt_number.lower()} ", code=grouped_code(code).lower(),
                            client_ip="10.0.0.1", now=T0)

    assert outcome == Genuine(CheckedReceipt(number=payment.receipt_number, paid_at=payment.paid_at,
                                             total=Decimal("285.00"), merchant_name=settings.BILLER_NAME,
                                             card_last4="0002"))
    assert checks() == [("10.0.0.1", payment.receipt_number, True, False)]


@pytest.mark.django_db
def test_an_altered_number_or_code_is_not_genuine_and_says_no_more():
    payment, _ = paid()
    number = payment.receipt_number
    code = verification_code(receipt_number=number, trans_id=payment.trans_id)
    other_digit = number[:-1] + str((int(number[-1]) + 1) % 10)
    other_code = code[:-1] + ("A" if code[-1] != "A" else "B")
    for asked, typed in [(other_digit, code), (number, other_code), (number, code[:-1]), (number, ""),
                         ("R1999-00000001", code), ("junk\x00", code), ("", "")]:
        assert receipt_check(receipt_number=asked, code=typed, client_ip="not an address", now=T0) == NotGenuine(), \
            (asked, typed)
    assert checks() == [(None, other_digit, False, False), (None, number, False, False),
                        (None, number, False, False), (None, number, False, False),
                        (None, "R1999-00000001", False, False), (None, "", False, False), (None, "", False, False)]


@pytest.mark.django_db
def test_a_voided_payment_has_no_genuine_receipt():
    payment, _ = paid()
    code = verification_code(receipt_number=payment.receipt_number, trans_id=payment.trans_id)
    PaymentOrder.objects.filter(pk=payment.order_id).update(state=PaymentOrder.State.VOIDED)
    assert receipt_check(receipt_number=payment.receipt_number, code=code, client_ip="", now=T0) == NotGenuine()


@pytest.mark.django_db
def test_wrong_checks_from_one_address_are_limited_then_allowed_again(settings):
    settings.RECEIPT_CHECK_IP_LIMIT, settings.RECEIPT_CHECK_IP_WINDOW_SECONDS = 3, 900
    payment, _ = paid()
    number = payment.receipt_number
    code = verification_code(receipt_number=number, trans_id=payment.trans_id)
    wrong = code[:-1] + ("A" if code[-1] != "A" else "B")
    # A genuine check does not count against the address.
    assert isinstance(receipt_check(receipt_number=number, code=code, client_ip="10.0.0.9", now=T0), Genuine)
    for _ in range(3):
        assert receipt_check(receipt_number=number, code=wrong, client_ip="10.0.0.9", now=T0) == NotGenuine()

    # The right code now gets no answer from this address (nothing is looked up), another address is answered.
    limited = receipt_check(receipt_number=number, code=code, client_ip="10.0.0.9", now=T0 + dt.timedelta(minutes=1))
    assert limited == TooManyChecks(retry_after_seconds=900)
    assert isinstance(receipt_check(receipt_number=number, code=code, client_ip="10.0.0.8", now=T0), Genuine)
    # Refused checks do not extend the lock; once the window has passed, the address is answered again.
    for _ in range(5):
        assert isinstance(receipt_check(receipt_number=number, code=code, client_ip="10.0.0.9",
                                        now=T0 + dt.timedelta(minutes=10)), TooManyChecks)
    assert isinstance(receipt_check(receipt_number=number, code=code, client_ip="10.0.0.9",
                                    now=T0 + dt.timedelta(seconds=901)), Genuine)
    assert ReceiptCheck.objects.filter(client_ip="10.0.0.9", limited=True, genuine=False).count() == 6
    assert Payment.objects.count() == 1
