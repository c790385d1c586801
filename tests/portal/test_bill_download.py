"""The bill as a PDF from the consult page: only the bill of the line identified in this browser, in the page's
language; anything else is the same 404, which says nothing of whether that bill exists."""

import pytest
from django.test import Client

from tasdid.billing.demo import seed_demo
from tasdid.core.i18n import COOKIE
from tests.billing.test_bill_pdf import as_read, on_one_line, page_count, pdf_lines

pytestmark = pytest.mark.django_db

INTERNET_INVOICE, FIXED_INVOICE = "0000111996072017", "0000111995072017"  # the guide's sample bill, client 100000001
OTHER_CUSTOMER_INVOICE = "0000200001092026"


@pytest.fixture
def identified() -> Client:
    """A browser that identified the sample bill's internet line (12 345 678)."""
    seed_demo()
    client = Client()
    response = client.post("/internet", {"payment_identifier": "12 345 678", "email": "k@example.ma", "terms": "on"})
    assert (response.status_code, response["Location"]) == (302, "/factures")
    return client


def test_the_consult_page_links_each_invoice_to_its_bill_in_the_page_s_language(identified):
    html = identified.get("/factures").content.decode()
    assert (f'<a href="/factures/{INTERNET_INVOICE}/pdf?lang=fr" download>Facture du mois de Juin 2017 (PDF)</a>'
            in html)
    html = identified.get("/factures", {"lang": "ar"}).content.decode()
    assert f'<a href="/factures/{INTERNET_INVOICE}/pdf?lang=ar" download>فاتورة شهر يونيو 2017 (PDF)</a>' in html
    assert FIXED_INVOICE not in html  # the other line of the same customer is not on this page


def test_the_identified_line_downloads_its_bill(identified, tmp_path):
    response = identified.get(f"/factures/{INTERNET_INVOICE}/pdf", {"lang": "fr"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="facture-100000001-201706.pdf"'
    assert response["Cache-Control"] == "no-store"
    lines = pdf_lines(response.content, tmp_path)
    assert on_one_line(lines, "Facture du mois de Juin 2017")
    assert on_one_line(lines, "Identifiant de paiement", "12 345 678")
    assert on_one_line(lines, f"Réf Facture Internet n° {INTERNET_INVOICE}", "Montant à payer TTC Internet", "99.00")
    assert on_one_line(lines, "Montant Total de votre facture en DH TTC", "285.00")
    assert page_count(response.content, tmp_path) == 1


@pytest.mark.parametrize(("query", "cookie", "title"), [
    ({"lang": "ar"}, None, "فاتورة شهر يونيو"),
    ({"lang": "en"}, None, "Bill for the month of June 2017"),
    ({}, "en", "Bill for the month of June 2017"),  # the language chosen earlier on the site
    ({}, None, "Facture du mois de Juin 2017"),
])
def test_the_bill_is_in_the_page_s_language(identified, tmp_path, query, cookie, title):
    if cookie:
        identified.cookies[COOKIE] = cookie
    response = identified.get(f"/factures/{INTERNET_INVOICE}/pdf", query)
    assert response.status_code == 200
    assert on_one_line(pdf_lines(response.content, tmp_path), as_read(title))


def _refusal(client: Client, reference: str) -> tuple[int, str]:
    """The 404 page, with the reference asked for taken out (its language switch links back to the path)."""
    response = client.get(f"/factures/{reference}/pdf")
    assert response.status_code == 404
    assert not response.content.startswith(b"%PDF")
    assert "Content-Disposition" not in response
    return response.status_code, response.content.decode().replace(reference, "…")


def test_another_line_s_bill_is_refused_like_one_that_does_not_exist(identified):
    # The fixed line's invoice is on the very same bill, but this browser proved only the internet line.
    same_customer = _refusal(identified, FIXED_INVOICE)
    other_customer = _refusal(identified, OTHER_CUSTOMER_INVOICE)
    unknown = _refusal(identified, "0000000000000000")
    assert same_customer == other_customer == unknown
    # The identification is still there: the line's own bill still comes.
    assert identified.get(f"/factures/{INTERNET_INVOICE}/pdf").status_code == 200


def test_without_identification_no_bill_comes():
    seed_demo()
    assert _refusal(Client(), INTERNET_INVOICE)[0] == 404


def test_a_bill_is_only_read(identified):
    assert identified.post(f"/factures/{INTERNET_INVOICE}/pdf").status_code == 405
