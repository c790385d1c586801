"""The centre monétique's admin (its own party site): routes edited there, the journal searched, masked."""

import datetime as dt

import pytest

from tasdid.switch import services
from tasdid.switch.models import JournalEntry, Route
from tasdid.switch.selectors import routes_active
from tests.support.staff import signed_in, staff_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    staff_account("centre", parties=["switch"])
    return signed_in("switch", "centre")


def test_the_sandbox_routes_are_seeded_to_the_default_issuer_host(settings):
    Route.objects.all().delete()
    assert services.routes_seed() == 3
    assert services.routes_seed() == 0
    settings.ISSUER_HOST, settings.ISSUER_PORT = "10.0.0.9", 9584
    assert sorted((r.bin_prefix, r.bank_name, r.host, r.port) for r in routes_active()) == [
        ("400011", "Banque Atlas", "10.0.0.9", 9584),
        ("522011", "Crédit du Sahel", "10.0.0.9", 9584),
        ("606101", "Banque Atlas", "10.0.0.9", 9584),
    ]


def test_sandbox_routes_cover_the_sandbox_banks_bins():
    from tasdid.bank.sandbox import BANKS

    assert sorted(prefix for prefix, _bank in services.SANDBOX_ROUTES) == sorted(
        prefix for bank in BANKS for prefix in bank.bin_prefixes)


def test_a_route_is_edited_in_the_admin(client):
    route = Route.objects.get_or_create(bin_prefix="522011", defaults={"bank_name": "Crédit du Sahel"})[0]
    response = client.post(f"/admin/switch/route/{route.pk}/change/", {
        "bin_prefix": "522011", "bank_name": "Crédit du Sahel", "issuer_host": "127.0.0.1", "issuer_port": "9001",
        "active": "on"})
    assert response.status_code == 302
    route.refresh_from_db()
    assert (route.issuer_host, route.issuer_port) == ("127.0.0.1", 9001)

    bad = client.post("/admin/switch/route/add/", {"bin_prefix": "52x", "bank_name": "X", "issuer_port": "70000"})
    assert bad.status_code == 200 and not Route.objects.filter(bank_name="X").exists()
    assert "De 1 à 11 chiffres." in bad.content.decode()


def test_the_journal_is_searched_by_masked_card_or_stan(client):
    now = dt.datetime.now(dt.UTC)
    services.journal_append(entries=[
        {"at": now, "direction": "acq_in", "mti": "0100", "stan": "000042", "masked_pan": "400011******0017"},
        {"at": now, "direction": "acq_in", "mti": "0100", "stan": "000043", "masked_pan": "522011******0026"},
    ])
    page = client.get("/admin/switch/journalentry/", {"q": "0017"}).content.decode()
    assert "400011******0017" in page and "522011******0026" not in page
    page = client.get("/admin/switch/journalentry/", {"q": "000043"}).content.decode()
    assert "522011******0026" in page and "400011******0017" not in page
    assert client.get(f"/admin/switch/journalentry/{JournalEntry.objects.first().pk}/change/").status_code == 200
    assert client.post("/admin/switch/journalentry/add/", {}).status_code == 403
