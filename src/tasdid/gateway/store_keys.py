"""The merchants' store keys at rest: sealed (Fernet) under the gateway's store-key encryption keys, never in
clear in the database.

The encryption keys come from ``TASDID_GATEWAY_STORE_KEY_KEYS`` (core.keys purpose "store-keys"): one secret or
several separated by commas, the first sealing, every one opening, so that a new key is put first and the rows
re-sealed under it (``tasdid merchant reseal``) before the old one leaves the list. Unset, a single key derived
from SECRET_KEY, as the project's other keys are (the sandbox's).

The keys derived from SECRET_KEY (and from SECRET_KEY_FALLBACKS) always open, after the configured ones: rows
sealed before the variable was set still open once it is, and ``tasdid merchant reseal`` moves them under its
first key. They seal only while the variable is unset."""

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from tasdid.core.keys import derived_keys

PURPOSE = "store-keys"


class StoreKeyError(ValueError):
    """A sealed store key that none of the configured encryption keys opens."""


def encryption_secrets() -> list[bytes]:
    """The secrets that open a sealed key, the sealing one first: the configured ones, then those derived from
    SECRET_KEY and SECRET_KEY_FALLBACKS (opening only, unless nothing is configured)."""
    raw = settings.TASDID_KEYS.get(PURPOSE) or ""
    entries = [entry.strip().encode() for entry in raw.split(",") if entry.strip()]
    return [*entries, *(key for key in derived_keys(PURPOSE) if key not in entries)]


def _fernet(entry: bytes) -> Fernet:
    derived = hmac.new(entry, b"tasdid.gateway.store-key", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def _keys() -> MultiFernet:
    return MultiFernet([_fernet(entry) for entry in encryption_secrets()])


@sensitive_variables()
def seal(store_key: str) -> str:
    """``store_key`` sealed under the first encryption key ("" stays "")."""
    if not store_key:
        return ""
    return _keys().encrypt(store_key.encode()).decode("ascii")


@sensitive_variables()
def unseal(sealed: str) -> str:
    """The store key of a sealed value; StoreKeyError when no configured key opens it."""
    if not sealed:
        return ""
    try:
        return _keys().decrypt(sealed.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise StoreKeyError("a merchant's store key is sealed under none of TASDID_GATEWAY_STORE_KEY_KEYS") from exc


def reseal(sealed: str) -> str:
    """A sealed value sealed again under the first encryption key (the same key inside)."""
    if not sealed:
        return ""
    try:
        return _keys().rotate(sealed.encode("ascii")).decode("ascii")
    except InvalidToken as exc:
        raise StoreKeyError("a merchant's store key is sealed under none of TASDID_GATEWAY_STORE_KEY_KEYS") from exc


def sealed_under_first(sealed: str) -> bool:
    """True when the first encryption key opens ``sealed`` (nothing to re-seal)."""
    try:
        _fernet(encryption_secrets()[0]).decrypt(sealed.encode("ascii"))
    except InvalidToken:
        return False
    return True
