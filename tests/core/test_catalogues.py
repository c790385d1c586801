"""The translation catalogues: every app with a locale folder has complete Arabic and English catalogues (no empty,
no fuzzy msgstr, the same placeholders as the French source), up to date with its sources (a visible string added
without a translation fails here), and the biller's pages rendered in Arabic and English keep no French sentence."""

import re
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.utils import translation

from tasdid.core import i18n
from tasdid.core.http import server_error
from tasdid.portal.payment_views import FailureNotice
from tests import factories
from tests.support import po

SRC = Path(__file__).resolve().parents[2] / "src" / "tasdid"
APPS = sorted(path.parent.name for path in SRC.glob("*/locale"))
LANGUAGES = ("ar", "en")
PLURALS = {"ar": 6, "en": 2}
PLACEHOLDER = re.compile(r"%(?:\([A-Za-z_][A-Za-z0-9_]*\))?[-#0 +]*\d*(?:\.\d+)?[sdifr%]")


def catalogue(app: str, lang: str) -> Path:
    return SRC / app / "locale" / lang / "LC_MESSAGES" / "django.po"


def placeholders(text: str) -> list[str]:
    return sorted(p for p in PLACEHOLDER.findall(text) if p != "%%")


def test_there_are_catalogues():
    assert {"portal", "core", "billing", "messaging"} <= set(APPS)


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalogue_is_complete(app, lang):
    header, entries = po.read(catalogue(app, lang))
    assert header is not None and "fuzzy" not in header.flags, f"{app}/{lang}: the header entry is fuzzy"
    assert po.nplurals(header) == PLURALS[lang]
    problems = []
    for entry in entries:
        name = f"{app}/{lang}: {entry.msgid!r}"
        if "fuzzy" in entry.flags:
            problems.append(f"{name} is fuzzy")
        expected = PLURALS[lang] if entry.msgid_plural is not None else 1
        forms = [entry.msgstr.get(i, "") for i in range(expected)]
        if not all(form.strip() for form in forms):
            problems.append(f"{name} has an empty translation")
            continue
        if "python-format" in entry.flags or "python-brace-format" in entry.flags:
            wanted = set(placeholders(entry.msgid_plural or entry.msgid)) | set(placeholders(entry.msgid))
            for form in forms:
                got = set(placeholders(form))
                # A plural form may leave the number out ("one message"); it never adds a placeholder.
                if not got <= wanted or (entry.msgid_plural is None and got != wanted):
                    problems.append(f"{name}: placeholders {sorted(got)} instead of {sorted(wanted)}")
    assert problems == []


