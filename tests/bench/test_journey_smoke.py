"""The end-to-end payment benchmark (bench/journey) in its short version: Tasdid started as production runs it
(gunicorn per party, the worker, the switch and the issuer host, the SMTP sink) over a SQLite file of its own, a
few complete journeys from two virtual customers at once, every way in, a deferred invoice, a challenge card.
Every journey completes and the report has each of its figures; no figure is judged here (speed is bench/'s)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STEPS = {"identify-form", "sms-request", "sms-wait", "identify", "order", "hosted-page", "defer", "card",
         "challenge-page", "challenge-code", "challenge-return", "return"}
PARTS = {"biller", "gateway", "bank", "switch", "switch-iso", "issuer", "worker", "smtp", "total"}


def test_a_few_journeys_complete_and_the_report_has_its_figures(tmp_path):
    report_path = tmp_path / "journey.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.journey", "--customers", "2", "--journeys", "6", "--warmup", "0",
         "--challenge-every", "3", "--defer-every", "2", "--ceiling-seconds", "1", "--json", str(report_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(report_path.read_text())

    assert (report["journeys"], report["completed"], report["errors"]["count"]) == (6, 6, 0), report["errors"]
    assert report["payments_per_second"] > 0
    assert set(report["steps"]) >= STEPS, sorted(report["steps"])
    for figures in report["steps"].values():
        assert {"p50_ms", "p95_ms", "p99_ms", "count"} <= set(figures)
    assert set(report["cpu_ms_per_payment"]) >= PARTS, report["cpu_ms_per_payment"]
    assert report["cpu_ms_per_payment"]["total"] > 0
    # A payment is at least the customer's ten pages or so, and the gateway's callback to the biller.
    assert report["http"]["customer_per_payment"] >= 9
    assert report["http"]["server_to_server_per_payment"] >= 1
    assert report["sql_statements_per_payment"] > 0
    ceiling = report["ceiling"]
    assert ceiling["requests"] > 0 and ceiling["cpu_ms_per_request"] > 0
    assert report["ratio_to_ceiling"] > 1
    assert f"{report['completed']}/{report['journeys']} payments completed" in run.stdout
