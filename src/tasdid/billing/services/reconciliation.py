"""Reconciliation: the biller compares its payment orders with what the gateway says it captured, and acts on the
difference.

For each order that may differ (selectors.reconciliation.orders_to_reconcile), the biller asks the gateway's
signed status query (gateway_status) and takes one step (``reconciliation_step``, pure):

- paid here, CAPTURED there: reconciled (the amount and transaction must be the ones recorded, else flagged);
- paid here, never captured there (VOIDED, DECLINED, FAILED, EXPIRED, CANCELLED): the order moves
  paid → voided, its invoices are due again, the payment stays as history, a discrepancy is flagged and staff
  are alerted (admin list, a log line at ERROR, an email to settings.RECONCILE_ALERT_EMAIL);
- not paid here, CAPTURED there: the payment is recorded from the gateway's signed data, exactly as a callback
  would have (services.payments.payment_settle: receipt and email, once); if it cannot be (an invoice paid by
  another order meanwhile), a discrepancy is flagged: money was taken for nothing recorded;
- not paid here, never captured there (UNKNOWN included): agreed, reconciled;
- paid here, UNKNOWN there (the gateway lost or reset its data: it signed the callback that paid the order):
  a discrepancy is flagged for staff, nothing is reopened;
- AUTHORIZED or UNRESOLVED there (the biller's answer to the callback never reached the gateway): the gateway is
  asked to send the callback again, the biller answers it as any callback, and the status that follows decides;
- anything else (payment page still open, gateway unreachable, an answer that does not check out): left as it
  is, reported, asked again next run; an unreachable gateway ends the run (the next one goes on).

Each move locks the order and is a no-op once the order is reconciled, so a second run changes nothing more.
"""

import datetime as dt
import enum
import logging
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..emails import discrepancy_alert_queue
from ..gateway_status import (
    AWAITING_MERCHANT,
    CAPTURED,
    NOT_CAPTURED,
    REDELIVER,
    UNKNOWN,
    GatewayStatus,
    GatewayStatusError,
    order_status,
)
from ..models import Discrepancy, Invoice, Payment, PaymentOrder, PaymentOrderEvent, ReconciliationSchedule
from ..selectors.reconciliation import orders_to_reconcile
from ..tasks import reconcile_payments
from .payments import ORDER_EXPIRY, GatewayMessageRefused, _move, payment_settle

logger = logging.getLogger(__name__)

State = PaymentOrder.State
UNPAID_STATES = frozenset({State.CREATED, State.FAILED, State.EXPIRED})


class Step(enum.StrEnum):
    RECONCILE = "reconcile"  # paid, captured
    VOID = "void"  # paid, never captured
    RECORD = "record"  # not paid, captured
    AGREE_UNPAID = "agree_unpaid"  # not paid, never captured
    REDELIVER = "redeliver"  # the merchant's answer missing at the gateway
    WAIT = "wait"  # not decided yet
    FLAG = "flag"  # paid, and the gateway does not know the order: a discrepancy, nothing changed


def reconciliation_step(*, biller_paid: bool, status: str, redelivered: bool) -> Step:
    """What to do about an order, from whether the biller recorded its payment and the gateway's status."""
    if status == CAPTURED:
        return Step.RECONCILE if biller_paid else Step.RECORD
    if status == UNKNOWN and biller_paid:
        # A paid order came from a callback the gateway signed: it knows the order. UNKNOWN says its data was lost
        # or reset, not that nothing was captured; staff look, nothing is reopened.
        return Step.FLAG
    if status in NOT_CAPTURED:
        return Step.VOID if biller_paid else Step.AGREE_UNPAID
    if status in AWAITING_MERCHANT and not redelivered:
        return Step.REDELIVER
    return Step.WAIT


class Outcome(enum.StrEnum):
    RECONCILED = "reconciled"
    UNPAID = "unpaid"
    RECORDED = "recorded"
    DISCREPANCY = "discrepancy"
    PENDING = "pending"


