"""``tasdid merchant add|list``, the demo's merchant, and the gateway's admin site."""

import re

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from tasdid.cli import main as tasdid
from tasdid.core.staff import staff_grant
from tasdid.gateway.demo import seed_demo
from tasdid.gateway.models import Attempt, AttemptState, Event, Merchant

from .conftest import STORE_KEY, card_post, gateway_client, merchant_fields, open_session, signed

pytestmark = pytest.mark.django_db


def add(*args: str) -> None:
    call_command("merchant_add", *args)


# ``tasdid`` closes the database connections when it ends, as Django's command line does: committed data only.
@pytest.mark.django_db(transaction=True)
def test_merchant_add_through_the_cli_then_update(capsys):
    tasdid(["merchant", "add", "--client-id", "600000042", "--store-key", "S3CRET-KEY-42", "--name", "Boutique",
            "--return-host", "127.0.0.1:8000", "--return-host", "Shop.Example.ma"])
    out = capsys.readouterr().out
    assert out == ("Marchand 600000042 « Boutique » enregistré : actif, clé ••••••••Y-42, "
                   "hôtes de retour 127.0.0.1:8000, shop.example.ma\n")
    assert "S3CRET" not in out
    merchant = Merchant.objects.get()
    assert (merchant.client_id, merchant.name, merchant.store_key, merchant.return_hosts, merchant.active) == (
        "600000042", "Boutique", "S3CRET-KEY-42", ["127.0.0.1:8000", "shop.example.ma"], True)

    # again, with another name and host and no key: updated, the key kept
    tasdid(["merchant", "add", "--client-id", "600000042", "--name", "Boutique 2", "--return-host",
            "127.0.0.1:8100", "--inactive"])
    assert "mis à jour : inactif" in capsys.readouterr().out
    merchant.refresh_from_db()
    assert (merchant.name, merchant.store_key, merchant.return_hosts, merchant.active) == (
        "Boutique 2", "S3CRET-KEY-42", ["127.0.0.1:8100"], False)
    assert Merchant.objects.count() == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--client-id", "1", "--name", "B", "--return-host", "h:1"],
     "Indiquez la clé du magasin (--store-key) pour un nouveau marchand."),
    (["--client-id", "1", "--store-key", "KEY-123456", "--name", "B", "--return-host", "http://h/"],
     "« http://h/ » n'est pas un hôte de retour valide"),
    (["--client-id", "1", "--store-key", "short", "--name", "B", "--return-host", "h"],
     "La clé du magasin doit comporter de 8 à 128 caractères."),
    (["--client-id", "a b", "--store-key", "KEY-123456", "--name", "B", "--return-host", "h"],
     "L'identifiant marchand doit comporter de 1 à 32 caractères, sans espace."),
    (["--client-id", "1", "--store-key", "KEY-123456", "--name", " ", "--return-host", "h"],
     "Le nom du marchand doit comporter de 1 à 200 caractères."),
])
def test_merchant_add_refusals(args, message):
    with pytest.raises(CommandError) as exc:
        add(*args)
    assert message in str(exc.value)
    assert Merchant.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_merchant_add_cli_error_is_clear(capsys):
    with pytest.raises(SystemExit) as exc:
        tasdid(["merchant", "add", "--client-id", "1", "--name", "B", "--return-host", "h"])
    assert exc.value.code == 1
    assert "Indiquez la clé du magasin (--store-key) pour un nouveau marchand." in capsys.readouterr().err


@pytest.mark.django_db(transaction=True)
def test_merchant_list(capsys):
    add("--client-id", "600000042", "--store-key", "S3CRET-KEY-42", "--name", "Boutique", "--return-host", "h:1")
    capsys.readouterr()
    tasdid(["merchant", "list"])
    assert capsys.readouterr().out == "600000042\tBoutique\tactif\t••••••••Y-42\th:1\n"
    tasdid(["merchant", "list", "--json"])
    out = capsys.readouterr().out
    assert '"store_key": "••••••••Y-42"' in out and "S3CRET" not in out


def test_seed_demo_registers_the_biller_from_settings():
    merchant = seed_demo()
    seed_demo()
    assert Merchant.objects.count() == 1
    host = settings.BILLER_URL.removeprefix("http://")
    assert (merchant.client_id, merchant.name, merchant.store_key, merchant.return_hosts) == (
        settings.BILLER_CLIENT_ID, settings.BILLER_NAME, settings.BILLER_STORE_KEY, [host])
    client = gateway_client()
    fields = merchant_fields(base=settings.BILLER_URL, client_id=settings.BILLER_CLIENT_ID)
    open_session(client, signed(fields, store_key=settings.BILLER_STORE_KEY))


