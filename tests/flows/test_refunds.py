"""Refunds across the real parties: a bill of two invoices paid by card, then refunded from the biller's admin in a
real browser, one invoice, then the rest, through the gateway's merchant XML API and the card rails to the bank;
the money checked in every party. Then what goes wrong: a refund page left open after all was refunded, the
gateway unreachable (the refund waits, then is sent again with the same key and refunded once), an answer lost
after the gateway refunded, a wrong API password."""

import datetime as dt
import re
from decimal import Decimal

from django.utils import timezone
from playwright.sync_api import expect

from tasdid.bank import sandbox
from tasdid.billing import gateway_api
from tasdid.billing.models import Invoice, Payment, Refund
from tasdid.billing.services.refunds import (
    SEND_AGAIN_AFTER,
    refund_no_answer,
    refund_open,
    refund_send,
    refund_send_again,
    refunds_send_again,
)
from tasdid.gateway.models import Operation, OperationKind, OperationState
from tasdid.messaging.models import MailboxMessage
from tasdid.messaging.selectors import mailbox_parts
from tests.support.staff import PASSWORD, staff_account

from . import journey

VISA = sandbox.card_by_outcome("00", "none")


def _paid(person, biller) -> tuple[Payment, str]:
    """The customer pays both invoices (219.00 DH); the receipt's address."""
    receipt_page = journey.pay(person, journey.to_gateway(person, journey.consult(person, biller)), VISA)
    assert receipt_page.title.startswith("Reçu de paiement"), receipt_page.visible_text[:2000]
    journey.delivered_email()
    return Payment.objects.get(), receipt_page.url


def _refund_operations() -> list[tuple[str, Decimal]]:
    return list(Operation.objects.filter(kind=OperationKind.REFUND).order_by("pk").values_list("state", "amount"))


def _refund_emails() -> list[MailboxMessage]:
    return [m for m in MailboxMessage.objects.order_by("pk") if "Remboursement" in mailbox_parts(m)["subject"]]


def _sign_in(page, biller: str) -> None:
    page.goto(biller + "/admin/login/")
    page.get_by_label("Nom d’utilisateur").fill("caissiere")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Connexion").click()
    page.wait_for_url("**/admin/")


def _refund_in_admin(page, biller: str, payment: Payment, *, what: str, afterwards: str) -> None:
    page.goto(f"{biller}/admin/billing/payment/{payment.pk}/change/")
    page.get_by_role("link", name="Rembourser").click()
    page.get_by_label(re.compile(what)).check()
    page.get_by_label(afterwards).check()
    page.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("heading", name="Confirmez le remboursement")).to_be_visible()
    page.get_by_role("button", name="Confirmer le remboursement").click()


