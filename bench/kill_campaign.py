"""Kill campaign: the parties as real processes, SIGKILLed at random moments while customers pay, then recovery
and DESIGN §7's invariants checked in every party's tables.

What it does, as production runs it (docs/reliability.md, "Kill campaign"):

1. A fresh database of its own (a new PostgreSQL database beside DATABASE_URL's, or a SQLite file), ``tasdid
   migrate``, the sandbox bank's cards and the gateway's merchant (their demo seeders), and generated customers
   with one unpaid internet invoice each through ``tasdid import-bills``.
2. ``tasdid serve biller|gateway|bank|switch``, the card rails (``tasdid switch``, the centre monétique's ISO 8583
   server, and ``tasdid issuer``, the banks' issuer host), ``tasdid worker`` and ``tasdid smtp-sink`` on free
   127.0.0.1 ports, each in its own process group (TASDID_SANDBOX=1, TASDID_*_URL and _PORT pointing at them).
3. A stream of payments over HTTP by several customers at once (tests/support/journey_http.py: the biller's
   Internet form, « Payer en ligne », the hosted page, a card, the way back), approved and declined cards, and
   now and then two customers paying the same invoice at the same moment.
4. Meanwhile, at seeded random moments, ``kill -9`` of the process group of a party, of the switch, of the issuer
   host or of the worker, restarted
   after a short pause.
5. Then: stop the stream, restart everything, let the worker run until nothing is due (bounded), stop it, run
   ``tasdid gateway-sweep``, ``tasdid billing-sweep``, ``tasdid worker --batch`` (and ``tasdid reconcile`` when
   this checkout has it), and check the invariants (bench/kill_invariants.py). What is legitimately unfinished
   (a retry whose time has not come: the servers' clock cannot be moved) is reported with its deadline.

    .venv/bin/python bench/kill_campaign.py --kills 100                 # DATABASE_URL=postgres://… or SQLite
    scripts/with-postgres .venv/bin/python bench/kill_campaign.py --kills 100 --seed 7

Prints the figures and every violation (which order, which invariant, the processes' log lines about it); exits
1 when an invariant was broken. The short version runs in the test suite (tests/kill/).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.journey_http import APPROVED_CARDS, DECLINED_CARDS, Journey, pay_bill  # noqa: E402

TASDID = [sys.executable, "-m", "tasdid.cli"]
PARTIES = ("biller", "gateway", "bank", "switch")  # the switch's web site: the 3-D Secure directory
RAILS = {"switch-iso": "switch", "issuer": "issuer"}  # the card rails: `tasdid switch` (ISO 8583), `tasdid issuer`
VICTIMS = ("biller", "gateway", "bank", "worker", *RAILS)
RETRIES = 3
SEED_PARTIES = ("from tasdid.bank.demo import seed_demo as bank; from tasdid.gateway.demo import seed_demo as gw; "
                "bank(); gw()")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def has_command(name: str) -> bool:
    """Whether this checkout has ``tasdid NAME`` (a management command of one of tasdid's apps), without starting
    Django for it."""
    import tasdid

    return any(Path(tasdid.__file__).parent.glob(f"*/management/commands/{name.replace('-', '_')}.py"))


# --- the database -------------------------------------------------------------------------------------------


def create_database(base_url: str | None, work_dir: Path) -> tuple[str, str | None]:
    """A database for this run only: a new PostgreSQL database on the server of ``base_url`` (returned with its
    name, to drop it afterwards), or a SQLite file in ``work_dir``."""
    if not base_url or not base_url.startswith(("postgres://", "postgresql://")):
        return f"sqlite:///{work_dir / 'kill.sqlite3'}", None
    import psycopg

    name = f"tasdid_kill_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(base_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}")), name


def drop_database(base_url: str, name: str) -> None:
    import psycopg

    admin = urlunsplit(urlsplit(base_url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_bills(path: Path, customers: int, rng: random.Random) -> list[str]:
    """A bills file (docs/import-format.md): ``customers`` customers with an internet line and one unpaid invoice
    of 6 to 24 DH HT (small amounts, so that the sandbox cards' balances last the whole campaign). Returns the
    lines' payment identifiers."""
    identifiers = []
    with path.open("w", encoding="utf-8") as out:
        out.write('{"format": "tasdid-bills", "version": 1, "customers": [\n')
        for i in range(customers):
            identifier = f"{70_000_000 + i}"
            identifiers.append(identifier)
            ht = Decimal(rng.randrange(600, 2400)) / 100
            vat = (ht * Decimal("0.20")).quantize(Decimal("0.01"))
            ttc = ht + vat
            invoice = {"reference": f"07{i:010d}0926", "line": identifier, "amount_ht": f"{ht:.2f}",
                       "amount_vat": f"{vat:.2f}", "amount_ttc": f"{ttc:.2f}",
                       "lines": [{"section": "Abonnement", "label": "Menara ADSL 12 Mb/s", "period_start": "2026-09-01",
                                  "period_end": "2026-09-30", "amount_ht": f"{ht:.2f}"}]}
            customer = {"client_number": f"7{i:08d}", "name": f"Client n° {i}",
                        "lines": [{"kind": "internet", "payment_identifier": identifier, "label": "Menara ADSL"}],
                        "bills": [{"month": "2026-09", "due_date": "2026-10-20", "total_ht": f"{ht:.2f}",
                                   "total_vat": f"{vat:.2f}", "total_ttc": f"{ttc:.2f}", "loyalty_points": 0,
                                   "loyalty_balance": 0, "invoices": [invoice]}]}
            out.write((",\n" if i else "") + json.dumps(customer, ensure_ascii=False))
        out.write("\n]}\n")
    return identifiers


# --- the processes ------------------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    argv: list[str]
    port: int | None
    log: Path
    proc: subprocess.Popen | None = None
    starts: int = 0


class Processes:
    """The parties, the worker and the SMTP sink, each in its own process group, its output in log/NAME.log
    (with a line of ours at each start and kill, so that the log reads as the campaign went)."""

    def __init__(self, env: dict[str, str], work_dir: Path, ports: dict[str, int]):
        self.env, self.work_dir = env, work_dir
        log_dir = work_dir / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.all = {name: Process(name, [*TASDID, "serve", name, "--port", str(ports[name])], ports[name],
                                  log_dir / f"{name}.log") for name in PARTIES}
        for name, command in RAILS.items():
            self.all[name] = Process(name, [*TASDID, command, "--port", str(ports[name])], ports[name],
                                     log_dir / f"{name}.log")
        self.all["worker"] = Process("worker", [*TASDID, "worker"], None, log_dir / "worker.log")
        self.all["smtp"] = Process("smtp", [*TASDID, "smtp-sink", "--port", str(ports["smtp"])], ports["smtp"],
                                   log_dir / "smtp.log")
        self.lock = threading.Lock()

    def note(self, name: str, text: str) -> None:
        with self.all[name].log.open("a") as out:
            out.write(f"=== kill campaign {time.strftime('%H:%M:%S')}: {text}\n")

    def start(self, name: str) -> None:
        p = self.all[name]
        p.starts += 1
        self.note(name, f"start #{p.starts}")
        with p.log.open("ab") as out:
            p.proc = subprocess.Popen(p.argv, env=self.env, cwd=self.work_dir, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, name: str, timeout: float = 60) -> None:
        p = self.all[name]
        if p.port is None:
            return
        deadline = time.monotonic() + timeout
        while not _listening(p.port):
            if p.proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(p.log.read_text(errors="replace").splitlines()[-20:])
                raise RuntimeError(f"{name} does not answer on 127.0.0.1:{p.port}\n{tail}")
            time.sleep(0.1)

    def kill9(self, name: str) -> None:
        p = self.all[name]
        self.note(name, "SIGKILL of the process group")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.proc.pid, signal.SIGKILL)
        p.proc.wait()

    def stop(self, name: str, timeout: float = 15) -> None:
        p = self.all[name]
        if p.proc is None or p.proc.poll() is not None:
            return
        self.note(name, "SIGTERM (stop)")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.proc.pid, signal.SIGTERM)
        try:
            p.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9(name)
        with contextlib.suppress(ProcessLookupError):  # gunicorn's workers, should the master have gone first
            os.killpg(p.proc.pid, signal.SIGKILL)

    def start_all(self) -> None:
        for name in self.all:
            self.start(name)
        for name in self.all:
            self.wait_ready(name)

    def stop_all(self) -> None:
        for name in self.all:
            self.stop(name)


