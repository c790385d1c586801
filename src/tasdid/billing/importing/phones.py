"""Moroccan numbers at import speed: the common spellings checked against phonenumbers' own metadata.

``tasdid.core.phones.parse_number`` costs ~30 µs a number, too slow for millions of lines. Numbers written
the usual ways ("05 22 00 00 01", "0522000001", "+212 5 22 00 00 01") are classified here with the same
metadata patterns phonenumbers uses, in the same order; anything else goes to ``parse_number``, which
also gives the precise error. A property test holds the two to the same answers.
"""

import re
from functools import lru_cache

import phonenumbers

from tasdid.core import digits
from tasdid.core.phones import REGION, PhoneKind, parse_number

_SPELLING = re.compile(r"(?:0|\+212|00212)([0-9]{9})")

_metadata = phonenumbers.PhoneMetadata.metadata_for_region(REGION)


def _desc(name: str):
    desc = getattr(_metadata, name)
    if desc is None or not desc.national_number_pattern:
        return None
    lengths = tuple(desc.possible_length) or tuple(_metadata.general_desc.possible_length)
    return re.compile(desc.national_number_pattern), frozenset(lengths)


# phonenumbers' number_type() tries these before the fixed and mobile patterns: a match there is not ours.
_OTHER_TYPES = [d for d in map(_desc, ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number",
                                       "pager", "uan", "voicemail")) if d is not None]
_GENERAL = _desc("general_desc")
_FIXED = _desc("fixed_line")
_MOBILE = _desc("mobile")


def _matches(desc, nsn: str) -> bool:
    return desc is not None and len(nsn) in desc[1] and desc[0].fullmatch(nsn) is not None


def _kind_of(nsn: str) -> PhoneKind | None:
    if not _matches(_GENERAL, nsn) or any(_matches(d, nsn) for d in _OTHER_TYPES):
        return None
    if _matches(_FIXED, nsn):
        return PhoneKind.FIXED  # FIXED_LINE, or FIXED_LINE_OR_MOBILE which core.phones counts as fixed
    if _matches(_MOBILE, nsn):
        return PhoneKind.MOBILE
    return None


@lru_cache(maxsize=1024)
def _fallback(text: str, kind: PhoneKind | None) -> str:
    return parse_number(text, kind)


def normalize_number(text: str, kind: PhoneKind | None = None) -> str:
    """E.164 of a Moroccan number of ``kind`` (any kind when None); PhoneError as parse_number raises it."""
    found = _SPELLING.fullmatch(digits.normalize(text))
    if found is not None:
        nsn = found.group(1)
        actual = _kind_of(nsn)
        if actual is not None and (kind is None or actual == kind):
            return "+212" + nsn
    return _fallback(text, kind)
