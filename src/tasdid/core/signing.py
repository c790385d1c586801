"""Message signatures between parties: the CMI "ver3" hash and HMAC-signed JSON."""

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

# Fields that never take part in the ver3 hash (names compared case-insensitively).
VER3_EXCLUDED = frozenset({"hash", "encoding"})

# ASCII digit runs, as PHP reads them ("²" or "٢" are letters to natcasesort, and int() of "²" raises).
_CHUNKS = re.compile(r"([0-9]+)")


def natural_key(name: str) -> tuple:
    """Sort key reproducing PHP's natcasesort for field names: case-insensitive, digit runs by value."""
    parts = _CHUNKS.split(name.lower())
    return tuple((0, int(p), p) if _CHUNKS.fullmatch(p) else (1, 0, p) for p in parts if p != "")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|")


def ver3_plaintext(fields: Mapping[str, str], store_key: str) -> str:
    names = sorted((n for n in fields if n.lower() not in VER3_EXCLUDED), key=natural_key)
    return "|".join([*(_escape(fields[n]) for n in names), _escape(store_key)])


def ver3_hash(fields: Mapping[str, str], store_key: str) -> str:
    """Hash ver3 over every field but ``hash``/``encoding`` (DESIGN.md §4)."""
    digest = hashlib.sha512(ver3_plaintext(fields, store_key).encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


def ver3_verify(fields: Mapping[str, str], store_key: str, *, hash_field: str = "hash") -> bool:
    """True when the hash posted in ``hash_field`` (any case) matches the fields; constant time."""
    posted = next((v for k, v in fields.items() if k.lower() == hash_field.lower()), None)
    if not posted:
        return False
    others = {k: v for k, v in fields.items() if k.lower() != hash_field.lower()}
    return hmac.compare_digest(posted.encode(), ver3_hash(others, store_key).encode())


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def hmac_sign(payload: Mapping[str, Any], key: bytes) -> str:
    """HMAC-SHA256 over the canonical JSON of ``payload``, base64url without padding."""
    digest = hmac.new(key, canonical_json(payload), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def hmac_verify(payload: Mapping[str, Any], signature: str, key: bytes) -> bool:
    return hmac.compare_digest(hmac_sign(payload, key).encode(), (signature or "").encode())


def keyed_digest(key: bytes, *parts: str) -> str:
    """A keyed, non-reversible digest of ``parts`` (base64url, no digits-only runs worth a card scan)."""
    mac = hmac.new(key, "\x1f".join(parts).encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")
