"""The guide's journeys in Chromium, across the real parties (biller, gateway, bank), by the labels a person
reads: the code fidelio from the sandbox phone, the consult page, the payment page with an invoice deferred, the
bank's 3-D Secure page with the code from the sandbox phone, the receipt, and the email's link opened later in a
browser that has never been there; a declined card; the fixe and internet ways in; « Annuler » on the payment
page."""

import datetime as dt
import re

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tasdid.bank import sandbox
from tasdid.bank.demo import seed_demo as seed_bank
from tasdid.bank.models import Authorization
from tasdid.billing.models import Invoice, Payment, PaymentOrder
from tasdid.core.cards import mask
from tasdid.gateway.demo import seed_demo as seed_gateway
from tasdid.gateway.models import PaymentSession
from tasdid.messaging.models import Email, MailboxMessage
from tests import factories
from tests.flows.journey import SECRETS
from tests.support.pci import card_data_findings
from tests.support.sms import code_in

from .steps import EMAIL, fill_email_and_terms, open_category, submit

MOBILE, MOBILE_TYPED = "+212661000001", "06 61 00 00 01"
REF_MOBILE_MAY, REF_MOBILE_JUNE = "0000222997052017", "0000222997062017"
REF_FIXED, REF_INTERNET = "0000111995072017", "0000111996072017"
CHALLENGE = sandbox.card_by_outcome("00", "challenge")
VISA = sandbox.card_by_outcome("00", "none")
FRICTIONLESS = sandbox.card_by_outcome("00", "frictionless")
NO_FUNDS = sandbox.card_by_outcome("51")
TRIES = 300  # reloads of a sandbox page while the task worker delivers (bounded: never a timing assertion)


@pytest.fixture
def journey(parties, smtp_sink, task_worker):
    """Every party as the demo runs them, and the guide's customer: a mobile line with two unpaid invoices (May
    120.00, June 180.00), and the guide's sample bill of June 2017 (fixe 186.00, internet 99.00)."""
    seed_bank()
    seed_gateway()
    owner = factories.customer(name="Mme Samira Alaoui")
    mobile = factories.mobile_line(number=MOBILE, owner=owner)
    fixed = factories.fixed_line(number="+212522000001", payment_code="4821", owner=owner)
    internet = factories.internet_line(identifier="12345678", owner=owner)
    may = factories.bill(owner=owner, month=dt.date(2017, 5, 1), due_date=dt.date(2017, 6, 19))
    june = factories.bill(owner=owner, month=dt.date(2017, 6, 1), due_date=dt.date(2017, 7, 19))
    factories.invoice(line=mobile, amount_ht="100.00", reference=REF_MOBILE_MAY, on_bill=may)
    factories.invoice(line=mobile, amount_ht="150.00", reference=REF_MOBILE_JUNE, on_bill=june)
    factories.invoice(line=fixed, amount_ht="155.00", reference=REF_FIXED, on_bill=june)
    factories.invoice(line=internet, amount_ht="82.50", reference=REF_INTERNET, on_bill=june)
    return parties


# --- steps, as a person takes them ------------------------------------------------------------------------


def newest_sms(phone: Page, biller: str, number: str, *, sender: str, after: int = 0) -> str:
    """Read the newest SMS from ``sender`` on the sandbox phone, reloading until it is there; its text."""
    phone.goto(f"{biller}/sandbox/phone?number={number}")
    inbox = phone.get_by_role("list", name="SMS reçus, du plus récent au plus ancien")
    for _ in range(TRIES):
        if inbox.count() and inbox.get_by_role("listitem").count() > after:
            newest = inbox.get_by_role("listitem").first
            expect(newest).to_contain_text(f"De {sender}")
            return newest.inner_text()
        phone.wait_for_timeout(100)
        phone.get_by_role("link", name="Actualiser").click()
    raise AssertionError(f"no SMS from {sender} on {number}")


def code_fidelio(page: Page, biller: str) -> str:
    """Send « code » to 1111 from the sandbox phone and read the answer."""
    page.goto(biller + "/sandbox/phone")
    page.get_by_label("Numéro de l'expéditeur").fill(MOBILE_TYPED)
    expect(page.get_by_label("Numéro court du destinataire")).to_have_value("1111")
    expect(page.get_by_label("Message")).to_have_value("code")
    page.get_by_role("button", name="Envoyer le SMS").click()
    text = newest_sms(page, biller, "0661000001", sender="1111")
    assert "Votre code fidelio est" in text
    return code_in(text)


