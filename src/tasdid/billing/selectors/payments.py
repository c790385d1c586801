"""Reads of the payment side: invoices a line can pay, payment orders, the merchant request, receipts."""

import datetime as dt
import secrets
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Q
from django.utils.translation import gettext as _

from tasdid.core import l10n
from tasdid.core.cards import BRAND_LABELS
from tasdid.core.money import MAD_NUMERIC, wire
from tasdid.core.phones import national
from tasdid.core.signing import ver3_hash

from ..models import Invoice, Payment, PaymentOrder, PaymentOrderItem, Refund, ServiceLine
from ..receipts import grouped_code, receipt_path, receipt_url, verification_code, verification_url

# The gateway's endpoint for a merchant request (CMI's path) and the biller's return points.
GATEWAY_PATH = "/fim/est3Dgate"
CONSULT_PATH = "/factures"
CALLBACK_PATH = "/paiement/callback"
OK_PATH = "/paiement/ok"
FAIL_PATH = "/paiement/echec"
# How long the customer has on the payment page, in seconds.
PAYMENT_SESSION_SECONDS = 1800


def payable_invoices(*, line_id: int) -> list[Invoice]:
    """The line's unpaid invoices, oldest month first."""
    return list(
        Invoice.objects.filter(line_id=line_id, status=Invoice.Status.UNPAID)
        .select_related("bill")
        .order_by("bill__month", "reference")
    )


def order_invoices_paid_elsewhere(*, order_id: int) -> bool:
    """Whether one of the order's invoices has been paid by another order (the same line paid from another tab
    or browser meanwhile): the biller refuses to settle this one."""
    return (PaymentOrderItem.objects.filter(order_id=order_id, invoice__status=Invoice.Status.PAID)
            .exclude(invoice__payment__order_id=order_id).exists())


def month_label(month: dt.date) -> str:
    """"Juin 2017" (in the active language: "يونيو 2017", "June 2017"; tasdid.core.l10n)."""
    return l10n.month_year(month)


def item_label(*, kind: str, month: dt.date) -> str:
    """"Facture Fixe Juin 2017": what the payment page shows beside an invoice's number, the month written as
    on the biller's own pages (month_label)."""
    return _("Facture %(kind)s %(month)s") % {"kind": ServiceLine.Kind(kind).label, "month": month_label(month)}


def _tel(line: ServiceLine) -> str:
    """The line's national number in digits ("0612345678"); empty for an internet line."""
    if not line.number:
        return ""
    return "".join(ch for ch in national(line.number) if ch.isdigit())


def gateway_url() -> str:
    return settings.GATEWAY_URL + GATEWAY_PATH


def merchant_request(*, order: PaymentOrder) -> dict[str, str]:
    """The CMI-compatible fields the browser posts to the gateway for ``order``, signed (ver3, store key)."""
    items = list(order.items.select_related("invoice__bill").order_by("pk"))
    line = order.line
    base = settings.BILLER_URL
    fields = {
        "clientid": settings.BILLER_CLIENT_ID,
        "amount": wire(order.amount),
        "currency": MAD_NUMERIC,
        "oid": order.oid,
        "okUrl": base + OK_PATH,
        "failUrl": base + FAIL_PATH,
        "callbackUrl": base + CALLBACK_PATH,
        "shopurl": base + CONSULT_PATH,
        "rnd": secrets.token_hex(10),
        "storetype": "3D_PAY_HOSTING",
        "TranType": "PreAuth",
        "hashAlgorithm": "ver3",
        "lang": order.language,  # the customer's page's language: the payment page speaks it too
        # Not the customer's name: the gateway neither needs nor shows it, and the request passes through the
        # browser of whoever typed the line's number or internet identifier (printed on the bill).
        "BillToName": "",
        "email": order.email,
        "tel": _tel(line),
        "encoding": "UTF-8",
        "AutoRedirect": "true",
        "sessionTimeout": str(PAYMENT_SESSION_SECONDS),
        "itemCount": str(len(items)),
    }
    for n, item in enumerate(items, start=1):
        fields[f"item{n}Ref"] = item.invoice.reference
        fields[f"item{n}Label"] = item_label(kind=line.kind, month=item.invoice.bill.month)
        fields[f"item{n}Amount"] = wire(item.amount)
    fields["allowDefer"] = "true"
    fields["hash"] = ver3_hash(fields, settings.BILLER_STORE_KEY)
    return fields


@dataclass(frozen=True)
class ReceiptLine:
    reference: str
    kind: str  # "Fixe", "Internet"...
    kind_code: str  # ServiceLine.Kind: "mobile", "fixed", "internet" (pages word the line in their language)
    month: str  # "Juin 2017"
    amount: Decimal
    refunded: bool = False  # refunded since (closed as refunded, or reopened: due again)


@dataclass(frozen=True)
class ReceiptRefund:
    """A refund of the payment to the card, approved: when, how much, which invoices (their references)."""

    at: dt.datetime
    amount: Decimal
    references: tuple[str, ...]


