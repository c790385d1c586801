"""No answer in time: 91 to the acquirer, a 0400 to the issuer until a 0410 comes, across a restart; a late
0110 is ignored. The acquirer's own reversals and completions follow their original."""

import dataclasses
import datetime as dt

import pytest

from tasdid.core import iso8583 as iso
from tasdid.switch.models import JournalEntry, PendingReversal

from .fakes import Acquirer, authorization, wait_until

rc = iso.rc
pytestmark = pytest.mark.django_db(transaction=True)


def reversal_row() -> PendingReversal | None:
    return PendingReversal.objects.first()


def test_timeout_answers_91_and_reverses_until_0410_then_ignores_the_late_0110(start_switch, atlas):
    switch = start_switch(issuer_timeout=1.0)
    reversals_seen = []

    def decide(message):
        if message.MTI == "0100":
            return ("delay", 3.0, rc.APPROVED)  # after the switch gave up
        reversals_seen.append(message)
        return ("drop",) if len(reversals_seen) < 3 else ("answer", rc.APPROVED)

    atlas.decide = decide
    client = Acquirer(switch.port)
    request = authorization(amount=28500)

    answer = client.ask(request)

    assert (answer.MTI, answer.response_code, answer.stan) == ("0110", rc.ISSUER_UNAVAILABLE, request.stan)
    row = wait_until(lambda: (r := reversal_row()) is not None and r.acknowledged and r, "the 0410")
    [forwarded] = atlas.requests("0100")
    reversals = atlas.requests("0400")
    # Two dropped, the third answered (one more if a loaded machine made that answer late too), each its own STAN.
    assert len(reversals) >= 3 and len({m.stan for m in reversals}) == len(reversals)
    for reversal in reversals:
        assert reversal.original == iso.OriginalData(mti="0100", stan=forwarded.stan,
                                                     transmitted_at=forwarded.transmitted_at)
        assert (reversal.amount_minor, reversal.currency, reversal.merchant_id) == (28500, "504", "600000001")
    assert (row.attempts, row.response_code, row.original_stan) == (len(reversals), "00", forwarded.stan)
    # The late 0110 reached the switch, was journaled as such, and never went to the acquirer: the next thing
    # the acquirer reads is the answer to its echo.
    wait_until(lambda: JournalEntry.objects.filter(direction="iss_in", mti="0110", stan=forwarded.stan,
                                                   note__startswith="réponse tardive").exists(), "the late 0110")
    echo = client.ask(iso.NetworkRequest(stan="000999", transmitted_at=request.transmitted_at, network_code="301"))
    assert (echo.MTI, echo.stan) == ("0810", "000999")


def test_link_lost_after_sending_is_a_timeout_too(start_switch, atlas):
    switch = start_switch(issuer_timeout=5.0)
    atlas.decide = lambda message: ("hold",)
    client = Acquirer(switch.port)
    client.send(authorization())
    wait_until(lambda: atlas.held, "the request at the issuer")
    atlas.die()

    assert client.receive().response_code == rc.ISSUER_UNAVAILABLE
    assert wait_until(reversal_row, "a reversal owed").original_mti == "0100"


def test_a_reversal_pending_at_shutdown_is_sent_after_restart(start_switch, atlas):
    first = start_switch(issuer_timeout=0.5)
    atlas.decide = lambda message: ("drop",)  # neither the 0100 nor any 0400 is answered
    assert Acquirer(first.port).ask(authorization()).response_code == rc.ISSUER_UNAVAILABLE
    wait_until(lambda: (r := reversal_row()) is not None and r.attempts >= 1, "a first 0400 unanswered")
    first.stop()
    sent_before = len(atlas.requests("0400"))
    assert not reversal_row().acknowledged

    atlas.decide = lambda message: ("answer", rc.APPROVED)
    start_switch(issuer_timeout=5.0)

    row = wait_until(lambda: (r := reversal_row()) is not None and r.acknowledged and r, "acknowledged after restart")
    assert len(atlas.requests("0400")) == sent_before + 1
    assert row.response_code == "00"


