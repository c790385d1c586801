"""Every page of the biller's portal in French, Arabic and English, in Chromium on an en-US browser: axe (WCAG 2.2
AA) at 1280 and 320 px, the page's language and direction, the layout mirrored in Arabic, month names and amounts
of the page's language, the errors of a form listed at its top with the focus on them, and the language switch
keeping the customer on the same page."""

import datetime as dt
import html
import re

import pytest
from playwright.sync_api import Page, expect

from tasdid.billing.services.fidelio import fidelio_code_request
from tests import factories
from tests.billing.payments_fixtures import gateway_message, new_order
from tests.browser.a11y import check_page
from tests.support.sms import code_in, last_sms_text

LANGS = ("fr", "ar", "en")
DIR = {"fr": "ltr", "ar": "rtl", "en": "ltr"}
TEXT = {
    "home": {"fr": "Paiement en ligne", "ar": "الأداء عبر الإنترنت", "en": "Online payment"},
    "mobile": {"fr": "Paiement des factures mobile", "ar": "أداء فواتير الهاتف المحمول", "en": "Pay mobile bills"},
    "fixed": {"fr": "Paiement des factures fixe", "ar": "أداء فواتير الهاتف الثابت", "en": "Pay landline bills"},
    "internet": {"fr": "Paiement des factures internet", "ar": "أداء فواتير الإنترنت", "en": "Pay internet bills"},
    "invoices": {"fr": "Vos factures à payer", "ar": "فواتيرك المستحقة الأداء", "en": "Your bills to pay"},
    "terms": {"fr": "Conditions générales d'utilisation", "ar": "الشروط العامة للاستخدام", "en": "Terms of use"},
    "failed": {"fr": "Votre paiement n'a pas abouti", "ar": "لم يكتمل أداؤك", "en": "Your payment was not completed"},
    "invalid": {"fr": "Réponse de paiement invalide", "ar": "جواب أداء غير صالح", "en": "Invalid payment response"},
    "not_confirmed": {"fr": "Votre paiement n'est pas encore confirmé", "ar": "لم يتأكد أداؤك بعد",
                      "en": "Your payment is not confirmed yet"},
    "404": {"fr": "Page introuvable", "ar": "الصفحة غير موجودة", "en": "Page not found"},
    "submit": {"fr": "Consultez et payer en ligne", "ar": "الاطلاع والأداء عبر الإنترنت", "en": "View and pay online"},
    "month": {"fr": "Juin 2017", "ar": "يونيو 2017", "en": "June 2017"},
    "total": {"fr": "186.00 DH", "ar": "186.00 درهم", "en": "186.00 DH"},
}
LANGUAGE_NAMES = {"fr": "Français", "ar": "العربية", "en": "English"}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    """A browser that says it is American English: the pages must not care."""
    return {**browser_context_args, "locale": "en-US"}


@pytest.fixture
def customer():
    """The guide's sample bill of June 2017: fixe 186.00, internet 99.00, and a mobile line with 120.00."""
    owner = factories.customer(name="Mme Samira Alaoui")
    fixed = factories.fixed_line(number="+212522000001", payment_code="4821", owner=owner)
    internet = factories.internet_line(identifier="12345678", owner=owner)
    mobile = factories.mobile_line(number="+212661000001", owner=owner)
    june = factories.bill(owner=owner, month=dt.date(2017, 6, 1), due_date=dt.date(2017, 7, 19))
    factories.invoice(line=fixed, amount_ht="155.00", reference="0000111995072017", on_bill=june)
    factories.invoice(line=internet, amount_ht="82.50", reference="0000111996072017", on_bill=june)
    factories.invoice(line=mobile, amount_ht="100.00", reference="0000222997072017", on_bill=june)
    return {"fixed": fixed, "internet": internet, "mobile": mobile}


def expect_page(page: Page, lang: str, heading: str, label: str) -> None:
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("html")).to_have_attribute("dir", DIR[lang])
    expect(page.get_by_role("heading", level=1)).to_have_text(TEXT[heading][lang])
    check_page(page, f"portal-{label}-{lang}")


