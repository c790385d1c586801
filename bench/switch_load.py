"""Switch throughput and latency: the switch in process (its own SQLite database, migrated, the journal on),
a fake issuer that answers at once, and C acquirer connections each pipelining W requests at a time until N
authorizations are answered. Shows what the journal costs the hot path.

    .venv/bin/python bench/switch_load.py --count 5000 --connections 4 --window 16

Prints requests per second, latency percentiles seen by the acquirers, and the journal rows written.
"""

import argparse
import datetime as dt
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--no-journal", action="store_true", help="journal nothing: what the journal costs")
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="tasdid-switch-load-"))
    os.environ.update({"TASDID_SANDBOX": "1", "TASDID_VAR_DIR": str(var), "TASDID_LOG_LEVEL": "WARNING",
                       "DJANGO_SETTINGS_MODULE": "tasdid.settings"})
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from tests.switch.fakes import Acquirer, FakeIssuer, LoopThread, authorization, wait_until

    from tasdid.core import iso8583 as iso
    from tasdid.switch.models import JournalEntry
    from tasdid.switch.server import Switch, SwitchConfig

    issuer = FakeIssuer().start()
    loop = LoopThread("switch")
    switch = Switch(SwitchConfig(port=0, default_issuer=("127.0.0.1", issuer.port), echo_interval=600))

    if args.no_journal:
        switch.journal.record = lambda entry: None
    loop.call(switch.start())
    wait_until(lambda: all(link.up.is_set() for link in switch.links.values()), "links up")
    per_connection = args.count // args.connections
    latencies: list[float] = []
    lock = threading.Lock()

    def acquirer(index: int) -> None:
        client = Acquirer(switch.port)
        sent: dict[str, float] = {}
        mine: list[float] = []
        next_stan = 1
        done = 0
        while done < per_connection:
            while len(sent) < args.window and next_stan <= per_connection:
                stan = f"{next_stan:06d}"
                request = authorization(stan=stan, merchant=f"6000000{index:02d}",
                                        at=dt.datetime.now(dt.UTC).replace(microsecond=0))
                sent[stan] = time.perf_counter()
                client.send(request)
                next_stan += 1
            answer = client.receive()
            assert answer.response_code == iso.rc.APPROVED, answer
            mine.append(time.perf_counter() - sent.pop(answer.stan))
            done += 1
        client.close()
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=acquirer, args=(i,)) for i in range(args.connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    loop.call(switch.stop())
    loop.close()
    issuer.close()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    total = len(latencies)
    print(f"{total} authorizations over {args.connections} connections (window {args.window}) in {elapsed:.2f} s: "
          f"{total / elapsed:.0f}/s")
    print(f"latency ms: p50 {pct(0.5):.1f}, p95 {pct(0.95):.1f}, p99 {pct(0.99):.1f}, max {latencies[-1] * 1000:.1f}")
    print(f"journal rows written: {JournalEntry.objects.count()} (4 per authorization, plus the network messages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
