"""What the consult page shows: one line's unpaid invoices and their total, nothing else of the customer."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from tasdid.billing.models import Invoice, ServiceLine
from tasdid.core.money import quantize
from tasdid.core.phones import national


@dataclass(frozen=True)
class UnpaidInvoice:
    reference: str
    month: dt.date  # first day of the billed month
    due_date: dt.date
    amount_ttc: Decimal
    overdue: bool


@dataclass(frozen=True)
class LineInvoices:
    line_id: int
    kind: str
    line_display: str  # "06 61 00 00 01", "05 22 00 00 01" or "12 345 678": what the customer typed
    invoices: list[UnpaidInvoice]
    total: Decimal


def payment_identifier_display(identifier: str) -> str:
    """ "12345678" -> "12 345 678", the way the bill prints it."""
    if len(identifier) == 8 and identifier.isdigit():
        return f"{identifier[:2]} {identifier[2:5]} {identifier[5:]}"
    return identifier


def line_display(line: ServiceLine) -> str:
    """The line as the customer typed it: its national number, or its payment identifier as the bill prints it."""
    return national(line.number) if line.number else payment_identifier_display(line.payment_identifier or "")


def line_unpaid_invoices(*, line_id: int, today: dt.date | None = None) -> LineInvoices | None:
    """The unpaid invoices of one line, oldest due first, with their total (two queries whatever their number)."""
    line = ServiceLine.objects.filter(pk=line_id).only("pk", "kind", "number", "payment_identifier").first()
    if line is None:
        return None
    today = today or timezone.localdate()
    rows = (Invoice.objects.filter(line_id=line_id, status=Invoice.Status.UNPAID)
            .select_related("bill").only("reference", "amount_ttc", "bill__month", "bill__due_date")
            .order_by("bill__due_date", "reference"))
    invoices = [UnpaidInvoice(reference=inv.reference, month=inv.bill.month, due_date=inv.bill.due_date,
                              amount_ttc=inv.amount_ttc, overdue=inv.bill.due_date < today) for inv in rows]
    return LineInvoices(line_id=line.pk, kind=line.kind, line_display=line_display(line), invoices=invoices,
                        total=quantize(sum((i.amount_ttc for i in invoices), Decimal("0"))))
