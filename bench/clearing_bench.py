"""Benchmark ``tasdid clearing``: the real command over a journal of generated answers, in a fresh database,
its own process measured (wall time, CPU time, peak resident memory from wait4's rusage).

For each size: migrate a new SQLite database in a temporary directory (or, with --postgres, a new database on
DATABASE_URL's server), write N approved answers into the switch's journal for one day (``journal_rows``:
captures, reversals and refunds, 20 merchants, two banks, and one refused answer per ten, which the clearing
must skip), then run ``tasdid clearing --date DAY --output FILE``. The peak RSS of the smallest and
the largest sizes show whether memory stays flat as the day grows.

    .venv/bin/python bench/clearing_bench.py                     # 1,000,000 answers, then 10,000
    .venv/bin/python bench/clearing_bench.py --sizes 100000
    scripts/with-postgres .venv/bin/python bench/clearing_bench.py --postgres

Not a test: the figures depend on the machine (tests/switch/test_clearing_memory.py holds the shape in CI).
"""

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASDID = Path(sys.executable).with_name("tasdid")
sys.path.insert(0, str(ROOT / "bench"))

from import_bench import database, run_measured  # noqa: E402

DAY = dt.date(2026, 12, 7)
BANKS = ("Banque Atlas", "Crédit du Sahel")
KINDS = (("0230", "000000"), ("0410", "000000"), ("0210", "200000"))


def journal_rows(count: int, day: dt.date = DAY) -> Iterator[dict]:
    """``count`` approved answers to acquirers (what the clearing lists) spread over ``day``, and after every tenth
    a refused one (what it skips); ``JournalEntry`` fields for ``tasdid.switch.services.journal_append``."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    step = 86_000 / max(count, 1)
    for i in range(count):
        at = start + dt.timedelta(seconds=i * step)
        mti, processing = KINDS[i % 3]
        merchant = f"6000000{i % 20:02d}"
        base = {"at": at, "peer": "127.0.0.1:40000", "stan": f"{i % 1_000_000:06d}",
                "transmitted_at": at.replace(microsecond=0), "merchant_id": merchant, "processing_code": processing,
                "amount_minor": 100 + i % 50_000, "currency": "504", "original_mti": "0100",
                "original_stan": f"{(i + 7) % 1_000_000:06d}",
                "original_transmitted_at": (at - dt.timedelta(minutes=5)).replace(microsecond=0),
                "order_id": f"ORDER-{i}", "rrn": f"{i % 10**12:012d}"}
        yield {**base, "direction": "acq_out", "mti": mti, "response_code": "00", "bank_name": BANKS[i % 2]}
        if i % 10 == 0:
            yield {**base, "direction": "acq_out", "mti": mti, "response_code": "51", "bank_name": BANKS[i % 2],
                   "stan": f"{(i + 500_000) % 1_000_000:06d}"}


def fill(count: int, *, batch: int = 20_000) -> None:
    """The journal of ``count`` answers, written in batches (the switch's own ``journal_append``)."""
    from tasdid.switch.services import journal_append

    rows = []
    for row in journal_rows(count):
        rows.append(row)
        if len(rows) == batch:
            journal_append(entries=rows)
            rows = []
    journal_append(entries=rows)


def bench(count: int, *, postgres: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="tasdid-bench-") as work, database(work, postgres) as url:
        env = {"TASDID_SANDBOX": "1", **os.environ, "DATABASE_URL": url, "TASDID_VAR_DIR": work,
               "DJANGO_SETTINGS_MODULE": "tasdid.settings"}
        subprocess.run([TASDID, "migrate", "-v0"], env=env, check=True)
        began = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--fill", str(count)], env=env, check=True)
        fill_s = time.perf_counter() - began
        output = Path(work) / "clearing.csv"
        wall, cpu, rss_kib, _stdout, stderr, code = run_measured(
            [str(TASDID), "clearing", "--date", DAY.isoformat(), "--output", str(output), "--no-progress"], env)
        if code != 0:
            raise SystemExit(f"clearing failed ({code}):\n{stderr}")
        lines = sum(1 for _ in output.open("rb"))
        return {"answers": count, "fill_s": fill_s, "wall_s": wall, "cpu_s": cpu, "rss_mb": rss_kib / 1024,
                "file_mb": output.stat().st_size / 1e6, "lines": lines, "load": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000])
    parser.add_argument("--postgres", action="store_true", help="a new database on DATABASE_URL's server")
    parser.add_argument("--fill", type=int, help=argparse.SUPPRESS)  # the child that writes the journal
    args = parser.parse_args(argv)
    if args.fill is not None:
        import django

        django.setup()
        fill(args.fill)
        return
    rows = [bench(count, postgres=args.postgres) for count in args.sizes]
    print(f"database: {'PostgreSQL' if args.postgres else 'SQLite'}")
    print(f"{'answers':>10} {'journal rows':>12} {'fill s':>7} {'lines':>10} {'file MB':>8} {'wall s':>7} "
          f"{'lines/s':>9} {'CPU s':>6} {'peak RSS MB':>11} {'load':>5}")
    for r in rows:
        journal = r["answers"] + (r["answers"] + 9) // 10
        print(f"{r['answers']:>10,} {journal:>12,} {r['fill_s']:>7.1f} {r['lines']:>10,} "
              f"{r['file_mb']:>8.1f} {r['wall_s']:>7.1f} {r['answers'] / r['wall_s']:>9,.0f} {r['cpu_s']:>6.1f} "
              f"{r['rss_mb']:>11.1f} {r['load']:>5.2f}")


if __name__ == "__main__":
    main()