def test_a_bill_paid_by_card_is_refunded_one_invoice_then_the_rest_from_the_billers_admin(world, customer, person,
                                                                                          page):
    biller = world["biller"]
    payment, receipt_url = _paid(person, biller)
    after_payment = journey.balance_of(VISA)
    staff_account("caissiere")
    _sign_in(page, biller)

    # One invoice (May, 120.00 DH), reopened: « à payer » again.
    _refund_in_admin(page, biller, payment, what="La facture 0000111996052017", afterwards="rouvrir la facture")

    expect(page.locator(".messagelist")).to_contain_text("Remboursement de 120.00\u00a0DH accepté.")
    expect(page.locator(".refund-state")).to_have_text("accepté")
    assert journey.balance_of(VISA) == after_payment + journey.AMOUNT_MAY
    assert _refund_operations() == [(OperationState.APPROVED, journey.AMOUNT_MAY)]
    may, june = Invoice.objects.get(pk=customer.may.pk), Invoice.objects.get(pk=customer.june.pk)
    assert (may.status, may.payment_id, may.paid_at) == (Invoice.Status.UNPAID, None, None)
    assert (june.status, june.payment_id) == (Invoice.Status.PAID, payment.pk)
    refund = Refund.objects.get()
    assert (refund.state, refund.amount, refund.invoice_id, refund.invoice_references, refund.requested_by.username,
            refund.sends) == (Refund.State.APPROVED, journey.AMOUNT_MAY, may.pk, journey.REF_MAY, "caissiere", 1)
    assert refund.trans_id == f"RF{Operation.objects.get(kind=OperationKind.REFUND).pk:010d}"
    assert Payment.objects.get().refunded_amount == journey.AMOUNT_MAY
    email = journey.wait_for(_refund_emails, "the refund's email")[0]
    text = mailbox_parts(email)["text"]
    assert "Nous vous avons remboursé 120.00 DH le" in text and journey.REF_MAY in text
    assert "Ces factures sont de nouveau à payer." in text and journey.REF_JUNE not in text
    receipt = person.get(receipt_url).visible_text
    assert "Remboursements" in receipt and "Total remboursé" in receipt and "120.00" in receipt
    assert journey.REF_MAY in receipt and "remboursée" in receipt and "remboursé en partie" in receipt
    # The customer may pay May again: it is due on the biller's site.
    assert journey.unpaid_refs() == [journey.REF_MAY]

    # A page left open on the payment, June chosen, to confirm later.
    stale = page.context.new_page()
    stale.goto(f"{biller}/admin/billing/payment/{payment.pk}/rembourser/")
    stale.get_by_label(re.compile("La facture 0000111996062017")).check()
    stale.get_by_label("clore la facture comme remboursée").check()
    stale.get_by_role("button", name="Continuer").click()

    # The rest (June, 99.00 DH), closed as refunded.
    _refund_in_admin(page, biller, payment, what="Tout ce qui reste du paiement", afterwards="clore la facture")

    expect(page.locator(".messagelist")).to_contain_text("Remboursement de 99.00\u00a0DH accepté.")
    assert journey.balance_of(VISA) == after_payment + journey.TOTAL
    assert _refund_operations() == [(OperationState.APPROVED, journey.AMOUNT_MAY),
                                    (OperationState.APPROVED, journey.AMOUNT_JUNE)]
    june = Invoice.objects.get(pk=customer.june.pk)
    assert (june.status, june.payment_id) == (Invoice.Status.REFUNDED, payment.pk)
    assert Payment.objects.get().refunded_amount == journey.TOTAL
    rest = Refund.objects.get(invoice__isnull=True)
    assert (rest.state, rest.amount, rest.invoice_references) == (Refund.State.APPROVED, journey.AMOUNT_JUNE,
                                                                 journey.REF_JUNE)
    emails = journey.wait_for(lambda: len(_refund_emails()) == 2 and _refund_emails(), "the second refund's email")
    assert "Ces factures sont closes" in mailbox_parts(emails[1])["text"]
    receipt = person.get(receipt_url).visible_text
    assert "Paiement accepté — remboursé" in receipt and "219.00" in receipt and journey.REF_JUNE in receipt
    page.goto(f"{biller}/admin/billing/payment/{payment.pk}/change/")
    expect(page.get_by_text("Rien à rembourser")).to_be_visible()
    expect(page.locator("#refunds-group")).to_contain_text("caissiere")

    # The page left open: refused with the reason, nothing moved.
    before = (journey.snapshot(), _refund_operations(), list(Refund.objects.values_list("pk", "state")))
    stale.get_by_role("button", name="Confirmer le remboursement").click()
    expect(stale.get_by_role("alert")).to_contain_text("Cette facture n'est pas remboursable sur ce paiement")
    assert (journey.snapshot(), _refund_operations(), list(Refund.objects.values_list("pk", "state"))) == before


