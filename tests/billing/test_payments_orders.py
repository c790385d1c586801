"""Payment orders: what the biller asks the gateway to collect, and the CMI request that carries it."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.conf import settings

from tasdid.billing.models import PaymentOrder, PaymentOrderEvent, PaymentOrderItem
from tasdid.billing.selectors.payments import item_label, merchant_request, month_label, payable_invoices
from tasdid.billing.services.payments import (
    NothingToPay,
    UnknownLine,
    new_oid,
    payment_callback,
    payment_order_create,
)
from tasdid.core.signing import ver3_hash, ver3_verify
from tests import factories
from tests.billing.payments_fixtures import EMAIL, JULY, JUNE, gateway_message, line_with_two_invoices, new_order

pytestmark = pytest.mark.django_db


def test_oid_is_tsd_and_80_random_bits_in_base32():
    oids = {new_oid() for _ in range(200)}
    assert len(oids) == 200
    assert all(re.fullmatch(r"TSD[A-Z2-7]{16}", oid) for oid in oids)


def test_order_snapshots_the_lines_unpaid_invoices():
    line, june, july = line_with_two_invoices()
    factories.invoice(line=factories.mobile_line(number="+212661000099"), amount_ht="10.00")  # another line's

    order = new_order(line)

    order.refresh_from_db()
    assert order.state == PaymentOrder.State.CREATED
    assert order.line_id == line.pk
    assert order.email == EMAIL
    assert order.amount == Decimal("285.00")
    assert re.fullmatch(r"TSD[A-Z2-7]{16}", order.oid)
    items = list(PaymentOrderItem.objects.filter(order=order).order_by("pk").values_list("invoice_id", "amount"))
    assert items == [(june.pk, Decimal("186.00")), (july.pk, Decimal("99.00"))]
    events = list(order.events.values_list("from_state", "to_state", "cause"))
    assert events == [("", "created", "commande créée depuis le portail (2 facture(s))")]


def test_paid_invoices_are_not_in_a_new_order():
    line, june, july = line_with_two_invoices()
    first = new_order(line)
    assert payment_callback(fields=gateway_message(first, paid=[june.reference])).answer == "ACTION=POSTAUTH"

    second = new_order(line)

    assert list(second.items.values_list("invoice__reference", flat=True)) == [july.reference]
    assert second.amount == Decimal("99.00")
    assert [inv.reference for inv in payable_invoices(line_id=line.pk)] == [july.reference]


def test_no_unpaid_invoice_creates_nothing():
    line = factories.mobile_line()
    with pytest.raises(NothingToPay):
        new_order(line)
    assert PaymentOrder.objects.count() == 0
    assert PaymentOrderEvent.objects.count() == 0


def test_unknown_line_creates_nothing():
    with pytest.raises(UnknownLine):
        payment_order_create(line_id=987654, email=EMAIL)
    assert PaymentOrder.objects.count() == 0


def test_merchant_request_has_every_cmi_field_and_the_bill_extension():
    line, june, july = line_with_two_invoices()
    order = new_order(line)

    fields = merchant_request(order=order)

    base = settings.BILLER_URL
    expected = {
        "clientid": settings.BILLER_CLIENT_ID,
        "amount": "285.00",
        "currency": "504",
        "oid": order.oid,
        "okUrl": f"{base}/paiement/ok",
        "failUrl": f"{base}/paiement/echec",
        "callbackUrl": f"{base}/paiement/callback",
        "shopurl": f"{base}/factures",
        "storetype": "3D_PAY_HOSTING",
        "TranType": "PreAuth",
        "hashAlgorithm": "ver3",
        "lang": "fr",
        "BillToName": "",
        "email": EMAIL,
        "tel": "0661000001",
        "encoding": "UTF-8",
        "AutoRedirect": "true",
        "sessionTimeout": "1800",
        "itemCount": "2",
        "item1Ref": june.reference,
        "item1Label": "Facture Mobile Juin 2017",
        "item1Amount": "186.00",
        "item2Ref": july.reference,
        "item2Label": "Facture Mobile Juillet 2017",
        "item2Amount": "99.00",
        "allowDefer": "true",
    }
    assert {k: v for k, v in fields.items() if k not in {"rnd", "hash"}} == expected
    assert re.fullmatch(r"[0-9a-f]{20}", fields["rnd"])
    assert fields["hash"] == ver3_hash({k: v for k, v in fields.items() if k != "hash"}, settings.BILLER_STORE_KEY)
    assert ver3_verify(fields, settings.BILLER_STORE_KEY)
    assert not ver3_verify({**fields, "item2Amount": "9.00"}, settings.BILLER_STORE_KEY)
    assert merchant_request(order=order)["rnd"] != fields["rnd"]


def test_internet_line_sends_an_empty_tel_and_fixed_line_its_national_number():
    internet = factories.internet_line()
    factories.invoice(line=internet, amount_ht="82.50", month=JUNE)
    fixed = factories.fixed_line(number="+212522000001")
    factories.invoice(line=fixed, amount_ht="155.00", month=JUNE)

    assert merchant_request(order=new_order(internet))["tel"] == ""
    fixed_fields = merchant_request(order=new_order(fixed))
    assert fixed_fields["tel"] == "0522000001"
    assert fixed_fields["item1Label"] == "Facture Fixe Juin 2017"


def test_item_label_names_the_service_and_month():
    assert item_label(kind="internet", month=JULY) == "Facture Internet Juillet 2017"
    # The month as the biller's own pages write it (consult page, receipt).
    assert item_label(kind="mobile", month=dt.date(2017, 5, 1)) == f"Facture Mobile {month_label(dt.date(2017, 5, 1))}"
    assert month_label(dt.date(2017, 5, 1)) == "Mai 2017"