# --- the campaign -------------------------------------------------------------------------------------------


@dataclass
class Figures:
    journeys: list[Journey] = field(default_factory=list)
    kills: list[tuple[float, str, float]] = field(default_factory=list)  # (time, victim, pause)
    contested: int = 0
    stream_seconds: float = 0.0
    recovery: list[str] = field(default_factory=list)
    report: dict = field(default_factory=dict)


class Campaign:
    def __init__(self, *, database_url: str | None, work_dir: Path, seed: int, kills: int, payments: int,
                 concurrency: int = 4, contested_share: float = 0.1, declined_share: float = 0.15,
                 kill_gap: tuple[float, float] = (2.0, 6.0), pause: tuple[float, float] = (0.2, 2.0),
                 settle_seconds: float = 40.0, web_workers: int = 1, max_stream_seconds: float = 3600):
        self.base_url, self.work_dir, self.seed = database_url, work_dir, seed
        self.kills, self.payments, self.concurrency = kills, payments, concurrency
        self.contested_share, self.declined_share = contested_share, declined_share
        self.kill_gap, self.pause, self.settle_seconds = kill_gap, pause, settle_seconds
        self.web_workers, self.max_stream_seconds = web_workers, max_stream_seconds
        self.rng = random.Random(seed)
        self.figures = Figures()
        self.db_name: str | None = None
        self.out = sys.stdout

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # setup

    def _env(self, database_url: str, ports: dict[str, int]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TASDID_", "DJANGO_", "DATABASE_URL"))}
        env.update({
            "TASDID_SANDBOX": "1",
            "TASDID_SECRET_KEY": "tasdid-kill-campaign-secret-key-not-for-production-0",
            "DATABASE_URL": database_url,
            "TASDID_VAR_DIR": str(self.work_dir / "var"),
            "TASDID_LOG_DIR": str(self.work_dir / "log"),
            "TASDID_BILLER_URL": f"http://127.0.0.1:{ports['biller']}",
            "TASDID_GATEWAY_URL": f"http://127.0.0.1:{ports['gateway']}",
            "TASDID_BANK_URL": f"http://127.0.0.1:{ports['bank']}",
            "TASDID_SWITCH_URL": f"http://127.0.0.1:{ports['switch']}",
            "TASDID_SWITCH_PORT": str(ports["switch-iso"]),
            "TASDID_ISSUER_PORT": str(ports["issuer"]),
            "TASDID_EMAIL_HOST": "127.0.0.1",
            "TASDID_EMAIL_PORT": str(ports["smtp"]),
            "TASDID_WEB_WORKERS": str(self.web_workers),
            "TASDID_WEB_THREADS": "4",
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def tasdid(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([*TASDID, *args], env=self.env, cwd=self.work_dir, capture_output=True,
                              text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"tasdid {' '.join(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    def prepare(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        database_url, self.db_name = create_database(self.base_url, self.work_dir)
        self.ports = {name: free_port() for name in (*PARTIES, *RAILS, "smtp")}
        self.env = self._env(database_url, self.ports)
        self.biller_url = self.env["TASDID_BILLER_URL"]
        engine = "PostgreSQL" if self.db_name else "SQLite"
        self.say(f"database: {engine} {self.db_name or database_url}; logs: {self.work_dir / 'log'}")
        clock = time.monotonic()
        self.tasdid("migrate", "--no-input", "-v", "0")
        self.tasdid("shell", "-c", SEED_PARTIES)
        customers = self.payments + 12 * self.kills + 20
        self.identifiers = write_bills(self.work_dir / "bills.json", customers, self.rng)
        self.tasdid("import-bills", "--no-progress", str(self.work_dir / "bills.json"))
        self.has_reconcile = has_command("reconcile")
        self.last_worker_run = ""
        self.processes = Processes(self.env, self.work_dir, self.ports)
        self.say(f"prepared in {time.monotonic() - clock:.0f} s: {len(self.identifiers)} customers with an unpaid "
                 f"invoice; reconcile command: {'yes' if self.has_reconcile else 'no'}")

    # the stream

    def _customer_job(self, identifier: str, index: int, declined: bool) -> list[Journey]:
        """One customer paying one bill; when a step fails (a party was just killed), they try again a moment
        later, as a person would, up to RETRIES times."""
        cards = DECLINED_CARDS if declined else APPROVED_CARDS
        card = cards[index % len(cards)]
        journeys = []
        for retry in range(RETRIES + 1):
            if retry:
                time.sleep(1.0 + retry)
            journeys.append(pay_bill(self.biller_url, identifier, f"client{index}@kill.example.ma", card))
            if journeys[-1].outcome != "broken":
                break
        return journeys

    def _killer(self, stream_done: threading.Event) -> None:
        rng = random.Random(self.seed * 7919 + 1)
        started = time.monotonic()
        rounds: list[str] = []
        for _ in range(self.kills):
            if stream_done.wait(rng.uniform(*self.kill_gap)):
                return
            if not rounds:  # every party and the worker once per round, in a seeded random order
                rounds = rng.sample(VICTIMS, len(VICTIMS))
            victim, pause = rounds.pop(), rng.uniform(*self.pause)
            self.processes.kill9(victim)
            self.figures.kills.append((time.monotonic() - started, victim, pause))
            time.sleep(pause)
            self.processes.start(victim)
            try:
                self.processes.wait_ready(victim)
            except RuntimeError as failure:  # said in the figures; the recovery restarts it anyway
                self.figures.recovery.append(f"{victim} did not come back during the stream: {failure}")

    def stream(self) -> None:
        stream_done = threading.Event()
        killer = threading.Thread(target=self._killer, args=(stream_done,), daemon=True)
        started = time.monotonic()
        killer.start()
        queue = iter(self.identifiers)
        index = 0
        inflight: set[Future] = set()
        with ThreadPoolExecutor(max_workers=self.concurrency + 1) as pool:
            while True:
                enough = len(self.figures.journeys) >= self.payments and not killer.is_alive()
                if enough or time.monotonic() - started > self.max_stream_seconds:
                    break
                while len(inflight) < self.concurrency:
                    identifier = next(queue, None)
                    if identifier is None:
                        break
                    declined = self.rng.random() < self.declined_share
                    inflight.add(pool.submit(self._customer_job, identifier, index, declined))
                    index += 1
                    if self.rng.random() < self.contested_share:  # a second customer on the same invoice
                        self.figures.contested += 1
                        inflight.add(pool.submit(self._customer_job, identifier, index, False))
                        index += 1
                if not inflight:
                    break  # every customer has paid; the killer stops with the stream
                done, inflight = wait(inflight, return_when=FIRST_COMPLETED)
                self.figures.journeys.extend(j for f in done for j in f.result())
            for f in inflight:
                self.figures.journeys.extend(f.result())
        stream_done.set()
        killer.join()
        self.figures.stream_seconds = time.monotonic() - started

    # recovery and the check

    def check(self, last_worker_run: str = "") -> dict:
        env = {**self.env, "TASDID_KILL_LAST_WORKER_RUN": last_worker_run} if last_worker_run else self.env
        done = subprocess.run([sys.executable, str(ROOT / "bench" / "kill_invariants.py")], env=env,
                              cwd=self.work_dir, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"kill_invariants: exit {done.returncode}\n{done.stderr}")
        return json.loads(done.stdout)

    def recover(self) -> dict:
        p = self.processes
        p.stop_all()
        p.start_all()
        self.figures.recovery.append("every process restarted")
        # Let the worker do what is due (retried callbacks, captures, emails) while the parties answer; bounded.
        deadline = time.monotonic() + self.settle_seconds
        while time.monotonic() < deadline:
            report = self.check()
            left = max(0.0, deadline - time.monotonic())
            soon = [x for x in report["pending"]
                    if not x["deadline"] or dt.datetime.fromisoformat(x["deadline"]).timestamp() < time.time() + left]
            if not report["pending"] or not soon:
                break
            time.sleep(2)
        p.stop("worker")
        self.figures.recovery.append("worker stopped")
        swept = self.recovery_command("gateway-sweep")
        self.recovery_command("billing-sweep")
        self.recovery_command("worker", "--batch")
        if self.has_reconcile:
            self.recovery_command("reconcile")
        if self.has_reconcile or swept.stdout.strip() != "Rien à traiter.":  # they may have queued more work
            self.recovery_command("gateway-sweep")
            self.recovery_command("worker", "--batch")
        report = self.check(last_worker_run=self.last_worker_run)
        p.stop_all()
        return report

    def recovery_command(self, *command: str) -> subprocess.CompletedProcess:
        if command[0] == "worker":
            self.last_worker_run = dt.datetime.now(dt.UTC).isoformat()
        done = self.tasdid(*command, check=False, timeout=300)
        summary = " | ".join(line for line in done.stdout.splitlines()[-6:] if line.strip())
        self.figures.recovery.append(f"tasdid {' '.join(command)}: exit {done.returncode} {summary}".strip())
        return done

    def log_lines(self, *needles: str, limit: int = 12) -> list[str]:
        found = []
        needles = tuple(n for n in needles if n)
        for log in sorted((self.work_dir / "log").glob("*.log")):
            for line in log.read_text(errors="replace").splitlines():
                if any(n in line for n in needles):
                    found.append(f"{log.stem}: {line.strip()[:300]}")
        return found[:limit]

    def run(self) -> dict:
        try:
            self.prepare()
            clock = time.monotonic()
            self.processes.start_all()
            self.say(f"processes up in {time.monotonic() - clock:.0f} s")
            self.say(f"stream: >= {self.payments} journeys, {self.kills} kills, {self.concurrency} customers at once,"
                     f" seed {self.seed}")
            self.stream()
            self.say(f"stream over after {self.figures.stream_seconds:.0f} s; recovery…")
            report = self.recover()
        finally:
            if hasattr(self, "processes"):
                self.processes.stop_all()
        for v in report["violations"]:
            v["log"] = self.log_lines(*(v.get(k, "") for k in ("order", "trans_id", "receipt", "rrn")))
        self.figures.report = report
        return report

    def cleanup(self) -> None:
        if self.db_name:
            drop_database(self.base_url, self.db_name)

    def _pending_groups(self) -> dict[str, tuple[int, list[str]]]:
        groups: dict[str, tuple[int, list[str]]] = {}
        for x in self.figures.report["pending"]:
            key = f"{x['what']} ({x['state']})"
            n, deadlines = groups.get(key, (0, []))
            groups[key] = (n + 1, [*deadlines, x["deadline"] or "-"])
        return groups

    def summary(self) -> str:
        f, report = self.figures, self.figures.report
        outcomes = Counter(j.outcome for j in f.journeys)
        victims = Counter(victim for _t, victim, _p in f.kills)
        broken = Counter(j.steps[-1] if j.steps else "-" for j in f.journeys if j.outcome == "broken")
        lines = [
            f"journeys: {len(f.journeys)} ({', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))}); "
            f"{f.contested} invoices paid by two customers at once",
            f"broken journeys by last step: {dict(broken)}" if broken else "broken journeys: none",
            f"kills: {len(f.kills)} ({', '.join(f'{k} {v}' for k, v in sorted(victims.items()))})"
            f" in {f.stream_seconds:.0f} s",
            f"restarts: {', '.join(f'{n} {p.starts - 1}' for n, p in self.processes.all.items())}",
            *(f"recovery: {r}" for r in f.recovery),
            f"reconcile: {'run' if self.has_reconcile else 'no such command in this checkout'}",
            f"counts: {json.dumps(report['counts'], ensure_ascii=False)}",
            f"pending (legitimately unfinished, with deadline): {len(report['pending'])}",
            *(f"  {what}: {n}, deadlines {min(d)} … {max(d)}" for what, (n, d) in self._pending_groups().items()),
            f"reopened payments (reconciliation): {len(report['reopened'])}",
            *(f"  {json.dumps(x, ensure_ascii=False)}" for x in report["reopened"][:20]),
            f"VIOLATIONS: {len(report['violations'])}",
        ]
        for v in report["violations"]:
            facts = {k: x for k, x in v.items() if k not in ("log", "order", "invariant")}
            lines.append(f"  order {v['order'] or '-'}: {v['invariant']}: {json.dumps(facts, ensure_ascii=False)}")
            lines.extend(f"      {line}" for line in v["log"])
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--payments", type=int, default=0, help="at least this many journeys (default: 3 per kill)")
    parser.add_argument("--concurrency", type=int, default=4, help="customers paying at once")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gap", type=float, nargs=2, default=(2.0, 6.0), metavar=("MIN", "MAX"),
                        help="seconds between a restarted process answering and the next kill")
    parser.add_argument("--settle", type=float, default=120, help="seconds the restarted worker gets to finish")
    parser.add_argument("--web-workers", type=int, default=1)
    parser.add_argument("--work-dir", type=Path, help="logs and files (default: a new temporary directory)")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--json", type=Path, help="write the full report there")
    args = parser.parse_args(argv)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="tasdid-kill-"))
    campaign = Campaign(database_url=os.environ.get("DATABASE_URL"), work_dir=work_dir, seed=args.seed,
                        kills=args.kills, payments=args.payments or 3 * args.kills, concurrency=args.concurrency,
                        settle_seconds=args.settle, web_workers=args.web_workers, kill_gap=tuple(args.gap))
    try:
        report = campaign.run()
    finally:
        if not args.keep_database:
            campaign.cleanup()
    print(campaign.summary())
    if args.json:
        args.json.write_text(json.dumps({"report": report, "kills": campaign.figures.kills, "journeys": [
            {k: getattr(j, k) for k in ("identifier", "email", "outcome", "oid", "error", "seconds")}
            for j in campaign.figures.journeys]}, ensure_ascii=False, indent=1, default=str))
    print(f"logs: {work_dir / 'log'}")
    return 1 if report["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