@pytest.mark.parametrize("app", APPS)
def test_catalogue_is_up_to_date_with_the_sources(app, tmp_path, monkeypatch):
    """makemessages over a copy of the app: the catalogue holds exactly the msgids its sources have."""
    copy = tmp_path / app
    shutil.copytree(SRC / app, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    monkeypatch.chdir(copy)
    call_command("makemessages", locale=list(LANGUAGES), no_location=True, no_wrap=True, no_obsolete=True,
                 verbosity=0)
    for lang in LANGUAGES:
        committed = {entry.key for entry in po.read(catalogue(app, lang))[1]}
        extracted = {entry.key for entry in po.read(copy / "locale" / lang / "LC_MESSAGES" / "django.po")[1]}
        assert sorted(extracted - committed, key=str) == [], (
            f"{app}/{lang}: strings of the sources missing from the catalogue (scripts/update-catalogues {app}, "
            "then translate them)")
        assert sorted(committed - extracted, key=str) == [], f"{app}/{lang}: catalogue entries no source uses"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_string_shared_by_two_apps_has_one_translation(lang):
    """Django merges the apps' catalogues and the first app of INSTALLED_APPS wins: a msgid two apps translate
    differently would show the other app's words (tell them apart with a context, pgettext / translate context)."""
    seen: dict[tuple, tuple[str, dict]] = {}
    clashes = []
    for app in APPS:
        for entry in po.read(catalogue(app, lang))[1]:
            if entry.key in seen and seen[entry.key][1] != entry.msgstr:
                clashes.append(f"{entry.msgid!r}: {seen[entry.key][0]} and {app}")
            seen.setdefault(entry.key, (app, entry.msgstr))
    assert clashes == []


# --- no French left on the biller's pages in Arabic and English -------------------------------------------

CUSTOMER_APPS = ("portal", "core", "billing", "messaging")
MIN_WORDS = 4


def french_sentences() -> set[str]:
    """The pieces of French source text, between placeholders and tags, of at least MIN_WORDS words, whose
    English translation differs (a sentence the same in both languages proves nothing). What the French quotes
    (« Code de paiement Fixe ») is what the bill prints: the translations quote it as it is, on purpose."""
    pieces = set()
    for app in CUSTOMER_APPS:
        english = {entry.key: entry for entry in po.read(catalogue(app, "en"))[1]}
        for entry in english.values():
            if entry.msgstr.get(0) == entry.msgid:
                continue
            unquoted = re.sub(r"«[^»]*»", "|", entry.msgid)
            for piece in re.split(r"%\([^)]*\)[sd]|%[sd]|<[^>]+>|[|:;()]", unquoted):
                piece = " ".join(piece.split()).strip(" .,")
                if len(piece.split()) >= MIN_WORDS and piece not in entry.msgstr.get(0, ""):
                    pieces.add(piece)
    return pieces


def visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", html)
    text = text.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&").replace("&nbsp;", " ")
    return " ".join(text.replace("\u00a0", " ").split())


def biller_pages(client, lang: str = "fr") -> dict[str, str]:
    """Every page of the biller a customer can see, as HTML, in the client's current language."""
    pages = {}
    for name, path in [("home", "/"), ("mobile", "/mobile"), ("fixed", "/fixe"), ("internet", "/internet"),
                       ("terms", "/conditions"), ("404", "/nulle-part"), ("phone", "/sandbox/phone"),
                       ("mail", "/sandbox/mail")]:
        pages[name] = client.get(path).content.decode()
    pages["mobile-errors"] = client.post("/mobile", {"number": "05 22", "email": "x", "fidelio_code": "12"}
                                         ).content.decode()
    pages["fixed-errors"] = client.post("/fixe", {}).content.decode()
    pages["internet-errors"] = client.post("/internet", {"payment_identifier": "ab", "terms": "on"}
                                           ).content.decode()
    pages["phone-errors"] = client.post("/sandbox/phone", {"sender": "x", "recipient": "x"}).content.decode()
    strict = Client(enforce_csrf_checks=True)
    strict.cookies[i18n.COOKIE] = lang
    pages["csrf"] = strict.post("/fixe", {}).content.decode()
    client.post("/fixe", {"number": "05 22 00 00 01", "payment_code": "4821", "email": "client@example.ma",
                          "terms": "on"})
    pages["invoices"] = client.get("/factures").content.decode()
    request = RequestFactory().get("/")
    request.party = "biller"
    # The payment return pages need the gateway's signed answer: rendered here as their views render them.
    # (The middleware deactivates the language after each request of the client: it is set again here.)
    with translation.override(lang):
        notice = FailureNotice(reason=str(translation.gettext("Provision insuffisante")), detail=translation.gettext(
            "Aucun montant n'a été débité et vos factures restent à payer. Vous pouvez réessayer, avec la même "
            "carte ou une autre."), code="51")
        for name, context in [("failed", {"notice": notice, "consult_url": "/factures"}), ("invalid", {}),
                              ("not_confirmed", {"consult_url": "/factures"})]:
            pages[name] = render_to_string(f"portal/payment/{name}.html", context, request=request)
        pages["500"] = server_error(request).content.decode()
    return pages


@pytest.fixture
def biller_customer(db):
    owner = factories.customer(name="Mme Khadija Bennani")
    line = factories.fixed_line(number="+212522000001", payment_code="4821", owner=owner)
    factories.invoice(line=line, amount_ht="155.00", reference="0000111995072017")
    return line


@pytest.mark.parametrize("lang", LANGUAGES)
def test_biller_pages_keep_no_french(client, biller_customer, lang):
    client.get(f"/?lang={lang}")  # the customer's choice, kept in the cookie for every page after
    french = french_sentences()
    assert len(french) > 50
    pages = biller_pages(client, lang)
    for name, html in pages.items():
        assert f'<html lang="{lang}"' in html, name
        # The hints quote the bill's labels as the bill in this language prints them: no French left, quoted or not.
        text = visible_text(html)
        left = sorted(piece for piece in french if piece in text)
        assert left == [], f"{name} in {lang} still shows French: {left}"
    # The pages are really there (not empty error pages): the consult page of the line, the form's errors.
    assert "0000111995072017" in pages["invoices"]
    assert 'id="error-summary"' in pages["fixed-errors"]


def test_french_pages_show_french_sentences(client, biller_customer):
    """The check above can see French: the same pages in French show it."""
    pages = biller_pages(client)
    text = visible_text(pages["fixed-errors"])
    assert "Renseignez votre numéro de téléphone fixe et le code de paiement figurant sur votre facture" in text
    assert any(piece in text for piece in french_sentences())
