"""Authorizations per second on the card rails: the gateway's ISO 8583 client → ``tasdid switch`` → ``tasdid issuer``
→ the bank's database, on loopback, at several concurrencies, on SQLite and on PostgreSQL, beside the ceiling of the
same client against a server that only decodes and answers (codec + TCP, no database), all in one run.

    scripts/with-postgres nice -n 10 .venv/bin/python bench/auth_bench.py              # 60 s per level
    scripts/with-postgres .venv/bin/python bench/auth_bench.py --duration 5 --plot ''  # a smoke run

Each phase runs in a process of its own (so that each has its own Django settings): ``ceiling`` (an answer server
as a process), ``sqlite`` (a fresh SQLite file) and ``postgres`` (a fresh database on the cluster DATABASE_URL
names; skipped without one). For the two databases, ``tasdid issuer`` and ``tasdid switch`` run as processes and
the bank issues ``--cards`` cards of its own (one account each, as real traffic spreads over cardholders). The
client is ``tasdid.gateway.rails.RailsConnection``, the gateway's own: one persistent connection, requests
pipelined, answers matched by STAN + DE7; C coroutines in its loop each send an authorization (0100), wait for the
answer and send the next, for ``--duration`` seconds after ``--warmup`` seconds not counted.

The cluster is what DATABASE_URL names; scripts/with-postgres makes one that trades durability for speed (fsync,
synchronous_commit and full_page_writes off) unless TASDID_PG_DURABLE=1. The run prints and records which.
``--profile DIR`` samples the switch and the issuer host with py-spy during the last level of each phase (the thread
holding the interpreter only, so waits on the database or the network are not counted)
(raw py-spy stacks in DIR; py-spy is no dependency of the project: `uv pip install --python .venv/bin/python py-spy`).

Per level: authorizations/s, p50/p99 latency, the CPU each process spent per authorization (from /proc), and the
load of the machine. At the end the money is checked in the bank's tables: one held hold per approved
authorization, with the RRN the client was given, for its amount; nothing else. Results go to ``--json``, and the
plot to ``--plot`` (matplotlib).
"""

