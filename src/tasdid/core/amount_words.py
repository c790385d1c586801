"""An amount of dirhams written out in words, in French, Arabic or English (num2words for the numbers; the
currency's names and their grammar here, since num2words knows no dirham)."""

from decimal import ROUND_HALF_UP, Decimal

from num2words import num2words
from num2words.lang_AR import Num2Word_AR

CENT = Decimal("0.01")

# Arabic nouns after a number: one (and 100, 1000…), two, three to ten, eleven to ninety-nine.
_AR_DIRHAM = ("درهم", "درهمان", "دراهم", "درهماً")
_AR_CENTIME = ("سنتيم", "سنتيمان", "سنتيمات", "سنتيماً")


class _ArabicCurrency(Num2Word_AR):
    """num2words' Arabic currency grammar (dual, plural, accusative after 11-99) with the given noun's forms."""

    def __init__(self, forms: tuple[str, str, str, str]):
        super().__init__()
        self._forms = forms

    def set_currency_prefer(self, currency: str) -> None:
        self.currency_unit, self.currency_subunit, self.partPrecision = self._forms, ("",) * 4, 2


def _arabic_count(count: int, forms: tuple[str, str, str, str]) -> str:
    """« درهم واحد », « درهمان », « ثلاثة دراهم », « مئتان و خمسة و ثمانون درهماً »."""
    if count == 1:
        return f"{forms[0]} واحد"
    if count == 2:
        return forms[1]
    # A fresh converter per call: num2words' converters keep the number being converted in the instance.
    return " ".join(_ArabicCurrency(forms).to_currency(count, currency="MAD").split())


def _split(amount: Decimal) -> tuple[int, int]:
    cents = int(Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP) * 100)
    if cents < 0:
        raise ValueError("a negative amount has no words on a receipt")
    return divmod(cents, 100)


def _french(dirhams: int, centimes: int) -> str:
    cents = f"{num2words(centimes, lang='fr')} centime{'s' if centimes > 1 else ''}"
    if not dirhams and centimes:
        return cents
    words = num2words(dirhams, lang="fr")
    # « un million de dirhams », « deux milliards de dirhams »: the noun after million takes « de ».
    unit = "dirham" if dirhams in (0, 1) else "dirhams"
    if words.endswith(("million", "millions", "milliard", "milliards")):
        unit = "de " + unit
    return f"{words} {unit} et {cents}" if centimes else f"{words} {unit}"


def _english(dirhams: int, centimes: int) -> str:
    cents = f"{num2words(centimes, lang='en')} centime{'' if centimes == 1 else 's'}"
    if not dirhams and centimes:
        return cents
    text = f"{num2words(dirhams, lang='en')} dirham{'' if dirhams == 1 else 's'}"
    return f"{text} and {cents}" if centimes else text


def _arabic(dirhams: int, centimes: int) -> str:
    if not dirhams:
        return _arabic_count(centimes, _AR_CENTIME) if centimes else "صفر درهم"
    text = _arabic_count(dirhams, _AR_DIRHAM)
    return f"{text} و {_arabic_count(centimes, _AR_CENTIME)}" if centimes else text


_WRITERS = {"fr": _french, "en": _english, "ar": _arabic}


def amount_in_words(amount: Decimal, lang: str) -> str:
    """« deux cent quatre-vingt-cinq dirhams et cinquante centimes », "two hundred and eighty-five dirhams and
    fifty centimes", « مئتان و خمسة و ثمانون درهماً و خمسون سنتيماً ». French for a language it does not know."""
    dirhams, centimes = _split(amount)
    return _WRITERS.get(lang, _french)(dirhams, centimes)
