"""Identifiers as people and files write them: one reading in every party.

Client numbers, phone numbers, payment codes, payment identifiers and card numbers are read the same way
wherever they arrive (the import, the portal's forms, the gateway's card form): the decimal digits of any
script (Arabic-Indic "٠١٢", Eastern Arabic-Indic "۰۱۲", full-width "０１２", …) as the ASCII digits they mean, and
the spaces, dots and dashes people put between groups dropped. Anything else is kept, so that the caller's
check (ASCII digits, a length) refuses it; superscripts such as "²" are not decimal digits and stay as typed.
Never for a protocol field: those are ASCII by definition and checked as such.
"""

import re
import unicodedata

# Spaces of any kind (no-break, full-width), dots and dashes, full-width ones and the Unicode hyphens included.
_SEPARATORS = re.compile(r"[\s.\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d\uff0e]+")
_DECIMAL = re.compile(r"\d")  # on str: every character of category Nd


def _ascii(match: re.Match) -> str:
    return str(unicodedata.decimal(match.group()))


def ascii_digits(text: str) -> str:
    """``text`` with every decimal digit, whatever its script, written as the ASCII digit it means."""
    text = text or ""
    return text if text.isascii() else _DECIMAL.sub(_ascii, text)


def normalize(text: str) -> str:
    """An identifier as typed or written ("٠٦ ١٢-34.56 ７８") in its one form ("0612345678")."""
    text = text or ""
    if text.isascii() and text.isdigit():  # already in its form: the import's usual case, millions of times
        return text
    return ascii_digits(_SEPARATORS.sub("", text))
