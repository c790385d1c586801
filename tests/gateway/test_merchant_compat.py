"""A merchant written from the public CMI plugins' behaviour (tests/gateway/cmi_merchant.py: it hashes the fields
in the order they arrive) pays through the gateway: its callback, its okUrl/failUrl page and its status query
all verify, because the gateway posts its fields in ver3 hash order (DESIGN.md §4). The directory and the
acquirer are the local fakes; the merchant is a real HTTP server on 127.0.0.1."""

import random
from urllib.parse import parse_qsl

import httpx
import pytest

from tasdid.core.acquiring import AuthorizationResult
from tasdid.core.signing import natural_key, ver3_hash, ver3_verify
from tasdid.gateway.models import Attempt, AttemptState, PaymentSession, SessionState

from .cmi_merchant import CmiMerchant, checks, in_order_hash
from .conftest import (
    CLIENT_ID,
    STORE_KEY,
    card_post,
    form_of,
    gateway_client,
    make_merchant,
    merchant_fields,
    open_session,
    signed,
)

pytestmark = pytest.mark.django_db(transaction=True)

SELECTION = "0000111995072017,0000111996072017"


@pytest.fixture
def cmi_merchant():
    server = CmiMerchant(STORE_KEY)
    server.thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def session(cmi_merchant, counterparty, rails):
    """The plugin's shop registered; a browser with an open payment session whose URLs lead to the shop."""
    make_merchant(hosts=["shop.example.ma", cmi_merchant.host])
    browser = gateway_client()
    token = open_session(browser, signed(merchant_fields(base=cmi_merchant.url, BillToName="Mme Test Client")))
    return browser, token


def names(pairs: list[tuple[str, str]]) -> list[str]:
    return [k for k, _v in pairs]


def assert_in_hash_order(pairs: list[tuple[str, str]]) -> None:
    assert names(pairs)[-1] == "HASH"
    assert names(pairs)[:-1] == sorted(names(pairs)[:-1], key=natural_key)


def browser_goes_back(form: tuple[str, dict[str, str]]) -> httpx.Response:
    """The browser submits the auto-submitted form: its fields in the page's order."""
    action, fields = form
    return httpx.post(action, data=fields, timeout=10)


def test_the_plugin_merchant_verifies_the_callback_and_the_return_and_captures(session, cmi_merchant, rails):
    browser, token = session
    response = browser.post(f"/paiement/{token}", card_post(selection=SELECTION))
    shop = cmi_merchant.shop
    (callback,) = shop.callbacks
    assert_in_hash_order(callback)
    assert shop.answers == ["ACTION=POSTAUTH"]
    assert dict(callback)["ProcReturnCode"] == "00" and dict(callback)["callbackCall"] == "true"
    attempt = Attempt.objects.get()
    assert (attempt.state, attempt.callback_answer) == (AttemptState.CAPTURED, "POSTAUTH")
    assert len(rails.captures) == 1 and rails.voids == []
    # the browser's return, as a browser posts the form: the same order, the plugin's page verifies it
    form = form_of(response)
    assert form[0] == cmi_merchant.url + "/shop/ok"
    assert list(form[1]) == [*sorted(list(form[1])[:-1], key=natural_key), "HASH"]
    page = browser_goes_back(form)
    assert page.status_code == 200 and "commande confirmée" in page.text
    ((path, pairs, verified),) = shop.returns
    assert (path, verified) == ("/shop/ok", True)
    assert_in_hash_order(pairs)
    assert PaymentSession.objects.get().state == SessionState.SUCCEEDED


def test_the_same_fields_in_another_order_fail_the_plugin_check(session, cmi_merchant):
    """The control: the plugin's check does depend on the order, so the test above proves something."""
    browser, token = session
    browser.post(f"/paiement/{token}", card_post(selection=SELECTION))
    (callback,) = cmi_merchant.shop.callbacks
    assert ver3_verify(dict(callback), STORE_KEY, hash_field="HASH")  # ver3 itself sorts: any order verifies
    shuffled = list(callback[:-1])
    random.Random(7).shuffle(shuffled)
    assert not checks([*shuffled, callback[-1]], STORE_KEY)
    assert checks(callback, STORE_KEY)


def test_a_declined_card_reaches_the_plugin_merchant_verifiable_on_fail_url(session, cmi_merchant, rails):
    rails.authorize_answer = AuthorizationResult("51", "", "123456789012")
    browser, token = session
    response = browser.post(f"/paiement/{token}", card_post(selection=SELECTION))
    (callback,) = cmi_merchant.shop.callbacks
    assert_in_hash_order(callback)
    assert dict(callback)["ProcReturnCode"] == "51" and checks(callback, STORE_KEY)
    form = form_of(response)
    assert form[0] == cmi_merchant.url + "/shop/fail"
    browser_goes_back(form)
    ((path, _pairs, verified),) = cmi_merchant.shop.returns
    assert (path, verified) == ("/shop/fail", True)


def test_a_cancelled_session_reaches_the_plugin_merchant_verifiable(session, cmi_merchant):
    browser, token = session
    response = browser.post(f"/paiement/{token}", {"action": "cancel"})
    (callback,) = cmi_merchant.shop.callbacks
    assert_in_hash_order(callback)
    assert checks(callback, STORE_KEY) and dict(callback)["ErrMsg"] == "Paiement annulé par le client"
    browser_goes_back(form_of(response))
    ((path, _pairs, verified),) = cmi_merchant.shop.returns
    assert (path, verified) == ("/shop/fail", True)


def test_the_status_answer_comes_in_hash_order_too(session, cmi_merchant):
    browser, token = session
    browser.post(f"/paiement/{token}", card_post(selection=SELECTION))
    fields = {"clientid": CLIENT_ID, "oid": "ORDER-0001", "rnd": "a5Rq0LkP9zXw3Vb7Tn2Mh", "action": "status",
              "hashAlgorithm": "ver3"}
    response = gateway_client().post("/fim/status", {**fields, "HASH": ver3_hash(fields, STORE_KEY)})
    pairs = parse_qsl(response.content.decode(), keep_blank_values=True)
    assert_in_hash_order(pairs)
    assert dict(pairs)["OrderStatus"] == "CAPTURED"
    assert dict(pairs)["HASH"] == in_order_hash(pairs, STORE_KEY)