# --- admin ---------------------------------------------------------------------------------------------


@pytest.fixture
def staff():
    User.objects.create_superuser("admin", "admin@example.ma", "pw-Strong-123")
    staff_grant(username="admin", parties=["gateway"])  # only the gateway's staff open its admin
    client = gateway_client()
    response = client.post("/admin/login/", {"username": "admin", "password": "pw-Strong-123", "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    return client


def test_admin_never_shows_a_store_key(staff, merchant):
    listing = staff.get("/admin/gateway/merchant/").content.decode()
    assert "••••••••1234" in listing and STORE_KEY not in listing
    change = staff.get(f"/admin/gateway/merchant/{merchant.pk}/change/").content.decode()
    assert STORE_KEY not in change
    assert re.search(r'<input type="password" name="new_store_key"[^>]*>', change)
    # saving without a new key keeps it; with one, replaces it
    data = {"name": "Boutique Test 2", "mode": "test", "active": "on", "hosts": "shop.example.ma\n127.0.0.1:8000",
            "new_store_key": ""}
    assert staff.post(f"/admin/gateway/merchant/{merchant.pk}/change/", data).status_code == 302
    merchant.refresh_from_db()
    assert (merchant.name, merchant.store_key, merchant.return_hosts) == (
        "Boutique Test 2", STORE_KEY, ["shop.example.ma", "127.0.0.1:8000"])
    data["new_store_key"] = "NEW-STORE-KEY-99"
    staff.post(f"/admin/gateway/merchant/{merchant.pk}/change/", data)
    merchant.refresh_from_db()
    assert merchant.store_key == "NEW-STORE-KEY-99"


def test_admin_adds_a_merchant_with_a_key(staff):
    data = {"client_id": "600000077", "name": "Nouvelle boutique", "mode": "test", "active": "on",
            "hosts": "shop.example.ma", "new_store_key": ""}
    response = staff.post("/admin/gateway/merchant/add/", data)
    assert response.status_code == 200
    assert "Indiquez la clé du magasin du nouveau marchand." in response.content.decode()
    assert Merchant.objects.count() == 0
    data["new_store_key"] = "A-NEW-STORE-KEY"
    assert staff.post("/admin/gateway/merchant/add/", data).status_code == 302
    assert Merchant.objects.get().store_key == "A-NEW-STORE-KEY"


@pytest.mark.django_db(transaction=True)
def test_admin_sessions_and_attempts_are_read_only(staff, merchant, rails, counterparty):
    merchant.return_hosts = ["shop.example.ma", counterparty.host]
    merchant.save(update_fields=["return_hosts"])
    browser = gateway_client()
    token = open_session(browser, signed(merchant_fields(base=counterparty.url)))
    counterparty.state.default_ares = "N"  # fails before any authorization: no external capture needed
    browser.post(f"/paiement/{token}", card_post(selection="0000111995072017,0000111996072017"))
    attempt = Attempt.objects.get()
    assert staff.get("/admin/gateway/paymentsession/add/").status_code == 403
    session_page = staff.get(f"/admin/gateway/paymentsession/{attempt.session_id}/change/").content.decode()
    assert "ORDER-0001" in session_page and token not in session_page
    page = staff.get(f"/admin/gateway/attempt/{attempt.pk}/change/").content.decode()
    assert attempt.trans_id in page and "411111******1111" in page
    assert "authentification refusée (ARes N)" in page  # its events
    assert 'name="_save"' not in page
    # a change or a deletion posted anyway is refused, and nothing moves
    before = (attempt.state, attempt.proc_return_code, Event.objects.count())
    assert before[0] == AttemptState.FAILED
    change = staff.post(f"/admin/gateway/attempt/{attempt.pk}/change/", {"state": AttemptState.CAPTURED,
                                                                        "proc_return_code": "00", "_save": "1"})
    assert change.status_code == 403
    delete = staff.post(f"/admin/gateway/attempt/{attempt.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    attempt.refresh_from_db()
    assert (attempt.state, attempt.proc_return_code, Event.objects.count()) == before
    assert Attempt.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_gateway_sweep_through_the_cli(capsys):
    tasdid(["gateway-sweep"])
    assert capsys.readouterr().out == "Rien à traiter.\n"
