"""Benchmark ``tasdid import-bills``: the real command on a generated file, against a fresh SQLite database.

For each size: generate the file (bench/generate_bills.py, kept under var/bench/ for the next run), migrate a
new SQLite database in a temporary directory, run ``tasdid import-bills FILE`` as its own process and report
wall time, invoices per second, CPU time and the process's peak resident memory (from wait4's rusage).
Several sizes show whether memory stays flat as the file grows.

    .venv/bin/python bench/import_bench.py                      # 1,000,000 invoices, then 100,000
    .venv/bin/python bench/import_bench.py --sizes 100000 --reimport

Not a test: the figures depend on the machine and on what else runs on it (the load average is printed).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASDID = Path(sys.executable).with_name("tasdid")
sys.path.insert(0, str(ROOT / "bench"))

from generate_bills import generate  # noqa: E402


def run_measured(command: list[str], env: dict) -> tuple[float, float, int, str, str, int]:
    """Wall seconds, CPU seconds, peak RSS (KiB), stdout, stderr and exit status of one process, reaped with
    wait4, which returns that process's own resource usage."""
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, out.read(), err.read(), process.returncode


def bench(invoices: int, *, reimport: bool, data_dir: Path) -> list[dict]:
    path = data_dir / f"bills-{invoices}.json"
    if not path.exists():
        print(f"generating {path} …", file=sys.stderr)
        generate(path, invoices)
    size = path.stat().st_size
    rows = []
    with tempfile.TemporaryDirectory(prefix="tasdid-bench-") as work:
        # Sandbox mode for its development keys; the import does not depend on it.
        env = {"TASDID_SANDBOX": "1", **os.environ, "DATABASE_URL": f"sqlite:///{Path(work) / 'bench.sqlite3'}",
               "TASDID_VAR_DIR": work, "DJANGO_SETTINGS_MODULE": "tasdid.settings"}
        subprocess.run([TASDID, "migrate", "-v0"], env=env, check=True)
        passes = ["fresh database", "same file again"] if reimport else ["fresh database"]
        for label in passes:
            load = os.getloadavg()[0]
            wall, cpu, rss_kib, stdout, stderr, code = run_measured(
                [str(TASDID), "import-bills", str(path), "--no-progress"], env)
            if code != 0:
                raise SystemExit(f"import-bills failed ({code}):\n{stderr}")
            reported = re.search(r"en ([\d.]+) s \(([\d\u202f]+) factures par seconde\)", stdout)
            rows.append({
                "invoices": invoices, "pass": label, "file_mb": size / 1e6, "wall_s": wall,
                "rate": invoices / wall, "import_s": float(reported.group(1)),
                "import_rate": int(reported.group(2).replace("\u202f", "")), "cpu_s": cpu,
                "rss_mb": rss_kib / 1024, "load": load,
            })
            print(stdout.strip(), file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 100_000])
    parser.add_argument("--reimport", action="store_true", help="also import the same file a second time")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench")
    args = parser.parse_args(argv)
    rows = [row for invoices in args.sizes for row in bench(invoices, reimport=args.reimport, data_dir=args.data_dir)]
    print(f"{'invoices':>10} {'pass':<16} {'file MB':>8} {'wall s':>8} {'inv/s':>8} {'import s':>9} "
          f"{'import inv/s':>12} {'CPU s':>7} {'peak RSS MB':>11} {'load':>5}")
    for r in rows:
        print(f"{r['invoices']:>10,} {r['pass']:<16} {r['file_mb']:>8.1f} {r['wall_s']:>8.1f} {r['rate']:>8,.0f} "
              f"{r['import_s']:>9.1f} {r['import_rate']:>12,} {r['cpu_s']:>7.1f} {r['rss_mb']:>11.1f} "
              f"{r['load']:>5.2f}")


if __name__ == "__main__":
    main()
