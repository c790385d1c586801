"""The public check of a receipt: is the paper in hand genuine? Anyone may ask, by the link in its QR code or by
typing its number and verification code; wrong answers from one client address are rate-limited so that codes
cannot be guessed, and every check is recorded. The answer is ``Genuine`` (with the public facts only),
``NotGenuine`` or ``TooManyChecks``."""

import datetime as dt
import ipaddress
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from ..models import ReceiptCheck
from ..receipts import normalize_receipt_number, normalize_verification_code, verification_code_matches
from ..selectors.payments import CheckedReceipt, receipt_to_check


@dataclass(frozen=True)
class Genuine:
    receipt: CheckedReceipt


@dataclass(frozen=True)
class NotGenuine:
    """No receipt has this number and this code: unknown number, altered code, junk — told apart to no one."""


@dataclass(frozen=True)
class TooManyChecks:
    """Too many wrong checks from this client address lately: nothing was looked up."""

    retry_after_seconds: int


ReceiptCheckOutcome = Genuine | NotGenuine | TooManyChecks


def _address(client_ip: str) -> str | None:
    """The client's address as the table keeps it; None for none or for what is not an address (a forwarded
    header's junk must not fail the check on a database with an address type)."""
    try:
        return str(ipaddress.ip_address((client_ip or "").strip()))
    except ValueError:
        return None


def _over_limit(client_ip: str | None, now: dt.datetime) -> bool:
    if not client_ip:
        return False
    since = now - dt.timedelta(seconds=settings.RECEIPT_CHECK_IP_WINDOW_SECONDS)
    wrong = ReceiptCheck.objects.filter(client_ip=client_ip, genuine=False, limited=False, at__gt=since).count()
    return wrong >= settings.RECEIPT_CHECK_IP_LIMIT


def receipt_check(*, receipt_number: str, code: str, client_ip: str,
                  now: dt.datetime | None = None) -> ReceiptCheckOutcome:
    """Check a receipt's number and verification code, as typed or as linked (normalized here)."""
    now = now or timezone.now()
    client_ip = _address(client_ip)
    number = normalize_receipt_number(receipt_number)
    if _over_limit(client_ip, now):
        ReceiptCheck.objects.create(at=now, client_ip=client_ip, receipt_number=number, limited=True)
        return TooManyChecks(retry_after_seconds=settings.RECEIPT_CHECK_IP_WINDOW_SECONDS)
    code = normalize_verification_code(code)
    found = receipt_to_check(receipt_number=number) if number and code else None
    genuine = found is not None and verification_code_matches(receipt_number=number, trans_id=found[1], code=code)
    ReceiptCheck.objects.create(at=now, client_ip=client_ip, receipt_number=number, genuine=genuine)
    return Genuine(found[0]) if genuine else NotGenuine()
