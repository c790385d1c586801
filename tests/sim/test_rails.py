"""The card rails under the seeded simulation (issue 9): the gateway's ISO 8583 client, the switch and the issuer
host carry every authorization, capture and reversal of the journeys as encoded messages (tests/sim/rails.py),
with the ISO legs hit harder than in the other seeds: lost, late, duplicated and reordered messages, connections
refused, the switch or the issuer host dying between request and answer, reversals sent again until a 0410. After
recovery the money is read from the bank's ledger (invariants.money_through_the_ledger): for every order, what the
bank debited = what the gateway captured = what the biller recorded; no hold without a captured authorization the
gateway knows; every reversal owed acknowledged.

    .venv/bin/python -m pytest tests/sim/test_rails.py -q -n 0                    # CI: RAILS_SEEDS (4) seeds
    TASDID_SIM_RAILS_SEEDS=300 .venv/bin/python -m pytest tests/sim/test_rails.py -q -m slow -n 2  # the long run
    TASDID_SIM_RAILS_FIGURES=/tmp/rails.jsonl ...                                  # + figures, one line per seed
"""

import dataclasses
import json
import os
from collections import Counter

import pytest

from tasdid.bank import sandbox
from tasdid.bank.models import Hold, LedgerEntry
from tasdid.gateway.models import Attempt, AttemptState
from tasdid.gateway.models import PendingReversal as GatewayReversal
from tasdid.switch.models import JournalEntry
from tasdid.switch.models import PendingReversal as SwitchReversal

from . import journeys
from .engine import Settings, Simulation
from .network import Faults, SimCrash

# The ISO legs hit about twice as hard as in the other seeds, the crashes as often.
RAILS_FAULTS = Faults(iso_refuse=0.04, iso_lose_request=0.06, iso_lose_answer=0.06, iso_delay=0.07,
                      iso_duplicate=0.06, crash=0.03)
RAILS_SEEDS = [101, 102, 104, 105]
# The seeds whose longer runs (more customers), taken together, see every kind of fault of the rails.
FAULTS_SEEDS = (108, 111)
# The long run, outside the suite (which runs the `slow` tests too): only when TASDID_SIM_RAILS_SEEDS says how many.
LONG = os.environ.get("TASDID_SIM_RAILS_SEEDS", "")
LONG_FIRST = int(os.environ.get("TASDID_SIM_RAILS_FIRST_SEED", "1001"))
LONG_SEEDS = list(range(LONG_FIRST, LONG_FIRST + int(LONG or "0")))


def run(monkeypatch, seed: int) -> Simulation:
    sim = Simulation(seed, Settings(journeys=4, faults=RAILS_FAULTS)).run(monkeypatch)
    if os.environ.get("TASDID_SIM_SEED") or os.environ.get("TASDID_SIM_PRINT"):
        print(sim.report())
    if path := os.environ.get("TASDID_SIM_RAILS_FIGURES"):
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"seed": seed, **figures(sim)}) + "\n")
    return sim


def figures(sim: Simulation) -> dict[str, int]:
    """What one run did on the rails, from its counters and the parties' tables."""
    counts = Counter(sim.net.rails.figures)
    counts["authorizations approved"] = Attempt.objects.filter(response_code="00").count()
    counts["captured"] = Attempt.objects.filter(state=AttemptState.CAPTURED).count()
    counts["holds released"] = Hold.objects.filter(state=Hold.State.RELEASED).count()
    counts["ledger debits"] = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT).count()
    counts["gateway reversals"] = GatewayReversal.objects.count()
    counts["gateway reversal sends"] = sum(GatewayReversal.objects.values_list("tries", flat=True))
    counts["switch reversals"] = SwitchReversal.objects.count()
    counts["switch reversal sends"] = sum(SwitchReversal.objects.values_list("attempts", flat=True))
    counts["switch journal rows"] = JournalEntry.objects.count()
    return dict(counts)


