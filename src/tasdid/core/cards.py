"""Card-number utilities: Luhn, brand by BIN table, masking, keyed fingerprints, expiry."""

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.views.decorators.debug import sensitive_variables

from . import digits
from .keys import secret_key
from .signing import keyed_digest

# Brand -> BIN prefixes (or ranges "2221-2720"). The gateway reads its table from settings; this is the
# default, which the sandbox bank's test cards follow. CMI is the Moroccan domestic scheme.
DEFAULT_BIN_TABLE: Mapping[str, Sequence[str]] = {
    "CMI": ["606100-606199"],
    "MASTERCARD": ["51-55", "2221-2720"],
    "VISA": ["4"],
}
BRAND_LABELS = {"CMI": "CMI", "MASTERCARD": "MasterCard", "VISA": "Visa"}

# Card data is ASCII digits. ``\d``, str.isdigit() and int() also take Arabic-Indic digits ("٤"), superscripts
# ("²") and the like: every check here is written with [0-9].
_DIGITS = re.compile(r"[0-9]+")

def ascii_digits(text: str) -> str:
    """``text`` with the decimal digits of any script written as ASCII digits (see tasdid.core.digits; for what
    a person types: a card number, a CVV, a code; never for a protocol field)."""
    return digits.ascii_digits(text)


def is_digits(text: object, length: int | None = None) -> bool:
    """True for a non-empty string of ASCII digits (of ``length`` digits when given)."""
    return (isinstance(text, str) and _DIGITS.fullmatch(text) is not None
            and (length is None or len(text) == length))


def digits_only(text: str) -> str:
    """Strip the spaces and dashes people type between groups of digits."""
    return re.sub(r"[\s-]", "", text or "")


def luhn_valid(number: str) -> bool:
    if not is_digits(number):
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_complete(partial: str) -> str:
    """Append the check digit that makes ``partial`` Luhn-valid."""
    for check in "0123456789":
        if luhn_valid(partial + check):
            return partial + check
    raise AssertionError("unreachable")


def _matches(number: str, spec: str) -> int:
    """Length of the matched prefix (0 if no match) for a prefix "4" or a range "2221-2720"."""
    if "-" in spec:
        low, high = spec.split("-", 1)
        width = len(low)
        head = number[:width]
        return width if is_digits(head, width) and int(low) <= int(head) <= int(high) else 0
    return len(spec) if number.startswith(spec) else 0


def brand_of(number: str, table: Mapping[str, Sequence[str]] = DEFAULT_BIN_TABLE) -> str | None:
    """The brand whose BIN prefix matches ``number`` the longest, or None."""
    best, best_len = None, 0
    for brand, specs in table.items():
        for spec in specs:
            n = _matches(number, spec)
            if n > best_len:
                best, best_len = brand, n
    return best


def mask(number: str) -> str:
    """First 6 and last 4 digits at most (PCI DSS 3.3)."""
    if len(number) < 13:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


@sensitive_variables()
def fingerprint(number: str, *, purpose: str = "cards") -> str:
    """A keyed hash that recognises a card without storing its number: under the bank's "cards" key by default;
    the gateway fingerprints under its own ("gateway-cards"), so that the two share no key (core.keys.OWNERS)."""
    return keyed_digest(secret_key(purpose), "pan", number)


@sensitive_variables()
def cvv_digest(number: str, cvv: str) -> str:
    """A keyed hash of the CVV bound to its card, for the issuer's sandbox records only."""
    return keyed_digest(secret_key("cards"), "cvv", number, cvv)


@dataclass(frozen=True)
class Expiry:
    month: int
    year: int  # four digits

    @property
    def yymm(self) -> str:
        return f"{self.year % 100:02d}{self.month:02d}"

    def is_past(self, today: dt.date) -> bool:
        """A card is valid through the last day of its expiry month."""
        return (self.year, self.month) < (today.year, today.month)

    def __str__(self) -> str:
        return f"{self.month:02d}/{self.year % 100:02d}"


def parse_expiry(month: str | int, year: str | int) -> Expiry:
    """Month 1-12 and a year of two or four digits (ASCII when written as text)."""
    if any(isinstance(v, str) and not is_digits(v) for v in (month, year)):
        raise ValueError("not a number")
    m, y = int(month), int(year)
    if not 1 <= m <= 12:
        raise ValueError("month out of range")
    if y < 100:
        y += 2000
    if not 2000 <= y <= 2099:
        raise ValueError("year out of range")
    return Expiry(m, y)


# A "card number" in a text, for scans of logs and databases: 13-19 digits not part of a longer run.
PAN_CANDIDATE = re.compile(r"(?<![0-9])[0-9]{13,19}(?![0-9])")


# Digits, maybe grouped as people type a card number: by a space, a dash or a dot, or as a URL carries them ("+",
# "%20", "%2B", "%2D"). A digit right after "%" or "%X" is part of a percent-escape, never of a number.
_GROUP_SEPARATOR = r"(?:[ \t+._-]|%(?:20|2[BbDd]|09))"
_RUN_START = r"(?:(?<![0-9%])(?<!%[0-9A-Fa-f])|(?<=%[0-9A-Fa-f]{2}))"
_DIGIT_RUN = re.compile(rf"{_RUN_START}[0-9](?:{_GROUP_SEPARATOR}?[0-9])*(?![0-9])")
_PURE_RUN = re.compile(rf"{_RUN_START}[0-9]+")
_SEPARATORS = re.compile(_GROUP_SEPARATOR)


def _is_card_number(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _mask_run(match: re.Match) -> str:
    run = match.group(0)
    digits = _SEPARATORS.sub("", run)
    if _is_card_number(digits):
        return mask(digits)
    # Grouped digits that are not one card number as a whole may still hold one (a card number beside a CVV).
    return _PURE_RUN.sub(lambda m: mask(m.group(0)) if _is_card_number(m.group(0)) else m.group(0), run)


def mask_card_numbers(text: str) -> str:
    """``text`` with every Luhn-valid run of 13-19 digits, grouped or not, replaced by its masked form (first 6,
    last 4): for what is written whatever it holds (error reports, logs, a URL in the access log). A Luhn-valid
    run that is no card (1 in 10 of long references) is masked too: better a reference hidden than a card shown."""
    return _DIGIT_RUN.sub(_mask_run, text)


def find_card_numbers(text: str, table: Mapping[str, Sequence[str]] = DEFAULT_BIN_TABLE) -> list[str]:
    """Luhn-valid digit runs of 13-19 digits that a card scheme of ``table`` would issue."""
    return [m for m in PAN_CANDIDATE.findall(text) if luhn_valid(m) and brand_of(m, table)]
