"""The seeded simulation (issue 6): many journeys through every party in process, with crashes, lost, delayed,
duplicated and reordered messages, outages and timers, DESIGN.md §7 checked after every step and, after
recovery, in full. A failing seed prints its numbered steps and replays exactly:

    .venv/bin/python -m pytest tests/sim -q -n 2 --dist loadfile       # CI: TASDID_SIM_SEEDS seeds (default 200)
    TASDID_SIM_SEEDS=1000 .venv/bin/python -m pytest tests/sim -q -n 2 # the long campaign
    TASDID_SIM_SEED=1234 .venv/bin/python -m pytest tests/sim -q -n 0  # replay one seed

The seeds are spread over three files (test_seeds_a/_b/_c.py: every third seed each), as the suite runs with
``--dist loadfile``: one file is one worker's.
"""

import os

from .engine import Settings, Simulation
from .network import Faults

FIRST = int(os.environ.get("TASDID_SIM_FIRST_SEED", "1"))
SEEDS = ([int(os.environ["TASDID_SIM_SEED"])] if os.environ.get("TASDID_SIM_SEED")
         else list(range(FIRST, FIRST + int(os.environ.get("TASDID_SIM_SEEDS", "200")))))


# A campaign may hit harder than CI (the same seed with other rates is another run: replay with the same rates).
FAULTS = Faults(**{name: float(os.environ[f"TASDID_SIM_{name.upper()}"]) for name in ("crash", "refuse")
                   if os.environ.get(f"TASDID_SIM_{name.upper()}")})


PARTS = 3


def seeds_part(part: int) -> list[int]:
    """The seeds of one of the PARTS files: every PARTS-th seed, from the ``part``-th (0-based)."""
    return SEEDS[part::PARTS]


def run_seed(monkeypatch, seed: int) -> None:
    sim = Simulation(seed, Settings(faults=FAULTS)).run(monkeypatch)
    if os.environ.get("TASDID_SIM_SEED"):
        print(sim.report())
    assert sim.journeys


def test_without_faults_every_customer_reaches_the_billers_page(sim_world, monkeypatch):
    """The simulation itself works: with no fault, every journey ends on the biller's receipt or failure page
    (not given up), and the paid ones are paid once, captured, with their email sent."""
    sim = Simulation(7, Settings(journeys=4, max_steps=200, clock_jumps=False,
                                                  faults=Faults.none())).run(monkeypatch)
    outcomes = [j.outcome for j in sim.journeys]
    assert set(outcomes) <= {"Reçu de paiement", "Votre paiement n'a pas abouti"}, [*outcomes, sim.report()]
    assert "Reçu de paiement" in outcomes, sim.report()
