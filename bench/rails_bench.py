"""The card rails as production runs them: ``tasdid issuer`` and ``tasdid switch`` as processes on free 127.0.0.1
ports over a database of their own (a SQLite file), and the gateway's ISO 8583 client (tasdid.gateway.rails) in
this process, from several threads at once: authorizations, each captured, timed one by one.

    .venv/bin/python bench/rails_bench.py --payments 400 --threads 8

Prints the throughput and the latency of authorizations and captures (p50, p95, p99, max), and checks the money:
the bank's ledger holds one debit per approved payment, for its amount. Bounded: ``--payments`` in all, each call
at most the client's timeout.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASDID = [sys.executable, "-m", "tasdid.cli"]


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


def percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (f"p50 {at(0.50):.1f} ms, p95 {at(0.95):.1f} ms, p99 {at(0.99):.1f} ms, max {ordered[-1] * 1000:.1f} ms, "
            f"mean {statistics.fmean(ordered) * 1000:.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (database, logs)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rails-bench-"))
    ports = {"switch": free_port(), "issuer": free_port()}
    env = {**os.environ, "TASDID_SANDBOX": "1", "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
           "TASDID_VAR_DIR": str(work), "TASDID_SWITCH_PORT": str(ports["switch"]),
           "TASDID_ISSUER_PORT": str(ports["issuer"]), "TASDID_SWITCH_HOST": "127.0.0.1",
           "TASDID_ISSUER_HOST": "127.0.0.1"}
    subprocess.run([*TASDID, "migrate", "--no-input", "-v", "0"], env=env, cwd=work, check=True)
    subprocess.run([*TASDID, "shell", "-c", "from tasdid.bank.demo import seed_demo; seed_demo()"], env=env,
                   cwd=work, check=True)
    processes = []
    try:
        for name in ("issuer", "switch"):
            log = open(work / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
            processes.append(subprocess.Popen([*TASDID, name], env=env, cwd=work, stdout=log, stderr=log,
                                              start_new_session=True))
            wait_port(ports[name])
        os.environ.update(env)
        sys.path.insert(0, str(ROOT / "src"))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tasdid.settings")
        import django

        django.setup()
        return run(args, work)
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(args, work: Path) -> int:
    from django.db import connections
    from django.utils import timezone

    from tasdid.bank import sandbox
    from tasdid.bank.models import LedgerEntry
    from tasdid.core.acquiring import AuthorizationRequest, CardData, SettlementRequest
    from tasdid.gateway import rails, services

    cards = [c for c in sandbox.CARDS if c.response_code == "00" and c.three_d_secure == "none"]
    acquirer = rails.SwitchAcquirer()
    if not acquirer.rails.wait_up(30):
        print("the client could not sign on to the switch")
        return 1
    authorize_times: list[float] = []
    capture_times: list[float] = []
    outcomes: dict[str, int] = {}
    lock = threading.Lock()
    counter = iter(range(args.payments))

    def pay() -> None:
        try:
            for n in counter:
                card = cards[n % len(cards)]
                month, year = card.expiry.split("/")
                request = AuthorizationRequest(
                    card=CardData(pan=card.number, expiry_yymm=year + month, cvv=card.cvv), amount_minor=100,
                    currency="504", merchant_id="600000001", merchant_name="Tasdid Telecom", order_id=f"BENCH-{n}",
                    stan=services.next_stan(), transmitted_at=timezone.now())
                started = time.monotonic()
                try:
                    result = acquirer.authorize(request)
                except Exception as exc:
                    with lock:
                        outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
                    continue
                took = time.monotonic() - started
                with lock:
                    authorize_times.append(took)
                    outcomes[result.response_code] = outcomes.get(result.response_code, 0) + 1
                if not result.approved:
                    continue
                settlement = SettlementRequest(
                    original_stan=request.stan, original_transmitted_at=request.transmitted_at, amount_minor=100,
                    currency="504", merchant_id="600000001", order_id=request.order_id, stan=services.next_stan(),
                    transmitted_at=timezone.now(), rrn=result.rrn, auth_code=result.auth_code)
                started = time.monotonic()
                captured = acquirer.capture(settlement)
                with lock:
                    capture_times.append(time.monotonic() - started)
                    key = f"capture {captured.response_code}"
                    outcomes[key] = outcomes.get(key, 0) + 1
        finally:
            connections.close_all()

    clock = time.monotonic()
    threads = [threading.Thread(target=pay) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - clock
    rails.reset_connection()
    debits = LedgerEntry.objects.filter(kind="debit", hold__isnull=False).count()
    print(f"{args.payments} payments from {args.threads} threads in {elapsed:.1f} s "
          f"({args.payments / elapsed:.1f} payments/s, each an authorization and a capture)")
    print(f"authorizations: {percentiles(authorize_times)}")
    print(f"captures:       {percentiles(capture_times)}")
    print(f"outcomes: {dict(sorted(outcomes.items()))}; bank ledger debits: {debits}")
    approved_captured = outcomes.get("capture 00", 0)
    return 0 if debits == approved_captured == outcomes.get("00", 0) == args.payments else 1


if __name__ == "__main__":
    sys.exit(main())
