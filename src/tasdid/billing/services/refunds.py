"""Writes of the refunds: the biller's staff refund a payment to the customer's card, whole (all it has left) or
one invoice of it, through the gateway's merchant XML API (tasdid.billing.gateway_api).

A refund is recorded first (``refund_open``: what is left to refund checked under the payment's lock, the row
committed, its idempotency key drawn), then sent outside any transaction (``refund_send``), then its answer
recorded (``refund_record_answer``): approved, the invoices it covers reopened (« à payer » again) or closed as
refunded, as staff chose, the payment's refunded total raised, and the customer told by email (a task, after
commit); refused, nothing moved. A refund left without a usable answer (the gateway unreachable, an answer that
does not match) stays UNKNOWN and is sent again with the same key (``refunds_send_again``, the worker's task,
``tasdid billing-sweep``): the gateway answers a repeat with its first answer, so money moves once."""

import datetime as dt
import logging
import secrets
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import gateway_api
from ..models import Invoice, Payment, PaymentOrder, Refund
from ..selectors.refunds import (
    UNANSWERED,
    counted_amount,
    references,
    refundable_invoices,
    refunds_to_send_again,
)
from ..tasks import send_refund_again, send_refund_email

logger = logging.getLogger(__name__)

# A refund without an answer is sent again once this long has passed since it was last sent (the task worker);
# not after SEND_AGAIN_WITHIN: the gateway answers a repeat with its first answer for a day (its replay window),
# so an older one is left to staff, who ask the gateway what became of it.
SEND_AGAIN_AFTER = dt.timedelta(minutes=5)
SEND_AGAIN_WITHIN = dt.timedelta(hours=20)
# Error codes of the gateway's answer that leave the refund's fate open: the same request is being processed, or
# the bank did not answer (the gateway undoes it and says it may be asked again).
# LOCKED: the gateway locked the biller's API user (wrong passwords from anywhere): sent again once it is lifted.
_OPEN_ERRORS = frozenset({"BUSY", "NO_ANSWER", "LOCKED"})


class RefundError(Exception):
    """A refund refused before anything was recorded or sent; the message says why, for staff."""


def new_key() -> str:
    """A refund's idempotency key at the gateway: "RF" and 128 random bits in hex."""
    return "RF" + secrets.token_hex(16)


@transaction.atomic
def refund_open(*, payment_id: int, invoice_id: int | None, afterwards: str, requested_by_id: int,
                now: dt.datetime | None = None) -> Refund:
    """Record a refund of one invoice of the payment (``invoice_id``) or of all it has left (None), PENDING and
    committed on return. RefundError when there is nothing (or not that) to refund: nothing recorded."""
    now = now or timezone.now()
    if afterwards not in Refund.Afterwards.values:
        raise RefundError(_("Choisissez ce que deviennent les factures remboursées."))
    payment = Payment.objects.select_for_update().select_related("order").filter(pk=payment_id).first()
    if payment is None or payment.order.state != PaymentOrder.State.PAID:
        raise RefundError(_("Ce paiement n'a pas été encaissé (ou a été annulé) : il n'y a rien à rembourser."))
    left = refundable_invoices(payment=payment)
    if invoice_id is not None:
        left = [item for item in left if item.invoice.pk == invoice_id]
        if not left:
            raise RefundError(_("Cette facture n'est pas remboursable sur ce paiement : elle n'en fait pas partie, "
                                "ou un remboursement la couvre déjà."))
    if not left:
        raise RefundError(_("Rien à rembourser sur ce paiement : chacune de ses factures est déjà remboursée ou "
                            "en cours de remboursement."))
    amount = sum((item.amount for item in left), Decimal("0.00"))
    if amount + counted_amount(payment_id=payment.pk) > payment.amount:
        raise RefundError(_("Ce remboursement dépasserait le montant du paiement."))
    refund = Refund.objects.create(
        payment=payment, invoice_id=invoice_id, amount=amount, invoices_afterwards=afterwards,
        invoice_references=",".join(item.invoice.reference for item in left), key=new_key(),
        requested_by_id=requested_by_id, created_at=now,
    )
    # Watched from now on (the task row is written in this transaction): should this process die before the
    # answer is recorded, the worker sends it again with its key.
    send_refund_again.using(run_after=now + SEND_AGAIN_AFTER).enqueue(refund_id=refund.pk)
    return refund


