"""tasdid.core.digits: the one reading of identifiers in every party."""

import pytest

from tasdid.core.digits import ascii_digits, normalize


@pytest.mark.parametrize("written", [
    "0612345678", "06 12 34 56 78", "06.12.34.56.78", "06-12-34-56-78", "٠٦١٢٣٤٥٦٧٨", "۰۶۱۲۳۴۵۶۷۸",
    "０６１２３４５６７８", "０６ １２．３４－５６\u00a078", "٠٦ ١٢ 34 ۵۶ ７８", "06\u202f12\u201334\u201456\u221278",
])
def test_every_script_s_digits_and_the_usual_separators_read_as_one_identifier(written):
    assert normalize(written) == "0612345678"


def test_what_is_not_a_decimal_digit_or_a_separator_is_kept_for_the_caller_to_refuse():
    assert normalize("06²12") == "06²12"  # a superscript is not a decimal digit
    assert normalize("12a4") == "12a4" and normalize("+212 6") == "+2126"
    assert normalize("") == "" and normalize(None) == ""


def test_ascii_digits_keeps_the_separators():
    assert ascii_digits("٠٦ ١٢") == "06 12" and ascii_digits("abc") == "abc"
