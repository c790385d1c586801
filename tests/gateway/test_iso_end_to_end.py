"""The gateway's ISO 8583 client → the real switch → the real issuer host → the bank's database, over TCP on
127.0.0.1: authorization, partial capture, refund, void, refusals, with the money checked in the bank's ledger."""

import threading
import time
from decimal import Decimal

import pytest
from django.utils import timezone

pytest.importorskip("tasdid.switch.server")
pytest.importorskip("tasdid.bank.issuer")

from tasdid.bank import sandbox
from tasdid.bank.demo import seed_demo
from tasdid.bank.models import Card, Hold, LedgerEntry
from tasdid.core.acquiring import (
    AcquirerUnavailable,
    AuthorizationRequest,
    CardData,
    RefundRequest,
    SettlementRequest,
)
from tasdid.core.cards import fingerprint
from tasdid.gateway import rails, services
from tasdid.gateway.models import PendingReversal
from tests.support.card_rails import CardRails

pytestmark = pytest.mark.django_db(transaction=True)

VISA = sandbox.card_by_outcome("00", "none")
POOR = sandbox.card_by_outcome("51")
MERCHANT = "600000001"


@pytest.fixture
def acquirer(transactional_db, settings):
    seed_demo()
    card_rails = CardRails(issuer_timeout=20.0).start()
    card_rails.acquirer_settings(settings)
    acquirer = rails.SwitchAcquirer()
    assert acquirer.rails.wait_up(30)
    yield acquirer
    card_rails.stop()


def account(card):
    return Card.objects.get(fingerprint=fingerprint(card.number)).account


def authorization(card, amount: int) -> AuthorizationRequest:
    month, year = (card.issued_expiry or card.expiry).split("/")
    return AuthorizationRequest(
        card=CardData(pan=card.number, expiry_yymm=year + month, cvv=card.issued_cvv or card.cvv),
        amount_minor=amount, currency="504", merchant_id=MERCHANT, merchant_name="Tasdid Télécom",
        order_id="TSD-E2E-1", stan=services.next_stan(), transmitted_at=timezone.now())


def settlement(auth: AuthorizationRequest, result, amount: int) -> SettlementRequest:
    return SettlementRequest(
        original_stan=auth.stan, original_transmitted_at=auth.transmitted_at, amount_minor=amount, currency="504",
        merchant_id=MERCHANT, order_id=auth.order_id, stan=services.next_stan(), transmitted_at=timezone.now(),
        rrn=result.rrn, auth_code=result.auth_code)


def test_authorize_capture_part_and_refund_move_the_money_once(acquirer):
    opening = account(VISA).balance
    auth = authorization(VISA, 28500)
    result = acquirer.authorize(auth)

    assert result.approved and len(result.rrn) == 12 and len(result.auth_code) == 6
    hold = Hold.objects.get(account=account(VISA))
    assert (hold.state, hold.amount, hold.rrn) == ("held", Decimal("285.00"), result.rrn)
    assert account(VISA).balance == opening

    captured = acquirer.capture(settlement(auth, result, 20000))
    assert captured.accepted
    hold.refresh_from_db()
    assert hold.state == "captured"
    assert account(VISA).balance == opening - Decimal("200.00")
    (debit,) = LedgerEntry.objects.filter(account=account(VISA), kind="debit")
    assert (debit.amount, debit.hold_id) == (Decimal("200.00"), hold.pk)

    refund = acquirer.refund(RefundRequest(
        rrn=result.rrn, original_stan=auth.stan, original_transmitted_at=auth.transmitted_at, amount_minor=5000,
        currency="504", merchant_id=MERCHANT, order_id=auth.order_id, stan=services.next_stan(),
        transmitted_at=timezone.now(), merchant_name="Tasdid Télécom"))
    assert refund.accepted
    assert account(VISA).balance == opening - Decimal("150.00")
    (credit,) = LedgerEntry.objects.filter(account=account(VISA), kind="credit", refund__isnull=False)
    assert credit.amount == Decimal("50.00")
    # Beyond what was captured: refused, nothing credited.
    too_much = acquirer.refund(RefundRequest(
        rrn=result.rrn, original_stan=auth.stan, original_transmitted_at=auth.transmitted_at, amount_minor=20000,
        currency="504", merchant_id=MERCHANT, order_id=auth.order_id, stan=services.next_stan(),
        transmitted_at=timezone.now()))
    assert (too_much.response_code, too_much.accepted) == ("13", False)
    assert account(VISA).balance == opening - Decimal("150.00")
    assert not PendingReversal.objects.exists()


