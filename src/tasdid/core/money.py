"""Money in dirhams: Decimal with two places, integer centimes on the wire, never float."""

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
MAD_NUMERIC = "504"
VAT_RATE = Decimal("0.20")
MAX_AMOUNT = Decimal("9999999999.99")

# ASCII digits only: Decimal() would read "٢٨٥.00" (Arabic-Indic digits) as 285.00.
_WIRE_AMOUNT = re.compile(r"[0-9]{1,10}(\.[0-9]{1,2})?")


class AmountError(ValueError):
    """An amount that is not a positive number of dirhams with at most two decimals."""


def quantize(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_amount(text: str | int | Decimal, *, allow_zero: bool = False) -> Decimal:
    """Parse an amount as a merchant or a file writes it ("285.00", "99", 285); refuse floats and junk."""
    if isinstance(text, bool | float):
        raise AmountError("amount must be written as text or an integer, not a float")
    if isinstance(text, Decimal):
        value = text
    else:
        raw = str(text).strip()
        if not _WIRE_AMOUNT.fullmatch(raw):
            raise AmountError(f"not an amount with at most two decimals: {raw!r}")
        try:
            value = Decimal(raw)
        except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
            raise AmountError(str(exc)) from exc
    if value != quantize(value):
        raise AmountError(f"more than two decimals: {value}")
    if value < 0 or (value == 0 and not allow_zero):
        raise AmountError("amount must be positive")
    if value > MAX_AMOUNT:
        raise AmountError("amount too large")
    return quantize(value)


def to_minor(amount: Decimal) -> int:
    """Dirhams to centimes."""
    return int(quantize(amount) * 100)


def from_minor(centimes: int) -> Decimal:
    return quantize(Decimal(centimes) / 100)


def wire(amount: Decimal) -> str:
    """The merchant protocol's form: "285.00"."""
    return f"{quantize(amount):.2f}"


def dh(amount: Decimal | str | int, *, space: str = " ") -> str:
    """"285.00 DH", as the guide's bill writes amounts (a point, no grouping) on every party's pages and in SMS;
    ``space`` before the unit (a non-breaking one on a page, a plain one in an SMS's GSM alphabet)."""
    return f"{wire(Decimal(str(amount)))}{space}DH"


def vat_of(amount_ht: Decimal, rate: Decimal = VAT_RATE) -> Decimal:
    return quantize(amount_ht * rate)


def ttc_of(amount_ht: Decimal, rate: Decimal = VAT_RATE) -> Decimal:
    return quantize(amount_ht + vat_of(amount_ht, rate))
