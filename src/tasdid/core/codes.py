"""Secret codes (fidelio, payment codes, OTP): generation, keyed hashes at rest, lockout decisions."""

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass

from .keys import secret_key
from .signing import keyed_digest


def generate_numeric(length: int) -> str:
    """``length`` random digits (uniform, from ``secrets``: one draw for the whole number)."""
    return f"{secrets.randbelow(10**length):0{length}d}"


def code_digest(scope: str, code: str, *, purpose: str = "codes") -> str:
    """Keyed hash of a code, bound to what it protects (``scope``: a line, a challenge...), under the key of the
    party that keeps it: "codes" (the biller's), "otp" (the bank's)."""
    return keyed_digest(secret_key(purpose), scope, code.strip())


def code_matches(scope: str, code: str, digest: str, *, purpose: str = "codes") -> bool:
    return hmac.compare_digest(code_digest(scope, code, purpose=purpose).encode(), (digest or "").encode())


@dataclass(frozen=True)
class Lockout:
    """What a failed try leads to: the new failure count and, when it reaches the limit, a lock."""

    failures: int
    locked_until: dt.datetime | None


def after_failure(*, failures: int, now: dt.datetime, limit: int, lock_for: dt.timedelta) -> Lockout:
    """Count one more wrong try; at ``limit`` wrong tries the thing is locked for ``lock_for``."""
    failures += 1
    if failures >= limit:
        return Lockout(failures=0, locked_until=now + lock_for)
    return Lockout(failures=failures, locked_until=None)


def is_locked(locked_until: dt.datetime | None, now: dt.datetime) -> bool:
    return locked_until is not None and locked_until > now