def test_void_releases_the_hold(acquirer):
    auth = authorization(VISA, 10000)
    result = acquirer.authorize(auth)
    voided = acquirer.void(settlement(auth, result, 10000))

    assert voided.accepted
    assert Hold.objects.get(account=account(VISA)).state == "released"
    assert PendingReversal.objects.get().state == "done"


def test_a_refusal_comes_back_with_its_code_and_moves_nothing(acquirer):
    opening = account(POOR).balance
    result = acquirer.authorize(authorization(POOR, 28500))

    assert (result.response_code, result.rrn) == ("51", "")
    assert not Hold.objects.filter(account=account(POOR)).exists()
    assert account(POOR).balance == opening


def test_a_reversal_owed_for_a_lost_answer_releases_the_hold_at_the_bank(acquirer):
    # The answer is lost on the way back (the gateway gave up): the reversal the client owes releases the hold.
    auth = authorization(VISA, 7000)
    result = acquirer.authorize(auth)
    services.reversal_open(merchant_id=MERCHANT, original_mti="0100", original_stan=auth.stan,
                           original_transmitted_at=auth.transmitted_at, processing_code="000000", amount_minor=7000,
                           currency="504")
    assert rails.sweep_reversals() == {"reversals acknowledged": 1}

    hold = Hold.objects.get(account=account(VISA))
    assert (hold.rrn, hold.state) == (result.rrn, "released")


def test_an_answer_too_slow_is_reversed_and_the_late_approval_holds_nothing(acquirer, monkeypatch):
    """The bank takes longer than the gateway waits: the gateway's reversal reaches the bank first, the
    authorization that comes after it is declined, its late 0110 is ignored by the gateway: no money held."""
    from tasdid.bank.services import authorization as bank_authorization

    real = bank_authorization.authorize
    go = threading.Event()

    def slow(**kwargs):
        go.wait(30)
        return real(**kwargs)

    monkeypatch.setattr(bank_authorization, "authorize", slow)
    opening = account(VISA).balance
    impatient = rails.RailsConnection(rails.RailsConfig(
        host="127.0.0.1", port=acquirer.rails.config.port, timeout=1.0, echo_timeout=2.0, connect_wait=5.0))
    try:
        assert impatient.wait_up(30)
        client = rails.SwitchAcquirer(impatient)
        auth = authorization(VISA, 28500)
        with pytest.raises(AcquirerUnavailable):
            client.authorize(auth)
        assert PendingReversal.objects.get().state == "pending"

        # What the flow does next: void the attempt whose answer never came.
        voided = client.void(SettlementRequest(
            original_stan=auth.stan, original_transmitted_at=auth.transmitted_at, amount_minor=28500,
            currency="504", merchant_id=MERCHANT, order_id=auth.order_id, stan=services.next_stan(),
            transmitted_at=timezone.now()))
        assert voided.accepted
        go.set()
        ends = time.monotonic() + 30
        while impatient.late_answers < 1 and time.monotonic() < ends:
            time.sleep(0.05)
        assert impatient.late_answers == 1
    finally:
        go.set()
        impatient.close()

    assert PendingReversal.objects.get().state == "done"
    assert not Hold.objects.filter(account=account(VISA), state="held").exists()
    assert account(VISA).balance == opening
