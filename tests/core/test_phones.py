import pytest

from tasdid.core.phones import PhoneError, PhoneKind, is_short_number, national, normalize_address, parse_number


@pytest.mark.parametrize(("raw", "kind", "e164"), [
    ("0612345678", PhoneKind.MOBILE, "+212612345678"),
    ("06 12 34 56 78", PhoneKind.MOBILE, "+212612345678"),
    ("+212 7 00 00 00 02", PhoneKind.MOBILE, "+212700000002"),
    ("0522000001", PhoneKind.FIXED, "+212522000001"),
    ("00212522000001", PhoneKind.FIXED, "+212522000001"),
])
def test_moroccan_numbers_of_the_right_kind(raw, kind, e164):
    assert parse_number(raw, kind) == e164


@pytest.mark.parametrize(("raw", "kind", "code"), [
    ("0522000001", PhoneKind.MOBILE, "wrong_kind"),
    ("0612345678", PhoneKind.FIXED, "wrong_kind"),
    ("06123", PhoneKind.MOBILE, "invalid"),
    ("hello", PhoneKind.MOBILE, "invalid"),
    ("+33612345678", PhoneKind.MOBILE, "invalid"),
    ("", PhoneKind.FIXED, "invalid"),
])
def test_wrong_numbers_say_why(raw, kind, code):
    with pytest.raises(PhoneError) as caught:
        parse_number(raw, kind)
    assert caught.value.code == code


def test_national_display_and_sms_addresses():
    assert national("+212612345678") == "06 12 34 56 78"
    assert national("1111") == "1111"
    assert normalize_address(" 1111 ") == "1111"
    assert normalize_address("0661000001") == "+212661000001"
    with pytest.raises(PhoneError):
        normalize_address("not a number")


@pytest.mark.parametrize("text", ["1111", " 1111 ", "123", "12345"])
def test_short_numbers_are_3_to_5_ascii_digits(text):
    assert is_short_number(text)


@pytest.mark.parametrize("text", ["", "12", "123456", "١١١١", "１１１１", "11 11", "+1111", "²²²²"])
def test_other_addresses_are_not_short_numbers(text):
    assert not is_short_number(text)
