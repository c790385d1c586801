"""The receipt in Chromium: « Imprimer » opens the print dialog, and the printed page is the receipt alone."""

import pytest

from tasdid.billing.models import Payment
from tasdid.billing.services.payments import payment_callback
from tests.billing.payments_fixtures import gateway_message, line_with_two_invoices, new_order, receipt_link

pytestmark = pytest.mark.browser


def test_receipt_prints_clean_and_the_print_button_prints(parties, page):
    line, *_ = line_with_two_invoices()
    assert payment_callback(fields=gateway_message(new_order(line))).answer == "ACTION=POSTAUTH"
    payment = Payment.objects.get()
    number, link = payment.receipt_number, receipt_link(payment, absolute=True)
    violations = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    # Count calls to window.print instead of opening the dialog.
    page.add_init_script("window.__printed = 0; window.print = function () { window.__printed += 1; };")

    page.goto(link)

    assert page.get_by_role("heading", name="Reçu de paiement").is_visible()
    assert page.get_by_text(number).first.is_visible()
    page.get_by_role("button", name="Imprimer").click()
    assert page.evaluate("window.__printed") == 1
    assert page.get_by_role("link", name="Télécharger (PDF)").get_attribute("href") == \
        link.removeprefix(parties["biller"]) + "/pdf"

    page.emulate_media(media="print")
    assert page.get_by_role("heading", name="Reçu de paiement").is_visible()
    assert not page.get_by_role("button", name="Imprimer").is_visible()
    assert not page.get_by_role("link", name="Télécharger (PDF)").is_visible()
    assert not page.locator("header.site-header").is_visible()
    assert violations == []
