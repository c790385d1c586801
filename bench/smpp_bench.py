"""Benchmark the SMPP channel: submit throughput from the outbox to a local SMS centre (target: 500 SMS/s).

A fresh SQLite database in a temporary directory (or, with --postgres, DATABASE_URL's), N queued SMS written
at once, the SMS centre of the tests (smpp34's SMPP server on 127.0.0.1, tests/support/smsc.py) accepting every
submit_sm, and the channel of ``tasdid smpp`` (tasdid.messaging.smpp.SmppChannel) in this process: the clock
runs from the channel's start until the SMS centre has accepted all N and every id is recorded in the outbox.
Each SMS costs a claim ("sending", committed), a submit_sm and its answer, and the record of its id.

    .venv/bin/python bench/smpp_bench.py                 # 5000 SMS, window 10
    .venv/bin/python bench/smpp_bench.py --count 20000 --window 50

Not a test: the figures depend on the machine and on what else runs on it (the load average is printed).
"""

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--postgres", action="store_true", help="use DATABASE_URL (default: a new SQLite file)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tasdid-smpp-bench-"))
    os.environ.update({"TASDID_SANDBOX": "1", "TASDID_VAR_DIR": str(work), "TASDID_LOG_DIR": str(work / "log"),
                       "TASDID_SMS_CHANNEL": "smpp", "TASDID_LOG_LEVEL": "WARNING",
                       "DJANGO_SETTINGS_MODULE": "tasdid.settings"})
    if not args.postgres:
        os.environ["DATABASE_URL"] = f"sqlite:///{work / 'bench.sqlite3'}"
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone
    from tests.support.smsc import Smsc

    from tasdid.messaging.models import Sms
    from tasdid.messaging.smpp import SmppChannel, SmppConfig

    call_command("migrate", verbosity=0)
    Sms.objects.all().delete()
    now = timezone.now()
    Sms.objects.bulk_create(
        [Sms(direction="out", sender="1111", recipient=f"+2126610{i % 100000:05d}", text=f"Message de test {i}",
             status="queued", created_at=now) for i in range(args.count)], batch_size=1000)

    smsc = Smsc(receipts=False).start()
    channel = SmppChannel(SmppConfig(host="127.0.0.1", port=smsc.port, system_id="bench", password="bench",
                                     window=args.window, batch=args.batch, poll_interval=0.01))

    async def run() -> float:
        stop = asyncio.Event()
        started = time.perf_counter()
        task = asyncio.ensure_future(channel.run(stop))
        while channel.submitted < args.count:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        stop.set()
        await task
        return elapsed

    try:
        elapsed = asyncio.run(run())
    finally:
        smsc.stop()
    accepted = Sms.objects.filter(status="accepted").exclude(smsc_id="").count()
    assert accepted == args.count == len(smsc.accepted), (accepted, len(smsc.accepted))
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPU, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"database: {'PostgreSQL' if args.postgres else 'SQLite'}; window {args.window}, batch {args.batch}")
    print(f"{args.count} SMS submitted and their ids recorded in {elapsed:.2f} s: {args.count / elapsed:.0f} SMS/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
