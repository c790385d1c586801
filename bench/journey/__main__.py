"""End-to-end payment benchmark: N virtual customers at once, each paying a line's bills over HTTP from the
identification to the receipt, against Tasdid started as production runs it (or a running one).

    .venv/bin/python -m bench.journey --customers 4 --journeys 60                # SQLite
    .venv/bin/python -m bench.journey --customers 4 --journeys 60 --database postgres
    .venv/bin/python -m bench.journey --attach --customers 2 --journeys 10       # a running Tasdid

Reports payments/s, p50/p95/p99 of each step, the servers' CPU per completed payment by part (from
/proc/<pid>/stat), HTTP requests and SQL statements per payment, the errors; then the ceiling of the same web
server stack (a trivial view, ``GET /_bench/ping``) and a payment's CPU as a multiple of it. A table on stdout,
JSON in bench/results/ (or ``--json``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
SETTLE_SECONDS = 120  # at most, for the worker to run what the payments left it (receipt emails…)
PARTS = ("biller", "gateway", "bank", "switch", "switch-iso", "issuer", "worker", "smtp", "postgres")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1, not {text}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.journey", description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=4, help="virtual customers at once")
    parser.add_argument("--journeys", type=int, default=60, help="measured journeys in all")
    parser.add_argument("--warmup", type=int, default=None, help="journeys before measuring (default: --customers)")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--durable", action="store_true", help="PostgreSQL with fsync and synchronous commits")
    parser.add_argument("--web-processes", type=positive, default=None,
                        help="gunicorn worker processes per party's web server (default: tasdid serve's, "
                             "TASDID_WEB_WORKERS or 2)")
    parser.add_argument("--web-threads", type=positive, default=None,
                        help="threads per gunicorn worker (default: tasdid serve's, TASDID_WEB_THREADS or 4)")
    parser.add_argument("--attach", action="store_true",
                        help="measure the Tasdid running with this environment (DATABASE_URL, TASDID_VAR_DIR, "
                             "TASDID_*_URL; TASDID_SQL_COUNT_DIR if its servers count statements)")
    parser.add_argument("--challenge-every", type=int, default=4, help="one journey in so many has a challenge card")
    parser.add_argument("--defer-every", type=int, default=3, help="one journey in so many defers an invoice")
    parser.add_argument("--ceiling-seconds", type=float, default=5.0, help="0: no ceiling measure")
    parser.add_argument("--label", default="", help="a name for this run in the report (before, after…)")
    parser.add_argument("--json", type=Path, help="where the JSON goes (default: bench/results/journey-<time>.json)")
    parser.add_argument("--source", type=Path,
                        help="the servers run the tasdid package under this directory (e.g. an older commit's src, "
                             "from git archive) instead of this checkout's")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (database, logs)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    os.environ.setdefault("TASDID_SANDBOX", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tasdid.settings")
    from . import system as sysmod

    started = None
    if args.attach:
        count_dir = os.environ.pop("TASDID_SQL_COUNT_DIR", "")  # the servers', not this process's
        import django

        django.setup()
        target = sysmod.attached()
        target.sql_count_dir = Path(count_dir) if count_dir else None
    else:
        started = sysmod.Started(database=args.database, durable=args.durable, keep=args.keep,
                                  source=args.source, web_processes=args.web_processes,
                                  web_threads=args.web_threads)
        target = started.prepare()
        import django

        django.setup()
    try:
        from .load import run

        report = run(target, args, started)
    finally:
        if started is not None:
            started.stop()
    print(table(report))
    path = args.json or RESULTS / f"journey-{report['database']}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"JSON: {path}")
    return 0 if report["errors"]["count"] == 0 else 1


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "load_average": [round(v, 1) for v in os.getloadavg()],
            "python": platform.python_version(),
            "kernel": platform.release(),
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                     text=True).stdout.strip()}


def table(report: dict) -> str:
    web = report.get("web") or {}
    lines = [f"Journey benchmark {report['label']} — {report['database']}, {report['customers']} customers at "
             f"once, {report['completed']}/{report['journeys']} payments completed, {report['errors']['count']} "
             f"errors, {report['wall_seconds']:.1f} s"
             + (f", {web['processes']} × {web['threads']} web processes × threads per party"
                if web.get("processes") else "")]
    lines.append(f"  payments/s: {report['payments_per_second']:.2f}")
    latency = report.get("journey_server_ms")
    if latency:
        lines.append(f"  a journey's server time (its steps but the SMS waits): p50 {latency['p50']:.0f} ms, "
                     f"p95 {latency['p95']:.0f} ms, p99 {latency['p99']:.0f} ms")
    lines.append(f"  HTTP requests per payment: {report['http']['customer_per_payment']:.1f} by the customer"
                 + (f", {report['http']['server_per_payment']:.1f} served in all "
                    f"({report['http']['server_to_server_per_payment']:.1f} server to server)"
                    if report['http'].get('server_per_payment') is not None else ""))
    sql = report["sql_statements_per_payment"]
    by_part = ", ".join(f"{part} {n:g}" for part, n in (report.get("sql_statements_per_payment_by_part") or {}).items())
    lines.append(f"  SQL statements per payment: {sql:.0f} ({by_part})" if sql is not None
                 else "  SQL statements: not counted")
    lines.append("  step                p50 ms   p95 ms   p99 ms   count")
    for name, s in report["steps"].items():
        lines.append(f"  {name:<18} {s['p50_ms']:>7.1f}  {s['p95_ms']:>7.1f}  {s['p99_ms']:>7.1f}  {s['count']:>6}")
    lines.append("  server CPU ms per payment (and idle CPU ms per second before the load):")
    for part, value in report["cpu_ms_per_payment"].items():
        idle = report["idle_cpu_ms_per_second"].get(part)
        lines.append(f"    {part:<12} {value:>8.1f}" + (f"   idle {idle:6.1f}" if idle is not None else ""))
    busy = report.get("cores_busy")
    if busy:
        lines.append("  cores busy during the load, by part (CPU s per wall s), and the machine's:")
        lines.append("    " + ", ".join(f"{part} {value:.2f}" for part, value in busy.items()))
    ceiling = report.get("ceiling")
    if ceiling:
        lines.append(f"  ceiling (GET {ceiling['path']} on the biller's server): {ceiling['requests_per_second']:.0f}"
                     f" req/s, {ceiling['cpu_ms_per_request']:.2f} CPU ms per request; a payment costs "
                     f"{report['ratio_to_ceiling']:.0f} such requests")
    for error in report["errors"]["samples"]:
        lines.append(f"  error at {error['step']}: {error['error']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
