"""Receipts: their numbers (one sequence per year, race-free), their unguessable links, the verification code and
QR code printed on them, their PDF form."""

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tasdid.core.digits import ascii_digits
from tasdid.core.keys import secret_key
from tasdid.core.signing import keyed_digest

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


# The verification code: 10 characters of Crockford's base 32 (50 bits; no I, L, O or U to misread), the first bits
# of an HMAC (the "receipt-checks" key) of the receipt's number and of its payment's gateway transaction id.
VERIFICATION_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
VERIFICATION_CODE_LENGTH = 10
_MISREAD = str.maketrans({"O": "0", "I": "1", "L": "1"})
_DASHES = re.compile(r"[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")
VERIFY_PATH = "/verifier"


def verification_code(*, receipt_number: str, trans_id: str) -> str:
    """The code printed on the receipt (and carried by its QR code): the receipt's number cannot be checked
    without it, so receipts cannot be enumerated; bound to the payment, so a number given again to another
    payment (a database started afresh) has another code."""
    mac = hmac.new(secret_key("receipt-checks"), "\x1f".join(["receipt-check", receipt_number, trans_id]).encode(),
                   hashlib.sha256).digest()
    bits = int.from_bytes(mac[:8], "big") >> (64 - 5 * VERIFICATION_CODE_LENGTH)
    return "".join(VERIFICATION_ALPHABET[(bits >> (5 * i)) & 31] for i in reversed(range(VERIFICATION_CODE_LENGTH)))


def _typed(text: str) -> str:
    """What was typed without its spaces, with any script's digits and any dash in ASCII (short inputs only)."""
    return _DASHES.sub("-", ascii_digits("".join((text or "")[:64].split())))


def normalize_verification_code(text: str) -> str:
    """The code as typed (« 7kq2m-xd4tb », spaces, an O for a zero) in its printed form, or "" when it cannot be
    one."""
    code = _typed(text).replace("-", "").upper().translate(_MISREAD)
    if len(code) != VERIFICATION_CODE_LENGTH or any(ch not in VERIFICATION_ALPHABET for ch in code):
        return ""
    return code


def normalize_receipt_number(text: str) -> str:
    """The receipt number as typed (« r2026-00000042 », spaces around), or "" when it has not the shape of one."""
    number = _typed(text).upper()
    return number if is_receipt_number(number) else ""


def verification_code_matches(*, receipt_number: str, trans_id: str, code: str) -> bool:
    """Constant-time check of a typed or linked verification code (already normalized)."""
    expected = verification_code(receipt_number=receipt_number, trans_id=trans_id)
    return hmac.compare_digest(expected.encode(), (code or "").encode("utf-8", "replace"))


def grouped_code(code: str) -> str:
    """"7KQ2M-XD4TB": the code as printed, in two groups of five to read and type."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def verification_path(*, receipt_number: str, code: str) -> str:
    """The public check of a receipt on the biller's site: its number and its verification code."""
    return f"{VERIFY_PATH}/{quote(receipt_number, safe='')}/{quote(code, safe='')}"


def verification_url(*, receipt_number: str, code: str) -> str:
    return settings.BILLER_URL + verification_path(receipt_number=receipt_number, code=code)


def qr_svg(url: str, *, title: str) -> str:
    """The QR code of ``url`` as an inline SVG element (no image to fetch, no style attribute: fits the strict CSP),
    named ``title`` for assistive technology. Error correction M survives a crease or a smudge on paper."""
    import segno

    qr = segno.make(url, error="m", micro=False, boost_error=False)
    svg = qr.svg_inline(scale=4, border=2, dark="#000", light="#fff", title=title, svgclass="receipt-qr-code",
                        lineclass=None, omitsize=False)
    return svg.replace("<svg ", '<svg role="img" ', 1)


def render_pdf(*, html: str, stylesheets: Sequence[Path] = ()) -> bytes:
    """The PDF (A4) of a receipt page's HTML with the given local stylesheets; it fetches nothing else, from
    neither the network nor the disk (a fetcher that allows no protocol)."""
    import weasyprint  # heavy: loaded on the first PDF only

    fetcher = weasyprint.URLFetcher(allowed_protocols=frozenset())
    document = weasyprint.HTML(string=html, url_fetcher=fetcher)
    css = [weasyprint.CSS(string=path.read_text("utf-8"), url_fetcher=fetcher) for path in stylesheets]
    return document.write_pdf(stylesheets=css)
