"""The gateway's hosted page, the bank's 3-D Secure page and the gateway's refusal page in French, Arabic and
English in Chromium: axe (WCAG 2.2 AA) at desktop and phone widths on each page in each language, the language
coming from the merchant's request and travelling to the bank; then the guide's whole journey in Arabic and in
English across the biller, the gateway and the bank.

The biller's pages may not be translated yet: on them only ``<html lang dir>`` is asserted, and they are
driven by their fields' names rather than their labels."""

import datetime as dt
import html
import re

import pytest
from playwright.sync_api import Page, expect

from tasdid.bank import sandbox
from tasdid.bank.demo import seed_demo as seed_bank
from tasdid.bank.models import AcsTransaction
from tasdid.billing.models import Invoice, Payment
from tasdid.core.l10n import amount
from tasdid.gateway.demo import seed_demo as seed_gateway
from tasdid.gateway.models import PaymentSession
from tests import factories
from tests.browser.a11y import check_page
from tests.gateway.conftest import make_merchant, merchant_fields, signed
from tests.gateway.fakes import CounterpartyServer
from tests.support.sms import code_in, codes_received, last_sms_text

FIXE, INTERNET = "0000111995072017", "0000111996072017"
CHALLENGE = sandbox.card_by_outcome("00", "challenge")
LANGS = ["fr", "ar", "en"]
DIR = {"fr": "ltr", "ar": "rtl", "en": "ltr"}
WORDS = {
    "fr": {"title": "Paiement sécurisé", "defer": "Reporter la facture {}", "type": "Type de carte",
           "number": "Numéro de carte", "month": "Mois", "year": "Année", "cvv": "Code de vérification (CVV)",
           "terms": "J'accepte les conditions générales d'utilisation", "pay": "Valider pour payer",
           "summary": "Le paiement n'a pas été envoyé : corrigez les 3 champs signalés ci-dessous.",
           "acs": "Authentification du paiement", "otp": "Code reçu par SMS", "validate": "Valider",
           "wrong": "Code incorrect. Il vous reste 2 essais.", "refused": "Demande de paiement refusée",
           "restore": "Payer aussi la facture {}", "sms": "votre code de sécurité est"},
    "ar": {"title": "دفع آمن", "defer": "تأجيل الفاتورة {}", "type": "نوع البطاقة", "number": "رقم البطاقة",
           "month": "الشهر", "year": "السنة", "cvv": "رمز التحقق (CVV)", "terms": "أوافق على الشروط العامة للاستخدام",
           "pay": "تأكيد الدفع", "summary": "لم يُرسَل الدفع: يُرجى تصحيح الحقول الـ3 المشار إليها أدناه.",
           "acs": "مصادقة الدفع", "otp": "الرمز المستلم عبر الرسالة النصية", "validate": "تأكيد",
           "wrong": "رمز خاطئ. تبقّت لك محاولتان.", "refused": "طلب الدفع مرفوض",
           "restore": "دفع الفاتورة {} أيضًا", "sms": "رمز الأمان الخاص بك هو"},
    "en": {"title": "Secure payment", "defer": "Defer invoice {}", "type": "Card type", "number": "Card number",
           "month": "Month", "year": "Year", "cvv": "Security code (CVV)",
           "terms": "I accept the terms of use", "pay": "Confirm and pay",
           "summary": "The payment was not sent: correct the 3 fields marked below.",
           "acs": "Payment authentication", "otp": "Code received by SMS", "validate": "Confirm",
           "wrong": "Wrong code. You have 2 tries left.", "refused": "Payment request refused",
           "restore": "Also pay invoice {}", "sms": "your security code is"},
}


def expect_language(page: Page, lang: str) -> None:
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("html")).to_have_attribute("dir", DIR[lang])


@pytest.fixture
def counterparty():
    """The merchant: a stand-in on 127.0.0.1 that records the callback and the browser's return."""
    server = CounterpartyServer()
    server.thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def shop(parties, task_worker, counterparty, settings, page: Page):
    """A shop page that posts a signed merchant request to the gateway in the language asked."""
    settings.GATEWAY_3DS_DIRECTORY_URL = parties["switch"] + "/3ds/areq"  # the directory routes to the bank's ACS
    seed_bank()
    make_merchant(hosts=[counterparty.host])

    def post(lang: str, *, tamper: bool = False) -> Page:
        fields = signed(merchant_fields(base=counterparty.url, lang=lang))
        if tamper:
            fields["hash"] = "A" + fields["hash"][1:]
        inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in fields.items())
        start = counterparty.url + f"/test-only/boutique-{lang}"
        page.route(start, lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8", body=(
            f'<!doctype html><html lang="fr"><title>Boutique</title><form method="post" '
            f'action="{parties["gateway"]}/fim/est3Dgate">{inputs}<button type="submit">Payer</button></form>')))
        page.goto(start)
        page.get_by_role("button", name="Payer").click()
        return page

    return post


