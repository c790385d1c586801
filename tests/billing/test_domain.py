"""The biller's domain: amounts (HT, VAT 20 %, TTC), and what the database refuses whoever writes."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from tasdid.billing.models import Bill, Invoice, InvoiceLine, Payment, PaymentOrder, ServiceLine
from tasdid.core.money import ttc_of, vat_of
from tests import factories


@pytest.mark.parametrize(("ht", "vat", "ttc"), [
    ("155.00", "31.00", "186.00"),   # the guide's fixed invoice
    ("82.50", "16.50", "99.00"),     # its internet invoice
    ("124.17", "24.83", "149.00"),   # 24.834 rounds down
    ("0.13", "0.03", "0.16"),        # 0.026 rounds up
    ("0.01", "0.00", "0.01"),
])
def test_vat_is_20_percent_rounded_half_up_to_the_centime(ht, vat, ttc):
    assert vat_of(Decimal(ht)) == Decimal(vat)
    assert ttc_of(Decimal(ht)) == Decimal(ttc)


@given(st.integers(min_value=1, max_value=10**11))
def test_vat_is_always_within_half_a_centime_of_20_percent(centimes):
    ht = Decimal(centimes) / 100
    assert abs(vat_of(ht) - ht * Decimal("0.2")) <= Decimal("0.005")


def _refused(**changes):
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=changes.pop("pk")).update(**changes)


@pytest.fixture
def invoice(db) -> Invoice:
    return factories.invoice(line=factories.mobile_line())


@pytest.fixture
def payment(invoice) -> Payment:
    now = timezone.now()
    order = PaymentOrder.objects.create(oid="ORDER-7", line=invoice.line, email="y@example.ma",
                                        amount=invoice.amount_ttc, created_at=now, updated_at=now)
    return Payment.objects.create(order=order, receipt_number="R-7", amount=invoice.amount_ttc, email=order.email,
                                  paid_at=now, trans_id="T-7", auth_code="123456", masked_pan="400000******0002",
                                  card_brand="VISA", merchant_name="Tasdid")


def test_an_invoice_has_one_status_of_two(invoice):
    _refused(pk=invoice.pk, status="deferred")
    assert Invoice.objects.get(pk=invoice.pk).status == "unpaid"


def test_a_paid_invoice_must_have_its_payment_and_time(invoice, payment):
    now = timezone.now()
    _refused(pk=invoice.pk, status="paid")
    _refused(pk=invoice.pk, status="paid", paid_at=now)
    _refused(pk=invoice.pk, status="paid", payment=payment)
    _refused(pk=invoice.pk, payment=payment, paid_at=now)  # still "unpaid"
    Invoice.objects.filter(pk=invoice.pk).update(status="paid", payment=payment, paid_at=now)
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"


def test_an_invoice_to_pay_is_never_free(invoice):
    _refused(pk=invoice.pk, amount_ttc=Decimal("0.00"))


@pytest.mark.django_db
def test_an_invoice_reference_is_unique():
    first = factories.invoice(line=factories.mobile_line(), reference="0000000000000001")
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.invoice(line=first.line, reference="0000000000000001", month=dt.date(2017, 7, 1))


@pytest.mark.django_db
def test_one_bill_per_customer_and_month():
    owner = factories.customer()
    factories.bill(owner=owner, month=dt.date(2017, 6, 1))
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.bill(owner=owner, month=dt.date(2017, 6, 1))
    assert Bill.objects.filter(customer=owner).count() == 1


@pytest.mark.django_db
def test_a_line_has_the_fields_of_its_kind_and_a_unique_number():
    owner = factories.customer()
    with pytest.raises(IntegrityError), transaction.atomic():
        ServiceLine.objects.create(customer=owner, kind="internet", number="+212661000001")
    with pytest.raises(IntegrityError), transaction.atomic():
        ServiceLine.objects.create(customer=owner, kind="mobile", payment_identifier="12345678")
    factories.mobile_line(number="+212661000001", owner=owner)
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.mobile_line(number="+212661000001")
    factories.internet_line(identifier="12345678", owner=owner)
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.internet_line(identifier="12345678")
    assert ServiceLine.objects.count() == 2


def test_invoice_lines_have_one_position_each(invoice):
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.create(invoice=invoice, position=1, label="Doublon", amount_ht=Decimal("1.00"))
    assert invoice.lines.count() == 1
