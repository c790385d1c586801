from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasdid.core.money import AmountError, dh, from_minor, parse_amount, to_minor, ttc_of, vat_of, wire


@pytest.mark.parametrize(("raw", "expected"), [
    ("285.00", Decimal("285.00")), ("99", Decimal("99.00")), ("0.5", Decimal("0.50")), (186, Decimal("186.00")),
])
def test_parse_amount_accepts_what_merchants_send(raw, expected):
    assert parse_amount(raw) == expected


@pytest.mark.parametrize("raw", ["", "abc", "1.234", "-5.00", "0", "0.00", "1e3", "1,50", " ", "99999999999.00",
                                 # digits other than ASCII, which Decimal() reads: an amount on the wire is ASCII
                                 "٢٨٥.00", "۲۸۵.۰۰", "285.٠٠", "²", "１８６.00", "285.00\n0"])
def test_parse_amount_refuses_junk(raw):
    with pytest.raises(AmountError):
        parse_amount(raw)


def test_parse_amount_refuses_floats():
    with pytest.raises(AmountError):
        parse_amount(1.5)


def test_vat_and_ttc_round_half_up_to_cents():
    assert vat_of(Decimal("155.00")) == Decimal("31.00")
    assert ttc_of(Decimal("82.50")) == Decimal("99.00")
    assert vat_of(Decimal("0.025")) == Decimal("0.01")


@given(st.integers(min_value=0, max_value=10**12))
def test_minor_units_round_trip(centimes):
    assert to_minor(from_minor(centimes)) == centimes
    assert wire(from_minor(centimes)) == f"{centimes // 100}.{centimes % 100:02d}"


@pytest.mark.parametrize(
    ("amount", "text"),
    [("285.00", "285.00 DH"), ("0.5", "0.50 DH"), ("10000", "10000.00 DH"), ("1234567.89", "1234567.89 DH")],
)
def test_amounts_as_the_guide_writes_them(amount, text):
    assert dh(Decimal(amount)) == text
    assert dh(amount, space="\u00a0") == text.replace(" ", "\u00a0")
