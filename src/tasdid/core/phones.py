"""Moroccan phone numbers (phonenumbers): the kind of line, E.164 storage, national display."""

from enum import StrEnum

import phonenumbers
from phonenumbers import PhoneNumberType

from .cards import is_digits
from .digits import normalize

REGION = "MA"


class PhoneKind(StrEnum):
    MOBILE = "mobile"
    FIXED = "fixed"


class PhoneError(ValueError):
    """Not a Moroccan number of the expected kind; ``code`` says why (invalid / wrong_kind)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


_KINDS = {
    PhoneKind.MOBILE: {PhoneNumberType.MOBILE},
    PhoneKind.FIXED: {PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE},
}


def parse_number(text: str, kind: PhoneKind | None = None) -> str:
    """E.164 form ("+212612345678") of a Moroccan number, optionally of a given kind."""
    raw = normalize((text or "").strip())
    try:
        number = phonenumbers.parse(raw, REGION)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError("invalid", f"not a phone number: {raw!r}") from exc
    if number.country_code != 212 or not phonenumbers.is_valid_number(number):
        raise PhoneError("invalid", f"not a valid Moroccan number: {raw!r}")
    if kind is not None and phonenumbers.number_type(number) not in _KINDS[kind]:
        raise PhoneError("wrong_kind", f"not a {kind} number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def national(e164: str) -> str:
    """"+212612345678" -> "06 12 34 56 78"; short numbers and foreign numbers are returned as they are."""
    try:
        number = phonenumbers.parse(e164, REGION)
    except phonenumbers.NumberParseException:
        return e164
    if number.country_code != 212:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def is_short_number(text: str) -> bool:
    """Service short numbers such as 1111 (3 to 5 ASCII digits)."""
    raw = (text or "").strip()
    return is_digits(raw) and 3 <= len(raw) <= 5


def normalize_address(text: str) -> str:
    """An SMS address: a short number as is, anything else as E.164 (any country), or ValueError."""
    raw = (text or "").strip()
    if is_short_number(raw):
        return raw
    try:
        number = phonenumbers.parse(raw, REGION)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError("invalid", f"not a phone number: {raw!r}") from exc
    if not phonenumbers.is_possible_number(number):
        raise PhoneError("invalid", f"not a phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