@dataclass(frozen=True)
class Receipt:
    """Everything the receipt shows (page, PDF and email alike)."""

    number: str
    paid_at: dt.datetime
    email: str
    lines: list[ReceiptLine]
    total: Decimal
    masked_pan: str
    card_brand: str
    auth_code: str
    trans_id: str
    merchant_name: str
    oid: str
    path: str
    url: str
    verify_code: str  # printed on the receipt, to type on the verification page
    verify_url: str  # the verification page of this receipt (its QR code)
    refunds: tuple[ReceiptRefund, ...] = ()
    refunded_total: Decimal = Decimal("0.00")

    @property
    def pdf_path(self) -> str:
        return self.path + "/pdf"

    @property
    def verify_code_grouped(self) -> str:
        return grouped_code(self.verify_code)


@dataclass(frozen=True)
class CheckedReceipt:
    """What the public verification page shows of a genuine receipt: nothing that names or reaches the payer
    (no name, email, phone, invoice reference), only enough to compare with the paper in hand."""

    number: str
    paid_at: dt.datetime
    total: Decimal
    merchant_name: str
    card_last4: str


def card_brand_label(brand: str) -> str:
    """"VISA" -> "Visa"; an unknown brand as the gateway wrote it."""
    return BRAND_LABELS.get((brand or "").upper(), brand)


def receipt_for(*, receipt_number: str) -> Receipt | None:
    """The receipt of a settled payment, with the invoices it paid (deferred ones are not on it) and its approved
    refunds. Two queries (three once refunded). None for a payment reconciliation found never captured: its
    invoices are due again, no receipt says paid."""
    payment = Payment.objects.select_related("order").filter(receipt_number=receipt_number).first()
    if payment is None or payment.order.state == PaymentOrder.State.VOIDED:
        return None
    # Approved refunds raise the payment's refunded total: none to read while it is nothing.
    approved = (Refund.objects.filter(payment=payment, state=Refund.State.APPROVED).order_by("answered_at", "pk")
                if payment.refunded_amount else ())
    refunds = [ReceiptRefund(at=r.answered_at, amount=r.amount,
                             references=tuple(ref for ref in r.invoice_references.split(",") if ref))
               for r in approved]
    refunded = {ref for r in refunds for ref in r.references}
    # The amounts the order asked for (what was authorized and captured), for the invoices this payment settled
    # (a refunded invoice reopened is no longer tied to the payment: its refund names it).
    items = list(
        PaymentOrderItem.objects.filter(Q(invoice__payment_id=payment.pk) | Q(invoice__reference__in=refunded),
                                        order_id=payment.order_id)
        .select_related("invoice__bill", "invoice__line")
        .order_by("invoice__bill__month", "invoice__reference")
    )
    code = verification_code(receipt_number=payment.receipt_number, trans_id=payment.trans_id)
    return Receipt(
        number=payment.receipt_number,
        paid_at=payment.paid_at,
        email=payment.email,
        lines=[
            ReceiptLine(reference=item.invoice.reference, kind=item.invoice.line.get_kind_display(),
                        kind_code=item.invoice.line.kind,
                        month=month_label(item.invoice.bill.month), amount=item.amount,
                        refunded=item.invoice.reference in refunded)
            for item in items
        ],
        total=payment.amount,
        masked_pan=payment.masked_pan,
        card_brand=card_brand_label(payment.card_brand),
        auth_code=payment.auth_code,
        trans_id=payment.trans_id,
        merchant_name=payment.merchant_name,
        oid=payment.order.oid,
        path=receipt_path(receipt_number=payment.receipt_number, oid=payment.order.oid, trans_id=payment.trans_id),
        url=receipt_url(receipt_number=payment.receipt_number, oid=payment.order.oid, trans_id=payment.trans_id),
        verify_code=code,
        verify_url=verification_url(receipt_number=payment.receipt_number, code=code),
        refunds=tuple(refunds),
        refunded_total=sum((r.amount for r in refunds), Decimal("0.00")),
    )


def receipt_to_check(*, receipt_number: str) -> tuple[CheckedReceipt, str] | None:
    """The public facts of a settled payment's receipt and the transaction id its verification code is bound to;
    None when no receipt has this number or reconciliation voided it (no receipt says paid then). One query."""
    payment = (Payment.objects.filter(receipt_number=receipt_number)
               .exclude(order__state=PaymentOrder.State.VOIDED)
               .only("receipt_number", "paid_at", "amount", "merchant_name", "masked_pan", "trans_id").first())
    if payment is None:
        return None
    digits = "".join(ch for ch in payment.masked_pan if ch.isdigit())
    facts = CheckedReceipt(number=payment.receipt_number, paid_at=payment.paid_at, total=payment.amount,
                           merchant_name=payment.merchant_name, card_last4=digits[-4:])
    return facts, payment.trans_id


def line_language(*, number: str) -> str:
    """The language the mobile line ``number`` (E.164) last used on the biller's site: its latest payment order's
    (the page it paid from), French when it has none."""
    language = (PaymentOrder.objects.filter(line__kind=ServiceLine.Kind.MOBILE, line__number=number)
                .order_by("-created_at", "-pk").values_list("language", flat=True).first())
    return language or settings.LANGUAGE_CODE
