"""The monthly bill as a document (the guide's sample bill): what it prints, and which line may download it."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils.translation import gettext_lazy

from tasdid.billing.models import Bill, Invoice, InvoiceLine, ServiceLine
from tasdid.core.money import VAT_RATE

from .invoices import line_display

# Labels the bill prints (billing/bill/pdf.html, same msgids) that the portal's hints quote: a hint names the line as
# the bill downloaded in the page's language prints it.
BILL_LABELS = {
    "fixed_payment_code": gettext_lazy("Code de paiement Fixe"),
    "internet_payment_identifier": gettext_lazy("Identifiant de paiement Internet"),
}

# The order of the services on the bill: the sample prints the fixed invoice, then the internet one.
_KIND_ORDER = {ServiceLine.Kind.FIXED: 0, ServiceLine.Kind.MOBILE: 1, ServiceLine.Kind.INTERNET: 2}


@dataclass(frozen=True)
class BillItem:
    """A priced line: « Abonnement Ligne mixte illimité TT  01/07/2017  31/07/2017  155.00 »."""

    section: str
    label: str
    period_start: dt.date | None
    period_end: dt.date | None
    amount_ht: Decimal
    free: bool


@dataclass(frozen=True)
class BillInvoice:
    """One service's invoice: « Réf Facture Fixe n° … Montant à payer TTC Téléphone 186.00 »."""

    reference: str
    kind: str  # ServiceLine.Kind
    line_display: str  # "05 22 00 00 01", "12 345 678"
    amount_ht: Decimal
    amount_vat: Decimal
    amount_ttc: Decimal
    paid: bool
    items: list[BillItem]
    refunded: bool = False  # paid, then refunded and closed: nothing due


@dataclass(frozen=True)
class BillService:
    """A line of the customer's named in the bill's heading (« N° Téléphone », « Identifiant de paiement »)."""

    kind: str
    display: str


@dataclass(frozen=True)
class BillDocument:
    """Everything the bill prints; dates and amounts stay values, the template writes them in its language."""

    number: str
    month: dt.date  # first day of the billed month
    due_date: dt.date
    biller_name: str
    client_number: str
    customer_name: str
    customer_address: list[str]  # its lines, as entered
    services: list[BillService]
    has_fixed_line: bool  # the bill then names its « Code de paiement Fixe » (never printed: only its hash is kept)
    invoices: list[BillInvoice]
    total_ht: Decimal
    total_vat: Decimal
    total_ttc: Decimal
    vat_percent: int
    loyalty_points: int
    loyalty_balance: int

    @property
    def filename(self) -> str:
        return f"facture-{self.number}.pdf"


def bill_number(*, client_number: str, month: dt.date) -> str:
    """A bill's number: its customer's and its month's ("100000123-201706"), as a customer has one bill a month."""
    return f"{client_number}-{month:%Y%m}"


def line_bill_id(*, line_id: int, reference: str) -> int | None:
    """The bill of the invoice ``reference`` if that invoice is the line ``line_id``'s, else None: a customer
    identified with one line reaches only the bills that line is on (one query)."""
    return (Invoice.objects.filter(reference=reference, line_id=line_id)
            .values_list("bill_id", flat=True).first())


def bill_document(*, bill_id: int) -> BillDocument | None:
    """The bill ``bill_id`` with its invoices and their priced lines, in three queries whatever their number."""
    bill = Bill.objects.select_related("customer").filter(pk=bill_id).first()
    if bill is None:
        return None
    invoices = list(Invoice.objects.filter(bill_id=bill.pk).select_related("line")
                    .only("reference", "amount_ht", "amount_vat", "amount_ttc", "status", "line__kind",
                          "line__number", "line__payment_identifier"))
    invoices.sort(key=lambda inv: (_KIND_ORDER.get(inv.line.kind, 9), inv.reference))
    items: dict[int, list[BillItem]] = {inv.pk: [] for inv in invoices}
    for row in InvoiceLine.objects.filter(invoice_id__in=list(items)).order_by("invoice_id", "position"):
        items[row.invoice_id].append(BillItem(section=row.section, label=row.label, period_start=row.period_start,
                                              period_end=row.period_end, amount_ht=row.amount_ht, free=row.free))
    services: dict[int, BillService] = {}
    for inv in invoices:
        services.setdefault(inv.line_id, BillService(kind=inv.line.kind, display=line_display(inv.line)))
    customer = bill.customer
    return BillDocument(
        number=bill_number(client_number=customer.client_number, month=bill.month),
        month=bill.month,
        due_date=bill.due_date,
        biller_name=settings.BILLER_NAME,
        client_number=customer.client_number,
        customer_name=customer.name,
        customer_address=[line.strip() for line in customer.address.splitlines() if line.strip()],
        services=list(services.values()),
        has_fixed_line=any(s.kind == ServiceLine.Kind.FIXED for s in services.values()),
        invoices=[BillInvoice(reference=inv.reference, kind=inv.line.kind, line_display=line_display(inv.line),
                              amount_ht=inv.amount_ht, amount_vat=inv.amount_vat, amount_ttc=inv.amount_ttc,
                              paid=inv.status == Invoice.Status.PAID, items=items[inv.pk],
                              refunded=inv.status == Invoice.Status.REFUNDED)
                  for inv in invoices],
        total_ht=bill.total_ht,
        total_vat=bill.total_vat,
        total_ttc=bill.total_ttc,
        vat_percent=int(VAT_RATE * 100),
        loyalty_points=bill.loyalty_points,
        loyalty_balance=bill.loyalty_balance,
    )