@pytest.mark.parametrize("seed", RAILS_SEEDS)
def test_rails_seeds_hold_the_money_invariant(sim_world, monkeypatch, seed):
    sim = run(monkeypatch, seed)
    done = figures(sim)
    # The run went over the rails: authorizations reached the issuer host as 0100 through the switch.
    assert done["gateway 0100"] and done["issuer 0100"], sim.report()


def test_rails_faults_all_happen(sim_world, monkeypatch):
    """The short run is not vacuous: over two longer runs (more customers, one after the other on the same
    parties) every kind of fault of the rails happens at least once."""
    done: Counter = Counter()
    reports = []
    for seed in FAULTS_SEEDS:
        sim = Simulation(seed, Settings(journeys=10, max_steps=400, faults=RAILS_FAULTS)).run(monkeypatch)
        done.update(figures(sim))
        reports.append(sim.report())
        monkeypatch.undo()
    for kind in ("lost", "late", "duplicated", "answer lost", "not sent", "gateway 0400", "issuer 0400"):
        assert done.get(kind), (kind, done, reports)


@pytest.mark.parametrize("journal_written", [True, False], ids=["journal written", "journal batch lost"])
def test_switch_dies_between_the_issuers_answer_and_the_gateways(sim_world, monkeypatch, journal_written):
    """Scripted: the issuer approves (a hold is placed), the switch dies before answering the gateway, with its
    last journal batch written or lost (the forwarded 0100 is on disk either way: written before it left). The
    gateway had no answer: it owes a reversal (0400, DE90 its own STAN), which it sends until the restarted
    switch acknowledges it. After recovery the hold is released and nothing is debited."""
    faults = dataclasses.replace(Faults.none(), journal_survives=1.0 if journal_written else 0.0)
    sim = Simulation(3, Settings(journeys=1, faults=faults))
    crashed: list[str] = []
    maybe_crash = sim.net.maybe_crash

    def crash_once(where: str) -> None:
        if where.startswith("between the issuer's answer") and not crashed:
            crashed.append(where)
            raise SimCrash("switch", where)
        maybe_crash(where)

    monkeypatch.setattr(sim.net, "maybe_crash", crash_once)
    monkeypatch.setattr(journeys, "CARDS", ((sandbox.card_by_outcome("00", "none"), 1),))
    sim.run(monkeypatch)
    assert crashed, sim.report()
    attempt = Attempt.objects.order_by("pk").first()  # the authorization whose answer the switch never gave
    assert attempt is not None and attempt.state == AttemptState.VOIDED and not attempt.rrn, sim.report()
    holds = Hold.objects.filter(order_id=attempt.session.oid)
    assert [h.state for h in holds] == [Hold.State.RELEASED], [(h.rrn, h.state) for h in holds]
    assert not LedgerEntry.objects.filter(hold__in=holds).exists(), sim.report()
    reversal = GatewayReversal.objects.get(original_mti="0100", original_stan=attempt.stan)
    assert reversal.state == GatewayReversal.State.DONE, sim.report()


@pytest.mark.slow
@pytest.mark.skipif(not LONG_SEEDS, reason="the long run: TASDID_SIM_RAILS_SEEDS=300 (seeds from 1001)")
@pytest.mark.parametrize("seed", LONG_SEEDS or [0])
def test_rails_long_run(sim_world, monkeypatch, seed):
    run(monkeypatch, seed)


def test_reversal_overtakes_its_authorization_on_another_connection(sim_world, monkeypatch):
    """Scripted: the gateway's 0100 is late on the web process's connection; its void cannot be sent at once (no
    connection), so the worker or the sweep sends the 0400 on theirs, which reaches the switch first. After
    recovery no hold may stand (the late 0100 must be declined or reversed)."""
    sim = Simulation(3, Settings(journeys=1, faults=Faults.none()))
    sim.net.rails.forced.update({"late 0100": 1, "refuse 0400": 1})
    monkeypatch.setattr(journeys, "CARDS", ((sandbox.card_by_outcome("00", "none"), 1),))
    sim.run(monkeypatch)  # raises Violation: the hold of the late 0100 stays open