@transaction.atomic
def _mark_sent(*, refund_id: int, now: dt.datetime) -> Refund | None:
    refund = Refund.objects.select_for_update().select_related("payment__order").get(pk=refund_id)
    if refund.state not in UNANSWERED:
        return None
    refund.sent_at, refund.sends = now, refund.sends + 1
    refund.save(update_fields=["sent_at", "sends"])
    return refund


def refund_send(*, refund_id: int) -> Refund:
    """Send a refund without an answer to the gateway (the first time, or again: the same key) and record what
    came back. Never inside a database transaction: the gateway's answer waits for the card rails."""
    if connection.in_atomic_block:
        raise RuntimeError("refund_send is called outside any transaction")
    now = timezone.now()
    stale = Refund.objects.filter(pk=refund_id, sends__gt=0, created_at__lt=now - SEND_AGAIN_WITHIN)
    if stale.update(message=_("Demandé il y a plus de %(hours)s heures sans réponse : la passerelle ne le "
                              "reconnaîtrait plus comme le même (un second remboursement). Vérifiez-le à la "
                              "passerelle avant toute nouvelle demande.") % {
                                  "hours": int(SEND_AGAIN_WITHIN.total_seconds() // 3600)}):
        logger.warning("refund %s: not sent again, asked over %s ago", refund_id, SEND_AGAIN_WITHIN)
        return Refund.objects.get(pk=refund_id)
    refund = _mark_sent(refund_id=refund_id, now=now)
    if refund is None:
        return Refund.objects.get(pk=refund_id)
    try:
        answer = gateway_api.credit(order_id=refund.payment.order.oid, amount=refund.amount,
                                    idempotency_key=refund.key)
    except gateway_api.GatewayApiError as exc:
        logger.warning("refund %s (order %s): no usable answer from the gateway: %s", refund.pk,
                       refund.payment.order.oid, exc.reason)
        return refund_no_answer(refund_id=refund.pk, reason=exc.reason)
    return refund_record_answer(refund_id=refund.pk, answer=answer)


@transaction.atomic
def refund_no_answer(*, refund_id: int, reason: str, now: dt.datetime | None = None) -> Refund:
    """No usable answer: the refund waits UNKNOWN to be sent again (the same key), a task watches it."""
    now = now or timezone.now()
    refund = Refund.objects.select_for_update().get(pk=refund_id)
    if refund.state not in UNANSWERED:
        return refund
    refund.state, refund.error_code = Refund.State.UNKNOWN, reason[:32]
    refund.message = _("Pas de réponse utilisable de la passerelle (%(reason)s) : le remboursement sera envoyé de "
                       "nouveau, avec la même clé, sans rembourser deux fois.") % {"reason": reason}
    refund.save(update_fields=["state", "error_code", "message"])
    send_refund_again.using(run_after=now + SEND_AGAIN_AFTER).enqueue(refund_id=refund.pk)
    return refund


@transaction.atomic
def refund_record_answer(*, refund_id: int, answer: gateway_api.ApiAnswer, now: dt.datetime | None = None) -> Refund:
    """The gateway's answer to a refund: approved (the invoices marked as staff chose, the payment's refunded
    total, the customer's email), refused (nothing moved), or still open (UNKNOWN, to send again). An answer for a
    refund already decided changes nothing."""
    now = now or timezone.now()
    refund = Refund.objects.select_for_update().get(pk=refund_id)
    if refund.state not in UNANSWERED:
        return refund
    refund.response, refund.proc_return_code = answer.response[:16], answer.proc_return_code[:8]
    refund.error_code, refund.trans_id, refund.host_ref = answer.error_code[:32], answer.trans_id[:64], \
        answer.host_ref_num[:32]
    fields = ["state", "response", "proc_return_code", "error_code", "trans_id", "host_ref", "message",
              "answered_at"]
    if answer.approved:
        _approved(refund, now=now)
        refund.message = _("Remboursement accepté par la passerelle (transaction %(trans_id)s).") % {
            "trans_id": answer.trans_id}
    elif answer.response == gateway_api.ERROR and answer.error_code in _OPEN_ERRORS:
        refund.state = Refund.State.UNKNOWN
        refund.message = _("La passerelle n'a pas pu conclure (%(message)s) : le remboursement sera envoyé de "
                           "nouveau.") % {"message": answer.err_msg or answer.error_code}
        fields.remove("answered_at")
        send_refund_again.using(run_after=now + SEND_AGAIN_AFTER).enqueue(refund_id=refund.pk)
    elif answer.response == gateway_api.ERROR and refund.sends > 1:
        # Refused on a second send: an earlier send may have been refunded, its answer lost (the gateway then
        # counts it): not a refusal to believe. Staff check the order at the gateway.
        refund.state = Refund.State.UNKNOWN
        refund.message = _("Refusé à un nouvel envoi (%(code)s : %(message)s) : un envoi précédent a pu être "
                           "remboursé. Vérifiez la commande à la passerelle.") % {
                               "code": answer.error_code or "-", "message": answer.err_msg or "-"}
        fields.remove("answered_at")
    else:
        refund.state = Refund.State.REFUSED
        if answer.response == gateway_api.DECLINED:
            refund.message = _("Remboursement refusé par la banque (code %(code)s) : %(message)s") % {
                "code": answer.proc_return_code or "-", "message": answer.err_msg or "-"}
        else:
            refund.message = _("Remboursement refusé par la passerelle (%(code)s) : %(message)s") % {
                "code": answer.error_code or "-", "message": answer.err_msg or "-"}
    refund.message = refund.message[:255]
    refund.answered_at = now if "answered_at" in fields else refund.answered_at
    refund.save(update_fields=fields)
    log = logger.info if refund.state == Refund.State.APPROVED else logger.warning
    log("refund %s of payment %s: %s %s", refund.pk, refund.payment_id, refund.state, refund.error_code
        or refund.proc_return_code)
    return refund


def _approved(refund: Refund, *, now: dt.datetime) -> None:
    """The refund went through: its invoices reopened or closed, the payment's refunded total; the email."""
    payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
    invoices = list(Invoice.objects.select_for_update().filter(
        reference__in=references(refund), payment=payment, status=Invoice.Status.PAID).order_by("pk"))
    for invoice in invoices:
        if refund.invoices_afterwards == Refund.Afterwards.REOPEN:
            invoice.status, invoice.payment, invoice.paid_at = Invoice.Status.UNPAID, None, None
        else:
            invoice.status = Invoice.Status.REFUNDED
        invoice.save(update_fields=["status", "payment", "paid_at"])
    payment.refunded_amount = min(payment.refunded_amount + refund.amount, payment.amount)
    payment.save(update_fields=["refunded_amount"])
    refund.state = Refund.State.APPROVED
    # Composed and queued by a task once this commits (the customer is told of a refund that stands).
    send_refund_email.enqueue(refund_id=refund.pk)


def refunds_send_again(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Send again every refund left without an answer (SEND_AGAIN_AFTER its last send, within
    SEND_AGAIN_WITHIN): ``tasdid billing-sweep``, and the worker refund by refund. Counts per state reached."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    for refund_id in refunds_to_send_again(now=now, quiet_for=SEND_AGAIN_AFTER, within=SEND_AGAIN_WITHIN):
        state = refund_send(refund_id=refund_id).state
        counts[state] = counts.get(state, 0) + 1
    return counts


def refund_send_again(*, refund_id: int, now: dt.datetime | None = None) -> Refund | None:
    """The worker's task for one refund: sent again when it is still without an answer, quiet SEND_AGAIN_AFTER
    (none being sent) and asked within SEND_AGAIN_WITHIN; None otherwise."""
    now = now or timezone.now()
    refund = Refund.objects.filter(pk=refund_id, state__in=UNANSWERED, created_at__gte=now - SEND_AGAIN_WITHIN).first()
    if refund is None or (refund.sent_at or refund.created_at) > now - SEND_AGAIN_AFTER + dt.timedelta(seconds=1):
        return None
    return refund_send(refund_id=refund_id)
