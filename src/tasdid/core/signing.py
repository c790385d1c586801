"""Message signatures between parties: the CMI "ver3" hash and HMAC-signed JSON."""

import base64
import hashlib
import hmac
import html
import json
import re
from collections.abc import Mapping
from functools import cmp_to_key
from typing import Any

# Fields that never take part in the ver3 hash (names compared case-insensitively).
VER3_EXCLUDED = frozenset({"hash", "encoding"})


def _isdigit(c: int) -> bool:
    return 0x30 <= c <= 0x39  # ASCII only, as C's isdigit in PHP's locale ("²" and "٢" are other bytes)


def _isspace(c: int) -> bool:
    return c in (0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D)


def _upper(c: int) -> int:
    return c - 32 if 0x61 <= c <= 0x7A else c


def natcasecmp(a: str, b: str) -> int:
    """PHP's strnatcasecmp (ext/standard/strnatcmp.c), the comparison natcasesort sorts names with: over the
    UTF-8 bytes, case folded to upper case (so "_" sorts after letters), runs of digits compared by value,
    whitespace skipped, leading zeros skipped at the start. -1, 0 or 1."""
    x, y = a.encode("utf-8"), b.encode("utf-8")
    if not x or not y:
        return 0 if len(x) == len(y) else (1 if len(x) > len(y) else -1)
    i = j = 0
    leading = True
    while True:
        ca = x[i] if i < len(x) else 0
        cb = y[j] if j < len(y) else 0
        if leading:  # leading zeros before a digit, at the start only
            while ca == 0x30 and i + 1 < len(x) and _isdigit(x[i + 1]):
                i += 1
                ca = x[i]
            while cb == 0x30 and j + 1 < len(y) and _isdigit(y[j + 1]):
                j += 1
                cb = y[j]
            leading = False
        while _isspace(ca):
            i += 1
            ca = x[i] if i < len(x) else 0
        while _isspace(cb):
            j += 1
            cb = y[j] if j < len(y) else 0
        if _isdigit(ca) and _isdigit(cb):
            compare = _compare_left if ca == 0x30 or cb == 0x30 else _compare_right
            result, i, j = compare(x, i, y, j)
            if result:
                return result
            if i == len(x) and j == len(y):
                return 0
            if i == len(x):
                return -1
            if j == len(y):
                return 1
            ca, cb = x[i], y[j]
        ca, cb = _upper(ca), _upper(cb)
        if ca != cb:
            return -1 if ca < cb else 1
        i += 1
        j += 1
        if i >= len(x) and j >= len(y):
            return 0
        if i >= len(x):
            return -1
        if j >= len(y):
            return 1


def _compare_right(x: bytes, i: int, y: bytes, j: int) -> tuple[int, int, int]:
    """Two runs of digits without leading zero: the longer run is the greater; same length, the first
    difference decides."""
    bias = 0
    while True:
        da = i < len(x) and _isdigit(x[i])
        db = j < len(y) and _isdigit(y[j])
        if not da and not db:
            return bias, i, j
        if not da:
            return -1, i, j
        if not db:
            return 1, i, j
        if x[i] < y[j] and not bias:
            bias = -1
        elif x[i] > y[j] and not bias:
            bias = 1
        i += 1
        j += 1


def _compare_left(x: bytes, i: int, y: bytes, j: int) -> tuple[int, int, int]:
    """Two runs of digits, one starting with 0: compared digit by digit, like decimals."""
    while True:
        da = i < len(x) and _isdigit(x[i])
        db = j < len(y) and _isdigit(y[j])
        if not da and not db:
            return 0, i, j
        if not da:
            return -1, i, j
        if not db:
            return 1, i, j
        if x[i] != y[j]:
            return (-1 if x[i] < y[j] else 1), i, j
        i += 1
        j += 1


# Sort key reproducing PHP's natcasesort for field names.
natural_key = cmp_to_key(natcasecmp)


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


def ver3_ordered(fields: Mapping[str, str], *, hash_field: str = "HASH") -> dict[str, str]:
    """``fields`` in ver3 hash order (natcasesort of the names), ``hash_field`` (any case) last: a merchant that
    hashes the fields in the order they arrive (skipping ``hash`` and ``encoding``) then verifies them too."""
    names = sorted((n for n in fields if n.lower() != hash_field.lower()), key=natural_key)
    ordered = {n: fields[n] for n in names}
    ordered.update({n: v for n, v in fields.items() if n.lower() == hash_field.lower()})
    return ordered


# What PHP's trim() takes off both ends, as CMI's merchant kit trims a posted value before hashing it.
_PHP_TRIM = " \t\n\r\0\x0b"
# An HTML entity as PHP's html_entity_decode reads one: with its semicolon ("&amp" alone stays as it is).
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def received_value(value: str) -> str:
    """A value as CMI's merchant kit hashes a posted one: HTML entities decoded, then trimmed (a real CMI
    callback carries a trailing newline in a value, which its hash does not cover)."""
    decoded = _ENTITY.sub(lambda m: html.unescape(m.group(0)), value)
    return decoded.strip(_PHP_TRIM)


def ver3_verify_received(fields: Mapping[str, str], store_key: str, *,
                         hash_field: str = "HASH") -> dict[str, str] | None:
    """Check a gateway's message as CMI's merchant kit does: the ver3 hash over every value decoded and
    trimmed (``received_value``). Returns the fields so read, ``hash_field`` left out, to be used in place of
    the posted ones; None when the hash does not match (nor over the values exactly as posted)."""
    posted = next((v for k, v in fields.items() if k.lower() == hash_field.lower()), None)
    if not posted:
        return None
    others = {k: v for k, v in fields.items() if k.lower() != hash_field.lower()}
    read = {k: received_value(v) for k, v in others.items()}
    expected = posted.strip(_PHP_TRIM).encode()
    if hmac.compare_digest(expected, ver3_hash(read, store_key).encode()):
        return read
    # a gateway that hashed the values exactly as it posted them (one with spaces or an entity in a value)
    if hmac.compare_digest(expected, ver3_hash(others, store_key).encode()):
        return read
    return None


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
