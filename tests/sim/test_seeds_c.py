"""The seeded simulation, part c: every third seed of the set (see test_simulation.py)."""

import pytest

from .test_simulation import run_seed, seeds_part


@pytest.mark.parametrize("seed", seeds_part(2))
def test_seeded_simulation_holds_every_invariant(sim_world, monkeypatch, seed):
    run_seed(monkeypatch, seed)