# The report's words for each outcome (tasdid reconcile), in the report's order.
OUTCOME_LABELS = {
    Outcome.RECONCILED: "payés et encaissés (rapprochés)",
    Outcome.UNPAID: "non payés des deux côtés",
    Outcome.RECORDED: "paiements enregistrés depuis la passerelle",
    Outcome.DISCREPANCY: "écarts signalés",
    Outcome.PENDING: "à revoir au prochain passage",
}

# Why an order stays pending, in the report's words.
PENDING_REASONS = {
    "unreachable": "passerelle injoignable",
    "bad_hash": "réponse de la passerelle non signée ou mal signée : refusée",
    "changed": "l'ordre a changé pendant le rapprochement",
    "conflict": "enregistrement concurrent",
    "error": "erreur inattendue (voir les journaux)",
}


@dataclass(frozen=True)
class OrderResult:
    oid: str
    outcome: Outcome
    gateway_status: str  # "" when no trustworthy answer came
    detail: str  # French, one line
    discrepancy: Discrepancy | None = None


@dataclass
class ReconciliationReport:
    results: list[OrderResult] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def counts(self) -> dict[str, int]:
        return {str(outcome): self.count(outcome) for outcome in Outcome}

    def of(self, outcome: Outcome) -> list[OrderResult]:
        return [r for r in self.results if r.outcome == outcome]


def _event(order: PaymentOrder, *, cause: str, at: dt.datetime) -> None:
    """An order reconciled without changing state: the event records it all the same (append-only audit)."""
    PaymentOrderEvent.objects.create(order=order, at=at, from_state=order.state, to_state=order.state,
                                     cause=cause[:255])


def _reconciled(order: PaymentOrder, *, at: dt.datetime) -> None:
    order.reconciled_at = at
    order.save(update_fields=["reconciled_at"])


def _flag(order: PaymentOrder, *, kind: str, answer: GatewayStatus, at: dt.datetime, payment: Payment | None,
          invoice_references: list[str], detail: str) -> Discrepancy:
    """The discrepancy row and its alert email, in the caller's transaction (both or neither)."""
    discrepancy = Discrepancy.objects.create(
        order=order, kind=kind, found_at=at, gateway_status=answer.status, amount=payment.amount if payment else
        order.amount, captured_amount=answer.captured_amount,
        receipt_number=payment.receipt_number if payment else "",
        trans_id=payment.trans_id if payment else answer.trans_id[:64],
        invoice_references=",".join(invoice_references)[:1000], detail=detail[:255],
    )
    discrepancy_alert_queue(discrepancy=discrepancy)
    return discrepancy


@transaction.atomic
def payment_order_reconcile(*, order_id: int, answer: GatewayStatus, now: dt.datetime) -> OrderResult | None:
    """Mark an order on which the biller and the gateway agree as reconciled: paid and captured (the same
    transaction and amount, else a MISMATCH discrepancy), or unpaid and never captured. None when the order no
    longer fits the answer (it moved meanwhile); an order already reconciled is left as it is."""
    order = PaymentOrder.objects.select_for_update().get(pk=order_id)
    if order.reconciled_at is not None:
        return None
    if order.state == State.PAID and answer.status == CAPTURED:
        payment = Payment.objects.get(order=order)
        if (answer.captured_amount, answer.trans_id) != (payment.amount, payment.trans_id):
            detail = (f"encaissé {answer.captured_amount} DH, transaction {answer.trans_id or '-'} ; enregistré "
                      f"{payment.amount} DH, transaction {payment.trans_id}")
            refs = list(payment.invoices.order_by("reference").values_list("reference", flat=True))
            discrepancy = _flag(order, kind=Discrepancy.Kind.MISMATCH, answer=answer, at=now, payment=payment,
                                invoice_references=refs, detail=detail)
            _reconciled(order, at=now)
            _event(order, at=now, cause=f"rapprochement : écart signalé, {detail}")
            return OrderResult(order.oid, Outcome.DISCREPANCY, answer.status,
                               f"{Discrepancy.Kind.MISMATCH.label} : {detail}", discrepancy)
        _reconciled(order, at=now)
        _event(order, at=now, cause=f"rapproché : encaissé par la passerelle ({answer.captured_amount} DH)")
        return OrderResult(order.oid, Outcome.RECONCILED, answer.status,
                           f"reçu {payment.receipt_number}, {payment.amount} DH")
    if order.state in UNPAID_STATES and answer.status in NOT_CAPTURED:
        _reconciled(order, at=now)
        _event(order, at=now, cause=f"rapproché : non payé, rien d'encaissé ({answer.status} à la passerelle)")
        return OrderResult(order.oid, Outcome.UNPAID, answer.status, f"{order.amount} DH non payés")
    return None


