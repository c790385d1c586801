"""Plain functions that create the biller's records for tests (no factory library: explicit is enough)."""

import datetime as dt
import itertools
from decimal import Decimal

from tasdid.billing.codes import payment_code_digest
from tasdid.billing.models import Bill, Customer, Invoice, InvoiceLine, ServiceLine
from tasdid.core.money import quantize, vat_of

_seq = itertools.count(1)


def customer(*, name: str = "Mme Test Client", client_number: str | None = None) -> Customer:
    return Customer.objects.create(client_number=client_number or f"9{next(_seq):08d}", name=name)


def mobile_line(*, number: str = "+212661000001", owner: Customer | None = None) -> ServiceLine:
    return ServiceLine.objects.create(customer=owner or customer(), kind=ServiceLine.Kind.MOBILE, number=number)


def fixed_line(*, number: str = "+212522000001", payment_code: str = "4821",
               owner: Customer | None = None) -> ServiceLine:
    return ServiceLine.objects.create(customer=owner or customer(), kind=ServiceLine.Kind.FIXED, number=number,
                                      payment_code_digest=payment_code_digest(number, payment_code))


def internet_line(*, identifier: str = "12345678", owner: Customer | None = None) -> ServiceLine:
    return ServiceLine.objects.create(customer=owner or customer(), kind=ServiceLine.Kind.INTERNET,
                                      payment_identifier=identifier)


def bill(*, owner: Customer, month: dt.date = dt.date(2017, 6, 1), due_date: dt.date | None = None,
         loyalty_points: int = 0, loyalty_balance: int = 0) -> Bill:
    return Bill.objects.create(customer=owner, month=month, due_date=due_date or month + dt.timedelta(days=48),
                               total_ht=Decimal("0"), total_vat=Decimal("0"), total_ttc=Decimal("0"),
                               loyalty_points=loyalty_points, loyalty_balance=loyalty_balance)


def invoice(*, line: ServiceLine, amount_ht: str = "155.00", reference: str | None = None,
            month: dt.date = dt.date(2017, 6, 1), on_bill: Bill | None = None, label: str = "Abonnement") -> Invoice:
    """An unpaid invoice of one priced line (VAT 20 %), on its own bill unless ``on_bill`` is given; the bill's
    totals are kept equal to the sum of its invoices."""
    ht = Decimal(amount_ht)
    target = on_bill or bill(owner=line.customer, month=month)
    vat = vat_of(ht)
    inv = Invoice.objects.create(reference=reference or f"{next(_seq):016d}", bill=target, line=line,
                                 amount_ht=ht, amount_vat=vat, amount_ttc=quantize(ht + vat))
    InvoiceLine.objects.create(invoice=inv, position=1, section="Abonnement", label=label,
                               period_start=target.month, period_end=target.month + dt.timedelta(days=29),
                               amount_ht=ht)
    target.total_ht += inv.amount_ht
    target.total_vat += inv.amount_vat
    target.total_ttc += inv.amount_ttc
    target.save(update_fields=["total_ht", "total_vat", "total_ttc"])
    return inv
