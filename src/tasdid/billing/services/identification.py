"""Identification: the customer proves which line they pay for (mobile + code fidelio, fixed + payment code,
internet payment identifier). Every attempt is recorded; wrong codes lock the line; failures from one client
address are rate-limited. The answer is an ``Identified`` line or a named ``Refused``."""

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tasdid.billing.codes import fidelio_scope, payment_code_matches
from tasdid.billing.models import FidelioCode, IdentificationAttempt, ServiceLine
from tasdid.core.codes import after_failure, code_matches, is_locked


class Refusal(StrEnum):
    UNKNOWN_LINE = "unknown_line"
    WRONG_CODE = "wrong_code"
    LINE_LOCKED = "line_locked"  # too many wrong codes on this line: see ``locked_until``
    TOO_MANY_ATTEMPTS = "too_many_attempts"  # too many failures from this client address


@dataclass(frozen=True)
class Identified:
    line_id: int
    kind: str


@dataclass(frozen=True)
class Refused:
    reason: Refusal
    locked_until: dt.datetime | None = None


Identification = Identified | Refused


def _record(*, now: dt.datetime, client_ip: str, kind: str, line: ServiceLine | None, reason: str = "") -> None:
    IdentificationAttempt.objects.create(at=now, client_ip=client_ip or None, kind=kind, line=line,
                                         succeeded=not reason, reason=reason)


def _address_over_limit(client_ip: str, now: dt.datetime) -> bool:
    if not client_ip:
        return False
    since = now - dt.timedelta(seconds=settings.IDENTIFICATION_IP_WINDOW_SECONDS)
    failures = (IdentificationAttempt.objects.filter(client_ip=client_ip, succeeded=False, at__gt=since)
                .exclude(reason=Refusal.TOO_MANY_ATTEMPTS).count())
    return failures >= settings.IDENTIFICATION_IP_LIMIT


def _identify(*, kind: str, lookup: dict, check, client_ip: str, now: dt.datetime | None) -> Identification:
    """The steps every way in shares; ``check(line, now)`` says whether the line's code is right (and uses it)."""
    now = now or timezone.now()
    if _address_over_limit(client_ip, now):
        _record(now=now, client_ip=client_ip, kind=kind, line=None, reason=Refusal.TOO_MANY_ATTEMPTS)
        return Refused(Refusal.TOO_MANY_ATTEMPTS)
    line = ServiceLine.objects.select_for_update().filter(kind=kind, **lookup).first()
    if line is None:
        _record(now=now, client_ip=client_ip, kind=kind, line=None, reason=Refusal.UNKNOWN_LINE)
        return Refused(Refusal.UNKNOWN_LINE)
    if is_locked(line.locked_until, now):
        _record(now=now, client_ip=client_ip, kind=kind, line=line, reason=Refusal.LINE_LOCKED)
        return Refused(Refusal.LINE_LOCKED, locked_until=line.locked_until)
    if not check(line, now):
        lockout = after_failure(failures=line.failed_attempts, now=now, limit=settings.LINE_LOCK_AFTER_FAILURES,
                                lock_for=dt.timedelta(seconds=settings.LINE_LOCK_SECONDS))
        line.failed_attempts, line.locked_until = lockout.failures, lockout.locked_until
        line.save(update_fields=["failed_attempts", "locked_until"])
        _record(now=now, client_ip=client_ip, kind=kind, line=line, reason=Refusal.WRONG_CODE)
        if lockout.locked_until is not None:
            return Refused(Refusal.LINE_LOCKED, locked_until=lockout.locked_until)
        return Refused(Refusal.WRONG_CODE)
    if line.failed_attempts or line.locked_until:
        line.failed_attempts, line.locked_until = 0, None
        line.save(update_fields=["failed_attempts", "locked_until"])
    _record(now=now, client_ip=client_ip, kind=kind, line=line)
    return Identified(line_id=line.pk, kind=kind)


@transaction.atomic
def identify_mobile(*, number: str, fidelio_code: str, client_ip: str,
                    now: dt.datetime | None = None) -> Identification:
    """A mobile line (``number`` in E.164) and the code fidelio last sent to it; the code is used up on success."""

    def check(line: ServiceLine, at: dt.datetime) -> bool:
        current = (FidelioCode.objects.select_for_update()
                   .filter(line=line, used_at__isnull=True, expires_at__gt=at).order_by("-created_at").first())
        if current is None or not code_matches(fidelio_scope(line.pk), fidelio_code, current.digest):
            return False
        current.used_at = at
        current.save(update_fields=["used_at"])
        return True

    return _identify(kind=ServiceLine.Kind.MOBILE, lookup={"number": number}, check=check, client_ip=client_ip,
                     now=now)


@transaction.atomic
def identify_fixed(*, number: str, payment_code: str, client_ip: str,
                   now: dt.datetime | None = None) -> Identification:
    """A fixed line (``number`` in E.164) and the "code de paiement fixe" printed on its bill."""

    def check(line: ServiceLine, at: dt.datetime) -> bool:
        return payment_code_matches(number, payment_code, line.payment_code_digest)

    return _identify(kind=ServiceLine.Kind.FIXED, lookup={"number": number}, check=check, client_ip=client_ip,
                     now=now)


@transaction.atomic
def identify_internet(*, payment_identifier: str, client_ip: str,
                      now: dt.datetime | None = None) -> Identification:
    """An internet line by the "identifiant de paiement" printed on its bill (digits only, "12345678")."""
    return _identify(kind=ServiceLine.Kind.INTERNET, lookup={"payment_identifier": payment_identifier},
                     check=lambda line, at: True, client_ip=client_ip, now=now)