@transaction.atomic
def payment_order_flag(*, order_id: int, answer: GatewayStatus, now: dt.datetime) -> OrderResult | None:
    """A paid order the gateway says it does not know: a MISMATCH discrepancy and its alert, the payment and the
    invoices left as they are (only staff can tell which side lost its data). None when the order moved."""
    order = PaymentOrder.objects.select_for_update().get(pk=order_id)
    if order.state != State.PAID or order.reconciled_at is not None:
        return None
    payment = Payment.objects.get(order=order)
    refs = list(payment.invoices.order_by("reference").values_list("reference", flat=True))
    detail = f"payé ici (reçu {payment.receipt_number}), ordre inconnu de la passerelle"
    discrepancy = _flag(order, kind=Discrepancy.Kind.MISMATCH, answer=answer, at=now, payment=payment,
                        invoice_references=refs, detail=detail)
    _reconciled(order, at=now)
    _event(order, at=now, cause=f"rapprochement : écart signalé, {detail}")
    return OrderResult(order.oid, Outcome.DISCREPANCY, answer.status, f"{Discrepancy.Kind.MISMATCH.label} : {detail}",
                       discrepancy)


@transaction.atomic
def payment_order_void(*, order_id: int, answer: GatewayStatus, now: dt.datetime) -> OrderResult | None:
    """paid → voided: the gateway never captured this payment. Its invoices are due again (the payment stays, as
    history, its invoices listed on the discrepancy), a NOT_CAPTURED discrepancy is flagged and its alert queued.
    None when the order is not (or no longer) paid and unreconciled."""
    order = PaymentOrder.objects.select_for_update().get(pk=order_id)
    if order.state != State.PAID or order.reconciled_at is not None or answer.status not in NOT_CAPTURED:
        return None
    payment = Payment.objects.get(order=order)
    invoices = list(Invoice.objects.select_for_update().filter(payment=payment).order_by("pk"))
    for invoice in invoices:
        invoice.status, invoice.payment, invoice.paid_at = Invoice.Status.UNPAID, None, None
        invoice.save(update_fields=["status", "payment", "paid_at"])
    refs = sorted(invoice.reference for invoice in invoices)
    detail = f"{len(refs)} facture(s) rouverte(s)"
    discrepancy = _flag(order, kind=Discrepancy.Kind.NOT_CAPTURED, answer=answer, at=now, payment=payment,
                        invoice_references=refs, detail=detail)
    _move(order, State.VOIDED, at=now,
          cause=f"rapprochement : non encaissé ({answer.status} à la passerelle), reçu {payment.receipt_number} "
                f"annulé, {detail}")
    _reconciled(order, at=now)
    return OrderResult(order.oid, Outcome.DISCREPANCY, answer.status,
                       f"{Discrepancy.Kind.NOT_CAPTURED.label} : reçu {payment.receipt_number} annulé, "
                       f"{payment.amount} DH, factures {', '.join(refs)} rouvertes", discrepancy)


