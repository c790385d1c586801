"""Replays across the parties change nothing (DESIGN.md §7.5): the gateway's callback sent again to the biller,
the browser's return posted again, and two card submits of the same page at once (one authorization)."""

import threading
from decimal import Decimal

import httpx
import pytest

from tasdid.bank import sandbox
from tasdid.bank.models import Authorization
from tasdid.billing.models import Payment
from tasdid.gateway.models import Attempt

from . import journey

VISA = sandbox.card_by_outcome("00", "none")
NO_FUNDS = sandbox.card_by_outcome("51")


@pytest.mark.parametrize(("card", "answer"), [(VISA, "ACTION=POSTAUTH"), (NO_FUNDS, "APPROVED")],
                         ids=["approved", "declined"])
def test_a_resent_callback_changes_nothing(world, customer, person, callbacks, card, answer):
    biller = world["biller"]
    pay_page = journey.to_gateway(person, journey.consult(person, biller))
    landing = journey.pay(person, pay_page, card)
    if card is VISA:
        journey.delivered_email()  # the receipt email has gone: nothing is pending any more
    ((url, fields, _answer),) = callbacks
    before = journey.snapshot()

    # The exact callback, sent again by the gateway (or anyone who recorded it).
    again = httpx.post(url, data=fields, timeout=30)
    assert (again.status_code, again.text) == (200, answer)
    # The browser's return, posted again (the back button, a reload): the same page.
    back = person.follow(person.history[-2])
    assert (back.url, back.visible_text) == (landing.url, landing.visible_text)

    assert journey.snapshot() == before
    journey.assert_invariants()


def test_two_card_submits_at_once_make_one_authorization(world, customer, person):
    """A double click, or two tabs: the same card form posted twice at the same moment."""
    biller = world["biller"]
    opening = journey.balance_of(VISA)
    pay_page = journey.to_gateway(person, journey.consult(person, biller))
    action, data = journey.card_form_data(pay_page, VISA)
    start = threading.Barrier(2)
    pages = [None, None]

    def submit(i: int) -> None:
        start.wait(timeout=30)
        pages[i] = person.post(action, data)

    tabs = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for tab in tabs:
        tab.start()
    for tab in tabs:
        tab.join(timeout=120)

    winner, = [p for p in pages if p.status == 200]
    loser, = [p for p in pages if p.status == 409]
    assert winner.autosubmit_form.action == biller + "/paiement/ok"
    # Which of "in progress" and "already processed" the second tab sees depends on when it arrived.
    assert loser.title in ("Paiement en cours", "Cette commande a déjà été traitée")
    assert "ne peut pas être" in loser.visible_text
    landing = person.follow(winner)
    assert landing.title == "Reçu de paiement"

    assert Attempt.objects.count() == Authorization.objects.count() == Payment.objects.count() == 1
    assert journey.holds_of(VISA) == [("captured", Decimal("219.00"))]
    assert journey.balance_of(VISA) == opening - Decimal("219.00")
    assert journey.unpaid_refs() == []
    journey.assert_invariants()
