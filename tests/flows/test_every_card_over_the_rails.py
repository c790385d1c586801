"""The card rails under the journeys: the gateway's ISO 8583 client (tasdid.gateway.rails.SwitchAcquirer) → the
switch → the issuer host → the bank, each on 127.0.0.1 (the ``card_rails`` fixture every flow runs on). Here:
the messages did travel through the switch, and a bank slower than the gateway's patience costs nothing."""

import pytest

from . import journey
from .test_every_card import test_an_approved_card_pays_both_invoices  # noqa: F401 - its journal checked here


@pytest.fixture(autouse=True)
def travelled_through_the_switch(world):
    yield
    from tasdid.switch.models import JournalEntry

    # The authorization did travel: the switch journaled it from the gateway and to the issuer (in its next batch).
    journey.wait_for(lambda: set(JournalEntry.objects.filter(mti="0100").values_list("direction", flat=True))
                     == {"acq_in", "iss_out"}, "the switch's journal of the 0100")


def test_a_bank_too_slow_for_the_gateway_pays_nothing_and_holds_nothing(world, customer, person, settings,
                                                                          monkeypatch):
    """The issuer answers after the gateway stopped waiting: the payment fails for the customer and the biller,
    the gateway's reversal reaches the bank before the authorization, which then holds nothing; the late 0110
    is ignored (DESIGN §7: never a charge the biller does not know about)."""
    import threading

    from tasdid.bank import sandbox
    from tasdid.bank.models import Hold, LedgerEntry
    from tasdid.bank.services import authorization as bank_authorization
    from tasdid.billing.models import Payment
    from tasdid.gateway import rails
    from tasdid.gateway.models import Attempt, PendingReversal

    from . import journey

    settings.RAILS_TIMEOUT = 1.0
    rails.reset_connection()
    real, go = bank_authorization.authorize, threading.Event()

    def slow(**kwargs):
        go.wait(30)
        return real(**kwargs)

    monkeypatch.setattr(bank_authorization, "authorize", slow)
    card = sandbox.card_by_outcome("00", "none")
    opening = journey.balance_of(card)
    biller = world["biller"]
    try:
        landing = journey.pay(person, journey.to_gateway(person, journey.consult(person, biller)), card)
    finally:
        go.set()

    assert landing.url == biller + "/paiement/echec"
    journey.wait_for(lambda: rails.connection().late_answers == 1, "the late 0110 at the gateway")
    attempt = Attempt.objects.get()
    assert (attempt.state, attempt.response_code) == ("voided", "91")
    assert journey.attempt_moves(attempt) == ["authenticating", "authorizing", "voiding", "voided"]
    reversal = PendingReversal.objects.get()
    assert (reversal.state, reversal.original_stan, reversal.response_code) == ("done", attempt.stan, "00")
    assert not Hold.objects.filter(state="held").exists()
    assert journey.balance_of(card) == opening
    assert LedgerEntry.objects.filter(kind="debit").count() == 0
    assert Payment.objects.count() == 0
    assert journey.unpaid_refs() == [journey.REF_MAY, journey.REF_JUNE]
    journey.assert_invariants()
