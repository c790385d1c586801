import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasdid.core.cards import (
    ascii_digits,
    brand_of,
    find_card_numbers,
    is_digits,
    luhn_complete,
    luhn_valid,
    mask,
    parse_expiry,
)


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


ARABIC_VISA = "٤١١١١١١١١١١١١١١١"  # 4111 1111 1111 1111 in Arabic-Indic digits
EASTERN_VISA = "۴۱۱۱۱۱۱۱۱۱۱۱۱۱۱۱"  # the same in Eastern Arabic-Indic (Persian) digits


def test_ascii_digits_reads_the_decimal_digits_of_every_script_and_nothing_else():
    assert ascii_digits(ARABIC_VISA) == ascii_digits(EASTERN_VISA) == "4111111111111111"
    assert ascii_digits("٠١٢٣٤٥٦٧٨٩ ۰۱۲۳۴۵۶۷۸۹ ０１２３４５６７８９") == "0123456789 0123456789 0123456789"
    assert ascii_digits("²１٣a") == "²13a"  # a superscript is not a decimal digit: the caller's check refuses it
    assert ascii_digits("") == "" and ascii_digits(None) == ""


@pytest.mark.parametrize("text", ["٤١١١", "²", "１", "12 3", "", None, 123])
def test_is_digits_is_ascii_only(text):
    assert not is_digits(text)


def test_card_checks_take_ascii_digits_only():
    assert is_digits("0123456789") and is_digits("123", 3) and not is_digits("1234", 3)
    # int() would read these and Luhn would pass: a number the bank never knows
    assert not luhn_valid(ARABIC_VISA) and not luhn_valid(EASTERN_VISA)
    assert brand_of("4a") == "VISA" and brand_of("٢٢٢١٠٠٠٠") is None and brand_of("22a1000000000000") is None
    assert find_card_numbers(f"pan {ARABIC_VISA} end") == []
    for month, year in (("٠٩", "29"), ("09", "٢٩"), ("²", "29")):
        with pytest.raises(ValueError):
            parse_expiry(month, year)
    assert parse_expiry("09", "29").yymm == "2909" and parse_expiry(9, 2029).yymm == "2909"
