"""Per-purpose secret keys, so that one leaking does not forge what another protects."""

import hashlib
import hmac

from django.conf import settings

PURPOSES = ("codes", "cards", "receipts", "receipt-checks", "vault", "threeds", "cavv",
            "3ds-gateway-switch", "3ds-switch-bank")

# The 3-D Secure links (DESIGN.md §6) and the key of each, known only to its two ends: the gateway (3DS Server)
# and the switch (Directory Server); the switch and the bank (ACS). The gateway and the bank share none.
LINKS = {
    frozenset({"gateway", "switch"}): "3ds-gateway-switch",
    frozenset({"switch", "bank"}): "3ds-switch-bank",
}


def secret_key(purpose: str) -> bytes:
    """The key for ``purpose``: set explicitly in settings.TASDID_KEYS, or derived from SECRET_KEY."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown key purpose {purpose!r}")
    explicit = settings.TASDID_KEYS.get(purpose) or ""
    if explicit:
        return explicit.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"tasdid.key." + purpose.encode(), hashlib.sha256).digest()


def link_key(one: str, other: str) -> bytes:
    """The key of the message link between two parties (either order); ValueError for parties with no link."""
    purpose = LINKS.get(frozenset({one, other}))
    if purpose is None:
        raise ValueError(f"no message link between {one!r} and {other!r}")
    return secret_key(purpose)
