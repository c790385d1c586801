"""The customer's language follows the order: the page's language is kept on the order it creates and goes to
the gateway in the signed merchant request (``lang``)."""

import pytest
from django.conf import settings

from tasdid.billing.models import PaymentOrder
from tasdid.billing.selectors.payments import merchant_request
from tasdid.core.signing import ver3_verify
from tests.billing.payments_fixtures import line_with_two_invoices, new_order
from tests.portal.test_payment_views import hidden_fields, identified_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("lang", ["ar", "en", "fr"])
def test_the_pages_language_is_kept_on_the_order_and_sent_signed_to_the_gateway(lang):
    line, *_ = line_with_two_invoices()
    client, token = identified_client(line)
    client.get(f"/factures?lang={lang}")  # the switch on a page: the biller's language cookie

    response = client.post("/paiement", {"csrfmiddlewaretoken": token})

    assert response.status_code == 200
    order = PaymentOrder.objects.get()
    assert order.language == lang
    fields = hidden_fields(response.content.decode())
    assert fields["lang"] == lang
    assert ver3_verify(fields, settings.BILLER_STORE_KEY)  # lang is inside the hash
    assert not ver3_verify({**fields, "lang": "fr" if lang != "fr" else "en"}, settings.BILLER_STORE_KEY)


def test_a_page_without_a_chosen_language_makes_a_french_order():
    line, *_ = line_with_two_invoices()
    client, token = identified_client(line)

    client.post("/paiement", {"csrfmiddlewaretoken": token})

    assert PaymentOrder.objects.get().language == "fr"


@pytest.mark.parametrize(("given", "kept"), [("ar-MA", "ar"), ("EN", "en"), ("de", "fr"), ("", "fr")])
def test_an_order_keeps_one_of_our_languages_or_french(given, kept):
    line, *_ = line_with_two_invoices()
    order = new_order(line, language=given)
    assert order.language == kept
    assert merchant_request(order=order)["lang"] == kept
