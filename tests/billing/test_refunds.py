"""The biller's refunds on its own side: the XML API messages it writes and reads (pure), what is left to refund
checked under the payment's lock (two staff at once), the gateway's answer recorded once, the receipt and the
customer's email. The journeys over the real gateway and card rails are in tests/flows/test_refunds.py."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from defusedxml.ElementTree import fromstring
from django.db import connection
from django.test.utils import override_settings
from django.utils import timezone, translation

from tasdid.billing import gateway_api
from tasdid.billing.emails import refund_email
from tasdid.billing.models import Invoice, Payment, Refund
from tasdid.billing.selectors.payments import receipt_for
from tasdid.billing.services.payments import payment_callback
from tasdid.billing.services.refunds import RefundError, refund_open, refund_record_answer, refund_send
from tasdid.portal.receipt_pdf import render_receipt_pdf
from tests.billing.payments_fixtures import gateway_message, line_with_two_invoices, new_order
from tests.billing.test_receipts import pdf_text
from tests.support.staff import staff_account

ORDER = "TSDABCDEFGHIJKLMN"


def _answer(response: str = "Approved", *, order_id: str = ORDER, trans_id: str = "RF0000000001", code: str = "00",
            err: str = "", extra: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<CC5Response><OrderId>{order_id}</OrderId>'
            f"<GroupId>{order_id}</GroupId><Response>{response}</Response><AuthCode></AuthCode>"
            f"<HostRefNum>612345678901</HostRefNum><ProcReturnCode>{code}</ProcReturnCode>"
            f"<TransId>{trans_id}</TransId><ErrMsg>{err}</ErrMsg><Extra>{extra}</Extra></CC5Response>").encode()


# --- the messages (pure) --------------------------------------------------------------------------------------


def test_the_credit_request_carries_the_login_the_order_the_amount_and_the_refunds_key():
    body = gateway_api.credit_request(name="tasdid-biller", password="p<&>w", client_id="600000001",
                                      order_id=ORDER, amount=Decimal("120"), idempotency_key="RF0123")
    root = fromstring(body.decode("utf-8"))
    assert root.tag == "CC5Request"
    assert {e.tag: e.text for e in root if e.tag != "Extra"} == {
        "Name": "tasdid-biller", "Password": "p<&>w", "ClientId": "600000001", "Type": "Credit", "OrderId": ORDER,
        "Total": "120.00", "Currency": "504"}
    assert [(e.tag, e.text) for e in root.find("Extra")] == [("IDEMPOTENCY_KEY", "RF0123")]


def test_an_answer_is_used_only_when_it_reads_and_matches_the_order():
    assert gateway_api.read_credit_answer(_answer(), order_id=ORDER).approved
    refused = gateway_api.read_credit_answer(_answer("Error", order_id="", code="99", trans_id="",
                                                     extra="<ERRORCODE>AUTH</ERRORCODE>"), order_id=ORDER)
    assert (refused.approved, refused.error_code) == (False, "AUTH")
    for body, reason in [
        (_answer(order_id="TSDANOTHERORDER00"), "answer_order_id"),
        (_answer(order_id=""), "answer_order_id"),  # approved, about no order
        (_answer(trans_id=""), "answer_trans_id"),
        (_answer("Maybe"), "answer_response"),
        (b"<CC5Request/>", "answer_not_cc5response"),
        (b"not xml", "answer_unreadable"),
        (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "x">]><CC5Response><OrderId>&a;</OrderId></CC5Response>',
         "answer_unreadable"),
        (b"<CC5Response>" + b" " * gateway_api.MAX_ANSWER + b"</CC5Response>", "answer_too_large"),
    ]:
        with pytest.raises(gateway_api.GatewayApiError) as refused_answer:
            gateway_api.read_credit_answer(body, order_id=ORDER)
        assert refused_answer.value.reason == reason, body[:80]


def _history(*rows: str) -> gateway_api.ApiAnswer:
    extra = f"<TRXCOUNT>{len(rows)}</TRXCOUNT>" + "".join(f"<TRX{n}>{row}</TRX{n}>" for n, row in enumerate(rows, 1))
    return gateway_api.read_answer(_answer(trans_id="", extra=extra))


def test_an_approved_refund_must_stand_in_the_orders_history_with_its_amount():
    auth = "PreAuth\tA\t219.00\t2026-12-08 00:00:00\tP12345\t612345678901\t00\tT1"
    credit = "Credit\tC\t120.00\t2026-12-08 00:01:00\t\t612345678902\t00\tRF0000000001"
    gateway_api.check_credit_in_history(_history(auth, credit), order_id=ORDER, trans_id="RF0000000001",
                                        amount=Decimal("120.00"))
    for history, reason in [
        (_history(auth), "history_no_refund"),
        (_history(auth, credit.replace("120.00", "12.00")), "amount"),
        (_history(auth, credit.replace("\tC\t", "\tPN\t")), "history_not_done"),
        (_history(auth, "Credit\tC\t120.00"), "history_unreadable"),
    ]:
        with pytest.raises(gateway_api.GatewayApiError) as mismatch:
            gateway_api.check_credit_in_history(history, order_id=ORDER, trans_id="RF0000000001",
                                                amount=Decimal("120.00"))
        assert mismatch.value.reason == reason


# --- on the database ------------------------------------------------------------------------------------------


def _paid_payment(language: str = "fr") -> tuple[Payment, Invoice, Invoice]:
    line, june, july = line_with_two_invoices()
    payment_callback(fields=gateway_message(new_order(line, language=language)))
    return Payment.objects.select_related("order").get(), june, july


def _approved(payment: Payment, refund: Refund, trans_id: str = "RF0000000001") -> Refund:
    body = _answer(order_id=payment.order.oid, trans_id=trans_id)
    return refund_record_answer(refund_id=refund.pk, answer=gateway_api.read_credit_answer(
        body, order_id=payment.order.oid))


@pytest.mark.django_db
def test_what_is_left_to_refund_is_checked_and_each_invoice_refunded_once():
    payment, june, july = _paid_payment()
    staff = staff_account()
    one = refund_open(payment_id=payment.pk, invoice_id=june.pk, afterwards="reopen", requested_by_id=staff.pk)
    assert (one.amount, one.invoice_references, one.state) == (Decimal("186.00"), june.reference, "pending")
    assert one.key.startswith("RF") and len(one.key) == 34
    with pytest.raises(RefundError, match="un remboursement la couvre déjà"):
        refund_open(payment_id=payment.pk, invoice_id=june.pk, afterwards="close", requested_by_id=staff.pk)
    with pytest.raises(RefundError, match="Choisissez"):
        refund_open(payment_id=payment.pk, invoice_id=july.pk, afterwards="later", requested_by_id=staff.pk)
    rest = refund_open(payment_id=payment.pk, invoice_id=None, afterwards="close", requested_by_id=staff.pk)
    assert (rest.amount, rest.invoice_references) == (Decimal("99.00"), july.reference)
    with pytest.raises(RefundError, match="Rien à rembourser"):
        refund_open(payment_id=payment.pk, invoice_id=None, afterwards="close", requested_by_id=staff.pk)
    assert Refund.objects.count() == 2 and one.key != rest.key


@pytest.mark.django_db
def test_an_approved_answer_reopens_or_closes_the_invoices_once_and_the_receipt_shows_it(run_tasks, tmp_path):
    payment, june, july = _paid_payment()
    staff = staff_account()
    reopen = refund_open(payment_id=payment.pk, invoice_id=june.pk, afterwards="reopen", requested_by_id=staff.pk)
    close = refund_open(payment_id=payment.pk, invoice_id=july.pk, afterwards="close", requested_by_id=staff.pk)

    assert _approved(payment, reopen).state == "approved"
    assert _approved(payment, reopen, trans_id="RF0000000009").trans_id == "RF0000000001"  # decided: unchanged
    refused = refund_record_answer(refund_id=close.pk, answer=gateway_api.read_credit_answer(_answer(
        "Declined", order_id=payment.order.oid, code="05", err="Refusée"), order_id=payment.order.oid))

    june.refresh_from_db()
    july.refresh_from_db()
    assert (june.status, june.payment_id, june.paid_at) == ("unpaid", None, None)
    assert (july.status, july.payment_id) == ("paid", payment.pk)
    assert (refused.state, refused.message) == ("refused", "Remboursement refusé par la banque (code 05) : Refusée")
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("186.00")
    receipt = receipt_for(receipt_number=payment.receipt_number)
    assert [(line.reference, line.refunded) for line in receipt.lines] == [(june.reference, True),
                                                                          (july.reference, False)]
    assert ([(r.amount, r.references) for r in receipt.refunds], receipt.refunded_total) == (
        [(Decimal("186.00"), (june.reference,))], Decimal("186.00"))
    pdf = " ".join(pdf_text(render_receipt_pdf(receipt=receipt), tmp_path).split())
    assert "Paiement accepté — remboursé en partie" in pdf and "Remboursements" in pdf
    assert f"{june.reference}" in pdf and "Total remboursé 186.00" in pdf

    # Refused, July can be refunded again; approved and closed, it stays tied to the payment as refunded.
    again = refund_open(payment_id=payment.pk, invoice_id=july.pk, afterwards="close", requested_by_id=staff.pk)
    _approved(payment, again, trans_id="RF0000000002")
    july.refresh_from_db()
    assert (july.status, july.payment_id) == ("refunded", payment.pk)
    run_tasks()
    assert Refund.objects.filter(email_queued_at__isnull=False).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(("lang", "subject", "words"), [
    ("fr", "Remboursement de votre paiement", "Nous vous avons remboursé 186.00 DH le"),
    ("ar", "استرداد مبلغ أدائكم", "استرجعنا لكم مبلغ 186.00 درهم"),
    ("en", "Refund of your payment", "We refunded you 186.00 DH on"),
])
def test_the_customer_is_told_of_the_refund_in_the_orders_language(lang, subject, words):
    payment, june, _july = _paid_payment(language=lang)
    refund = refund_open(payment_id=payment.pk, invoice_id=june.pk, afterwards="reopen",
                         requested_by_id=staff_account().pk)
    refund = _approved(payment, refund)

    composed = refund_email(refund=refund, language=lang)

    assert composed.subject.startswith(subject) and payment.receipt_number in composed.subject
    assert words in composed.body_text and june.reference in composed.body_text
    with translation.override(lang):
        assert translation.gettext("Ces factures sont de nouveau à payer.") in composed.body_text
    assert f'lang="{lang}"' in composed.body_html and ("rtl" in composed.body_html) == (lang == "ar")


@pytest.mark.parametrize("round_", range(2))
def test_two_staff_refunding_the_whole_payment_at_once_open_one_refund(transactional_db, round_):
    payment, *_ = _paid_payment()
    staff = staff_account()
    barrier = threading.Barrier(2)
    outcomes: list = [None, None]

    def ask(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[i] = refund_open(payment_id=payment.pk, invoice_id=None, afterwards="close",
                                      requested_by_id=staff.pk)
        except BaseException as exc:  # reported in the test's thread
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(type(o).__name__ for o in outcomes) == ["Refund", "RefundError"], outcomes
    assert [(r.amount, r.state) for r in Refund.objects.all()] == [(Decimal("285.00"), "pending")]


@pytest.mark.django_db
@override_settings(GATEWAY_URL="http://127.0.0.1:9")
def test_refund_send_refuses_to_run_inside_a_transaction():
    from django.db import transaction

    from tasdid.billing.services.refunds import refund_send

    payment, june, _ = _paid_payment()
    refund = refund_open(payment_id=payment.pk, invoice_id=june.pk, afterwards="reopen",
                         requested_by_id=staff_account().pk)
    with transaction.atomic(), pytest.raises(RuntimeError):
        refund_send(refund_id=refund.pk)


@pytest.mark.django_db(transaction=True)
def test_a_refusal_on_a_second_send_is_not_believed_and_an_old_refund_is_not_sent_again(monkeypatch):
    """A send whose answer was lost may have been refunded: the gateway then refuses the same refund sent again
    (nothing left, or its key forgotten after its replay window). The biller keeps it UNKNOWN for staff, and does
    not send a refund asked longer ago than that window at all."""
    payment, june, _july = _paid_payment()
    refund = refund_open(payment_id=payment.pk, invoice_id=june.pk, afterwards="reopen",
                         requested_by_id=staff_account().pk)
    refused = _answer("Error", order_id=payment.order.oid, trans_id="", code="99", err="Rien à rembourser",
                      extra="<ERRORCODE>REFUND_REFUSED</ERRORCODE>")
    Refund.objects.filter(pk=refund.pk).update(sends=2, state=Refund.State.UNKNOWN)
    refund = refund_record_answer(refund_id=refund.pk, answer=gateway_api.read_credit_answer(
        refused, order_id=payment.order.oid))
    assert refund.state == Refund.State.UNKNOWN and "un envoi précédent a pu être remboursé" in refund.message
    june.refresh_from_db()
    assert june.status == Invoice.Status.PAID

    # Asked 21 hours ago: not sent again (the gateway would take it for a new refund).
    Refund.objects.filter(pk=refund.pk).update(created_at=timezone.now() - dt.timedelta(hours=21))
    monkeypatch.setattr(gateway_api, "credit", lambda **kwargs: pytest.fail("sent again"))
    refund = refund_send(refund_id=refund.pk)
    assert (refund.state, refund.sends) == (Refund.State.UNKNOWN, 2)
    assert "Vérifiez-le à la passerelle" in refund.message
