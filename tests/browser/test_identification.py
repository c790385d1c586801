"""The three ways in, in Chromium, by the labels a person reads: mobile with a code fidelio obtained through
the sandbox phone, fixe with the payment code, internet with the identifier; and the refusals, each shown
next to its field, with nothing of the customer shown."""

import datetime as dt
import re

import pytest
from playwright.sync_api import Page, expect

from tasdid.billing.models import FidelioCode
from tests import factories
from tests.support.sms import code_in

from .steps import fill_email_and_terms, open_category, submit

REF_FIXED, REF_INTERNET, REF_MOBILE = "0000111995072017", "0000111996072017", "0000222997072017"
NAME = "Mme Samira Alaoui"


@pytest.fixture
def customer():
    """The guide's sample bill: a fixed invoice (186.00) and an internet invoice (99.00), and a mobile line."""
    owner = factories.customer(name=NAME)
    fixed = factories.fixed_line(number="+212522000001", payment_code="4821", owner=owner)
    internet = factories.internet_line(identifier="12345678", owner=owner)
    mobile = factories.mobile_line(number="+212661000001", owner=owner)
    june = factories.bill(owner=owner, month=dt.date(2017, 6, 1), due_date=dt.date(2017, 7, 19))
    factories.invoice(line=fixed, amount_ht="155.00", reference=REF_FIXED, on_bill=june)
    factories.invoice(line=internet, amount_ht="82.50", reference=REF_INTERNET, on_bill=june)
    factories.invoice(line=mobile, amount_ht="100.00", reference=REF_MOBILE, on_bill=june)
    return owner


def assert_nothing_shown(page: Page, biller: str) -> None:
    """A refused form shows no invoice and no customer, and this browser has reached no invoice page."""
    content = page.content()
    for secret in (REF_FIXED, REF_INTERNET, REF_MOBILE, "186.00", "99.00", "120.00", "Samira", "Alaoui"):
        assert secret not in content
    page.goto(biller + "/factures")
    expect(page).to_have_url(biller + "/")


def code_from_the_sandbox_phone(page: Page, biller: str, number: str) -> str:
    page.goto(biller + "/sandbox/phone")
    page.get_by_label("Numéro de l'expéditeur").fill(number)
    expect(page.get_by_label("Numéro court du destinataire")).to_have_value("1111")
    expect(page.get_by_label("Message")).to_have_value("code")
    page.get_by_role("button", name="Envoyer le SMS").click()
    inbox = page.get_by_role("list", name="SMS reçus, du plus récent au plus ancien")
    for _ in range(100):  # the task worker delivers the answer in the background: reload until it is there
        if inbox.count():
            break
        page.wait_for_timeout(100)
        page.get_by_role("link", name="Actualiser").click()
    newest = inbox.get_by_role("listitem").first
    expect(newest).to_contain_text("De 1111")
    expect(newest).to_contain_text("Votre code fidelio est")
    return code_in(newest.inner_text())


def test_mobile_with_a_code_fidelio_from_the_sandbox_phone(parties, page, task_worker, customer, browser):
    biller = parties["biller"]
    code = code_from_the_sandbox_phone(page, biller, "06 61 00 00 01")

    open_category(page, biller, "Mobile")
    expect(page.get_by_label("Code fidelio")).to_have_accessible_description(
        "Pour obtenir votre code fidelio, envoyez « code » par SMS au 1111.")
    page.get_by_label("Numéro de téléphone mobile").fill("06 61 00 00 01")
    page.get_by_label("Code fidelio").fill(code)
    fill_email_and_terms(page, confirmation="client@example.ma")
    submit(page)

    expect(page).to_have_url(biller + "/factures")
    expect(page.get_by_role("heading", name="Vos factures à payer")).to_be_visible()
    row = page.get_by_role("row", name=re.compile(REF_MOBILE))
    expect(row).to_contain_text("Juin 2017")
    expect(row).to_contain_text("19/07/2017")
    expect(row).to_contain_text("En retard")
    expect(row).to_contain_text("120.00")
    expect(page.get_by_role("row", name=re.compile("Total à payer"))).to_contain_text("120.00 DH")
    expect(page.get_by_role("button", name="Payer en ligne")).to_be_visible()
    content = page.content()
    for other in (REF_FIXED, REF_INTERNET, "Samira", "Alaoui", customer.client_number):
        assert other not in content
    assert FidelioCode.objects.get().used_at is not None

    # Another browser does not reach this session's invoices.
    stranger = browser.new_context().new_page()
    stranger.goto(biller + "/factures")
    expect(stranger).to_have_url(biller + "/")
    assert REF_MOBILE not in stranger.content()
    stranger.context.close()


def test_fixe_with_the_payment_code(parties, page, customer):
    biller = parties["biller"]
    open_category(page, biller, "Fixe")
    page.get_by_label("Numéro de téléphone fixe").fill("05 22 00 00 01")
    page.get_by_label("Code de paiement fixe").fill("4821")
    fill_email_and_terms(page)
    submit(page)
    expect(page).to_have_url(biller + "/factures")
    row = page.get_by_role("row", name=re.compile(REF_FIXED))
    expect(row).to_contain_text("186.00")
    expect(page.get_by_role("row", name=re.compile("Total à payer"))).to_contain_text("186.00 DH")
    assert REF_INTERNET not in page.content()


