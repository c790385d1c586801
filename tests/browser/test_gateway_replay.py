"""A signed payment request replayed from another browser (copied, or the page's form posted again elsewhere)
must not take the payment session from the customer's browser: two Chromium contexts, separate cookies, the
real gateway server (docs/gateway.md: only the browser that posted the request sees the session)."""

import html
import re

import pytest
from playwright.sync_api import Page, expect

from tasdid.gateway import services
from tasdid.gateway.models import PaymentSession, SessionState
from tests.gateway.conftest import merchant_fields, signed

REFUSAL = {
    "fr": "Cette commande est déjà en cours de paiement dans un autre navigateur.",
    "ar": "هذا الطلب قيد الدفع بالفعل في متصفح آخر.",
}
HEADING = {"fr": "Paiement sécurisé", "ar": "دفع آمن"}


def shop_form(parties, lang: str) -> str:
    biller = parties["biller"]
    fields = signed(merchant_fields(base=biller, lang=lang))
    inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in fields.items())
    return (f'<!doctype html><html lang="fr"><body><form method="post" action="{parties["gateway"]}/fim/est3Dgate">'
            f'{inputs}<button type="submit">Payer en ligne</button></form></body></html>')


def post_from(page: Page, parties, body: str) -> None:
    start = parties["biller"] + "/test-only/boutique"
    page.route(start, lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8", body=body))
    page.goto(start)
    page.get_by_role("button", name="Payer en ligne").click()


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_the_replay_is_refused_and_the_customer_keeps_the_page(browser, browser_context_args, parties, lang):
    services.merchant_register(client_id="600000099", name="Boutique Test", store_key="SHOP-STORE-KEY-1234",
                               return_hosts=[parties["biller"].removeprefix("http://")])
    body = shop_form(parties, lang)
    customer = browser.new_context(**browser_context_args).new_page()
    post_from(customer, parties, body)
    customer.wait_for_url(re.compile(r"/paiement/[\w-]+$"))
    expect(customer.get_by_role("heading", name=HEADING[lang])).to_be_visible()
    page_url = customer.url

    intruder = browser.new_context(**browser_context_args).new_page()
    post_from(intruder, parties, body)
    expect(intruder.get_by_text(REFUSAL[lang])).to_be_visible()
    expect(intruder.locator("html")).to_have_attribute("lang", lang)
    # the session's own address shows the intruder nothing either
    intruder.goto(page_url)
    expect(intruder.get_by_role("heading", name=HEADING[lang])).to_have_count(0)

    customer.reload()
    expect(customer.get_by_role("heading", name=HEADING[lang])).to_be_visible()
    session = PaymentSession.objects.get()
    assert session.state == SessionState.OPEN
    assert session.events.filter(cause__contains="rejouée depuis un autre navigateur").count() == 1
    customer.context.close()
    intruder.context.close()
