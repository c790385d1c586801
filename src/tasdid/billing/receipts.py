"""Receipts: their numbers (one sequence per year, race-free), their unguessable links, their PDF form."""

import datetime as dt
import hmac
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tasdid.core.keys import secret_key
from tasdid.core.signing import keyed_digest

from . import documents
from .models import ReceiptSequence

RECEIPT_PREFIX = "R"
_RECEIPT_NUMBER = re.compile(r"R\d{4}-\d{8,10}")


def format_receipt_number(year: int, number: int) -> str:
    """"R2026-00000042": the year the payment settled (Casablanca time), then its rank in that year."""
    return f"{RECEIPT_PREFIX}{year}-{number:08d}"


def is_receipt_number(text: str) -> bool:
    """Whether ``text`` has the shape of a receipt number (a link's part worth looking up)."""
    return bool(_RECEIPT_NUMBER.fullmatch(text or ""))


@transaction.atomic
def receipt_number_allocate(*, at: dt.datetime) -> str:
    """The next receipt number of ``at``'s year. The year's counter row stays locked until the caller's
    transaction ends, so concurrent settlements take distinct numbers; a rolled-back one leaves a gap."""
    year = timezone.localtime(at).year
    sequence, _ = ReceiptSequence.objects.select_for_update().get_or_create(year=year)
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    return format_receipt_number(year, sequence.last_number)


def receipt_token(*, receipt_number: str, oid: str, trans_id: str) -> str:
    """The secret part of a receipt's link: a keyed digest (the "receipts" key) of the receipt's number and of the
    payment it belongs to (the biller's random order id and the gateway's transaction id). A number given again
    to another payment (a database started afresh) gets another token: an old link opens nobody's receipt."""
    return keyed_digest(secret_key("receipts"), "receipt", receipt_number, oid, trans_id)


def receipt_token_matches(*, receipt_number: str, oid: str, trans_id: str, token: str) -> bool:
    """Constant-time check of a receipt link's token."""
    expected = receipt_token(receipt_number=receipt_number, oid=oid, trans_id=trans_id)
    return hmac.compare_digest(expected.encode(), (token or "").encode("utf-8", "replace"))


def receipt_path(*, receipt_number: str, oid: str, trans_id: str) -> str:
    """The receipt's path on the biller's site (docs/architecture.md, "Biller URLs")."""
    token = receipt_token(receipt_number=receipt_number, oid=oid, trans_id=trans_id)
    return f"/recu/{quote(receipt_number, safe='')}/{token}"


def receipt_url(*, receipt_number: str, oid: str, trans_id: str) -> str:
    """The absolute link sent by email: works at any later time, without a session, for this payment only."""
    return settings.BILLER_URL + receipt_path(receipt_number=receipt_number, oid=oid, trans_id=trans_id)


def render_pdf(*, html: str, stylesheets: Sequence[Path] = ()) -> bytes:
    """The PDF (A4) of a receipt page's HTML with the given local stylesheets; it fetches nothing else, from
    neither the network nor the disk (tasdid.billing.documents, which keeps the fonts and parsed stylesheets)."""
    return documents.render_pdf(html=html, stylesheets=stylesheets)
