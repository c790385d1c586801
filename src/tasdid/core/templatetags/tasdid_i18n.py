"""The language switch shown on every customer page: one link per language, to this page in that language."""

from urllib.parse import urlencode

from django import template
from django.conf import settings
from django.utils import translation

from tasdid.core import i18n, l10n

register = template.Library()


@register.inclusion_tag("core/includes/language_switch.html", takes_context=True)
def language_switch(context) -> dict:
    request = context.get("request")
    current = translation.get_language() or settings.LANGUAGE_CODE
    links = []
    for code, name in settings.LANGUAGES:
        url = None
        if request is not None:
            query = request.GET.copy()
            query[i18n.PARAM] = code
            url = f"{request.path}?{urlencode(sorted(query.items()))}"
        links.append({"code": code, "name": name, "url": url, "current": code == current,
                      "dir": "rtl" if i18n.is_rtl(code) else "ltr"})
    return {"links": links}


# Amounts, months, dates and digits in the page's language (tasdid.core.l10n): {{ invoice.amount_ttc|amount }},
# {{ total|amount:"bare" }} (no unit), {{ invoice.month|month_year }}, {{ due|day }}, {{ at|day_time }},
# {{ at|long_date }} ("19 juin 2017"), {{ at|clock }} ("14:35"), {{ text|digits }}. Each takes the active
# language; an empty value stays empty.


@register.filter
def amount(value, arg: str = ""):
    if value in (None, ""):
        return ""
    return l10n.amount(value, unit=arg != "bare")


@register.filter
def month_year(value):
    return l10n.month_year(value) if value else ""


@register.filter
def day(value):
    return l10n.day(value) if value else ""


@register.filter
def day_time(value):
    return l10n.day_time(value) if value else ""


@register.filter
def digits(value):
    return l10n.digits(value) if value not in (None, "") else ""


@register.filter
def long_date(value):
    return l10n.long_date(value) if value else ""


@register.filter
def clock(value):
    return l10n.clock(value) if value else ""
