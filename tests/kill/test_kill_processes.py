"""The parties as real processes, each killed with SIGKILL while customers pay, restarted; then recovery and the
invariants of DESIGN §7 in every party's tables (bench/kill_campaign.py, here in its short version).

On PostgreSQL when the suite runs on it (TASDID_TEST_DATABASE_URL: a database of its own beside the test
database), else on a SQLite file of its own. Bounded: 24 customers, 6 kills (the biller, the gateway, the bank,
the switch, the issuer host and the worker once each, in a seeded order), about a minute on this project's machine.
"""

import os
from collections import Counter

from bench.kill_campaign import VICTIMS, Campaign


def test_payments_survive_kill_9_of_each_party_and_the_worker(tmp_path):
    campaign = Campaign(database_url=os.environ.get("TASDID_TEST_DATABASE_URL"), work_dir=tmp_path, seed=6,
                        kills=len(VICTIMS), payments=24, concurrency=4, kill_gap=(1.0, 3.0), pause=(0.2, 1.0),
                        settle_seconds=45)
    try:
        report = campaign.run()
    finally:
        campaign.cleanup()
    summary = campaign.summary()
    print(summary)
    figures = campaign.figures
    # The campaign did what it says: every party and the worker killed once, payments made around the kills.
    assert sorted(victim for _t, victim, _p in figures.kills) == sorted(VICTIMS), summary
    outcomes = Counter(j.outcome for j in figures.journeys)
    assert outcomes["paid"] >= 3 and outcomes["refused"] >= 1, summary
    assert report["counts"]["payments"] >= outcomes["paid"], summary
    # Nothing lost, nothing twice: no invariant broken once recovery has run.
    assert report["violations"] == [], summary