def test_internet_with_the_payment_identifier(parties, page, customer):
    biller = parties["biller"]
    open_category(page, biller, "Internet")
    page.get_by_label("Identifiant de paiement").fill("12 345 678")
    fill_email_and_terms(page)
    submit(page)
    expect(page).to_have_url(biller + "/factures")
    expect(page.get_by_text("Internet, identifiant de paiement : 12 345 678")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(REF_INTERNET))).to_contain_text("99.00")
    assert REF_FIXED not in page.content()


def test_a_line_with_nothing_to_pay_says_so(parties, page):
    factories.internet_line(identifier="87654321")
    biller = parties["biller"]
    open_category(page, biller, "Internet")
    page.get_by_label("Identifiant de paiement").fill("87654321")
    fill_email_and_terms(page)
    submit(page)
    expect(page.get_by_text("Aucune facture à payer pour cette ligne.")).to_be_visible()
    expect(page.get_by_role("button", name="Payer en ligne")).to_have_count(0)


def test_wrong_code_fidelio(parties, page, task_worker, customer):
    biller = parties["biller"]
    code = code_from_the_sandbox_phone(page, biller, "0661000001")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    open_category(page, biller, "Mobile")
    page.get_by_label("Numéro de téléphone mobile").fill("0661000001")
    page.get_by_label("Code fidelio").fill(wrong)
    fill_email_and_terms(page, confirmation="client@example.ma")
    submit(page)
    expect(page.get_by_label("Code fidelio")).to_have_accessible_description(re.compile(
        "Code fidelio incorrect ou expiré. Envoyez « code » au 1111 pour en recevoir un nouveau."))
    expect(page.get_by_label("Code fidelio")).to_have_value("")
    expect(page.get_by_label("Numéro de téléphone mobile")).to_have_value("0661000001")
    expect(page.get_by_label("Confirmation de l'adresse email")).to_have_value("client@example.ma")
    assert wrong not in page.content()
    assert_nothing_shown(page, biller)
    assert FidelioCode.objects.get().used_at is None  # the right code is still there to be used


def test_wrong_payment_code(parties, page, customer):
    biller = parties["biller"]
    open_category(page, biller, "Fixe")
    page.get_by_label("Numéro de téléphone fixe").fill("0522000001")
    page.get_by_label("Code de paiement fixe").fill("1234")
    fill_email_and_terms(page)
    submit(page)
    expect(page.get_by_label("Code de paiement fixe")).to_have_accessible_description(re.compile(
        "Code de paiement incorrect. Vérifiez le code imprimé sur votre facture."))
    expect(page.get_by_label("Code de paiement fixe")).to_have_value("")
    assert_nothing_shown(page, biller)


def test_mismatched_emails(parties, page, customer):
    biller = parties["biller"]
    open_category(page, biller, "Mobile")
    page.get_by_label("Numéro de téléphone mobile").fill("0661000001")
    page.get_by_label("Code fidelio").fill("123456")
    fill_email_and_terms(page, confirmation="client@exemple.ma")
    submit(page)
    expect(page.get_by_label("Confirmation de l'adresse email")).to_have_accessible_description(
        "Les deux adresses email ne correspondent pas.")
    expect(page.get_by_label("Adresse email de notification", exact=True)).to_have_value("client@example.ma")
    expect(page.get_by_label("Confirmation de l'adresse email")).to_have_value("client@exemple.ma")
    expect(page.get_by_label("Numéro de téléphone mobile")).to_have_value("0661000001")
    assert_nothing_shown(page, biller)


def test_unticked_terms(parties, page, customer):
    biller = parties["biller"]
    open_category(page, biller, "Fixe")
    page.get_by_label("Numéro de téléphone fixe").fill("0522000001")
    page.get_by_label("Code de paiement fixe").fill("4821")
    fill_email_and_terms(page, terms=False)
    submit(page)
    terms = page.get_by_label("J'accepte les conditions générales d'utilisation")
    expect(terms).to_have_accessible_description(
        "Vous devez accepter les conditions générales d'utilisation pour continuer.")
    expect(terms).not_to_be_checked()
    expect(page.get_by_label("Numéro de téléphone fixe")).to_have_value("0522000001")
    assert_nothing_shown(page, biller)


def test_unknown_number(parties, page, customer):
    biller = parties["biller"]
    open_category(page, biller, "Fixe")
    page.get_by_label("Numéro de téléphone fixe").fill("05 37 00 00 00")
    page.get_by_label("Code de paiement fixe").fill("4821")
    fill_email_and_terms(page)
    submit(page)
    expect(page.get_by_label("Numéro de téléphone fixe")).to_have_accessible_description(
        "Aucune ligne fixe ne correspond à ce numéro.")
    expect(page.get_by_label("Numéro de téléphone fixe")).to_have_value("05 37 00 00 00")
    assert_nothing_shown(page, biller)


def test_a_mobile_number_on_the_fixe_form(parties, page, customer):
    biller = parties["biller"]
    open_category(page, biller, "Fixe")
    page.get_by_label("Numéro de téléphone fixe").fill("0661000001")
    page.get_by_label("Code de paiement fixe").fill("4821")
    fill_email_and_terms(page)
    submit(page)
    expect(page.get_by_label("Numéro de téléphone fixe")).to_have_accessible_description(
        "Ce numéro n'est pas un numéro fixe : il commence par 05.")
    assert_nothing_shown(page, biller)
