"""The page's language, chosen by the customer and never by the browser.

French is the default. A customer picks another language with the switch on every page (``?lang=ar``); the
choice is kept in a cookie of the party that served it (``tasdid_lang``) and travels to the next party in the
messages themselves (the merchant request's ``lang``, the 3-D Secure request's ``browserLanguage``). The
browser's ``Accept-Language`` is never read: a French page shows French month names on an ``en-US`` browser.

A view that knows better (the hosted payment page knows the merchant's ``lang``) calls :func:`use`.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation

PARAM = "lang"
COOKIE = "tasdid_lang"
COOKIE_SECONDS = 365 * 24 * 3600


def known(code: str | None) -> str | None:
    """The project's language for ``code`` (``AR``, ``ar-MA`` and ``ar_MA`` are ``ar``), or None."""
    if not code or not isinstance(code, str):
        return None
    base = code.strip().replace("_", "-").split("-", 1)[0].lower()
    return base if base in dict(settings.LANGUAGES) else None


def chosen(request: HttpRequest) -> str | None:
    """The language the customer asked for on this request (``?lang=``), if it is one of ours."""
    return known(request.GET.get(PARAM))


def use(request: HttpRequest, code: str | None) -> str:
    """Serve this request in ``code`` (or French when it is not ours) and return the language used."""
    lang = known(code) or settings.LANGUAGE_CODE
    translation.activate(lang)
    request.LANGUAGE_CODE = lang
    return lang


def is_rtl(code: str) -> bool:
    return translation.get_language_info(code)["bidi"]


class LanguageMiddleware:
    """Replaces Django's LocaleMiddleware: ``?lang=`` first, then the party's cookie, then French."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        asked = chosen(request)
        use(request, asked or known(request.COOKIES.get(COOKIE)))
        try:
            response = self.get_response(request)
            lang = getattr(request, "LANGUAGE_CODE", settings.LANGUAGE_CODE)
            if asked and request.COOKIES.get(COOKIE) != asked:
                response.set_cookie(
                    COOKIE, asked, max_age=COOKIE_SECONDS, secure=settings.SESSION_COOKIE_SECURE,
                    httponly=True, samesite="Lax",
                )
            response.headers.setdefault("Content-Language", lang)
            return response
        finally:
            translation.deactivate()
