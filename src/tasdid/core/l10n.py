"""Amounts, months, dates and digits as a page in one language writes them (pure functions of the language).

A French page shows French month names whatever the browser says (the page's language is the customer's choice,
tasdid.core.i18n). Amounts keep the bill's form (a point, two decimals, no grouping: "285.00 DH", DESIGN.md) with
the unit of the language ("DH", "درهم"). Arabic pages write digits as settings.ARABIC_DIGITS says: "western"
(0-9, the default, as Moroccan bills and banks print them) or "arabic" (Eastern Arabic-Indic ٠-٩, with the Arabic
decimal separator « ٫ »). Identifiers (numbers, codes, references) are never converted: the customer types them
as printed. Templates use the filters of ``tasdid_i18n`` (``amount``, ``month_year``, ``day``, ``day_time``,
``digits``); mails and PDFs may call these functions with the language they are written in.
"""

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.utils import timezone, translation

from .money import wire

# Month names per language. Arabic as Morocco writes them (« ماي », « يوليوز », « غشت », « شتنبر »…), not the
# Levantine or Egyptian names of Django's Arabic locale.
MONTHS = {
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
    "ar": ("يناير", "فبراير", "مارس", "أبريل", "ماي", "يونيو", "يوليوز", "غشت", "شتنبر", "أكتوبر", "نونبر",
           "دجنبر"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
}
UNITS = {"fr": "DH", "ar": "درهم", "en": "DH"}
NBSP = "\u00a0"
EASTERN_DIGITS = str.maketrans("0123456789.", "٠١٢٣٤٥٦٧٨٩٫")
DIGIT_STYLES = ("western", "arabic")


def language(lang: str | None = None) -> str:
    """``lang``, or the active one; French for anything that is not ours."""
    code = (lang or translation.get_language() or settings.LANGUAGE_CODE).split("-", 1)[0].lower()
    return code if code in MONTHS else settings.LANGUAGE_CODE


def digits(text: str, lang: str | None = None) -> str:
    """``text`` with its digits (and decimal point) in the script of the page: Eastern Arabic-Indic on an Arabic
    page when settings.ARABIC_DIGITS is "arabic", as it is otherwise."""
    if language(lang) == "ar" and getattr(settings, "ARABIC_DIGITS", "western") == "arabic":
        return str(text).translate(EASTERN_DIGITS)
    return str(text)


def amount(value: Decimal | str | int, lang: str | None = None, *, unit: bool = True) -> str:
    """ "285.00 DH" (fr, en), "285.00 درهم" (ar; "٢٨٥٫٠٠ درهم" with Arabic digits); without ``unit``, the number
    alone (a column headed « Montant (DH) »). A non-breaking space keeps the unit with its number."""
    lang = language(lang)
    number = digits(wire(Decimal(str(value))), lang)
    return f"{number}{NBSP}{UNITS[lang]}" if unit else number


def month_year(value: dt.date, lang: str | None = None) -> str:
    """The billed month: "Mai 2017", "ماي 2017", "May 2017"."""
    lang = language(lang)
    name = MONTHS[lang][value.month - 1]
    return digits(f"{name[:1].upper()}{name[1:]} {value.year}", lang)


def day(value: dt.date | dt.datetime, lang: str | None = None) -> str:
    """A day as Moroccan bills print it in every language: "19/06/2017" (local time for a datetime)."""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
    return digits(f"{value:%d/%m/%Y}", lang)


def day_time(value: dt.datetime, lang: str | None = None) -> str:
    """A moment, local time: "19/06/2017 14:35" (seconds are not for customers)."""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return digits(f"{local:%d/%m/%Y %H:%M}", lang)


def long_date(value: dt.date | dt.datetime, lang: str | None = None) -> str:
    """A day written out, local time for a datetime: "1er juillet 2017", "19 juin 2017", "19 يونيو 2017" (the
    Moroccan month names of MONTHS), "19 June 2017"."""
    if isinstance(value, dt.datetime):
        value = (timezone.localtime(value) if timezone.is_aware(value) else value).date()
    lang = language(lang)
    number = "1er" if lang == "fr" and value.day == 1 else str(value.day)
    return digits(f"{number} {MONTHS[lang][value.month - 1]} {value.year}", lang)


def clock(value: dt.datetime, lang: str | None = None) -> str:
    """The time of a moment, local time: "14:35" ("١٤:٣٥" with Arabic digits)."""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return digits(f"{local:%H:%M}", lang)
