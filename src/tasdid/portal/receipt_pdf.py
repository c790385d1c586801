"""The receipt's PDF form (WeasyPrint over the receipt page's HTML and stylesheet): what the receipt page's
download gives and what the receipt email attaches, one rendering for both, in the active language."""

from pathlib import Path

from django.http import HttpRequest
from django.template.loader import render_to_string

from tasdid.billing.receipts import render_pdf
from tasdid.billing.selectors.payments import Receipt

RECEIPT_STYLESHEET = Path(__file__).resolve().parent / "static" / "portal" / "receipt.css"


def receipt_pdf_filename(receipt: Receipt) -> str:
    return f"recu-{receipt.number}.pdf"


def render_receipt_pdf(*, receipt: Receipt, request: HttpRequest | None = None) -> bytes:
    """The receipt as an A4 PDF, in the active language (Arabic right to left)."""
    html = render_to_string("portal/receipt/pdf.html", {"receipt": receipt}, request=request)
    return render_pdf(html=html, stylesheets=[RECEIPT_STYLESHEET])