def pay_online(page: Page, gateway: str, total: str) -> None:
    """On the consult page: « Payer en ligne », then the gateway's page."""
    expect(page.get_by_role("heading", name="Vos factures à payer")).to_be_visible()
    page.get_by_role("button", name="Payer en ligne").click()
    page.wait_for_url(re.compile(re.escape(gateway) + r"/paiement/[\w-]+$"))
    expect(page.get_by_role("heading", name="Paiement sécurisé")).to_be_visible()
    expect(page.locator("#merchant-name")).to_have_text("Tasdid Télécom")
    expect(page.locator("#invoices-total")).to_have_text(total)


def type_card(page: Page, card: sandbox.SandboxCard) -> None:
    month, year = card.expiry.split("/")
    page.get_by_label("Type de carte").select_option(label={"MASTERCARD": "MasterCard", "VISA": "Visa",
                                                             "CMI": "CMI"}[card.brand])
    page.get_by_label("Numéro de carte").fill(card.number)
    page.get_by_label("Mois").select_option(label=month)
    page.get_by_label("Année").select_option(f"20{year}")
    page.get_by_label("Code de vérification (CVV)").fill(card.cvv)
    page.get_by_label("J'accepte les conditions générales d'utilisation").check()
    page.get_by_role("button", name="Valider pour payer").click()


def expect_receipt(page: Page, biller: str, *, paid: list[tuple[str, str, str]], total: str,
                   card: sandbox.SandboxCard) -> Payment:
    """The receipt as the guide describes it, checked against what the biller recorded."""
    page.wait_for_url(re.compile(re.escape(biller) + r"/recu/R\d{4}-\d{8}/[\w-]+$"))
    expect(page.get_by_role("heading", name="Reçu de paiement")).to_be_visible()
    payment = Payment.objects.get(receipt_number=page.url.split("/")[-2])
    facts = {"N° de reçu": payment.receipt_number, "Email du payeur": EMAIL, "Carte": mask(card.number),
             "Type de carte": {"MASTERCARD": "MasterCard", "VISA": "Visa", "CMI": "CMI"}[card.brand],
             "N° d'autorisation": payment.auth_code, "N° de transaction": payment.trans_id,
             "Marchand": "Tasdid Télécom"}
    for label, value in facts.items():
        expect(page.get_by_role("row", name=f"{label} {value}", exact=True)).to_be_visible()
    invoices = page.locator("table.receipt-invoices tbody tr")
    expect(invoices).to_have_count(len(paid))
    for reference, month, amount in paid:
        expect(page.get_by_role("row", name=re.compile(reference))).to_contain_text(f"{month} {amount}")
    # The amount and its unit are kept together by a no-break space (tasdid.core.l10n.amount).
    total_pattern = r"\s".join(re.escape(part) for part in total.split(" "))
    total_row = page.get_by_role("row", name=re.compile("Total payé"))
    expect(total_row).to_have_text(re.compile(rf"Total payé\s*{total_pattern}"))
    assert payment.email == EMAIL and f"{payment.amount} DH" == total
    return payment


def receipt_link_from_the_mailbox(page: Page, biller: str, receipt_number: str) -> str:
    """The sandbox mailbox: the receipt email arrives (the task worker sends it to the SMTP sink)."""
    subject = f"Votre reçu de paiement {receipt_number}"
    page.goto(biller + "/sandbox/mail")
    for _ in range(TRIES):
        if page.get_by_role("link", name=subject).count():
            break
        page.wait_for_timeout(100)
        page.reload()
    page.get_by_role("link", name=subject).click()
    expect(page.get_by_role("heading", name=subject)).to_be_visible()
    # The text part: the receipt's address, once.
    link = page.get_by_role("link", name=re.compile(r"[/]recu[/]R\d{4}-\d{8}[/]"))  # [/]: Playwright's selector
    expect(link).to_have_count(1)
    href = link.get_attribute("href")
    # The receipt's PDF, attached (a download, named after the receipt).
    piece = page.get_by_role("link", name=f"recu-{receipt_number}.pdf", exact=True)
    expect(piece).to_have_count(1)
    pdf = page.request.get(biller + piece.get_attribute("href"))
    assert pdf.headers["content-type"] == "application/pdf" and pdf.body().startswith(b"%PDF-")
    # The HTML part, as a mail reader shows it: one link, to the same receipt.
    page.goto(biller + page.get_by_role("link", name="Ouvrir la version HTML (sans scripts)").get_attribute("href"))
    html_link = page.get_by_role("link", name="Consulter et imprimer mon reçu")
    expect(html_link).to_have_count(1)
    assert page.locator("a[href]").count() == 1 and html_link.get_attribute("href") == href
    return href


# --- the journeys ------------------------------------------------------------------------------------------


