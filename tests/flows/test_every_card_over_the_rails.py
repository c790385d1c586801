"""The journeys of test_every_card with the gateway on the card rails: its ISO 8583 client
(tasdid.gateway.rails.SwitchAcquirer) → the switch → the issuer host → the bank, each on 127.0.0.1, instead of the
in-process bank. Same assertions, same money in the bank's ledger."""

import pytest

pytest.importorskip("tasdid.switch.server")
pytest.importorskip("tasdid.bank.issuer")

from tests.support.card_rails import CardRails

from .test_every_card import (  # noqa: F401 - collected here again, over the rails
    test_a_declined_card_pays_nothing,
    test_an_approved_card_pays_both_invoices,
    test_an_unknown_card_number_is_refused_by_the_bank,
)


@pytest.fixture(autouse=True)
def on_the_rails(world, settings):
    card_rails = CardRails().start()
    card_rails.acquirer_settings(settings)
    yield card_rails
    card_rails.stop()
    from tasdid.switch.models import JournalEntry

    # The authorization did travel: the switch journaled it from the gateway and to the issuer.
    assert set(JournalEntry.objects.filter(mti="0100").values_list("direction", flat=True)) == {"acq_in", "iss_out"}


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
