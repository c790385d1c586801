"""Amounts in words on the receipt: dirhams and centimes in French, English and Arabic."""

from decimal import Decimal

import pytest

from tasdid.core.amount_words import amount_in_words


@pytest.mark.parametrize(("amount", "fr", "en", "ar"), [
    ("285.00", "deux cent quatre-vingt-cinq dirhams", "two hundred and eighty-five dirhams",
     "مئتان و خمسة و ثمانون درهماً"),
    ("285.50", "deux cent quatre-vingt-cinq dirhams et cinquante centimes",
     "two hundred and eighty-five dirhams and fifty centimes", "مئتان و خمسة و ثمانون درهماً و خمسون سنتيماً"),
    ("1.00", "un dirham", "one dirham", "درهم واحد"),
    ("2.00", "deux dirhams", "two dirhams", "درهمان"),
    ("3.00", "trois dirhams", "three dirhams", "ثلاثة دراهم"),
    ("12.00", "douze dirhams", "twelve dirhams", "اثنا عشر درهماً"),
    ("80.00", "quatre-vingts dirhams", "eighty dirhams", "ثمانون درهماً"),
    ("186.01", "cent quatre-vingt-six dirhams et un centime", "one hundred and eighty-six dirhams and one centime",
     "مائة و ستة و ثمانون درهماً و سنتيم واحد"),
    ("0.50", "cinquante centimes", "fifty centimes", "خمسون سنتيماً"),
    ("2000.00", "deux mille dirhams", "two thousand dirhams", "ألفا درهم"),
    ("1000000.00", "un million de dirhams", "one million dirhams", "مليون درهم"),
])
def test_amount_in_words_in_each_language(amount, fr, en, ar):
    value = Decimal(amount)
    assert (amount_in_words(value, "fr"), amount_in_words(value, "en"), amount_in_words(value, "ar")) == (fr, en, ar)


def test_amount_in_words_rounds_to_the_centime_and_speaks_french_by_default():
    assert amount_in_words(Decimal("99.999"), "fr") == "cent dirhams"
    assert amount_in_words(Decimal("99"), "xx") == "quatre-vingt-dix-neuf dirhams"
    # The Arabic converter keeps state per call: one amount does not leak into the next.
    assert [amount_in_words(Decimal(v), "ar") for v in ("3", "3.50", "3")] == [
        "ثلاثة دراهم", "ثلاثة دراهم و خمسون سنتيماً", "ثلاثة دراهم"]
    with pytest.raises(ValueError, match="negative"):
        amount_in_words(Decimal("-1"), "fr")
