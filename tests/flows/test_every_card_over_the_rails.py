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