def type_card(page: Page, words: dict, card: sandbox.SandboxCard) -> None:
    month, year = card.expiry.split("/")
    page.get_by_label(words["type"]).select_option(card.brand)
    page.get_by_label(words["number"], exact=True).fill(card.number)
    page.get_by_label(words["month"], exact=True).select_option(month.lstrip("0"))
    page.get_by_label(words["year"], exact=True).select_option(f"20{year}")
    page.get_by_label(words["cvv"]).fill(card.cvv)
    page.get_by_label(words["terms"]).check()
    page.get_by_role("button", name=words["pay"]).click()


@pytest.mark.parametrize("lang", LANGS)
def test_the_hosted_page_with_invoices_after_a_defer_and_with_card_errors(shop, page: Page, lang):
    words = WORDS[lang]
    shop(lang)
    expect(page.get_by_role("heading", name=words["title"], level=1)).to_be_visible()
    expect_language(page, lang)
    check_page(page, f"gateway-pay-{lang}")

    page.get_by_role("button", name=words["defer"].format(INTERNET)).click()
    expect(page.get_by_role("button", name=words["restore"].format(INTERNET))).to_be_visible()
    expect(page.locator("#invoices-total")).to_have_text(amount("186.00", lang))
    expect(page.locator("#invoices-title")).to_be_focused()  # the page's script says where the change is
    check_page(page, f"gateway-deferred-{lang}")

    page.get_by_label(words["type"]).select_option("VISA")
    page.get_by_label(words["number"], exact=True).fill("4111 1111 1111 1112")
    page.get_by_label(words["month"], exact=True).select_option("12")
    page.get_by_label(words["year"], exact=True).select_option(index=2)
    page.get_by_label(words["cvv"]).fill("98")
    page.get_by_role("button", name=words["pay"]).click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("heading")).to_have_text(words["summary"])
    # each of the summary's links leads to its field
    summary.get_by_role("link").nth(1).click()
    expect(page.get_by_label(words["cvv"])).to_be_focused()
    expect(page.get_by_label(words["cvv"])).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label(words["number"], exact=True)).to_have_attribute(
        "aria-describedby", "id_card_number_helptext id_card_number_error")
    expect_language(page, lang)
    check_page(page, f"gateway-card-errors-{lang}")
    assert PaymentSession.objects.get().lang == lang


@pytest.mark.parametrize("lang", LANGS)
def test_the_bank_challenge_with_a_wrong_code(shop, page: Page, lang):
    words = WORDS[lang]
    shop(lang)
    type_card(page, words, CHALLENGE)
    expect(page.get_by_role("heading", name=words["acs"])).to_be_visible()
    expect_language(page, lang)
    (code,) = codes_received(CHALLENGE.phone)
    assert words["sms"] in last_sms_text(CHALLENGE.phone)
    assert AcsTransaction.objects.get().language == lang
    otp = page.get_by_label(words["otp"])
    otp.fill("000000" if code != "000000" else "111111")
    page.get_by_role("button", name=words["validate"], exact=True).click()
    expect(page.get_by_role("alert")).to_have_text(re.compile(re.escape(words["wrong"])))
    expect(otp).to_be_focused()
    expect(otp).to_have_attribute("aria-invalid", "true")
    expect_language(page, lang)
    check_page(page, f"bank-challenge-wrong-code-{lang}")


@pytest.mark.parametrize("lang", LANGS)
def test_the_refusal_page(shop, page: Page, lang):
    shop(lang, tamper=True)
    expect(page.get_by_role("heading", name=WORDS[lang]["refused"])).to_be_visible()
    expect_language(page, lang)
    check_page(page, f"gateway-refused-{lang}")
    assert PaymentSession.objects.count() == 0


def test_the_switch_on_the_hosted_page_carries_the_language_to_the_bank(shop, page: Page):
    shop("fr")
    page.get_by_role("navigation", name="Langue").get_by_role("link", name="العربية").click()
    expect_language(page, "ar")
    expect(page.get_by_role("heading", name=WORDS["ar"]["title"], level=1)).to_be_visible()
    type_card(page, WORDS["ar"], CHALLENGE)
    expect(page.get_by_role("heading", name=WORDS["ar"]["acs"])).to_be_visible()
    expect_language(page, "ar")
    # and the bank's own switch, a form, to English
    page.get_by_role("navigation").get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name=WORDS["en"]["acs"])).to_be_visible()
    expect_language(page, "en")
    assert AcsTransaction.objects.get().language == "en"
    expect(page.get_by_label(WORDS["en"]["otp"])).to_be_visible()


