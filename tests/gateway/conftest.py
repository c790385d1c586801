"""Fixtures of the gateway's tests: a registered merchant, signed merchant requests, the gateway's test
client, a fake acquirer and a fake directory/merchant server on 127.0.0.1."""

import datetime as dt
import html
import re
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from tasdid.core.cards import luhn_complete
from tasdid.core.signing import ver3_hash
from tasdid.gateway import services
from tasdid.gateway.models import Merchant
from tests.support.ports import closed_port  # noqa: F401 - a fixture

from . import fakes

CLIENT_ID = "600000099"
STORE_KEY = "SHOP-STORE-KEY-1234"
SHOP = "https://shop.example.ma"
VISA = "4111111111111111"
MASTERCARD = "5555555555554444"
CMI = luhn_complete("606100123456789")
ITEMS = [("0000111995072017", "Facture Fixe juin 2017", "186.00"),
         ("0000111996072017", "Facture Internet juin 2017", "99.00")]


def make_merchant(*, client_id: str = CLIENT_ID, store_key: str = STORE_KEY, hosts=("shop.example.ma",),
                  name: str = "Boutique Test", active: bool = True) -> Merchant:
    return services.merchant_register(client_id=client_id, name=name, return_hosts=list(hosts),
                                      store_key=store_key, active=active).merchant


def merchant_fields(*, base: str = SHOP, oid: str = "ORDER-0001", items=ITEMS, allow_defer: bool = True,
                    client_id: str = CLIENT_ID, amount: str | None = None, callback_path: str = "/shop/callback",
                    **overrides) -> dict[str, str]:
    """An unsigned merchant request as the biller sends it; ``overrides`` with None remove a field."""
    if amount is None:
        amount = f"{sum(Decimal(a) for _r, _l, a in items):.2f}" if items else "100.00"
    fields = {
        "clientid": client_id,
        "amount": amount,
        "currency": "504", "oid": oid,
        "okUrl": base + "/shop/ok", "failUrl": base + "/shop/fail", "callbackUrl": base + callback_path,
        "shopurl": base + "/shop/cart", "rnd": "1700000000", "storetype": "3D_PAY_HOSTING", "TranType": "PreAuth",
        "hashAlgorithm": "ver3", "lang": "fr", "BillToName": "Mme Test Client", "email": "client@example.ma",
        "tel": "0661000001", "encoding": "UTF-8", "AutoRedirect": "true", "sessionTimeout": "900",
    }
    if items:
        fields["itemCount"] = str(len(items))
        for i, (ref, label, item_amount) in enumerate(items, start=1):
            fields[f"item{i}Ref"], fields[f"item{i}Label"], fields[f"item{i}Amount"] = ref, label, item_amount
        if allow_defer:
            fields["allowDefer"] = "true"
    for name, value in overrides.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return fields


def signed(fields: dict[str, str], store_key: str = STORE_KEY) -> dict[str, str]:
    return {**fields, "hash": ver3_hash(fields, store_key)}


def gateway_client() -> Client:
    return Client(**{"tasdid.party": "gateway"})


def open_session(client: Client, fields: dict[str, str]) -> str:
    """Post a signed merchant request; return the payment session's token."""
    response = client.post("/fim/est3Dgate", fields)
    assert response.status_code == 303, response.content.decode()[:2000]
    path = urlsplit(response["Location"]).path
    assert path.startswith("/paiement/")
    return path.rsplit("/", 1)[1]


def form_of(response) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of an auto-submitted form."""
    body = html.unescape(response.content.decode())
    assert "data-autosubmit" in body, body[:3000]
    action = re.search(r'<form method="post" action="([^"]+)" data-autosubmit', body).group(1)
    return action, dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', body))


def card_post(*, number: str = VISA, card_type: str = "VISA", month: str = "12", year: str | None = None,
              cvv: str = "123", terms: bool = True, selection: str | None = None) -> dict[str, str]:
    data = {"action": "pay", "card_type": card_type, "card_number": number, "expiry_month": month,
            "expiry_year": year or str(timezone.localdate().year + 2), "cvv": cvv}
    if terms:
        data["terms"] = "on"
    if selection is not None:
        data["selection"] = selection
    return data


@pytest.fixture
def merchant(db) -> Merchant:
    return make_merchant()


@pytest.fixture
def client() -> Client:
    return gateway_client()


@pytest.fixture
def rails(settings):
    fakes.RAILS.__init__()
    settings.GATEWAY_ACQUIRER = "tests.gateway.fakes.FakeAcquirer"
    yield fakes.RAILS
    fakes.RAILS.__init__()


@pytest.fixture
def counterparty(settings):
    server = fakes.CounterpartyServer()
    server.thread.start()
    settings.GATEWAY_3DS_DIRECTORY_URL = server.url + "/3ds/areq"
    yield server
    server.shutdown()
    server.server_close()


def later(**kwargs) -> dt.datetime:
    return timezone.now() + dt.timedelta(**kwargs)


@pytest.fixture
def demo_card_rails(transactional_db, settings):
    """The demo's banks and cards, and real card rails (switch and issuer host on loopback) that the gateway's
    acquirer uses, with an issuer timeout long enough for a loaded machine."""
    from tasdid.bank.demo import seed_demo
    from tasdid.gateway import rails
    from tests.support.card_rails import CardRails

    seed_demo()
    running = CardRails(issuer_timeout=20.0).start()
    running.acquirer_settings(settings)
    assert rails.connection().wait_up(30)
    yield running
    running.stop()