def test_acquirer_reversal_and_completion_follow_the_original_with_the_switch_stan(switch, atlas, sahel):
    client = Acquirer(switch.port)
    request = authorization("5220110000000026", amount=10000)
    approved = client.ask(request)
    assert approved.response_code == rc.APPROVED
    [forwarded] = sahel.requests("0100")
    original = iso.OriginalData(mti="0100", stan=request.stan, transmitted_at=request.transmitted_at)
    at = request.transmitted_at + dt.timedelta(seconds=1)

    capture = client.ask(iso.CompletionRequest(amount_minor=6000, currency="504", stan="000500", transmitted_at=at,
                                               merchant_id="600000001", rrn=approved.rrn, original=original))
    void = client.ask(iso.ReversalRequest(amount_minor=10000, currency="504", stan="000501", transmitted_at=at,
                                          merchant_id="600000001", original=original, rrn=approved.rrn))

    assert (capture.MTI, capture.response_code, capture.stan) == ("0230", "00", "000500")
    assert (void.MTI, void.response_code, void.stan) == ("0410", "00", "000501")
    switch_original = iso.OriginalData(mti="0100", stan=forwarded.stan, transmitted_at=forwarded.transmitted_at)
    assert sahel.requests("0220")[0].original == switch_original
    assert sahel.requests("0400")[0].original == switch_original
    assert atlas.requests("0220") == [] and atlas.requests("0400") == []
    # The void sent again (its answer lost on the way): the same answer, and nothing more at the issuer.
    again = client.ask(iso.ReversalRequest(amount_minor=10000, currency="504", stan="000501", transmitted_at=at,
                                           merchant_id="600000001", original=original, rrn=approved.rrn))
    assert again == void
    assert len(sahel.requests("0400")) == 1


def test_reversal_of_an_original_the_issuer_never_saw(switch, atlas):
    client = Acquirer(switch.port)
    unrouted = authorization("9999990000000010")
    assert client.ask(unrouted).response_code == rc.NO_ROUTE
    wait_until(lambda: JournalEntry.objects.filter(direction="acq_out", stan=unrouted.stan).exists(), "journaled")
    original = iso.OriginalData(mti="0100", stan=unrouted.stan, transmitted_at=unrouted.transmitted_at)
    void = iso.ReversalRequest(amount_minor=28500, currency="504", stan="000600", merchant_id="600000001",
                               transmitted_at=unrouted.transmitted_at, original=original)

    assert client.ask(void).response_code == rc.APPROVED  # nothing was held: nothing to undo
    unknown = dataclasses.replace(void, stan="000601", original=dataclasses.replace(original, stan="123456"))
    assert client.ask(unknown).response_code == rc.INVALID_TRANSACTION
    assert atlas.requests("0400") == []


def test_a_forwarded_authorization_is_on_disk_before_it_leaves_the_switch(start_switch, atlas):
    """The issuer leg of a 0100 is what a restarted switch finds the original of a reversal by: it is committed
    before the frame leaves, not with the journal's next batch (here a minute away, so a switch killed now would
    lose every other row of this exchange but not that one)."""
    switch = start_switch(journal_interval=60.0)
    atlas.decide = lambda message: ("answer", rc.APPROVED)
    request = authorization(amount=28500)

    assert Acquirer(switch.port).ask(request).response_code == rc.APPROVED

    [forwarded] = atlas.requests("0100")
    on_disk = JournalEntry.objects.filter(direction="iss_out", mti="0100", stan=forwarded.stan,
                                          related_stan=request.stan, related_transmitted_at=request.transmitted_at)
    assert on_disk.count() == 1
    # What came after it (the issuer's answer, the answer to the acquirer) waits for its batch.
    assert not JournalEntry.objects.filter(mti="0110").exists()


def test_a_refund_whose_reversal_came_first_is_never_forwarded(switch, atlas):
    """A refund (0200, processing code 20, no card: it follows its payment by RRN) late on one connection, its
    reversal (0400) first on another: the reversal is answered 12 (nothing forwarded), and the refund that comes
    after it is declined, never credited at the issuer."""
    client = Acquirer(switch.port)
    request = authorization(amount=28500)
    approved = client.ask(request)
    assert approved.response_code == rc.APPROVED
    at = request.transmitted_at + dt.timedelta(seconds=5)
    paid = iso.OriginalData(mti="0100", stan=request.stan, transmitted_at=request.transmitted_at)
    refund = iso.FinancialRequest(processing_code=iso.REFUND, amount_minor=5000, currency="504", stan="000700",
                                  transmitted_at=at, merchant_id="600000001", rrn=approved.rrn, original=paid,
                                  merchant_name="TASDID", order_id="ORDER-1")
    reversal = iso.ReversalRequest(amount_minor=5000, currency="504", stan="000701", transmitted_at=at,
                                   merchant_id="600000001", processing_code=iso.REFUND,
                                   original=iso.OriginalData(mti="0200", stan="000700", transmitted_at=at))

    assert Acquirer(switch.port).ask(reversal).response_code == rc.INVALID_TRANSACTION
    late = client.ask(refund)

    assert (late.MTI, late.response_code, late.stan) == ("0210", rc.INVALID_TRANSACTION, "000700")
    assert atlas.requests("0200") == [] and atlas.requests("0400") == []
    wait_until(lambda: JournalEntry.objects.filter(direction="acq_out", mti="0210",
                                                   note="annulé par l'acquéreur avant d'arriver").exists(),
               "the refused refund journaled")
