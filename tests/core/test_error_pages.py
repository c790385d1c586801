"""The error pages of every party: French, under the party's own header, no inline style or script; the 500
page renders without touching the database."""

import re
import types
from importlib import import_module

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import path

HEADERS = {
    "biller": ["Paiement en ligne de vos factures", settings.BILLER_NAME],
    "gateway": ["Tasdid Pay", "Paiement sécurisé par carte bancaire"],
    "bank": ["Banque (bac à sable)", "Paiement sécurisé — 3-D Secure"],
}
OTHER_HEADERS = {party: [h for other, hs in HEADERS.items() if other != party for h in hs] for party in HEADERS}


def assert_error_page(response, *, status: int, party: str, heading: str) -> str:
    html = response.content.decode()
    assert response.status_code == status
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert '<html lang="fr"' in html
    assert f"<h1>{heading}</h1>" in html
    assert f"<title>{heading}" in html
    for text in HEADERS[party]:
        assert text in html, text
    for text in OTHER_HEADERS[party]:
        assert text not in html, text
    # Strict CSP: no inline style or script, only our static files.
    assert "style=" not in html and "<style" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "default-src 'none'" in response["Content-Security-Policy"]
    if party == "gateway":  # no home page: the way back is the merchant's site
        assert "retournez sur le site du marchand" in html and 'href="/"' not in html
    else:
        assert '<a class="button" href="/">Retour à l\'accueil</a>' in html
    return html


@pytest.mark.parametrize("party", ["biller", "gateway", "bank"])
def test_an_unknown_address_gets_the_french_404_of_its_party(party):
    response = Client(**{"tasdid.party": party}).get("/cette-page-n-existe-pas")
    html = assert_error_page(response, status=404, party=party, heading="Page introuvable")
    assert "La page demandée n'existe pas ou n'existe plus." in html
    assert "Not Found" not in html


@pytest.mark.parametrize("party", ["biller", "gateway", "bank"])
def test_a_request_for_an_unknown_host_gets_the_french_400_of_its_party(party):
    response = Client(**{"tasdid.party": party}).get("/", HTTP_HOST="evil.example")
    html = assert_error_page(response, status=400, party=party, heading="Requête invalide")
    assert "Bad Request" not in html


def _deny(request):
    raise PermissionDenied


def _crash(request):
    raise RuntimeError("panne")


@pytest.fixture
def broken_views(settings):
    """Each party's real URLs (with its real handler500) plus a view that refuses and one that crashes."""
    urlconfs = {}
    for party, module_path in settings.PARTY_URLCONFS.items():
        real = import_module(module_path)
        module = types.ModuleType(f"broken_{party}_urls")
        module.urlpatterns = [path("test/refus", _deny), path("test/panne", _crash), *real.urlpatterns]
        module.handler500 = getattr(real, "handler500", None)
        urlconfs[party] = module
    settings.PARTY_URLCONFS = urlconfs
    return urlconfs


@pytest.mark.parametrize("party", ["biller", "gateway", "bank"])
def test_a_refusal_gets_the_french_403_of_its_party(broken_views, party):
    response = Client(**{"tasdid.party": party}).get("/test/refus")
    html = assert_error_page(response, status=403, party=party, heading="Accès refusé")
    assert "403 Forbidden" not in html


@pytest.mark.parametrize("party", ["biller", "gateway", "bank"])
def test_a_crash_gets_the_french_500_of_its_party_without_the_database(broken_views, party):
    """No django_db mark: any database query from the error page (a context processor loading the user or the
    session) would fail this test."""
    client = Client(raise_request_exception=False, **{"tasdid.party": party})
    response = client.get("/test/panne")
    html = assert_error_page(response, status=500, party=party, heading="Erreur technique")
    assert "Veuillez réessayer dans quelques instants." in html
    assert "panne" not in html and "RuntimeError" not in html and "Server Error" not in html


def test_the_500_page_falls_back_to_the_plain_layout_when_the_party_header_cannot_render(broken_views, settings):
    settings.PARTY_BASE_TEMPLATES = {**settings.PARTY_BASE_TEMPLATES, "bank": "bank/does-not-exist.html"}
    response = Client(raise_request_exception=False, **{"tasdid.party": "bank"}).get("/test/panne")
    html = response.content.decode()
    assert response.status_code == 500
    assert "<h1>Erreur technique</h1>" in html and '<body class="party-bank">' in html
    assert "Banque (bac à sable)" not in html
