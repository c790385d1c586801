"""The demo data: the guide's sample bill and lines to try each way in, created through the real import."""

from decimal import Decimal

import pytest

from tasdid.billing.codes import payment_code_matches
from tasdid.billing.demo import DEMO_IDENTITIES, seed_demo
from tasdid.billing.models import Bill, Customer, Invoice, InvoiceLine, ServiceLine
from tasdid.billing.services.importing import import_bills
from tasdid.core.phones import parse_number
from tests.billing.bills_files import EXAMPLE

pytestmark = pytest.mark.django_db


def _line(identity) -> ServiceLine:
    if identity.kind == "internet":
        return ServiceLine.objects.get(payment_identifier="".join(identity.typed.split()))
    return ServiceLine.objects.get(number=parse_number(identity.typed))


def test_the_guides_sample_bill():
    seed_demo()
    bill = Bill.objects.get(customer__client_number="100000001")
    assert bill.customer.name == "Mme Khadija Alaoui"
    assert (str(bill.month), str(bill.due_date), bill.total_ht, bill.total_vat, bill.total_ttc) == (
        "2017-06-01", "2017-07-19", Decimal("237.50"), Decimal("47.50"), Decimal("285.00"))
    assert (bill.loyalty_points, bill.loyalty_balance) == (150, 196)
    assert list(bill.invoices.order_by("reference").values_list("reference", "line__kind", "amount_ttc")) == [
        ("0000111995072017", "fixed", Decimal("186.00")), ("0000111996072017", "internet", Decimal("99.00"))]
    assert list(InvoiceLine.objects.filter(invoice__bill=bill).order_by("invoice__reference", "position")
                .values_list("section", "label", "amount_ht", "free")) == [
        ("Abonnement", "Ligne mixte illimité TT", Decimal("155.00"), False),
        ("Options et services", "5 H tout temps Mobile", Decimal("0.00"), True),
        ("Abonnement", "Menara ADSL illimité 4 Mb/s", Decimal("82.50"), False)]


def test_each_demo_identity_reaches_exactly_its_unpaid_invoices():
    seed_demo()
    assert len(DEMO_IDENTITIES) == 7
    for identity in DEMO_IDENTITIES:
        line = _line(identity)
        assert (line.kind, line.customer.client_number, line.customer.name) == (
            identity.kind, identity.client_number, identity.customer)
        unpaid = line.invoices.filter(status=Invoice.Status.UNPAID).order_by("bill__month")
        assert [(i.reference, f"{i.amount_ttc:.2f}") for i in unpaid] == list(identity.unpaid)
        if identity.kind == "fixed":
            assert payment_code_matches(line.number, identity.payment_code, line.payment_code_digest)
        for reference, _amount in identity.unpaid:
            assert reference.startswith("00") and len(reference) == 16


def test_demo_identities_cover_every_way_in_and_deferring():
    by_typed = {identity.typed: identity for identity in DEMO_IDENTITIES}
    assert (by_typed["06 61 00 00 01"].total, len(by_typed["06 61 00 00 01"].unpaid)) == ("348.00", 2)
    assert by_typed["05 37 00 00 02"].payment_code == "1234"
    assert len(by_typed["98 765 432"].unpaid) == 2
    assert by_typed["06 61 00 00 09"].unpaid == ()
    assert {identity.kind for identity in DEMO_IDENTITIES} == {"mobile", "fixed", "internet"}


def test_seeding_twice_changes_nothing_and_the_documented_example_agrees():
    seed_demo()
    before = list(Invoice.objects.order_by("pk").values_list("pk", "reference", "amount_ttc"))
    seed_demo()
    assert list(Invoice.objects.order_by("pk").values_list("pk", "reference", "amount_ttc")) == before
    assert (Customer.objects.count(), ServiceLine.objects.count(), Bill.objects.count(), Invoice.objects.count()) == (
        5, 7, 6, 9)
    summary = import_bills(source=EXAMPLE)  # the example is a part of the demo: all already there
    assert (summary.customers.present, summary.invoices.present, summary.invoices.created) == (2, 4, 0)
