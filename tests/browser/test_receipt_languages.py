"""The receipt and the verification page in Chromium, in French, Arabic (right to left) and English: axe finds
nothing at desktop and phone widths, the strict CSP reports nothing, the QR code shows, the form answers."""

import pytest
from playwright.sync_api import Page, expect

from tasdid.billing.models import Payment
from tasdid.billing.receipts import grouped_code, verification_code
from tasdid.billing.services.payments import payment_callback
from tests.billing.payments_fixtures import gateway_message, line_with_two_invoices, new_order, receipt_link
from tests.browser.a11y import check_page

pytestmark = pytest.mark.browser

NAMES = {
    "fr": ("Reçu de paiement", "Vérifier ce reçu", "deux cent quatre-vingt-cinq dirhams", "Reçu authentique",
           "N° de reçu", "Code de vérification", "Vérifier", "Reçu non authentique"),
    "ar": ("إيصال الدفع", "التحقق من هذا الإيصال", "مئتان و خمسة و ثمانون درهماً", "إيصال صحيح",
           "رقم الإيصال", "رمز التحقق", "تحقق", "إيصال غير صحيح"),
    "en": ("Payment receipt", "Check this receipt", "two hundred and eighty-five dirhams", "Genuine receipt",
           "Receipt no.", "Verification code", "Check", "Receipt not genuine"),
}


@pytest.mark.parametrize("lang", ["fr", "ar", "en"])
def test_receipt_and_its_verification_in_each_language(parties, page: Page, lang):
    line, *_ = line_with_two_invoices()
    assert payment_callback(fields=gateway_message(new_order(line))).answer == "ACTION=POSTAUTH"
    payment = Payment.objects.get()
    code = verification_code(receipt_number=payment.receipt_number, trans_id=payment.trans_id)
    title, check, words, genuine, number_label, code_label, button, forged = NAMES[lang]
    violations = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)

    page.goto(receipt_link(payment, absolute=True) + f"?lang={lang}")

    html = page.locator("html")
    assert (html.get_attribute("lang"), html.get_attribute("dir")) == (lang, "rtl" if lang == "ar" else "ltr")
    assert page.get_by_role("heading", name=title).is_visible()
    assert page.get_by_role("heading", name=check).is_visible()
    assert page.get_by_text(words).is_visible()
    qr = page.locator(".receipt-qr svg")
    assert qr.is_visible() and qr.bounding_box()["width"] > 80
    if lang == "ar":  # mirrored: the receipt's headings start on the right
        heading = page.get_by_role("heading", name=title).bounding_box()
        card = page.locator(".receipt-card").bounding_box()
        assert heading["x"] + heading["width"] > card["x"] + card["width"] - 60
    check_page(page, f"receipt-{lang}")

    # The QR code's link: the receipt is genuine.
    page.locator(".receipt-verify-url a").click()
    expect(page.get_by_role("heading", name=genuine)).to_be_visible()  # waits for the navigation the click starts
    assert page.locator("html").get_attribute("dir") == ("rtl" if lang == "ar" else "ltr")
    check_page(page, f"receipt-verified-{lang}")

    # The form, by the labels a person reads: a code with a character changed is not genuine.
    page.get_by_label(number_label).fill(payment.receipt_number)
    page.get_by_label(code_label).fill(grouped_code(code)[:-1] + ("A" if code[-1] != "A" else "B"))
    page.get_by_role("button", name=button, exact=True).click()
    expect(page.get_by_role("heading", name=forged)).to_be_visible()
    check_page(page, f"receipt-not-genuine-{lang}")
    assert violations == []
