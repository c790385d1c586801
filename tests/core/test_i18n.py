"""The page's language: ?lang= then the party's cookie then French; the browser's Accept-Language is never read."""

import pytest
from django.test import Client

from tasdid.core import i18n


@pytest.mark.parametrize(("given", "expected"), [
    ("ar", "ar"), ("AR", "ar"), ("ar-MA", "ar"), ("en_US", "en"), (" fr ", "fr"),
    ("de", None), ("", None), (None, None), ("arabic", None), ("\u0000", None),
])
def test_known_languages(given, expected):
    assert i18n.known(given) == expected


@pytest.mark.django_db
def test_browser_language_is_ignored_and_switch_sets_a_cookie():
    client = Client(HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    page = client.get("/")
    assert page["Content-Language"] == "fr"
    assert b'<html lang="fr" dir="ltr">' in page.content

    arabic = client.get("/?lang=ar")
    assert arabic["Content-Language"] == "ar"
    assert b'<html lang="ar" dir="rtl">' in arabic.content
    cookie = arabic.cookies[i18n.COOKIE]
    assert cookie.value == "ar" and cookie["httponly"] and cookie["samesite"] == "Lax"

    # The choice stays with the customer on the next page, without the parameter.
    again = client.get("/")
    assert again["Content-Language"] == "ar"

    # An unknown language changes nothing.
    unknown = client.get("/?lang=xx")
    assert unknown["Content-Language"] == "ar"


@pytest.mark.django_db
def test_switch_links_every_language_and_marks_the_current_one():
    page = Client().get("/?lang=en").content.decode()
    assert 'class="lang-switch"' in page
    assert 'hreflang="fr"' in page and 'hreflang="ar"' in page
    assert '<span aria-current="true" lang="en" dir="ltr">English</span>' in page
