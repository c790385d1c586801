"""Benchmark ``tasdid import-bills``: the real command on a generated file, against a fresh database, while
customers use the portal.

For each size: generate the file (bench/generate_bills.py, kept under var/bench/ for the next run), migrate a
new SQLite database in a temporary directory (or, with --postgres, a new database on DATABASE_URL's server),
import the probing customer's bill (bench/portal_probe.py), start the biller's portal on it (``tasdid serve
biller``: gunicorn), then run ``tasdid import-bills FILE`` as its own process and report wall time, invoices
per second, CPU time and the process's peak resident memory (from wait4's rusage). Several sizes show whether
memory stays flat as the file grows. Meanwhile a loop of portal journeys (bench/portal_probe.py: form,
identification, consult page, over HTTP) times every request: its p99 and max during the import say how long
the import made customers wait (the same before the import, for comparison); a failed request is printed.

    .venv/bin/python bench/import_bench.py                      # 1,000,000 invoices, then 100,000
    .venv/bin/python bench/import_bench.py --sizes 100000 --reimport
    scripts/with-postgres .venv/bin/python bench/import_bench.py --sizes 1000000 --postgres

Not a test: the figures depend on the machine and on what else runs on it (the load average is printed).
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TASDID = Path(sys.executable).with_name("tasdid")
sys.path.insert(0, str(ROOT / "bench"))

from generate_bills import generate  # noqa: E402
from portal_probe import PortalProbe, percentile, write_seed  # noqa: E402

BASELINE_SECONDS = 3.0


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def portal(env: dict):
    """``tasdid serve biller`` (gunicorn, its default workers and threads) on a free port, over plain HTTP as
    in the demo (session cookies not marked Secure); its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(env["TASDID_VAR_DIR"]) / "portal.log"
    with log.open("w") as output:
        server = subprocess.Popen([str(TASDID), "serve", "biller", "--port", str(port)],
                                  env={**env, "TASDID_BILLER_URL": url, "TASDID_SECURE_COOKIES": "0"},
                                  stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(url + "/internet", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the biller's portal did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def latency(samples) -> dict:
    seconds = [s.seconds for s in samples]
    return {"requests": len(seconds), "p50": percentile(seconds, 0.5), "p99": percentile(seconds, 0.99),
            "max": max(seconds, default=0.0), "failed": [s for s in samples if s.wrong]}


@contextmanager
def database(work: str, postgres: bool):
    """A new, empty database: a SQLite file in ``work``, or a database created on DATABASE_URL's server."""
    if not postgres:
        yield f"sqlite:///{Path(work) / 'bench.sqlite3'}"
        return
    import psycopg

    server = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    name = f"tasdid_bench_{os.getpid()}"
    with psycopg.connect(server + "/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(server + "/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def bench(invoices: int, *, reimport: bool, data_dir: Path, postgres: bool) -> list[dict]:
    path = data_dir / f"bills-{invoices}.json"
    if not path.exists():
        print(f"generating {path} …", file=sys.stderr)
        generate(path, invoices)
    size = path.stat().st_size
    rows = []
    with tempfile.TemporaryDirectory(prefix="tasdid-bench-") as work, database(work, postgres) as url:
        # Sandbox mode for its development keys; the import does not depend on it.
        env = {"TASDID_SANDBOX": "1", **os.environ, "DATABASE_URL": url, "TASDID_VAR_DIR": work,
               "DJANGO_SETTINGS_MODULE": "tasdid.settings"}
        subprocess.run([TASDID, "migrate", "-v0"], env=env, check=True)
        seed = write_seed(Path(work) / "seed.json")
        subprocess.run([TASDID, "import-bills", str(seed), "--no-progress"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        passes = ["fresh database", "same file again"] if reimport else ["fresh database"]
        with portal(env) as base_url:
            for label in passes:
                probe = PortalProbe(base_url).start()
                time.sleep(BASELINE_SECONDS)
                load = os.getloadavg()[0]
                began = time.monotonic()
                wall, cpu, rss_kib, stdout, stderr, code = run_measured(
                    [str(TASDID), "import-bills", str(path), "--no-progress", "-v", "2"], env)
                ended = time.monotonic()
                samples = probe.stop()
                if code != 0:
                    raise SystemExit(f"import-bills failed ({code}):\n{stderr}")
                before = latency([s for s in samples if s.at + s.seconds < began])
                during = latency([s for s in samples if s.at < ended and s.at + s.seconds > began])
                for failure in before["failed"] + during["failed"]:
                    print(f"portal request failed: {failure}", file=sys.stderr)
                for slow in sorted(samples, key=lambda sample: -sample.seconds)[:5]:
                    print(f"slow portal request: {slow.request} {slow.seconds:.3f} s, sent {slow.at - began:+.1f} s "
                          f"from the import's start ({wall:.1f} s long)", file=sys.stderr)
                reported = re.search(r"en ([\d.]+) s \(([\d\u202f]+) factures par seconde\)", stdout)
                longest = re.search(r"plus longue transaction d'écriture : ([\d.]+) s", stdout)
                rows.append({
                    "invoices": invoices, "pass": label, "file_mb": size / 1e6, "wall_s": wall,
                    "rate": invoices / wall, "import_s": float(reported.group(1)),
                    "import_rate": int(reported.group(2).replace("\u202f", "")), "cpu_s": cpu,
                    "rss_mb": rss_kib / 1024, "load": load, "before": before, "during": during,
                    "longest_s": float(longest.group(1)),
                })
                print(stdout.strip(), file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 100_000])
    parser.add_argument("--reimport", action="store_true", help="also import the same file a second time")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--postgres", action="store_true",
                        help="a new database on DATABASE_URL's PostgreSQL server (scripts/with-postgres) instead of "
                             "SQLite")
    args = parser.parse_args(argv)
    rows = [row for invoices in args.sizes
            for row in bench(invoices, reimport=args.reimport, data_dir=args.data_dir, postgres=args.postgres)]
    print(f"database: {'PostgreSQL' if args.postgres else 'SQLite'}")
    print(f"{'invoices':>10} {'pass':<16} {'file MB':>8} {'wall s':>8} {'inv/s':>8} {'import s':>9} "
          f"{'import inv/s':>12} {'CPU s':>7} {'inv/CPU s':>9} {'peak RSS MB':>11} {'load':>5} {'longest txn s':>13}")
    for r in rows:
        print(f"{r['invoices']:>10,} {r['pass']:<16} {r['file_mb']:>8.1f} {r['wall_s']:>8.1f} {r['rate']:>8,.0f} "
              f"{r['import_s']:>9.1f} {r['import_rate']:>12,} {r['cpu_s']:>7.1f} {r['invoices'] / r['cpu_s']:>9,.0f} "
              f"{r['rss_mb']:>11.1f} {r['load']:>5.2f} {r['longest_s']:>13.3f}")
    print("portal requests (form, identification, consult page over HTTP), seconds:")
    print(f"{'invoices':>10} {'pass':<16} {'when':<15} {'requests':>8} {'p50':>7} {'p99':>7} {'max':>7} {'failed':>6}")
    for r in rows:
        for when in ("before", "during"):
            m = r[when]
            print(f"{r['invoices']:>10,} {r['pass']:<16} {when + ' import':<15} {m['requests']:>8} {m['p50']:>7.3f} "
                  f"{m['p99']:>7.3f} {m['max']:>7.3f} {len(m['failed']):>6}")


if __name__ == "__main__":
    main()
