"""Reads of the refunds: what of a payment is left to refund, its refunds, those waiting for an answer."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q, Sum

from ..models import Invoice, Payment, PaymentOrderItem, Refund

# A refund counts against what is left to refund from the moment it is recorded until it is refused.
COUNTED = (Refund.State.PENDING, Refund.State.UNKNOWN, Refund.State.APPROVED)
UNANSWERED = (Refund.State.PENDING, Refund.State.UNKNOWN)


@dataclass(frozen=True)
class RefundableInvoice:
    invoice: Invoice
    amount: Decimal  # what the order asked for it: what was paid


def references(refund: Refund) -> list[str]:
    return [ref for ref in refund.invoice_references.split(",") if ref]


def covered_references(*, payment_id: int, states=COUNTED) -> set[str]:
    """The invoices of a payment that a refund in ``states`` covers."""
    rows = Refund.objects.filter(payment_id=payment_id, state__in=states).values_list("invoice_references", flat=True)
    return {ref for row in rows for ref in row.split(",") if ref}


def refundable_invoices(*, payment: Payment) -> list[RefundableInvoice]:
    """The payment's invoices still paid by it and in no refund under way or done, oldest month first, with the
    amount paid for each."""
    covered = covered_references(payment_id=payment.pk)
    amounts = dict(PaymentOrderItem.objects.filter(order_id=payment.order_id).values_list("invoice_id", "amount"))
    invoices = (Invoice.objects.filter(payment=payment, status=Invoice.Status.PAID).select_related("bill", "line")
                .order_by("bill__month", "reference"))
    return [RefundableInvoice(invoice=inv, amount=amounts[inv.pk]) for inv in invoices
            if inv.reference not in covered and inv.pk in amounts]


def counted_amount(*, payment_id: int) -> Decimal:
    """What the payment's refunds under way or done add up to."""
    return (Refund.objects.filter(payment_id=payment_id, state__in=COUNTED).aggregate(total=Sum("amount"))["total"]
            or Decimal("0.00"))


def refunds_of(*, payment_id: int, states=None) -> list[Refund]:
    """A payment's refunds, oldest first."""
    refunds = Refund.objects.filter(payment_id=payment_id)
    if states is not None:
        refunds = refunds.filter(state__in=states)
    return list(refunds.order_by("created_at", "pk"))


def refunds_to_send_again(*, now: dt.datetime, quiet_for: dt.timedelta, within: dt.timedelta,
                          limit: int = 100) -> list[int]:
    """Refunds left without an answer: recorded or sent more than ``quiet_for`` ago (none being sent now), and
    asked less than ``within`` ago (the gateway keeps its answers for a while only: older ones are for staff)."""
    quiet = now - quiet_for
    return list(Refund.objects.filter(state__in=UNANSWERED, created_at__gte=now - within)
                .filter(Q(sent_at__isnull=True, created_at__lte=quiet) | Q(sent_at__lte=quiet))
                .order_by("created_at", "pk").values_list("pk", flat=True)[:limit])