def submit(page: Page, lang: str) -> None:
    page.get_by_role("button", name=TEXT["submit"][lang]).click()


def expect_error_summary(page: Page, fields: list[str]) -> None:
    """The errors at the top of the form, one link per field in error, the focus on the list; a link moves the
    focus to its field, which says it is invalid and which error describes it."""
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    links = summary.get_by_role("link")
    expect(links).to_have_count(len(fields))
    for index, field in enumerate(fields):
        expect(links.nth(index)).to_have_attribute("href", f"#id_{field}")
        box = page.locator(f"#id_{field}")
        expect(box).to_have_attribute("aria-invalid", "true")
        expect(box).to_have_attribute("aria-describedby", re.compile(rf"\bid_{field}_error\b"))
    links.first.click()
    expect(page.locator(f"#id_{fields[0]}")).to_be_focused()


def post_from_the_gateway(page: Page, url: str, fields: dict[str, str]) -> None:
    """The browser's return from the gateway: a form posted from another origin, as the gateway's page does."""
    inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in fields.items())
    page.set_content(f'<form method="post" action="{url}">{inputs}<button>go</button></form>')
    with page.expect_navigation():
        page.get_by_role("button", name="go").click()


@pytest.mark.parametrize("lang", LANGS)
def test_every_portal_page_in_each_language(parties, page: Page, customer, run_tasks, lang):
    biller = parties["biller"]
    page.goto(f"{biller}/?lang={lang}")  # the customer's choice: every page after is in this language
    expect_page(page, lang, "home", "home")

    # Each category's form, empty then sent back with errors.
    for name, path, errors in [("mobile", "/mobile", ["number", "fidelio_code", "email", "email_confirmation",
                                                      "terms"]),
                               ("fixed", "/fixe", ["number", "payment_code", "email", "terms"]),
                               ("internet", "/internet", ["payment_identifier", "email", "terms"])]:
        page.goto(biller + path)
        expect_page(page, lang, name, name)
        submit(page, lang)
        expect_error_summary(page, errors)
        expect_page(page, lang, name, f"{name}-errors")

    # The three ways in, then the consult page: month names and amounts in the page's language.
    fidelio_code_request(number="+212661000001")
    run_tasks()  # the SMS to the sandbox phone
    code = code_in(last_sms_text("+212661000001"))
    page.goto(biller + "/mobile")
    page.locator("#id_number").fill("06 61 00 00 01")
    page.locator("#id_fidelio_code").fill(code)
    page.locator("#id_email").fill("client@example.ma")
    page.locator("#id_email_confirmation").fill("client@example.ma")
    page.locator("#id_terms").check()
    submit(page, lang)
    expect(page).to_have_url(biller + "/factures")
    expect(page.get_by_role("row", name=re.compile("0000222997072017"))).to_contain_text(TEXT["month"][lang])

    page.goto(biller + "/internet")
    page.locator("#id_payment_identifier").fill("12 345 678")
    page.locator("#id_email").fill("client@example.ma")
    page.locator("#id_terms").check()
    submit(page, lang)
    expect(page.get_by_role("row", name=re.compile("0000111996072017"))).to_contain_text(TEXT["month"][lang])

    page.goto(biller + "/fixe")
    page.locator("#id_number").fill("05 22 00 00 01")
    page.locator("#id_payment_code").fill("4821")
    page.locator("#id_email").fill("client@example.ma")
    page.locator("#id_terms").check()
    submit(page, lang)
    expect(page).to_have_url(biller + "/factures")
    row = page.get_by_role("row", name=re.compile("0000111995072017"))
    expect(row).to_contain_text(TEXT["month"][lang])
    expect(row).to_contain_text("19/07/2017")
    expect(page.locator("td.amount.total")).to_have_text(TEXT["total"][lang])
    expect_page(page, lang, "invoices", "invoices")

    page.goto(biller + "/conditions")
    expect_page(page, lang, "terms", "terms")

    # The gateway's returns: not confirmed yet, failed (the bank's reason), a message that does not verify.
    order = new_order(customer["fixed"])
    post_from_the_gateway(page, biller + "/paiement/ok", gateway_message(order, callback=False))
    expect_page(page, lang, "not_confirmed", "not-confirmed")
    post_from_the_gateway(page, biller + "/paiement/echec",
                          gateway_message(order, callback=False, code="51"))
    expect_page(page, lang, "failed", "failed")
    expect(page.locator("p.alert.error")).to_contain_text(
        {"fr": "Provision insuffisante", "ar": "رصيد غير كافٍ", "en": "Insufficient funds"}[lang])
    post_from_the_gateway(page, biller + "/paiement/ok", {**gateway_message(order, callback=False), "HASH": "x"})
    expect_page(page, lang, "invalid", "invalid")

    page.goto(biller + "/nulle-part")
    expect_page(page, lang, "404", "404")


