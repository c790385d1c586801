"""Per-purpose secret keys, so that one leaking does not forge what another protects."""

import hashlib
import hmac

from django.conf import settings

PURPOSES = ("codes", "cards", "receipts", "receipt-checks", "vault", "threeds")


def secret_key(purpose: str) -> bytes:
    """The key for ``purpose``: set explicitly in settings.TASDID_KEYS, or derived from SECRET_KEY."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown key purpose {purpose!r}")
    explicit = settings.TASDID_KEYS.get(purpose) or ""
    if explicit:
        return explicit.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"tasdid.key." + purpose.encode(), hashlib.sha256).digest()
