"""Receipts: numbers, unguessable links, the page and its PDF (read back with poppler's pdftotext)."""

import datetime as dt
import re
import subprocess
from html import unescape

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import resolve
from django.utils import timezone

from tasdid.billing.models import Payment, ReceiptSequence
from tasdid.billing.receipts import (
    format_receipt_number,
    is_receipt_number,
    receipt_number_allocate,
    receipt_path,
    receipt_token,
    receipt_token_matches,
    receipt_url,
)
from tasdid.billing.selectors.payments import receipt_for
from tasdid.billing.services.payments import payment_callback
from tasdid.core.cards import find_card_numbers
from tasdid.portal import payment_views
from tests.billing.payments_fixtures import (
    EMAIL,
    MASKED,
    gateway_message,
    line_with_two_invoices,
    new_order,
    receipt_link,
)


def paid(*, deferred: bool = False) -> tuple[Payment, list]:
    """A settled payment of the June invoice (and of July's unless it was deferred)."""
    line, june, july = line_with_two_invoices()
    order = new_order(line)
    refs = [june.reference] if deferred else [june.reference, july.reference]
    assert payment_callback(fields=gateway_message(order, paid=refs, trans_id="26101ABCD1234",
                                                   auth_code="P12345")).answer == "ACTION=POSTAUTH"
    return Payment.objects.get(), [june, july]


def test_receipt_number_format():
    assert format_receipt_number(2026, 42) == "R2026-00000042"
    assert is_receipt_number("R2026-00000042") and is_receipt_number(format_receipt_number(2026, 123_456_789))
    assert not any(is_receipt_number(t) for t in ("", "R2026-42", "R2026-00000042\n", "R\x00", "X2026-00000042"))


@pytest.mark.django_db
def test_receipt_numbers_count_up_within_a_year_and_restart_with_the_next():
    def at(year, month, day, hour):
        return dt.datetime(year, month, day, hour, tzinfo=dt.UTC)

    assert receipt_number_allocate(at=at(2026, 3, 1, 10)) == "R2026-00000001"
    assert receipt_number_allocate(at=at(2026, 6, 1, 10)) == "R2026-00000002"
    # 31 December 23:30 UTC is already 1 January in Casablanca (UTC+1).
    assert receipt_number_allocate(at=at(2026, 12, 31, 23)) == "R2027-00000001"
    assert receipt_number_allocate(at=at(2026, 12, 31, 22)) == "R2026-00000003"
    assert list(ReceiptSequence.objects.order_by("year").values_list("year", "last_number")) == [
        (2026, 3), (2027, 1)]


IDENTITY = {"receipt_number": "R2026-00000001", "oid": "TSDAAAAAAAAAAAAAAAA", "trans_id": "26101ABCD1234"}


def test_receipt_token_is_keyed_unguessable_bound_to_the_payment_and_checked_exactly():
    token = receipt_token(**IDENTITY)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    assert token == receipt_token(**IDENTITY)
    # Another payment under the same number (a database started afresh) has another token.
    assert token != receipt_token(**{**IDENTITY, "oid": "TSDBBBBBBBBBBBBBBBB"})
    assert token != receipt_token(**{**IDENTITY, "trans_id": "26101ABCD9999"})
    assert token != receipt_token(**{**IDENTITY, "receipt_number": "R2026-00000002"})
    assert receipt_token_matches(**IDENTITY, token=token)
    assert not receipt_token_matches(**{**IDENTITY, "receipt_number": "R2026-00000002"}, token=token)
    assert not receipt_token_matches(**{**IDENTITY, "oid": "TSDBBBBBBBBBBBBBBBB"}, token=token)
    assert not receipt_token_matches(**IDENTITY, token=token[:-1])
    assert not receipt_token_matches(**IDENTITY, token="")
    assert not receipt_token_matches(**IDENTITY, token=token[:-1] + "é")


def test_receipt_link_is_absolute_on_the_biller_and_matches_the_route():
    number = IDENTITY["receipt_number"]
    token = receipt_token(**IDENTITY)
    assert receipt_path(**IDENTITY) == f"/recu/{number}/{token}"
    match = resolve(receipt_path(**IDENTITY))
    assert (match.func, match.kwargs) == (payment_views.receipt, {"receipt_number": number, "token": token})
    assert resolve(receipt_path(**IDENTITY) + "/pdf").func == payment_views.receipt_pdf
    assert receipt_url(**IDENTITY) == f"{settings.BILLER_URL}/recu/{number}/{token}"


@pytest.mark.django_db
def test_an_old_link_does_not_open_the_receipt_of_whoever_has_its_number_now():
    """After the database starts afresh, receipt numbers are given again: a link emailed before opens nothing."""
    first, _ = paid()
    old_link = receipt_link(first)
    number = first.receipt_number
    assert Client().get(old_link).status_code == 200
    # The payment of the old link is gone, its number counted again from 1 and given to another payment.
    Payment.objects.filter(pk=first.pk).update(receipt_number="R-EFFACE")
    ReceiptSequence.objects.update(last_number=0)
    line, *_ = line_with_two_invoices(number="+212661000002")
    assert payment_callback(fields=gateway_message(new_order(line), trans_id="26102EFGH5678")).answer == \
        "ACTION=POSTAUTH"
    second = Payment.objects.get(trans_id="26102EFGH5678")
    assert second.receipt_number == number

    for suffix in ("", "/pdf"):
        assert Client().get(old_link + suffix).status_code == 404
    new_link = receipt_link(second)
    assert new_link != old_link
    assert "26102EFGH5678" in Client().get(new_link).content.decode()