@transaction.atomic
def payment_order_record(*, order_id: int, answer: GatewayStatus, now: dt.datetime) -> OrderResult | None:
    """Record the payment the gateway captured for an order the biller has unpaid, from its signed status answer
    (the callback's own checks, receipt and email), and mark the order reconciled. A NOT_RECORDED discrepancy when
    the data does not check out. None when the order is no longer unpaid and unreconciled."""
    order = PaymentOrder.objects.select_for_update().get(pk=order_id)
    if order.state not in UNPAID_STATES or order.reconciled_at is not None or answer.status != CAPTURED:
        return None
    try:
        with transaction.atomic():
            payment_settle(message=answer.message)
    except GatewayMessageRefused as exc:
        refs = list(order.items.order_by("invoice__reference").values_list("invoice__reference", flat=True))
        detail = f"données refusées ({exc.reason})"
        discrepancy = _flag(order, kind=Discrepancy.Kind.NOT_RECORDED, answer=answer, at=now, payment=None,
                            invoice_references=refs, detail=detail)
        _reconciled(order, at=now)
        _event(order, at=now, cause=f"rapprochement : encaissé ({answer.captured_amount} DH) mais {detail}")
        return OrderResult(order.oid, Outcome.DISCREPANCY, answer.status,
                           f"{Discrepancy.Kind.NOT_RECORDED.label} : {answer.captured_amount} DH, {detail}",
                           discrepancy)
    order.refresh_from_db()
    payment = Payment.objects.get(order=order)
    _reconciled(order, at=now)
    _event(order, at=now, cause=f"rapprochement : paiement enregistré depuis la passerelle, reçu "
                                f"{payment.receipt_number}")
    return OrderResult(order.oid, Outcome.RECORDED, answer.status,
                       f"reçu {payment.receipt_number}, {payment.amount} DH, transaction {payment.trans_id}")


def _pending(oid: str, reason: str, status: str = "") -> OrderResult:
    return OrderResult(oid, Outcome.PENDING, status, PENDING_REASONS.get(reason, f"réponse refusée ({reason})"))


def reconcile_order(*, order_id: int, now: dt.datetime) -> OrderResult:
    """Ask the gateway about one order and take the step its answer calls for. Never inside a transaction: a
    redelivered callback comes back to the biller while this waits."""
    order = PaymentOrder.objects.get(pk=order_id)
    was_paid = order.state == State.PAID
    try:
        answer = order_status(oid=order.oid, order_amount=order.amount)
        step = reconciliation_step(biller_paid=was_paid, status=answer.status, redelivered=False)
        if step == Step.REDELIVER:
            answer = order_status(oid=order.oid, order_amount=order.amount, action=REDELIVER)
            order.refresh_from_db()  # the callback, answered meanwhile, may have settled it
            step = reconciliation_step(biller_paid=order.state == State.PAID, status=answer.status,
                                       redelivered=True)
    except GatewayStatusError as exc:
        return _pending(order.oid, exc.reason)
    if step == Step.WAIT:
        return OrderResult(order.oid, Outcome.PENDING, answer.status, f"{answer.status} à la passerelle")
    move = {Step.RECONCILE: payment_order_reconcile, Step.AGREE_UNPAID: payment_order_reconcile,
            Step.VOID: payment_order_void, Step.RECORD: payment_order_record, Step.FLAG: payment_order_flag}[step]
    try:
        result = move(order_id=order.pk, answer=answer, now=now)
    except IntegrityError:  # a callback settling the same order at the same moment won
        return _pending(order.oid, "conflict", answer.status)
    if result is None:
        return _pending(order.oid, "changed", answer.status)
    if result.outcome == Outcome.RECONCILED and not was_paid:
        # Paid by the callback the gateway sent again on our asking: recorded thanks to reconciliation.
        result = OrderResult(result.oid, Outcome.RECORDED, result.gateway_status,
                             f"{result.detail} (rappel renvoyé par la passerelle)")
    return result