# --- the guide's journey in Arabic and in English -----------------------------------------------------------

MOBILE = "+212661000001"
REF_MOBILE_MAY, REF_MOBILE_JUNE = "0000222997052017", "0000222997062017"
EMAIL = "client@example.ma"


@pytest.fixture
def journey(parties, smtp_sink, task_worker):
    seed_bank()
    seed_gateway()
    owner = factories.customer(name="Mme Samira Alaoui")
    mobile = factories.mobile_line(number=MOBILE, owner=owner)
    may = factories.bill(owner=owner, month=dt.date(2017, 5, 1), due_date=dt.date(2017, 6, 19))
    june = factories.bill(owner=owner, month=dt.date(2017, 6, 1), due_date=dt.date(2017, 7, 19))
    factories.invoice(line=mobile, amount_ht="100.00", reference=REF_MOBILE_MAY, on_bill=may)
    factories.invoice(line=mobile, amount_ht="150.00", reference=REF_MOBILE_JUNE, on_bill=june)
    return parties


@pytest.mark.parametrize("lang", ["ar", "en"])
def test_the_whole_mobile_journey_of_the_guide_in(journey, page: Page, lang):
    biller, gateway, bank = journey["biller"], journey["gateway"], journey["bank"]
    words = WORDS[lang]

    page.goto(f"{biller}/?lang={lang}")  # the biller's switch: its cookie keeps the language
    expect_language(page, lang)
    # The code fidelio: « code » to 1111 from the sandbox phone.
    page.goto(biller + "/sandbox/phone")
    expect_language(page, lang)
    page.locator("input[name=sender]").fill("06 61 00 00 01")
    page.locator("form:has(input[name=sender]) button[type=submit]").click()
    fidelio = codes_received(MOBILE)[0]

    page.goto(biller + "/mobile")
    expect_language(page, lang)
    page.locator("input[name=number]").fill("06 61 00 00 01")
    page.locator("input[name=fidelio_code]").fill(fidelio)
    page.locator("input[name=email]").fill(EMAIL)
    page.locator("input[name=email_confirmation]").fill(EMAIL)
    page.locator("input[name=terms]").check()
    page.locator("main form[method=post] button[type=submit]").click()

    page.wait_for_url(biller + "/factures")
    expect_language(page, lang)
    expect(page.get_by_role("row", name=re.compile(REF_MOBILE_JUNE))).to_contain_text("180.00")
    page.locator("form[action$='/paiement'] button[type=submit]").click()

    # The gateway's page, in the biller's language: defer June by its trash icon.
    page.wait_for_url(re.compile(re.escape(gateway) + r"/paiement/[\w-]+$"))
    expect_language(page, lang)
    expect(page.get_by_role("heading", name=words["title"], level=1)).to_be_visible()
    page.get_by_role("button", name=words["defer"].format(REF_MOBILE_JUNE)).click()
    expect(page.locator("#pay-total")).to_have_text(amount("120.00", lang))
    type_card(page, words, CHALLENGE)

    # The bank's page and its SMS, in the same language.
    page.wait_for_url(bank + "/acs/challenge")
    expect_language(page, lang)
    expect(page.get_by_role("heading", name=words["acs"])).to_be_visible()
    expect(page.locator(".acs-amount")).to_have_text(amount("120.00", lang))
    (otp,) = codes_received(CHALLENGE.phone)
    assert words["sms"] in last_sms_text(CHALLENGE.phone) and code_in(last_sms_text(CHALLENGE.phone)) == otp
    page.get_by_label(words["otp"]).fill(otp)
    page.get_by_role("button", name=words["validate"], exact=True).click()

    # Back at the biller: the receipt of May only.
    page.wait_for_url(re.compile(re.escape(biller) + r"/recu/R\d{4}-\d{8}/[\w-]+$"))
    expect_language(page, lang)
    payment = Payment.objects.get(receipt_number=page.url.split("/")[-2])
    assert (str(payment.amount), payment.email) == ("120.00", EMAIL)
    expect(page.locator("main")).to_contain_text(REF_MOBILE_MAY)
    assert REF_MOBILE_JUNE not in page.locator("main").inner_text()
    assert list(Invoice.objects.filter(status="unpaid").values_list("reference", flat=True)) == [REF_MOBILE_JUNE]
    assert PaymentSession.objects.get().lang == lang


@pytest.mark.parametrize("lang", LANGS)
def test_the_bank_home_page(parties, page: Page, lang):
    seed_bank()
    page.goto(f"{parties['bank']}/?lang={lang}")
    expect_language(page, lang)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        {"fr": "Banques émettrices (bac à sable)", "ar": "البنوك المُصدِرة (بيئة الاختبار)",
         "en": "Issuing banks (sandbox)"}[lang])
    check_page(page, f"bank-home-{lang}")
