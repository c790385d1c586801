"""The gateway with the real sandbox bank: its directory (AReq over HTTP to the bank's server) and its
in-process acquirer, for every sandbox card that needs no challenge. The merchant is a local stand-in."""

import pytest

from tasdid.bank import sandbox
from tasdid.bank.demo import seed_demo
from tasdid.bank.models import AcsTransaction, Hold
from tasdid.core.signing import ver3_verify
from tasdid.gateway.models import Attempt, AttemptState, PaymentSession, SessionState
from tasdid.switch.models import DirectoryTransaction
from tests.support.pci import card_data_findings

from .conftest import (
    STORE_KEY,
    card_post,
    form_of,
    gateway_client,
    make_merchant,
    merchant_fields,
    open_session,
    signed,
)

FIXE, INTERNET = "0000111995072017", "0000111996072017"
NO_CHALLENGE = [c for c in sandbox.CARDS if c.three_d_secure != "challenge"]


@pytest.fixture
def shop(parties, counterparty, settings):
    """The bank's directory and acquirer as configured (the parties' servers), a stand-in merchant."""
    settings.GATEWAY_3DS_DIRECTORY_URL = parties["switch"] + "/3ds/areq"  # the directory routes to the bank's ACS
    seed_demo()
    make_merchant(hosts=[counterparty.host])
    browser = gateway_client()
    token = open_session(browser, signed(merchant_fields(base=counterparty.url)))
    return browser, token


def typed(card: sandbox.SandboxCard, **extra) -> dict[str, str]:
    month, year = card.expiry.split("/")
    return card_post(number=card.number, card_type=card.brand, month=str(int(month)), year=f"20{year}",
                     cvv=card.cvv, selection=f"{FIXE},{INTERNET}", **extra)


@pytest.mark.parametrize("card", NO_CHALLENGE, ids=lambda c: f"{c.response_code}-{c.three_d_secure}-{c.number[-4:]}")
def test_every_sandbox_card_without_challenge(shop, counterparty, card):
    browser, token = shop
    action, fields = form_of(browser.post(f"/paiement/{token}", typed(card)))
    approved = card.response_code == "00"
    assert action == counterparty.url + ("/shop/ok" if approved else "/shop/fail")
    assert fields["ProcReturnCode"] == card.response_code
    assert ver3_verify(fields, STORE_KEY, hash_field="HASH")
    (callback,) = counterparty.state.callbacks
    assert callback["ProcReturnCode"] == card.response_code
    attempt = Attempt.objects.get()
    assert attempt.state == (AttemptState.CAPTURED if approved else AttemptState.DECLINED)
    if card.three_d_secure == "frictionless":
        assert (fields["mdStatus"], attempt.trans_status) == ("1", "Y")
    else:
        assert (fields["mdStatus"], fields["eci"]) == ("2", "00" if card.brand == "MASTERCARD" else "07")
    assert PaymentSession.objects.get().state == (SessionState.SUCCEEDED if approved else SessionState.FAILED)
    assert [h.state for h in Hold.objects.all()] == (["captured"] if approved else [])
    assert card_data_findings(extra_secrets=(card.number,)) == []


def test_a_card_number_the_directory_cannot_route_is_decided_by_the_bank(shop, counterparty):
    browser, token = shop
    action, fields = form_of(browser.post(f"/paiement/{token}", card_post(
        number=sandbox.UNKNOWN_NUMBER, card_type="VISA", selection=f"{FIXE},{INTERNET}")))
    assert action.endswith("/shop/fail")
    assert (fields["ProcReturnCode"], fields["mdStatus"]) == ("14", "2")
    assert Hold.objects.count() == 0
    assert Attempt.objects.get().state == AttemptState.DECLINED
    assert PaymentSession.objects.get().state == SessionState.FAILED
    (callback,) = counterparty.state.callbacks
    assert callback["ProcReturnCode"] == "14"


def test_a_card_in_no_bin_range_is_refused_by_the_directory_clearly(shop, counterparty):
    browser, token = shop
    action, fields = form_of(browser.post(f"/paiement/{token}", card_post(
        number="4111111111111111", card_type="VISA", selection=f"{FIXE},{INTERNET}")))
    assert action.endswith("/shop/fail")
    assert (fields["ProcReturnCode"], fields["mdStatus"], fields["ErrMsg"]) == (
        "99", "0", "Carte non reconnue : aucune banque émettrice ne correspond à ce numéro de carte. Vérifiez le "
        "numéro ou utilisez une autre carte.")
    assert Hold.objects.count() == 0 and not AcsTransaction.objects.exists()
    assert not DirectoryTransaction.objects.exists()


def test_failure_from_the_merchant_voids_the_hold_at_the_bank(shop, counterparty):
    counterparty.state.callback_answer = "FAILURE"
    browser, token = shop
    card = sandbox.card_by_outcome("00", "none")
    action, _fields = form_of(browser.post(f"/paiement/{token}", typed(card)))
    assert action.endswith("/shop/fail")
    assert Attempt.objects.get().state == AttemptState.VOIDED
    assert [h.state for h in Hold.objects.all()] == [Hold.State.RELEASED]