def reconcile(*, now: dt.datetime | None = None) -> ReconciliationReport:
    """Reconcile every order that may differ from the gateway, one transaction per order, and report. Running it
    again changes nothing more: reconciled orders are not asked about again."""
    now = now or timezone.now()
    report = ReconciliationReport()
    for order_id in orders_to_reconcile(now=now, days=settings.RECONCILE_DAYS, unpaid_after=ORDER_EXPIRY):
        try:
            result = reconcile_order(order_id=order_id, now=now)
        except Exception:  # one order's fault must not keep the others unreconciled
            logger.exception("reconciliation order_id=%s failed", order_id)
            oid = PaymentOrder.objects.filter(pk=order_id).values_list("oid", flat=True).first() or "?"
            result = _pending(oid, "error")
        report.results.append(result)
        if result.outcome == Outcome.PENDING and result.detail == PENDING_REASONS["unreachable"]:
            # The gateway is down: asking about every other order would hold the worker for a timeout each.
            logger.warning("reconciliation stopped: the gateway is unreachable; the next run goes on")
            break
        if result.discrepancy is not None:
            # Not the invoice references: 16 digits that the card-data log filter may well mask.
            found = result.discrepancy
            logger.error("reconciliation discrepancy oid=%s kind=%s gateway_status=%s amount=%s captured=%s "
                         "receipt=%s trans_id=%s discrepancy_id=%s", result.oid, found.kind, found.gateway_status,
                         found.amount, found.captured_amount, found.receipt_number or "-", found.trans_id or "-",
                         found.pk)
        elif result.outcome == Outcome.RECORDED:
            logger.warning("reconciliation recorded oid=%s: %s", result.oid, result.detail)
        elif result.outcome == Outcome.PENDING:
            logger.warning("reconciliation pending oid=%s gateway_status=%s: %s", result.oid,
                           result.gateway_status or "-", result.detail)
    logger.info("reconciliation done %s", " ".join(f"{k}={v}" for k, v in report.counts.items()))
    return report


# --- The periodic run ----------------------------------------------------------------------------------------

@transaction.atomic
def reconciliation_schedule_start(*, now: dt.datetime | None = None) -> ReconciliationSchedule:
    """Start the periodic reconciliation (or start it afresh): a new chain of tasks, the first one due now.
    A task of an earlier chain then ends without enqueueing a successor, so there is only ever one chain."""
    now = now or timezone.now()
    ReconciliationSchedule.objects.get_or_create(pk=1, defaults={"token": "", "started_at": now})
    schedule = ReconciliationSchedule.objects.select_for_update().get(pk=1)
    schedule.token, schedule.started_at = secrets.token_hex(16), now
    schedule.save(update_fields=["token", "started_at"])
    reconcile_payments.enqueue(token=schedule.token)
    return schedule


@transaction.atomic
def reconciliation_schedule_next(*, token: str, now: dt.datetime | None = None) -> bool:
    """At a periodic run: when ``token`` is the current chain's, enqueue its successor (settings.RECONCILE_SECONDS
    from now) before anything else, so a run that fails does not end the chain, and return True; False for a task
    of an older chain, which then stops."""
    now = now or timezone.now()
    schedule = ReconciliationSchedule.objects.select_for_update().filter(pk=1).first()
    if schedule is None or not token or schedule.token != token:
        return False
    # Each link hands a token of its own to its successor: this task run again (a transient error, its worker
    # killed) finds its token spent and stops, instead of starting a second chain.
    schedule.token, schedule.last_run_at = secrets.token_hex(16), now
    schedule.save(update_fields=["token", "last_run_at"])
    run_after = now + dt.timedelta(seconds=settings.RECONCILE_SECONDS)
    reconcile_payments.using(run_after=run_after).enqueue(token=schedule.token)
    return True

