"""The mobile journey with the keyboard only, on a phone's width (320 px): from the biller's home page to the
receipt through the payment page and the bank's 3-D Secure page, with nothing but Tab, Shift+Tab, Enter, Space and
typing. Each step moves the focus with Tab to the element a person would reach next, checks that the focus can be
seen, and acts with a key. The codes arrive by SMS on the customer's phone (outside this browser)."""

import datetime as dt
import re

import pytest
from playwright.sync_api import Locator, Page, expect

from tasdid.bank import sandbox
from tasdid.bank.demo import seed_demo as seed_bank
from tasdid.billing.models import Invoice, Payment
from tasdid.billing.services.fidelio import fidelio_code_request
from tasdid.gateway.demo import seed_demo as seed_gateway
from tests import factories
from tests.browser.a11y import PHONE
from tests.support.sms import codes_received

MOBILE = "+212661000001"
REF_MAY = "0000222997052017"
CARD = sandbox.card_by_outcome("00", "challenge")
EMAIL = "client@example.ma"
TABS = 60  # the most Tab presses allowed to reach the next element of a page (a bound, not a timing)


@pytest.fixture
def journey(parties, smtp_sink, task_worker):
    seed_bank()
    seed_gateway()
    owner = factories.customer(name="Mme Samira Alaoui")
    mobile = factories.mobile_line(number=MOBILE, owner=owner)
    may = factories.bill(owner=owner, month=dt.date(2017, 5, 1), due_date=dt.date(2017, 6, 19))
    factories.invoice(line=mobile, amount_ht="100.00", reference=REF_MAY, on_bill=may)
    return parties


def focused(target: Locator) -> bool:
    return target.evaluate("element => element === document.activeElement")


def focus_is_visible(page: Page) -> bool:
    """The focused element draws an outline or a ring (WCAG 2.4.7)."""
    return page.evaluate("""() => {
        const style = getComputedStyle(document.activeElement);
        return (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2) || style.boxShadow !== "none";
    }""")


def tab_to(page: Page, target: Locator, *, backwards: bool = False) -> int:
    """Press Tab (Shift+Tab ``backwards``) until ``target`` has the focus; the number of presses."""
    expect(target).to_be_visible()
    for presses in range(TABS):
        if focused(target):
            assert focus_is_visible(page), f"the focus on {target} cannot be seen"
            return presses
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    raise AssertionError(f"{target} is not reached with the keyboard in {TABS} presses on {page.url}")


def type_into(page: Page, target: Locator, text: str) -> None:
    tab_to(page, target)
    page.keyboard.type(text)


