"""The biller's staff admin: browse and search by what is printed on a bill; money is never edited there."""

from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from tasdid.billing.demo import seed_demo
from tasdid.billing.models import Bill, Customer, Invoice, Payment, PaymentOrder, ServiceLine
from tests.support.staff import signed_in, staff_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff() -> Client:
    """A superuser of the biller's staff, signed in on the biller's site (its own session cookie)."""
    staff_account("staff", parties=["biller"])
    client = signed_in("biller", "staff")
    seed_demo()
    return client


def _paid(reference: str) -> Invoice:
    invoice = Invoice.objects.get(reference=reference)
    now = timezone.now()
    order = PaymentOrder.objects.create(oid="ORDER-42", line=invoice.line, email="k@example.ma",
                                        amount=invoice.amount_ttc, state=PaymentOrder.State.PAID, created_at=now,
                                        updated_at=now)
    payment = Payment.objects.create(order=order, receipt_number="R-42", amount=invoice.amount_ttc,
                                     email=order.email, paid_at=now, trans_id="T-42", auth_code="123456",
                                     masked_pan="400000******0002", card_brand="VISA", merchant_name="Tasdid")
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.PAID, payment=payment, paid_at=now)
    invoice.refresh_from_db()
    return invoice


def test_anonymous_visitors_are_sent_to_the_login_page():
    response = Client().get("/admin/billing/invoice/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_every_billing_list_opens_with_a_bounded_number_of_queries(staff, django_assert_max_num_queries):
    for model in ("customer", "serviceline", "bill", "invoice", "paymentorder", "payment", "identificationattempt",
                  "fideliocode"):
        with django_assert_max_num_queries(12):
            response = staff.get(f"/admin/billing/{model}/")
        assert response.status_code == 200, model


@pytest.mark.parametrize(("term", "found"), [
    ("06 61 00 00 01", ["100000002"]),
    ("0661000001", ["100000002"]),
    ("12 345 678", ["100000001"]),
    ("100000004", ["100000004"]),
    ("Tazi", ["100000004"]),
    ("06 61 00 00 77", []),
])
def test_customers_are_found_by_client_number_name_or_a_number_as_printed(staff, term, found):
    response = staff.get("/admin/billing/customer/", {"q": term})
    assert response.status_code == 200
    assert [c.client_number for c in response.context["cl"].result_list] == found


def test_invoices_are_found_by_reference_or_by_their_line(staff):
    response = staff.get("/admin/billing/invoice/", {"q": "98 765 432"})
    assert sorted(i.reference for i in response.context["cl"].result_list) == ["0000400002092026",
                                                                               "0000400002102026"]
    response = staff.get("/admin/billing/invoice/", {"q": "0000111995072017"})
    assert [i.reference for i in response.context["cl"].result_list] == ["0000111995072017"]
    response = staff.get("/admin/billing/serviceline/", {"q": "05 37 00 00 02"})
    assert [line.number for line in response.context["cl"].result_list] == ["+212537000002"]


def test_a_bill_shows_its_invoices_and_an_invoice_its_lines(staff):
    bill = Bill.objects.get(customer__client_number="100000001")
    page = staff.get(f"/admin/billing/bill/{bill.pk}/change/").content.decode()
    assert "0000111995072017" in page and "0000111996072017" in page
    assert "285,00" in page or "285.00" in page
    invoice = Invoice.objects.get(reference="0000111995072017")
    page = staff.get(f"/admin/billing/invoice/{invoice.pk}/change/").content.decode()
    assert "Ligne mixte illimité TT" in page and "5 H tout temps Mobile" in page


def test_a_paid_invoice_and_its_payment_cannot_be_edited_or_deleted(staff):
    invoice = _paid("0000111995072017")
    page = staff.get(f"/admin/billing/invoice/{invoice.pk}/change/").content.decode()
    assert 'name="amount_ttc"' not in page and 'name="status"' not in page
    staff.post(f"/admin/billing/invoice/{invoice.pk}/change/", {"amount_ttc": "1.00", "status": "unpaid"})
    assert staff.post(f"/admin/billing/invoice/{invoice.pk}/delete/", {"post": "yes"}).status_code == 403
    invoice.refresh_from_db()
    assert (invoice.amount_ttc, invoice.status) == (Decimal("186.00"), "paid")

    payment = invoice.payment
    page = staff.get(f"/admin/billing/payment/{payment.pk}/change/").content.decode()
    assert 'name="amount"' not in page
    staff.post(f"/admin/billing/payment/{payment.pk}/change/", {"amount": "1.00"})
    assert staff.post(f"/admin/billing/payment/{payment.pk}/delete/", {"post": "yes"}).status_code == 403
    payment.refresh_from_db()
    assert payment.amount == Decimal("186.00")
    assert staff.get("/admin/billing/invoice/add/").status_code == 403


def test_unpaid_invoices_are_not_edited_here_either(staff):
    invoice = Invoice.objects.get(reference="0000200001092026")
    staff.post(f"/admin/billing/invoice/{invoice.pk}/change/", {"amount_ttc": "1.00"})
    invoice.refresh_from_db()
    assert invoice.amount_ttc == Decimal("149.00")


def test_staff_may_correct_a_customers_name_and_a_lines_label_only(staff):
    customer = Customer.objects.get(client_number="100000003")
    response = staff.post(f"/admin/billing/customer/{customer.pk}/change/", {
        "name": "Mme Salma El Idrissi", "client_number": "999",
        "lines-TOTAL_FORMS": "1", "lines-INITIAL_FORMS": "1", "lines-MIN_NUM_FORMS": "0", "lines-MAX_NUM_FORMS": "0",
        "bills-TOTAL_FORMS": "1", "bills-INITIAL_FORMS": "1", "bills-MIN_NUM_FORMS": "0", "bills-MAX_NUM_FORMS": "0",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    customer.refresh_from_db()
    assert (customer.client_number, customer.name) == ("100000003", "Mme Salma El Idrissi")

    line = ServiceLine.objects.get(number="+212537000002")
    page = staff.get(f"/admin/billing/serviceline/{line.pk}/change/").content.decode()
    assert "payment_code_digest" not in page and line.payment_code_digest not in page
    response = staff.post(f"/admin/billing/serviceline/{line.pk}/change/", {
        "label": "Ligne fixe confort", "number": "+212537000099", "failed_attempts": "0"})
    assert response.status_code == 302
    line.refresh_from_db()
    assert (line.label, line.number) == ("Ligne fixe confort", "+212537000002")
