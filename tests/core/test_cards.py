import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasdid.core.cards import brand_of, find_card_numbers, luhn_complete, luhn_valid, mask, parse_expiry


@pytest.mark.parametrize("number", ["4111111111111111", "5555555555554444", "79927398713"])
def test_luhn_accepts_valid_numbers(number):
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4111111111111112", "", "4111 1111 1111 1111", "abcd", "79927398710"])
def test_luhn_refuses_invalid_numbers(number):
    assert not luhn_valid(number)


@given(st.text(alphabet="0123456789", min_size=12, max_size=18))
def test_luhn_complete_always_yields_a_valid_number_and_one_digit_change_breaks_it(partial):
    full = luhn_complete(partial)
    assert full.startswith(partial) and len(full) == len(partial) + 1 and luhn_valid(full)
    changed = full[:-1] + str((int(full[-1]) + 1) % 10)
    assert not luhn_valid(changed)


@pytest.mark.parametrize(("number", "brand"), [
    ("4111111111111111", "VISA"), ("5555555555554444", "MASTERCARD"), ("2221000000000009", "MASTERCARD"),
    ("2720990000000007", "MASTERCARD"), ("6061000000000000", "CMI"), ("6061990000000000", "CMI"),
    ("6062000000000000", None), ("3530111333300000", None), ("2220990000000000", None),
])
def test_brand_by_longest_bin_prefix(number, brand):
    assert brand_of(number) == brand


def test_mask_keeps_first_six_and_last_four_only():
    assert mask("4111111111111111") == "411111******1111"
    assert mask("4111111111111") == "411111***1111"
    assert mask("123") == "***"


def test_expiry_is_valid_through_its_month():
    expiry = parse_expiry("11", "26")
    assert (expiry.year, expiry.month, expiry.yymm, str(expiry)) == (2026, 11, "2611", "11/26")
    assert not expiry.is_past(dt.date(2026, 11, 30))
    assert expiry.is_past(dt.date(2026, 12, 1))
    with pytest.raises(ValueError):
        parse_expiry("13", "2026")


def test_card_number_scan_finds_scheme_numbers_only():
    text = "ref 0000111995072017 pan 4111111111111111, masked 411111******1111, long 41111111111111110000"
    assert find_card_numbers(text) == ["4111111111111111"]