@pytest.mark.django_db
def test_receipt_lists_the_paid_invoices_only_in_two_queries():
    payment, (june, _) = paid(deferred=True)

    with CaptureQueriesContext(connection) as queries:
        receipt = receipt_for(receipt_number=payment.receipt_number)

    assert len(queries) == 2
    assert [(line.reference, line.kind, line.month, str(line.amount)) for line in receipt.lines] == [
        (june.reference, "Mobile", "Juin 2017", "186.00")]
    assert str(receipt.total) == "186.00"
    assert (receipt.masked_pan, receipt.card_brand, receipt.auth_code, receipt.trans_id) == (
        MASKED, "Visa", "P12345", "26101ABCD1234")
    assert receipt_for(receipt_number="R2026-99999999") is None


@pytest.mark.django_db
def test_receipt_page_shows_everything_the_guide_asks_without_a_session():
    payment, (june, july) = paid()
    local = timezone.localtime(payment.paid_at)

    response = Client().get(receipt_link(payment))

    assert response.status_code == 200
    html = unescape(response.content.decode())
    for text in [
        "Reçu de paiement", payment.receipt_number, local.strftime("%d/%m/%Y à %H:%M"), EMAIL,
        june.reference, "Juin 2017", "186.00", july.reference, "Juillet 2017", "99.00", "285.00\u00a0DH",
        MASKED, "Visa", "P12345", "26101ABCD1234", settings.BILLER_NAME,
    ]:
        assert text in html, text
    assert '<button type="button" class="button primary" data-print>Imprimer</button>' in html
    assert f'href="{receipt_link(payment)}/pdf" download>Télécharger (PDF)</a>' in html
    assert '<link rel="stylesheet" href="/static/portal/receipt.css">' in html
    assert "<style" not in html and "style=" not in html and "<script>" not in html
    assert response["Referrer-Policy"] == "no-referrer"
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert not find_card_numbers(html)


@pytest.mark.django_db
def test_receipt_page_queries_do_not_grow_with_the_invoices():
    payment, _ = paid()
    link = receipt_link(payment)
    with CaptureQueriesContext(connection) as queries:
        Client().get(link)
    assert len(queries) == 2


@pytest.mark.django_db
def test_deferred_invoice_is_not_on_the_receipt():
    payment, (june, july) = paid(deferred=True)
    html = Client().get(receipt_link(payment)).content.decode()
    assert june.reference in html
    assert july.reference not in html
    assert "Juillet 2017" not in html


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", ["", "/pdf"])
def test_a_wrong_token_or_an_unknown_receipt_is_not_found(suffix):
    payment, _ = paid()
    number = payment.receipt_number
    token = receipt_link(payment).rsplit("/", 1)[1]
    identity = {"oid": payment.order.oid, "trans_id": payment.trans_id}
    client = Client()
    assert client.get(f"/recu/{number}/{token}{suffix}").status_code == 200
    altered = token[:-1] + ("B" if token.endswith("A") else "A")
    assert client.get(f"/recu/{number}/{altered}{suffix}").status_code == 404
    assert client.get(f"/recu/{number}/{receipt_token(receipt_number=number, oid='TSDX', trans_id='T')}{suffix}"
                      ).status_code == 404
    assert client.get(f"/recu/{number}/{receipt_token(receipt_number='R2026-00000002', **identity)}{suffix}"
                      ).status_code == 404
    other = receipt_token(receipt_number="R1999-00000001", **identity)
    assert client.get(f"/recu/R1999-00000001/{other}{suffix}").status_code == 404
    assert client.get(f"/recu/{number}/x%00y{suffix}").status_code == 404
    assert client.get(f"/recu/R%00%FF/{token}{suffix}").status_code == 404
    assert client.get(f"/recu/{'R' * 5000}/{token}{suffix}").status_code == 404
    assert client.post(f"/recu/{number}/{token}{suffix}").status_code == 405


def pdf_text(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "receipt.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True, timeout=60).stdout


@pytest.mark.django_db
def test_receipt_pdf_has_the_same_content(tmp_path):
    payment, (june, july) = paid(deferred=True)
    local = timezone.localtime(payment.paid_at)

    response = Client().get(receipt_link(payment) + "/pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="recu-{payment.receipt_number}.pdf"'
    assert response.content.startswith(b"%PDF-")
    text = pdf_text(response.content, tmp_path)
    for expected in ["Reçu de paiement", payment.receipt_number, local.strftime("%d/%m/%Y à %H:%M"), EMAIL,
                     june.reference, "Juin 2017", "186.00 DH", MASKED, "Visa", "P12345", "26101ABCD1234",
                     settings.BILLER_NAME]:
        assert expected in text, expected
    assert july.reference not in text
    assert "Imprimer" not in text  # the buttons are for the screen
    assert not find_card_numbers(text)


@pytest.mark.django_db
def test_receipt_pdf_reads_the_same_from_a_fresh_renderer_and_the_threads_kept_one_after_language_switches(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from django.utils import translation

    from tasdid.portal.receipt_pdf import render_receipt_pdf

    payment, _ = paid()
    receipt = receipt_for(receipt_number=payment.receipt_number)

    def rendered(language: str) -> str:
        with translation.override(language):
            return pdf_text(render_receipt_pdf(receipt=receipt), tmp_path)

    def fresh(language: str) -> str:  # a new thread: its own font configuration and stylesheets, parsed anew
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(rendered, language).result()

    first = {language: fresh(language) for language in ("fr", "ar", "en")}
    assert "Reçu de paiement" in first["fr"] and "Payment receipt" in first["en"] and "إيصال" in first["ar"]
    for language in ("fr", "ar", "en", "ar", "fr", "en", "fr"):  # one renderer kept across the switches
        assert rendered(language) == first[language], language