def test_the_whole_mobile_journey_of_the_guide(journey, page: Page, browser: Browser, browser_context_args):
    biller, gateway, bank = journey["biller"], journey["gateway"], journey["bank"]

    # Mobile: the code fidelio by SMS, then the form of the guide.
    code = code_fidelio(page, biller)
    open_category(page, biller, "Mobile")
    page.get_by_label("Numéro de téléphone mobile").fill(MOBILE_TYPED)
    page.get_by_label("Code fidelio").fill(code)
    fill_email_and_terms(page, confirmation=EMAIL)
    submit(page)
    expect(page.get_by_role("row", name=re.compile(REF_MOBILE_MAY))).to_contain_text("120.00")
    expect(page.get_by_role("row", name=re.compile(REF_MOBILE_JUNE))).to_contain_text("180.00")
    expect(page.get_by_role("row", name=re.compile("Total à payer"))).to_contain_text("300.00 DH")

    # The payment page: defer June by its trash icon, then the challenge card.
    pay_online(page, gateway, "300.00 DH")
    page.get_by_role("button", name=f"Reporter la facture {REF_MOBILE_JUNE}").click()
    expect(page.locator("#invoices-total")).to_have_text("120.00 DH")
    expect(page.locator("#pay-total")).to_have_text("120.00 DH")
    type_card(page, CHALLENGE)

    # The bank's page: its logo and name; the code arrives on the card's phone, read in another tab.
    page.wait_for_url(bank + "/acs/challenge")
    expect(page.get_by_role("heading", name="Authentification du paiement")).to_be_visible()
    expect(page.get_by_role("img", name="Logo Crédit du Sahel")).to_be_visible()
    expect(page.locator(".acs-bank-name")).to_have_text("Crédit du Sahel")
    expect(page.locator("dl.acs-facts")).to_contain_text("Tasdid Télécom")
    expect(page.locator(".acs-amount")).to_have_text("120.00 DH")
    phone = page.context.new_page()
    otp = code_in(newest_sms(phone, biller, "0662000002", sender="CreditSahel"))
    phone.close()
    page.get_by_label("Code reçu par SMS").fill(otp)
    page.get_by_role("button", name="Valider").click()

    # Back at the biller: the receipt of the one invoice paid, not the deferred one.
    payment = expect_receipt(page, biller, paid=[(REF_MOBILE_MAY, "Mai 2017", "120.00")], total="120.00 DH",
                             card=CHALLENGE)
    receipt_url, receipt_text = page.url, page.locator("article.receipt").inner_text()
    assert REF_MOBILE_JUNE not in page.content()
    assert list(Invoice.objects.filter(status="unpaid").values_list("reference", flat=True).order_by(
        "reference")) == [REF_FIXED, REF_INTERNET, REF_MOBILE_JUNE]

    # The email, and its link opened later in a browser that has never been here (no cookies).
    link = receipt_link_from_the_mailbox(page, biller, payment.receipt_number)
    assert link == receipt_url
    fresh: BrowserContext = browser.new_context(**browser_context_args)
    try:
        later = fresh.new_page()
        later.goto(link)
        expect(later.get_by_role("heading", name="Reçu de paiement")).to_be_visible()
        assert later.locator("article.receipt").inner_text() == receipt_text
        assert fresh.cookies() == []
    finally:
        fresh.close()