def test_the_mobile_journey_with_the_keyboard_only(journey, page: Page):
    biller, gateway, bank = journey["biller"], journey["gateway"], journey["bank"]
    page.set_viewport_size(PHONE)
    fidelio_code_request(number=MOBILE)  # « code » sent to 1111 from the customer's phone
    fidelio = codes_received(MOBILE)[0]

    page.goto(biller + "/")
    # The skip link comes first, then the categories.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Aller au contenu principal")).to_be_focused()
    tab_to(page, page.get_by_role("link", name=re.compile("^Mobile")))
    page.keyboard.press("Enter")
    expect(page).to_have_url(biller + "/mobile")

    # The form of the guide, first sent with a mistake: the focus goes to the list of errors, whose link leads
    # back to the field.
    type_into(page, page.get_by_label("Numéro de téléphone mobile"), "06 61 00 00 01")
    type_into(page, page.get_by_label("Code fidelio"), fidelio)
    type_into(page, page.get_by_label("Adresse email de notification", exact=True), EMAIL)
    type_into(page, page.get_by_label("Confirmation de l'adresse email"), "autre@example.ma")
    tab_to(page, page.get_by_role("button", name="Consultez et payer en ligne"))
    page.keyboard.press("Enter")
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link")).to_have_count(2)  # the confirmation, the terms
    tab_to(page, summary.get_by_role("link").first)
    page.keyboard.press("Enter")
    confirmation = page.get_by_label("Confirmation de l'adresse email")
    expect(confirmation).to_be_focused()
    expect(confirmation).to_have_value("autre@example.ma")
    # Out and back in with the keyboard selects what the box holds: typing replaces it.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")
    expect(confirmation).to_be_focused()
    page.keyboard.type(EMAIL)
    expect(confirmation).to_have_value(EMAIL)
    # The refused form keeps nothing of the code: back to it with Shift+Tab, typed again.
    code = page.get_by_label("Code fidelio")
    expect(code).to_have_value("")
    tab_to(page, code, backwards=True)
    page.keyboard.type(fidelio)
    terms = page.get_by_role("checkbox", name="J'accepte les conditions générales d'utilisation")
    tab_to(page, terms)
    page.keyboard.press("Space")
    expect(terms).to_be_checked()
    tab_to(page, page.get_by_role("button", name="Consultez et payer en ligne"))
    page.keyboard.press("Enter")

    # The consult page: the table's region, then « Payer en ligne ».
    expect(page).to_have_url(biller + "/factures")
    expect(page.get_by_role("row", name=re.compile(REF_MAY))).to_contain_text("120.00")
    tab_to(page, page.get_by_role("region", name="Factures impayées de cette ligne"))
    tab_to(page, page.get_by_role("button", name="Payer en ligne"))
    page.keyboard.press("Enter")

    # The gateway's payment page (its own form; the browser is carried there by the biller's page).
    page.wait_for_url(re.compile(re.escape(gateway) + r"/paiement/[\w-]+$"))
    expect(page.locator("#invoices-total")).to_have_text("120.00 DH")
    tab_to(page, page.get_by_label("Type de carte"))
    page.keyboard.type({"MASTERCARD": "Master", "VISA": "Visa", "CMI": "CMI"}[CARD.brand])
    type_into(page, page.get_by_label("Numéro de carte"), CARD.number)
    month, year = CARD.expiry.split("/")
    tab_to(page, page.get_by_label("Mois"))
    page.keyboard.type(month)
    tab_to(page, page.get_by_label("Année"))
    page.keyboard.type(f"20{year}")
    expect(page.get_by_label("Mois")).to_have_value(re.compile(rf"^0?{int(month)}$"))
    expect(page.get_by_label("Année")).to_have_value(f"20{year}")
    type_into(page, page.get_by_label("Code de vérification (CVV)"), CARD.cvv)
    gateway_terms = page.get_by_label("J'accepte les conditions générales d'utilisation")
    tab_to(page, gateway_terms)
    page.keyboard.press("Space")
    expect(gateway_terms).to_be_checked()
    tab_to(page, page.get_by_role("button", name="Valider pour payer"))
    page.keyboard.press("Enter")

    # The bank's 3-D Secure page: the code sent to the card's phone.
    page.wait_for_url(bank + "/acs/challenge")
    otp = codes_received(CARD.phone)[0]
    type_into(page, page.get_by_label("Code reçu par SMS"), otp)
    tab_to(page, page.get_by_role("button", name="Valider", exact=True))
    page.keyboard.press("Enter")

    # The receipt, its actions reachable too.
    page.wait_for_url(re.compile(re.escape(biller) + r"/recu/R\d{4}-\d{8}/[\w-]+$"))
    expect(page.get_by_role("heading", name="Reçu de paiement")).to_be_visible()
    tab_to(page, page.get_by_role("button", name="Imprimer"))
    tab_to(page, page.get_by_role("link", name="Télécharger (PDF)"))
    payment = Payment.objects.get()
    assert (payment.amount, payment.email) == (Invoice.objects.get(reference=REF_MAY).amount_ttc, EMAIL)
    assert Invoice.objects.get(reference=REF_MAY).status == "paid"

