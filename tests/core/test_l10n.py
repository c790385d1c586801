"""Amounts, months, dates and digits in the page's language (tasdid.core.l10n and the tasdid_i18n filters)."""

import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation

from tasdid.core import l10n

NBSP = "\u00a0"


@pytest.mark.parametrize(("lang", "expected"), [
    ("fr", f"285.00{NBSP}DH"), ("en", f"285.00{NBSP}DH"), ("ar", f"285.00{NBSP}درهم"),
])
def test_amounts_keep_the_bill_s_form_with_the_language_s_unit(lang, expected):
    assert l10n.amount(Decimal("285"), lang) == expected
    assert l10n.amount("1234.5", lang, unit=False) == "1234.50"


@pytest.mark.parametrize(("lang", "expected"), [
    ("fr", "Mai 2017"), ("en", "May 2017"), ("ar", "ماي 2017"),
])
def test_month_names_are_the_page_s_not_the_browser_s(lang, expected):
    assert l10n.month_year(dt.date(2017, 5, 1), lang) == expected


def test_moroccan_arabic_month_names():
    assert [l10n.month_year(dt.date(2017, m, 1), "ar").split()[0] for m in (7, 8, 9, 11, 12)] == [
        "يوليوز", "غشت", "شتنبر", "نونبر", "دجنبر"]


def test_arabic_digits_only_on_arabic_pages_and_only_when_asked(settings):
    assert l10n.digits("19/06/2017", "ar") == "19/06/2017"  # the default: western digits everywhere
    settings.ARABIC_DIGITS = "arabic"
    assert l10n.amount(Decimal("120.50"), "ar") == f"١٢٠٫٥٠{NBSP}درهم"
    assert l10n.day(dt.date(2017, 6, 19), "ar") == "١٩/٠٦/٢٠١٧"
    assert l10n.month_year(dt.date(2017, 6, 1), "ar") == "يونيو ٢٠١٧"
    assert l10n.amount(Decimal("120.50"), "fr") == f"120.50{NBSP}DH"
    assert l10n.day(dt.date(2017, 6, 19), "en") == "19/06/2017"


def test_unknown_language_is_french():
    assert l10n.month_year(dt.date(2017, 8, 1), "de") == "Août 2017"


def test_filters_follow_the_active_language(settings):
    settings.ARABIC_DIGITS = "arabic"
    template = Template('{% load tasdid_i18n %}{{ a|amount }}|{{ a|amount:"bare" }}|{{ m|month_year }}|{{ d|day }}|'
                        '{{ none|amount }}')
    context = Context({"a": Decimal("99"), "m": dt.date(2017, 6, 1), "d": dt.date(2017, 7, 19), "none": None})
    with translation.override("fr"):
        assert template.render(context) == f"99.00{NBSP}DH|99.00|Juin 2017|19/07/2017|"
    with translation.override("en"):
        assert template.render(context) == f"99.00{NBSP}DH|99.00|June 2017|19/07/2017|"
    with translation.override("ar"):
        assert template.render(context) == f"٩٩٫٠٠{NBSP}درهم|٩٩٫٠٠|يونيو ٢٠١٧|١٩/٠٧/٢٠١٧|"


@pytest.mark.parametrize(("given", "expected"), [("", "western"), ("arabic", "arabic"), (" Western ", "western")])
def test_the_arabic_digits_setting(tmp_path, given, expected):
    loaded = _settings(tmp_path, given)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == expected


def test_an_unknown_arabic_digits_setting_stops_the_start(tmp_path):
    loaded = _settings(tmp_path, "hindi")
    assert loaded.returncode != 0
    assert """TASDID_ARABIC_DIGITS must be "western" or "arabic", not 'hindi'""" in loaded.stderr


def _settings(tmp_path, value: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASDID_", "DATABASE_URL", "DJANGO_"))}
    env.update({"TASDID_VAR_DIR": str(tmp_path), "TASDID_SANDBOX": "1"})
    if value:
        env["TASDID_ARABIC_DIGITS"] = value
    return subprocess.run([sys.executable, "-c", "import tasdid.settings as s; print(s.ARABIC_DIGITS)"], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("lang", "when", "expected"), [
    ("fr", dt.date(2017, 6, 19), "19 juin 2017"), ("fr", dt.date(2017, 7, 1), "1er juillet 2017"),
    ("en", dt.date(2017, 8, 1), "1 August 2017"), ("ar", dt.date(2017, 7, 19), "19 يوليوز 2017"),
    ("ar", dt.date(2017, 8, 5), "5 غشت 2017"),
])
def test_long_dates_use_the_page_s_month_names(lang, when, expected):
    assert l10n.long_date(when, lang) == expected


def test_long_dates_and_times_follow_the_arabic_digits_setting(settings):
    settings.ARABIC_DIGITS = "arabic"
    moment = dt.datetime(2017, 8, 5, 14, 35, tzinfo=dt.UTC)  # 15:35 in Casablanca (UTC+1)
    assert l10n.long_date(moment, "ar") == "٥ غشت ٢٠١٧"
    assert l10n.clock(moment, "ar") == "١٥:٣٥"
    assert l10n.clock(moment, "fr") == "15:35"