def test_a_declined_card_says_why_and_lets_the_customer_try_again(journey, page: Page):
    biller, gateway = journey["biller"], journey["gateway"]
    open_category(page, biller, "Internet")
    page.get_by_label("Identifiant de paiement").fill("12 345 678")
    fill_email_and_terms(page)
    submit(page)
    pay_online(page, gateway, "99.00 DH")
    type_card(page, NO_FUNDS)

    page.wait_for_url(biller + "/paiement/echec")
    expect(page.get_by_role("heading", name="Votre paiement n'a pas abouti")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Provision insuffisante (code 51)")
    expect(page.get_by_text("Aucun montant n'a été débité et vos factures restent à payer.")).to_be_visible()
    assert Invoice.objects.get(reference=REF_INTERNET).status == "unpaid"
    assert (Payment.objects.count(), PaymentOrder.objects.get().state) == (0, "failed")
    assert (Email.objects.count(), MailboxMessage.objects.count()) == (0, 0)

    # « Réessayer »: back to the invoices, and on to pay again (a new order), this time with a good card.
    page.get_by_role("link", name="Réessayer").click()
    expect(page).to_have_url(biller + "/factures")
    expect(page.get_by_role("row", name=re.compile(REF_INTERNET))).to_contain_text("99.00")
    pay_online(page, gateway, "99.00 DH")
    type_card(page, VISA)
    expect_receipt(page, biller, paid=[(REF_INTERNET, "Juin 2017", "99.00")], total="99.00 DH", card=VISA)
    assert list(PaymentOrder.objects.order_by("pk").values_list("state", flat=True)) == ["failed", "paid"]


def test_fixe_to_the_receipt_with_a_card_without_3d_secure(journey, page: Page):
    biller, gateway = journey["biller"], journey["gateway"]
    open_category(page, biller, "Fixe")
    page.get_by_label("Numéro de téléphone fixe").fill("05 22 00 00 01")
    page.get_by_label("Code de paiement fixe").fill("4821")
    fill_email_and_terms(page)
    submit(page)
    pay_online(page, gateway, "186.00 DH")
    type_card(page, VISA)
    expect_receipt(page, biller, paid=[(REF_FIXED, "Juin 2017", "186.00")], total="186.00 DH", card=VISA)
    assert Invoice.objects.get(reference=REF_FIXED).status == "paid"


def test_internet_to_the_receipt_with_a_frictionless_card(journey, page: Page):
    biller, gateway = journey["biller"], journey["gateway"]
    open_category(page, biller, "Internet")
    page.get_by_label("Identifiant de paiement").fill("12 345 678")
    fill_email_and_terms(page)
    submit(page)
    pay_online(page, gateway, "99.00 DH")
    type_card(page, FRICTIONLESS)
    expect_receipt(page, biller, paid=[(REF_INTERNET, "Juin 2017", "99.00")], total="99.00 DH", card=FRICTIONLESS)
    assert Invoice.objects.get(reference=REF_INTERNET).status == "paid"


def test_annuler_on_the_payment_page_leads_back_to_the_biller_and_pays_nothing(journey, page: Page):
    biller, gateway = journey["biller"], journey["gateway"]
    open_category(page, biller, "Internet")
    page.get_by_label("Identifiant de paiement").fill("12 345 678")
    fill_email_and_terms(page)
    submit(page)
    pay_online(page, gateway, "99.00 DH")
    page.get_by_role("button", name="Annuler").click()

    page.wait_for_url(biller + "/paiement/echec")
    expect(page.get_by_role("heading", name="Votre paiement n'a pas abouti")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Vous avez annulé le paiement. Vos factures restent à payer.")
    order = PaymentOrder.objects.get()
    assert (order.state, order.failure_code, order.failure_message) == ("failed", "99", "Paiement annulé par le client")
    assert Invoice.objects.get(reference=REF_INTERNET).status == "unpaid"
    assert (Payment.objects.count(), Authorization.objects.count()) == (0, 0)
    assert PaymentSession.objects.get().state == "cancelled"

    # « Réessayer » pays the same invoice with a new order.
    page.get_by_role("link", name="Réessayer").click()
    pay_online(page, gateway, "99.00 DH")
    type_card(page, VISA)
    expect_receipt(page, biller, paid=[(REF_INTERNET, "Juin 2017", "99.00")], total="99.00 DH", card=VISA)


def test_after_the_journeys_no_card_number_nor_cvv_anywhere(journey, page: Page):
    """Last of this file: a card typed wrong, then right, through to the receipt; then the database (every
    table, decoded sessions, task payloads, the SQLite files with what earlier tests left in freed pages) and the
    logs of the whole run hold no card number and no CVV; the pages never showed either back."""
    biller, gateway = journey["biller"], journey["gateway"]
    open_category(page, biller, "Fixe")
    page.get_by_label("Numéro de téléphone fixe").fill("0522000001")
    page.get_by_label("Code de paiement fixe").fill("4821")
    fill_email_and_terms(page)
    submit(page)
    pay_online(page, gateway, "186.00 DH")
    # Typed as a MasterCard: refused next to the number, shown back masked only, the CVV not at all.
    page.get_by_label("Type de carte").select_option(label="MasterCard")
    page.get_by_label("Numéro de carte").fill(VISA.number)
    page.get_by_label("Mois").select_option(label=VISA.expiry[:2])
    page.get_by_label("Année").select_option(f"20{VISA.expiry[-2:]}")
    page.get_by_label("Code de vérification (CVV)").fill(VISA.cvv)
    page.get_by_label("J'accepte les conditions générales d'utilisation").check()
    page.get_by_role("button", name="Valider pour payer").click()
    expect(page.locator("#id_card_number_error")).to_contain_text(
        "Ce numéro ne correspond pas au type de carte choisi (MasterCard).")
    expect(page.get_by_label("Numéro de carte")).to_have_value("")
    expect(page.get_by_label("Code de vérification (CVV)")).to_have_value("")
    html = page.content()
    assert VISA.number not in html and f'value="{VISA.cvv}"' not in html
    assert f"Numéro saisi : {mask(VISA.number)}" in page.locator("body").inner_text()
    type_card(page, VISA)
    expect_receipt(page, biller, paid=[(REF_FIXED, "Juin 2017", "186.00")], total="186.00 DH", card=VISA)

    assert card_data_findings(extra_secrets=SECRETS) == []
