"""The receipt email's HTML part as a mail program shows it: axe-core (WCAG 2.2 AA) at a desktop's and a phone's
width, in French, Arabic (right to left) and English."""

import pytest
from django.utils import translation

from tasdid.billing.emails import receipt_email
from tasdid.billing.models import Payment
from tasdid.billing.services.payments import payment_callback
from tests.billing.payments_fixtures import gateway_message, line_with_two_invoices, new_order
from tests.browser.a11y import check_page


@pytest.mark.django_db
@pytest.mark.parametrize("lang", ["fr", "ar", "en"])
def test_the_receipt_email_reads_well_in_each_language(page, lang):
    line, *_ = line_with_two_invoices()
    payment_callback(fields=gateway_message(new_order(line, language=lang)))
    composed = receipt_email(receipt_number=Payment.objects.get().receipt_number, language=lang)

    page.set_content(composed.body_html)

    assert page.locator("html").get_attribute("lang") == lang
    assert page.locator("html").get_attribute("dir") == ("rtl" if lang == "ar" else "ltr")
    with translation.override(lang):
        heading = translation.gettext("Reçu de paiement")
    assert page.get_by_role("heading", level=1).inner_text().startswith(heading)
    check_page(page, f"receipt-email-{lang}")
