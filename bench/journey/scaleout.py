"""The journey benchmark at several levels: so many web processes per party, so many customers at once, each
level a run of ``python -m bench.journey`` of its own (every part started afresh, with its own database server),
all the levels' reports in one JSON.

    .venv/bin/python -m bench.journey.scaleout --web-processes 1,2,4 --customers 4 --journeys 40 \\
        --json bench/results/journey-scaleout.json                          # scale-out: web processes
    .venv/bin/python -m bench.journey.scaleout --web-processes 2 --customers 1,2,8 --journeys 40 \\
        --json bench/results/journey-scaleout.json --append                 # load steps, added to the same file

Every combination of ``--web-processes`` and ``--customers`` is a level. The worker, the switch, the issuer
host and the SMTP sink stay one process each whatever the level. The machine's load average is recorded before
and after each level (a shared machine's other work is in the wall times). ``bench/journey/plot.py`` draws the
figures from the JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .__main__ import RESULTS, ROOT, machine


def int_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"a list of positive integers, such as 1,2,4: {text!r}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.journey.scaleout", description=__doc__.splitlines()[0])
    parser.add_argument("--web-processes", type=int_list, default=[1, 2, 4],
                        help="gunicorn worker processes per party, one level each (default 1,2,4)")
    parser.add_argument("--customers", type=int_list, default=[4], help="customers at once, one level each")
    parser.add_argument("--journeys", type=int, default=40, help="measured journeys per level")
    parser.add_argument("--warmup", type=int, default=None, help="journeys before measuring (default: customers)")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--durable", action="store_true", help="PostgreSQL with fsync and synchronous commits")
    parser.add_argument("--ceiling-seconds", type=float, default=3.0, help="0: no ceiling measure")
    parser.add_argument("--json", type=Path, help="default: bench/results/journey-series-<time>.json")
    parser.add_argument("--append", action="store_true",
                        help="add the levels to the --json file's (a level measured again replaces its own)")
    return parser.parse_args(argv)


def level_command(args: argparse.Namespace, web: int, customers: int, path: Path) -> list[str]:
    command = [sys.executable, "-m", "bench.journey", "--database", args.database, "--web-processes", str(web),
               "--customers", str(customers), "--journeys", str(args.journeys),
               "--ceiling-seconds", str(args.ceiling_seconds), "--label", f"{web} web × {customers} customers",
               "--json", str(path)]
    if args.warmup is not None:
        command += ["--warmup", str(args.warmup)]
    if args.durable:
        command.append("--durable")
    return command


def run_level(args: argparse.Namespace, web: int, customers: int, work: Path) -> dict:
    path = work / f"level-{web}-{customers}.json"
    load_before = [round(v, 1) for v in os.getloadavg()]
    run = subprocess.run(level_command(args, web, customers, path), cwd=ROOT, capture_output=True, text=True)
    print(run.stdout, end="", flush=True)
    if not path.exists():
        print(run.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"the level {web} web processes × {customers} customers gave no report "
                         f"(exit {run.returncode})")
    report = json.loads(path.read_text())
    report["load_average_before"] = load_before
    report["load_average_after"] = [round(v, 1) for v in os.getloadavg()]
    return report


def level_key(report: dict) -> tuple[int, int]:
    return report["web"]["processes"], report["customers"]


def summary(series: dict) -> str:
    lines = ["web  customers  payments/s  server p50/p99 ms  CPU ms/payment  cores busy (system, machine)  "
             "load avg  errors"]
    for r in series["runs"]:
        latency = r.get("journey_server_ms") or {}
        busy = r.get("cores_busy") or {}
        lines.append(f"{r['web']['processes']:>3}  {r['customers']:>9}  {r['payments_per_second']:>10.2f}  "
                     f"{latency.get('p50', 0):>7.0f} / {latency.get('p99', 0):<7.0f}  "
                     f"{r['cpu_ms_per_payment']['total']:>14.1f}  "
                     f"{busy.get('total', 0):>13.2f}, {busy.get('machine', 0):<13.2f}  "
                     f"{r['load_average_before'][0]:>4.1f}→{r['load_average_after'][0]:<4.1f}  "
                     f"{r['errors']['count']:>6}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    path = args.json or RESULTS / f"journey-series-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    command = "python -m bench.journey.scaleout " + " ".join(sys.argv[1:] if argv is None else argv)
    series = {"benchmark": "journey-series", "database": args.database, "durable": args.durable, "runs": [],
              "commands": []}
    if args.append and path.exists():
        series = json.loads(path.read_text())
        if series.get("database") != args.database:
            raise SystemExit(f"{path} holds {series.get('database')} levels, not {args.database}")
    series["commands"].append(command)
    series["machine"] = machine()
    with tempfile.TemporaryDirectory(prefix="journey-series-") as work:
        for web in args.web_processes:
            for customers in args.customers:
                report = run_level(args, web, customers, Path(work))
                series["runs"] = [r for r in series["runs"] if level_key(r) != level_key(report)] + [report]
                series["runs"].sort(key=level_key)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(series, indent=2, ensure_ascii=False) + "\n")  # each level kept
    print(summary(series))
    print(f"JSON: {path}")
    return 0 if all(r["errors"]["count"] == 0 for r in series["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