@pytest.mark.parametrize("lang", LANGS)
def test_arabic_mirrors_the_layout(parties, page: Page, lang):
    """The biller's name starts the header: on the left in French and English, on the right in Arabic; the
    language switch ends it, on the other side."""
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{parties['biller']}/mobile?lang={lang}")
    width = page.viewport_size["width"]
    name = page.locator(".site-header .inner a").first.bounding_box()
    switch = page.locator(".lang-switch li").last.bounding_box()
    if lang == "ar":
        assert name["x"] > width / 2 and switch["x"] < width / 2
    else:
        assert name["x"] + name["width"] < width / 2 and switch["x"] > width / 2


@pytest.mark.parametrize(("start", "target"), [("fr", "ar"), ("ar", "en"), ("en", "fr")])
def test_switching_language_keeps_the_customer_on_the_same_page(parties, page: Page, start, target):
    biller = parties["biller"]
    page.goto(f"{biller}/fixe?lang={start}")
    page.locator("#id_number").fill("05 22")
    submit(page, start)  # a form with errors: the switch must still lead to the same form
    switch = page.get_by_role("navigation", name={"fr": "Langue", "ar": "اللغة", "en": "Language"}[start])
    expect(switch.locator('[aria-current="true"]')).to_have_text(LANGUAGE_NAMES[start])
    switch.get_by_role("link", name=LANGUAGE_NAMES[target]).click()
    expect(page).to_have_url(f"{biller}/fixe?lang={target}")
    expect(page.locator("html")).to_have_attribute("lang", target)
    expect(page.get_by_role("heading", level=1)).to_have_text(TEXT["fixed"][target])
    # The choice stays for the next pages, without the parameter.
    page.get_by_role("link", name={"fr": "Choisir une autre catégorie", "ar": "اختيار صنف آخر",
                                   "en": "Choose another kind of bill"}[target]).click()
    expect(page).to_have_url(f"{biller}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(TEXT["home"][target])


@pytest.mark.parametrize("lang", LANGS)
def test_sandbox_phone_and_mailbox_in_each_language(parties, page: Page, lang):
    biller = parties["biller"]
    page.goto(f"{biller}/sandbox/phone?lang={lang}")
    expect(page.locator("html")).to_have_attribute("dir", DIR[lang])
    check_page(page, f"sandbox-phone-{lang}")
    page.locator("#id_sender").fill("x")
    page.get_by_role("button", name={"fr": "Envoyer le SMS", "ar": "إرسال الرسالة القصيرة",
                                     "en": "Send the text message"}[lang]).click()
    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.locator("#id_sender")).to_have_attribute("aria-invalid", "true")
    check_page(page, f"sandbox-phone-errors-{lang}")
    page.goto(f"{biller}/sandbox/phone?number=0661000001")
    check_page(page, f"sandbox-inbox-{lang}")
    page.goto(f"{biller}/sandbox/mail")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        {"fr": "Boîte mail du bac à sable", "ar": "صندوق بريد بيئة التجربة", "en": "Sandbox mailbox"}[lang])
    check_page(page, f"sandbox-mail-{lang}")
