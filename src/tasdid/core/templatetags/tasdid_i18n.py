"""The language switch shown on every customer page: one link per language, to this page in that language."""

from urllib.parse import urlencode

from django import template
from django.conf import settings
from django.utils import translation

from tasdid.core import i18n

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
