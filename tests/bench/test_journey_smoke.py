"""The end-to-end payment benchmark (bench/journey) in its short version: Tasdid started as production runs it
(gunicorn per party, the worker, the switch and the issuer host, the SMTP sink) over a SQLite file of its own, a
few complete journeys from two virtual customers at once, every way in, a deferred invoice, a challenge card.
Every journey completes and the report has each of its figures; no figure is judged here (speed is bench/'s).
Then the series driver (bench.journey.scaleout) at one level with one web process per party, and its plots."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STEPS = {"identify-form", "sms-request", "sms-wait", "identify", "order", "hosted-page", "defer", "card",
         "challenge-page", "challenge-code", "challenge-return", "return"}
PARTS = {"biller", "gateway", "bank", "switch", "switch-iso", "issuer", "worker", "smtp", "total"}
WEB_PARTIES = ("biller", "gateway", "bank", "switch")


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
    # tasdid serve's default: 2 gunicorn workers per party, each under its master; the other parts one process.
    assert (report["web"]["processes"], report["web"]["threads"]) == (2, 4)
    assert {p: report["web"]["processes_by_part"][p] for p in WEB_PARTIES} == dict.fromkeys(WEB_PARTIES, 3)
    assert report["web"]["processes_by_part"]["worker"] == 1
    assert set(report["cores_busy"]) >= PARTS | {"load-generator", "machine"}
    assert report["journey_server_ms"]["p50"] > 0
    assert f"{report['completed']}/{report['journeys']} payments completed" in run.stdout


def test_the_series_runs_each_level_with_its_web_processes_and_is_plotted(tmp_path):
    series_path = tmp_path / "series.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.journey.scaleout", "--database", "sqlite", "--web-processes", "1",
         "--customers", "2", "--journeys", "2", "--warmup", "0", "--ceiling-seconds", "0", "--json", str(series_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    series = json.loads(series_path.read_text())

    assert series["database"] == "sqlite" and len(series["runs"]) == 1
    level = series["runs"][0]
    assert (level["web"]["processes"], level["customers"], level["completed"]) == (1, 2, 2), level["errors"]
    # One gunicorn worker under its master for each party's web server.
    assert {p: level["web"]["processes_by_part"][p] for p in WEB_PARTIES} == dict.fromkeys(WEB_PARTIES, 2)
    assert len(level["load_average_before"]) == len(level["load_average_after"]) == 3

    plot = subprocess.run(
        [sys.executable, "-m", "bench.journey.plot", "--series", str(series_path), "--runs",
         "--prefix", str(tmp_path / "journey")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert plot.returncode == 0, plot.stdout + plot.stderr
    for name in ("load", "scaleout", "cpu"):
        assert (tmp_path / f"journey-{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
