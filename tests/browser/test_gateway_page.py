"""The hosted payment page in Chromium, against the real gateway server: deferring an invoice by its trash
icon with and without JavaScript, and card errors shown next to their fields without echoing the card."""

import html
import re

import pytest
from playwright.sync_api import Page, expect

from tasdid.gateway import services
from tasdid.gateway.models import Attempt, PaymentSession, SessionState
from tests.gateway.conftest import merchant_fields, signed

FIXE, INTERNET = "0000111995072017", "0000111996072017"


@pytest.fixture
def shop_page(parties):
    """A page of the merchant's site (served by the test) whose form posts the signed request to the gateway."""
    biller = parties["biller"]
    services.merchant_register(client_id="600000099", name="Boutique Test", store_key="SHOP-STORE-KEY-1234",
                               return_hosts=[biller.removeprefix("http://")])
    fields = signed(merchant_fields(base=biller))
    inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in fields.items())
    body = (f'<!doctype html><html lang="fr"><body><form method="post" action="{parties["gateway"]}/fim/est3Dgate">'
            f'{inputs}<button type="submit">Payer en ligne</button></form></body></html>')

    def open_gateway(page: Page) -> None:
        start = biller + "/test-only/boutique"
        page.route(start, lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8", body=body))
        page.goto(start)
        page.get_by_role("button", name="Payer en ligne").click()
        page.wait_for_url(re.compile(r"/paiement/[\w-]+$"))
        expect(page.get_by_role("heading", name="Paiement sécurisé")).to_be_visible()

    return open_gateway


def total(page: Page):
    return page.locator("#invoices-total")


def test_defer_by_the_trash_icon_without_javascript(browser, browser_context_args, shop_page):
    context = browser.new_context(**browser_context_args, java_script_enabled=False)
    page = context.new_page()
    shop_page(page)
    expect(page.locator("#merchant-name")).to_have_text("Boutique Test")
    expect(page.locator("#order-id")).to_have_text("ORDER-0001")
    expect(total(page)).to_have_text("285.00 DH")

    page.get_by_role("button", name=f"Reporter la facture {INTERNET}").click()
    expect(total(page)).to_have_text("186.00 DH")
    expect(page.locator("#pay-total")).to_have_text("186.00 DH")
    # the last invoice kept has no trash; the deferred one can be paid after all
    expect(page.get_by_role("button", name=re.compile("Reporter la facture"))).to_have_count(0)
    expect(page.get_by_role("button", name=f"Payer aussi la facture {INTERNET}")).to_be_visible()
    assert PaymentSession.objects.get().deferred_refs == [INTERNET]

    page.get_by_role("button", name=f"Payer aussi la facture {INTERNET}").click()
    expect(total(page)).to_have_text("285.00 DH")
    expect(page.get_by_role("button", name=re.compile("Reporter la facture"))).to_have_count(2)
    assert PaymentSession.objects.get().deferred_refs == []
    context.close()


def test_defer_by_the_trash_icon_with_javascript_keeps_what_was_typed(page, shop_page):
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    shop_page(page)
    page.get_by_label("Numéro de carte").fill("4111 1111 1111 1111")
    page.get_by_role("button", name=f"Reporter la facture {FIXE}").click()
    expect(total(page)).to_have_text("99.00 DH")
    expect(page.locator("#pay-total")).to_have_text("99.00 DH")
    expect(page.locator("#card-form input[name=selection]")).to_have_value(INTERNET)
    # no reload: the card number typed is still there
    expect(page.get_by_label("Numéro de carte")).to_have_value("4111 1111 1111 1111")
    assert PaymentSession.objects.get().deferred_refs == [FIXE]
    page.get_by_role("button", name=f"Payer aussi la facture {FIXE}").click()
    expect(total(page)).to_have_text("285.00 DH")
    expect(page.locator("#card-form input[name=selection]")).to_have_value(f"{FIXE},{INTERNET}")
    assert PaymentSession.objects.get().deferred_refs == []
    assert problems == []  # nothing blocked by the Content-Security-Policy, no script error


def test_card_errors_next_to_their_fields_without_echo(browser, browser_context_args, shop_page):
    context = browser.new_context(**browser_context_args, java_script_enabled=False)
    page = context.new_page()
    shop_page(page)
    page.get_by_role("button", name=f"Reporter la facture {INTERNET}").click()
    page.get_by_label("Type de carte").select_option(label="MasterCard")
    page.get_by_label("Numéro de carte").fill("4111 1111 1111 1112")
    page.get_by_label("Mois").select_option(label="12")
    page.get_by_label("Année").select_option(index=2)
    page.get_by_label("Code de vérification (CVV)").fill("98")
    page.get_by_role("button", name="Valider pour payer").click()

    expect(page.locator("#id_card_number_error .errorlist")).to_have_text(
        "Erreur : Ce numéro de carte n'est pas valide : vérifiez-le.")
    expect(page.locator("#card_number-hint")).to_have_text("Numéro saisi : 411111******1112")
    expect(page.locator("#id_cvv_error")).to_have_text("Erreur : Le code de vérification doit comporter 3 chiffres.")
    expect(page.locator("#id_terms_error")).to_have_text(
        "Erreur : Vous devez accepter les conditions générales d'utilisation.")
    expect(page.get_by_role("alert").filter(has=page.get_by_role("link"))).to_contain_text(
        "Le paiement n'a pas été envoyé : corrigez les 3 champs signalés ci-dessous.")
    # neither the number nor the CVV come back; the rest does, and the deferred invoice stays deferred
    expect(page.get_by_label("Numéro de carte")).to_have_value("")
    expect(page.get_by_label("Code de vérification (CVV)")).to_have_value("")
    expect(page.get_by_label("Type de carte")).to_have_value("MASTERCARD")
    expect(page.get_by_label("Mois")).to_have_value("12")
    expect(total(page)).to_have_text("186.00 DH")
    content = page.content()
    assert "4111111111111112" not in content and "4111 1111 1111 1112" not in content
    assert Attempt.objects.count() == 0
    assert PaymentSession.objects.get().state == SessionState.OPEN
    context.close()