import argparse
import asyncio
import collections
import datetime as dt
import itertools
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
TASDID = [sys.executable, "-m", "tasdid.cli"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
AMOUNT_MINOR = 100  # 1.00 MAD per authorization
MERCHANT_ID = "600000001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, limit: float = 60.0) -> None:
    ends = time.monotonic() + limit
    while time.monotonic() < ends:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


# --- CPU accounting from /proc ------------------------------------------------------------------------------------


def proc_cpu(pid: int, *, children: bool = False) -> float:
    """CPU seconds of ``pid`` (with its reaped children's when ``children``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def postgres_pids(port: int) -> tuple[int, list[int]]:
    """The postmaster listening on ``port`` and its live children (the backends), or (0, [])."""
    postmaster = 0
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat[1])
        if cmdline and cmdline[0].endswith(b"postgres") and str(port).encode() in cmdline:
            postmaster = int(entry.name)
    return postmaster, [pid for pid, parent in parents.items() if postmaster and parent == postmaster]


def postgres_cpu(port: int) -> float:
    postmaster, backends = postgres_pids(port)
    if not postmaster:
        return 0.0
    return proc_cpu(postmaster, children=True) + sum(proc_cpu(pid) for pid in backends)


def machine_cpu() -> float:
    """CPU seconds every process of the machine spent (busy time of all cores) since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK


# --- The answer server of the ceiling (no Django) ----------------------------------------------------------------


def serve_answers(port: int) -> None:
    """Decode each request and answer it approved (0810 to an 0800): the codec and the TCP, nothing else."""
    sys.path.insert(0, str(ROOT / "src"))
    from tasdid.core import iso8583 as iso

    rrns = itertools.count(1)

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (message := await iso.read_message(reader)) is not None:
            if isinstance(message, iso.NetworkRequest):
                answer = iso.respond(message, "00")
            else:
                answer = iso.respond(message, "00", rrn=f"{next(rrns):012d}", auth_code="123456")
            writer.write(iso.encode_frame(answer))
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(connection, "127.0.0.1", port, limit=iso.MAX_FRAME + 2)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- A phase: one server side, every concurrency ------------------------------------------------------------------


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tasdid.settings")
    sys.path.insert(0, str(ROOT / "src"))
    import django

    django.setup()


def seed_cards(count: int) -> list[tuple[str, str, str]]:
    """The sandbox banks, and ``count`` active cards without 3-D Secure, each on an account of its own with
    enough money for the run: (number, expiry YYMM, CVV)."""
    import random
    from decimal import Decimal

    from django.db import transaction

    from tasdid.bank import demo, sandbox, services
    from tasdid.bank.models import Bank
    from tasdid.core.cards import brand_of, luhn_complete

    demo.seed_demo()
    phone = sandbox.CARDS[0].phone
    randomness = random.Random(9)
    cards = []
    with transaction.atomic():
        for n in range(count):
            spec = sandbox.BANKS[n % len(sandbox.BANKS)]
            prefix = next(p for p in spec.bin_prefixes if brand_of(luhn_complete(p.ljust(15, "0"))))
            while True:
                number = luhn_complete(prefix + "".join(randomness.choice("0123456789")
                                                        for _ in range(15 - len(prefix))))
                if brand_of(number):
                    break
            bank = Bank.objects.get(code=spec.code)
            account = services.account_open(bank_id=bank.pk, holder_name=f"Banc d'essai {n}",
                                            opening_balance=Decimal("10000000.00"))
            cvv = f"{randomness.randrange(1000):03d}"
            services.card_issue(account_id=account.pk, pan=number, expiry="12/30", cvv=cvv,
                                holder_name=f"Banc d'essai {n}", phone=phone)
            cards.append((number, "3012", cvv))
    return cards


def profile(args, pids: dict[str, int], phase: str) -> list[subprocess.Popen]:
    """py-spy on each server process for the duration of a level (flame graphs in ``args.profile``)."""
    if not args.profile:
        return []
    Path(args.profile).mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    return [subprocess.Popen([spy, "record", "-p", str(pid), "-d", str(int(args.duration)), "-r", "250",
                              "--nonblocking", "--gil", "-f", "raw",
                              "-o", str(Path(args.profile) / f"{phase}-{name}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, pid in pids.items()]


def run_levels(port: int, args, cards: list[tuple[str, str, str]], cpu_sources: dict,
               on_last_level=lambda: []) -> tuple[list[dict], list]:
    """Every concurrency through the gateway's client: one result per level, and the (RRN) approvals."""
    from tasdid.core import iso8583 as iso
    from tasdid.gateway import rails

    stans = itertools.count(1)

    def next_stan() -> str:
        return f"{next(stans) % 999_999 + 1:06d}"

    connection = rails.RailsConnection(
        rails.RailsConfig(host="127.0.0.1", port=port, timeout=args.timeout, echo_interval=600),
        stan_source=next_stan)
    if not connection.wait_up(60):
        raise RuntimeError("the client could not sign on")
    approvals: list[str] = []
    results = []
    card_cycle = itertools.cycle(cards)
    orders = itertools.count(1)

    async def level(concurrency: int, seconds: float, record: bool) -> dict:
        loop = asyncio.get_running_loop()
        ends = loop.time() + seconds
        latencies: list[float] = []
        codes: collections.Counter = collections.Counter()

        async def worker() -> None:
            while loop.time() < ends:
                pan, expiry, cvv = next(card_cycle)
                message = iso.AuthorizationRequest(
                    pan=pan, expiry_yymm=expiry, cvv=cvv, amount_minor=AMOUNT_MINOR, currency="504",
                    stan=next_stan(), transmitted_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
                    merchant_id=MERCHANT_ID, merchant_name="Tasdid Telecom", order_id=f"AB-{next(orders)}")
                started = time.perf_counter()
                try:
                    answer = await connection._exchange(message, args.timeout)
                except (rails.NoAnswer, rails.NotSent) as exc:
                    codes[type(exc).__name__] += 1
                    continue
                latencies.append(time.perf_counter() - started)
                codes[answer.response_code] += 1
                if answer.response_code == "00":
                    approvals.append(answer.rrn)

        before = {name: read() for name, read in cpu_sources.items()}
        machine_before, load_before = machine_cpu(), os.getloadavg()[0]
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = {name: read() - before[name] for name, read in cpu_sources.items()}
        machine = machine_cpu() - machine_before
        latencies.sort()
        count = len(latencies)

        def pct(q: float) -> float:
            return round(latencies[min(count - 1, int(q * count))] * 1000, 2) if count else 0.0

        result = {
            "concurrency": concurrency, "seconds": round(elapsed, 2), "answered": count,
            "per_second": round(count / elapsed, 1), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "max_ms": round(latencies[-1] * 1000, 2) if count else 0.0, "codes": dict(codes),
            "cpu_ms_per_auth": {name: round(1000 * value / max(count, 1), 3) for name, value in cpu.items()},
            "cpu_busy": {name: round(value / elapsed, 2) for name, value in cpu.items()},
            "others_busy": round(max(machine - sum(cpu.values()), 0.0) / elapsed, 2),
            "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }
        if record:
            print(f"  C={concurrency:>3}: {result['per_second']:>8.1f}/s  p50 {result['p50_ms']:.2f} ms  "
                  f"p99 {result['p99_ms']:.2f} ms  codes {result['codes']}  cpu ms/auth {result['cpu_ms_per_auth']}"
                  f"  others {result['others_busy']} cores  load {result['load']}", flush=True)
        return result

    try:
        for n, concurrency in enumerate(args.concurrency):
            if args.warmup:
                asyncio.run_coroutine_threadsafe(level(concurrency, args.warmup, False), connection.loop).result()
            spies = on_last_level() if n == len(args.concurrency) - 1 else []
            results.append(asyncio.run_coroutine_threadsafe(level(concurrency, args.duration, True),
                                                            connection.loop).result())
            for spy in spies:
                spy.wait(30)
    finally:
        connection.close()
    return results, approvals


def phase_ceiling(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="auth-bench-ceiling-"))
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve-answers", str(port)], start_new_session=True)
    try:
        wait_port(port)
        django_setup({"TASDID_SANDBOX": "1", "TASDID_VAR_DIR": str(work), "TASDID_LOG_LEVEL": "WARNING",
                      "DATABASE_URL": f"sqlite:///{work / 'unused.sqlite3'}"})
        sources = {"client": lambda: proc_cpu(os.getpid()), "server": lambda: proc_cpu(server.pid)}
        levels, _approvals = run_levels(port, args, [("4000000000000002", "3012", "123")], sources,
                                        lambda: profile(args, {"server": server.pid}, "ceiling"))
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    return {"phase": "ceiling", "levels": levels}


def phase_database(args, name: str, database_url: str) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"auth-bench-{name}-"))
    if name == "sqlite":
        database_url = f"sqlite:///{work / 'bench.sqlite3'}"
    ports = {"switch": free_port(), "issuer": free_port()}
    env = {"TASDID_SANDBOX": "1", "DATABASE_URL": database_url, "TASDID_VAR_DIR": str(work),
           "TASDID_LOG_LEVEL": "WARNING", "TASDID_SWITCH_PORT": str(ports["switch"]),
           "TASDID_ISSUER_PORT": str(ports["issuer"]), "TASDID_SWITCH_HOST": "127.0.0.1",
           "TASDID_ISSUER_HOST": "127.0.0.1", "PYTHONPATH": str(ROOT / "src")}
    env_all = {**os.environ, **env}
    subprocess.run([*TASDID, "migrate", "--no-input", "-v", "0"], env=env_all, cwd=work, check=True)
    django_setup(env)
    cards = seed_cards(args.cards)
    from django.db import connections

    connections.close_all()
    processes = {}
    try:
        for process in ("issuer", "switch"):
            log = open(work / f"{process}.log", "w")  # noqa: SIM115 - closed with the process
            processes[process] = subprocess.Popen([*TASDID, process], env=env_all, cwd=work, stdout=log, stderr=log,
                                                  start_new_session=True)
            wait_port(ports[process])
        sources = {"client": lambda: proc_cpu(os.getpid()),
                   "switch": lambda: proc_cpu(processes["switch"].pid),
                   "issuer": lambda: proc_cpu(processes["issuer"].pid)}
        if name == "postgres":
            pg_port = urlsplit(database_url).port
            sources["postgres"] = lambda: postgres_cpu(pg_port)
        levels, approvals = run_levels(
            ports["switch"], args, cards, sources,
            lambda: profile(args, {k: p.pid for k, p in processes.items()}, name))
        time.sleep(0.5)  # the switch's journal batch
        money = check_money(approvals)
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(30)
        if args.keep:
            print(f"  work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return {"phase": name, "levels": levels, "money": money}


def check_money(approvals: list[str]) -> dict:
    """One held hold per approved authorization, with the RRN the client got, for its amount; no other hold."""
    from decimal import Decimal

    from django.db.models import Count, Sum

    from tasdid.bank.models import Authorization, Hold

    holds = Hold.objects.filter(merchant_id=MERCHANT_ID)
    totals = holds.aggregate(n=Count("id"), s=Sum("amount"))
    held = holds.filter(state=Hold.State.HELD).count()
    rrns = set(holds.values_list("rrn", flat=True))
    approved = set(approvals)
    amounts_ok = totals["s"] == Decimal(AMOUNT_MINOR) / 100 * len(approvals) if approvals else totals["n"] == 0
    ok = (len(approved) == len(approvals) == totals["n"] == held and rrns == approved and amounts_ok)
    return {"approved_answers": len(approvals), "holds": totals["n"], "held": held,
            "hold_total": str(totals["s"] or 0), "rrns_match": rrns == approved,
            "authorizations_recorded": Authorization.objects.filter(merchant_id=MERCHANT_ID).count(), "ok": ok}


# --- The run -------------------------------------------------------------------------------------------------------


def postgres_database(url: str) -> tuple[str, dict]:
    """A fresh database on the cluster ``url`` names, and the cluster's durability settings."""
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    name = f"authbench_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
        settings = {s: conn.execute(f"SHOW {s}").fetchone()[0] for s in ("fsync", "synchronous_commit",
                                                                         "full_page_writes")}
        version = conn.execute("SHOW server_version").fetchone()[0]
    return urlunsplit(parts._replace(path=f"/{name}")), {"version": version, **settings}


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "kernel": platform.release(), "load_at_start": [round(v, 2) for v in os.getloadavg()],
            "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rate, latency) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=80)
    labels = {"ceiling": "ceiling: codec + TCP", "sqlite": "SQLite", "postgres": "PostgreSQL"}
    for phase in results["phases"]:
        xs = [level["concurrency"] for level in phase["levels"]]
        rate.plot(xs, [level["per_second"] for level in phase["levels"]], marker="o", label=labels[phase["phase"]])
        line, = latency.plot(xs, [level["p50_ms"] for level in phase["levels"]], marker="o",
                             label=f"{labels[phase['phase']]} p50")
        latency.plot(xs, [level["p99_ms"] for level in phase["levels"]], marker="x", linestyle="--",
                     color=line.get_color(), label=f"{labels[phase['phase']]} p99")
    for axis in (rate, latency):
        axis.set_xscale("log", base=2)
        axis.set_xticks(xs, [str(x) for x in xs])
        axis.set_xlabel("authorizations in flight")
        axis.grid(True, alpha=0.3)
    rate.set_ylabel("authorizations / s")
    rate.set_ylim(bottom=0)
    latency.set_ylabel("latency (ms)")
    latency.set_yscale("log")
    rate.legend(fontsize=8)
    latency.legend(fontsize=7, ncol=1)
    meta = results["machine"]
    load = meta.get("load_at_end", meta["load_at_start"])[0]
    figure.suptitle(f"0100 → 0110 through the gateway client, switch and issuer host ({meta['nproc']} cores, "
                    f"load {meta['load_at_start'][0]:.0f} to {load:.0f}, {meta['when']})", fontsize=9)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per level (counted)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds per level before counting")
    parser.add_argument("--concurrency", type=lambda s: [int(v) for v in s.split(",")], default=[1, 8, 32, 128])
    parser.add_argument("--phases", default="ceiling,sqlite,postgres")
    parser.add_argument("--cards", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=10.0, help="the client's answer timeout (s)")
    parser.add_argument("--profile", default="", help="a directory for py-spy flame graphs of the servers")
    parser.add_argument("--json", default="", help="write the results there")
    parser.add_argument("--plot", default=str(ROOT / "docs" / "benchmarks-auth.png"), help="'' for none")
    parser.add_argument("--keep", action="store_true", help="keep the work directories (databases, logs)")
    parser.add_argument("--replot", default="", help="only draw --plot again from this --json file")
    parser.add_argument("--serve-answers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_answers:
        serve_answers(args.serve_answers)
        return 0
    if args.replot:
        plot(json.loads(Path(args.replot).read_text()), Path(args.plot))
        return 0
    if args.phase:  # a child of the run: one phase, its result as JSON on the last line
        result = phase_ceiling(args) if args.phase == "ceiling" else phase_database(args, args.phase,
                                                                                      args.database_url)
        print(json.dumps(result))
        return 0

    results = {"machine": machine(), "command": " ".join(sys.argv), "duration": args.duration,
               "phases": []}
    print(f"machine: {results['machine']}")
    for phase in args.phases.split(","):
        database_url = ""
        if phase == "postgres":
            url = os.environ.get("DATABASE_URL", "")
            if not url.startswith("postgres"):
                print("postgres: skipped (no DATABASE_URL of a PostgreSQL cluster; run under scripts/with-postgres)")
                continue
            database_url, results["postgres"] = postgres_database(url)
            print(f"postgres: {results['postgres']}")
        print(f"{phase}:", flush=True)
        child = [sys.executable, __file__, "--phase", phase, "--database-url", database_url,
                 "--duration", str(args.duration), "--warmup", str(args.warmup),
                 "--concurrency", ",".join(map(str, args.concurrency)), "--cards", str(args.cards),
                 "--timeout", str(args.timeout), *(["--keep"] if args.keep else []),
                 *(["--profile", args.profile] if args.profile else [])]
        done = subprocess.run(child, stdout=subprocess.PIPE, text=True, check=False)
        lines = done.stdout.strip().splitlines()
        for line in lines[:-1]:
            print(line)
        if done.returncode != 0 or not lines:
            print(f"{phase}: failed ({done.returncode})")
            return 1
        results["phases"].append(json.loads(lines[-1]))
        if money := results["phases"][-1].get("money"):
            print(f"  money: {money}")
    results["machine"]["load_at_end"] = [round(v, 2) for v in os.getloadavg()]
    ceiling = next((p for p in results["phases"] if p["phase"] == "ceiling"), None)
    if ceiling:
        best = max(level["per_second"] for level in ceiling["levels"])
        for phase in results["phases"]:
            if phase is not ceiling:
                top = max(level["per_second"] for level in phase["levels"])
                print(f"{phase['phase']}: best {top:.0f}/s = {top / best:.0%} of the ceiling ({best:.0f}/s)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.plot:
        plot(results, Path(args.plot))
        print(f"plot: {args.plot}")
    failed = [p["phase"] for p in results["phases"] if p.get("money") and not p["money"]["ok"]]
    if failed:
        print(f"money check FAILED: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
