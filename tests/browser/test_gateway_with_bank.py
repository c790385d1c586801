"""A payment through the gateway's page and the sandbox bank's 3-D Secure challenge in Chromium: the code
comes by SMS to the sandbox phone; the merchant is a local stand-in that records the callback."""

import pytest
from playwright.sync_api import Page, expect

from tasdid.bank import sandbox
from tasdid.bank.demo import seed_demo
from tasdid.bank.models import Hold
from tasdid.core.signing import ver3_verify
from tasdid.gateway.models import Attempt, AttemptState
from tests.gateway.conftest import STORE_KEY, make_merchant, merchant_fields, signed
from tests.gateway.fakes import CounterpartyServer
from tests.support.pci import card_data_findings
from tests.support.sms import codes_received

FIXE, INTERNET = "0000111995072017", "0000111996072017"
CHALLENGE = sandbox.card_by_outcome("00", "challenge")


@pytest.fixture
def counterparty():
    """The merchant: a stand-in on 127.0.0.1 that records the callback and the browser's return."""
    server = CounterpartyServer()
    server.thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def gateway_page(parties, task_worker, counterparty, settings, page: Page):
    settings.GATEWAY_3DS_DIRECTORY_URL = parties["switch"] + "/3ds/areq"  # the directory routes to the bank's ACS
    seed_demo()
    make_merchant(hosts=[counterparty.host])
    fields = signed(merchant_fields(base=counterparty.url))
    inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
    start = counterparty.url + "/test-only/boutique"
    page.route(start, lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8", body=(
        f'<!doctype html><form method="post" action="{parties["gateway"]}/fim/est3Dgate">{inputs}'
        f'<button type="submit">Payer en ligne</button></form>')))
    page.goto(start)
    page.get_by_role("button", name="Payer en ligne").click()
    expect(page.get_by_role("heading", name="Paiement sécurisé")).to_be_visible()
    return page


def submit_card(page: Page, card: sandbox.SandboxCard) -> None:
    month, year = card.expiry.split("/")
    page.get_by_label("Type de carte").select_option(card.brand)
    page.get_by_label("Numéro de carte").fill(card.number)
    page.get_by_label("Mois").select_option(month.lstrip("0"))
    page.get_by_label("Année").select_option(f"20{year}")
    page.get_by_label("Code de vérification (CVV)").fill(card.cvv)
    page.get_by_label("J'accepte les conditions générales d'utilisation").check()
    page.get_by_role("button", name="Valider pour payer").click()
    expect(page.get_by_role("heading", name="Authentification du paiement")).to_be_visible()


def test_a_challenge_with_the_code_from_the_sandbox_phone(gateway_page, counterparty):
    page = gateway_page
    page.get_by_role("button", name=f"Reporter la facture {FIXE}").click()
    expect(page.locator("#invoices-total")).to_have_text("99.00 DH")
    submit_card(page, CHALLENGE)
    expect(page.locator("dl.acs-facts")).to_contain_text("99.00 DH")
    expect(page.locator("dl.acs-facts")).to_contain_text("Boutique Test")
    page.get_by_label("Code reçu par SMS").fill(codes_received(CHALLENGE.phone)[0])
    page.get_by_role("button", name="Valider").click()
    expect(page.locator("#back")).to_have_text("/shop/ok")
    expect(page.locator("#code")).to_have_text("00")

    (callback,) = counterparty.state.callbacks
    assert (callback["ProcReturnCode"], callback["mdStatus"], callback["eci"]) == ("00", "1", "02")
    assert (callback["paidAmount"], callback["paidItems"], callback["deferredItems"]) == ("99.00", INTERNET, FIXE)
    ((path, fields),) = counterparty.state.returns
    assert path == "/shop/ok" and ver3_verify(fields, STORE_KEY, hash_field="HASH")
    attempt = Attempt.objects.get()
    assert (attempt.state, attempt.rreq_trans_status) == (AttemptState.CAPTURED, "Y")
    assert [(h.state, str(h.amount)) for h in Hold.objects.all()] == [("captured", "99.00")]
    assert card_data_findings(extra_secrets=(CHALLENGE.number,)) == []


def test_a_cancelled_challenge_fails_and_authorizes_nothing(gateway_page, counterparty):
    page = gateway_page
    submit_card(page, CHALLENGE)
    page.get_by_role("button", name="Annuler").click()
    expect(page.locator("#back")).to_have_text("/shop/fail")
    ((_path, fields),) = counterparty.state.returns
    assert (fields["mdStatus"], fields["ErrMsg"]) == ("0", "Authentification 3-D Secure échouée")
    assert Attempt.objects.get().state == AttemptState.FAILED
    assert Hold.objects.count() == 0