def test_a_refund_without_an_answer_is_sent_again_with_its_key_and_refunded_once(world, customer, person, settings,
                                                                                 closed_port):
    payment, _ = _paid(person, world["biller"])
    after_payment = journey.balance_of(VISA)
    staff = staff_account("caissiere")
    refund = refund_open(payment_id=payment.pk, invoice_id=customer.may.pk, afterwards=Refund.Afterwards.REOPEN,
                         requested_by_id=staff.pk)
    gateway = settings.GATEWAY_URL

    # The gateway unreachable: nothing moved, the refund waits without an answer.
    settings.GATEWAY_URL = f"http://127.0.0.1:{closed_port}"
    refund = refund_send(refund_id=refund.pk)
    assert (refund.state, refund.error_code) == (Refund.State.UNKNOWN, "unreachable")
    assert "sera envoyé de nouveau" in refund.message
    assert (journey.balance_of(VISA), _refund_operations()) == (after_payment, [])
    assert Invoice.objects.get(pk=customer.may.pk).status == Invoice.Status.PAID
    # Nor can the same invoice be refunded meanwhile.
    assert refunds_send_again(now=timezone.now()) == {}  # not due yet

    # Back; the worker's sweep sends it again, the same key: refunded once.
    settings.GATEWAY_URL = gateway
    assert refunds_send_again(now=timezone.now() + SEND_AGAIN_AFTER + dt.timedelta(seconds=1)) == {"approved": 1}
    refund.refresh_from_db()
    assert (refund.state, refund.sends) == (Refund.State.APPROVED, 2)
    assert journey.balance_of(VISA) == after_payment + journey.AMOUNT_MAY
    assert _refund_operations() == [(OperationState.APPROVED, journey.AMOUNT_MAY)]

    # An answer lost after the gateway refunded (June): sent again with its key, the gateway answers as the first
    # time and moves nothing more; two refunds of the same order stay two (their keys differ).
    lost = refund_open(payment_id=payment.pk, invoice_id=None, afterwards=Refund.Afterwards.CLOSE,
                       requested_by_id=staff.pk)
    first = gateway_api.credit(order_id=payment.order.oid, amount=lost.amount, idempotency_key=lost.key)
    assert first.approved
    refund_no_answer(refund_id=lost.pk, reason="timeout")
    lost = refund_send(refund_id=lost.pk)
    assert (lost.state, lost.trans_id) == (Refund.State.APPROVED, first.trans_id)
    assert journey.balance_of(VISA) == after_payment + journey.TOTAL
    assert _refund_operations() == [(OperationState.APPROVED, journey.AMOUNT_MAY),
                                    (OperationState.APPROVED, journey.AMOUNT_JUNE)]
    assert Payment.objects.get().refunded_amount == journey.TOTAL
    assert Invoice.objects.get(pk=customer.june.pk).status == Invoice.Status.REFUNDED


def test_a_wrong_api_password_refuses_the_refund_clearly_and_moves_nothing(world, customer, person, settings):
    payment, _ = _paid(person, world["biller"])
    before, before_balance = (journey.snapshot(), _refund_operations()), journey.balance_of(VISA)
    staff = staff_account("caissiere")
    settings.BILLER_GATEWAY_API_PASSWORD = "not-the-right-password"

    refund = refund_open(payment_id=payment.pk, invoice_id=customer.may.pk, afterwards=Refund.Afterwards.REOPEN,
                         requested_by_id=staff.pk)
    refund = refund_send(refund_id=refund.pk)

    assert (refund.state, refund.response, refund.error_code) == (Refund.State.REFUSED, "Error", "AUTH")
    assert refund.message == ("Remboursement refusé par la passerelle (AUTH) : Identifiants API invalides : Name ou "
                              "Password incorrect.")
    assert (journey.snapshot(), _refund_operations()) == before
    assert Payment.objects.get().refunded_amount == Decimal("0.00")
    # Refused, it no longer counts: the invoice can be refunded once the password is right. Recorded, then the
    # process dies before sending it: the worker's task, due later, sends it.
    settings.BILLER_GATEWAY_API_PASSWORD = "TASDID-DEMO-API-PASSWORD"
    again = refund_open(payment_id=payment.pk, invoice_id=customer.may.pk, afterwards=Refund.Afterwards.REOPEN,
                        requested_by_id=staff.pk)
    assert refund_send_again(refund_id=again.pk) is None  # not due yet
    later = timezone.now() + SEND_AGAIN_AFTER + dt.timedelta(seconds=1)
    assert refund_send_again(refund_id=again.pk, now=later).state == Refund.State.APPROVED
    assert journey.balance_of(VISA) == before_balance + journey.AMOUNT_MAY
    assert _refund_operations() == [(OperationState.APPROVED, journey.AMOUNT_MAY)]
