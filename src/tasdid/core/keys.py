"""Per-purpose secret keys, each held by the parties named for it, so that one leaking does not forge what another
protects and no party holds a key it has no use for."""

import hashlib
import hmac

from django.conf import settings

# Each key and the parties that hold it: a party's own records ("cards" are the bank's card fingerprints and CVV
# digests, "gateway-cards" the gateway's card fingerprints), and the 3-D Secure links (DESIGN.md §6), each known
# only to its two ends. The gateway and a bank hold no key in common: between them go messages through the
# directory (a key per link) and the browser (CReq/CRes, under no key).
OWNERS: dict[str, frozenset[str]] = {
    "codes": frozenset({"biller"}),  # fidelio and payment codes
    "receipts": frozenset({"biller"}),  # unguessable receipt links
    "receipt-checks": frozenset({"biller"}),  # verification codes printed on receipts
    "gateway-cards": frozenset({"gateway"}),  # the gateway's keyed card fingerprints (its attempts)
    "vault": frozenset({"gateway"}),  # card data sealed in threeDSSessionData
    "store-keys": frozenset({"gateway"}),  # the merchants' store keys sealed at rest (gateway.store_keys)
    "cards": frozenset({"bank"}),  # the bank's keyed card fingerprints and CVV digests
    "otp": frozenset({"bank"}),  # the ACS's SMS codes
    "cavv": frozenset({"bank"}),  # the authentication values (CAVV) the bank issues and checks
    "3ds-gateway-switch": frozenset({"gateway", "switch"}),  # 3DS Server <-> Directory Server
    "3ds-switch-bank": frozenset({"switch", "bank"}),  # Directory Server <-> ACS
}
PURPOSES = tuple(OWNERS)

LINKS = {owners: purpose for purpose, owners in OWNERS.items() if len(owners) == 2}


def purposes_of(party: str) -> frozenset[str]:
    """The keys ``party`` holds."""
    return frozenset(purpose for purpose, owners in OWNERS.items() if party in owners)


def secret_key(purpose: str) -> bytes:
    """The key for ``purpose``: set explicitly in settings.TASDID_KEYS, or derived from SECRET_KEY."""
    if purpose not in OWNERS:
        raise ValueError(f"unknown key purpose {purpose!r}")
    explicit = settings.TASDID_KEYS.get(purpose) or ""
    if explicit:
        return explicit.encode()
    return derived_keys(purpose)[0]


def derived_keys(purpose: str) -> list[bytes]:
    """The keys for ``purpose`` derived from SECRET_KEY, then from each of SECRET_KEY_FALLBACKS."""
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [hmac.new(s.encode(), b"tasdid.key." + purpose.encode(), hashlib.sha256).digest() for s in secrets]


def link_key(one: str, other: str) -> bytes:
    """The key of the message link between two parties (either order); ValueError for parties with no link."""
    purpose = LINKS.get(frozenset({one, other}))
    if purpose is None:
        raise ValueError(f"no message link between {one!r} and {other!r}")
    return secret_key(purpose)
