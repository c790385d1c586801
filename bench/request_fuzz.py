"""Long fuzz of the payment request endpoint (``POST /fim/est3Dgate``): N generated requests (valid ones, and ones
broken in one way: tampered after signing, fields dropped, added or doubled, wrong hashes, fields outside their
rules signed correctly, non-UTF-8 bytes, oversized fields, junk; now and then a replay of an open order from
another browser or from its own) posted through Django's test client to the gateway, on a fresh SQLite database
(or DATABASE_URL's).

    nice -n 10 .venv/bin/python bench/request_fuzz.py --count 100000 --seed 1
    scripts/with-postgres nice -n 10 .venv/bin/python bench/request_fuzz.py --count 10000 --seed 2

Prints the outcomes (tests/gateway/request_fuzzing.py: accepted, refused, server error, wrong accept, wrong
refusal, refusal without a page), the cases by kind, and checks at the end that the sessions in the database are
exactly those the valid requests opened. Exits 1 unless there are 0 server errors, 0 wrong accepts, 0 wrong
refusals and 0 refusals without their page. The short version runs in the suite (tests/gateway/test_request_fuzz.py).
"""

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("TASDID_SANDBOX", "1")
    os.environ.setdefault("TASDID_VAR_DIR", tempfile.mkdtemp(prefix="tasdid-request-fuzz-"))
    os.environ.setdefault("TASDID_LOG_LEVEL", "ERROR")
    os.environ["DJANGO_SETTINGS_MODULE"] = "tasdid.settings"
    import django

    django.setup()
    import logging

    from django.core.management import call_command
    from django.test.utils import setup_test_environment
    from tests.gateway.request_fuzzing import Outcome, Run, gateway_client, setup_merchants, step

    from tasdid.gateway.models import PaymentSession

    logging.getLogger("django.request").setLevel(logging.ERROR)  # a 400 per refusal otherwise
    setup_test_environment()  # the test client's host allowed, mail kept in memory
    from django.db import connection

    if connection.vendor == "postgresql":  # scripts/with-postgres gives a server, not its database
        name = connection.settings_dict["NAME"]
        with connection._nodb_cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
    call_command("migrate", "--no-input", verbosity=0)
    setup_merchants()
    rng, run, client = random.Random(args.seed), Run(), gateway_client()
    started = time.monotonic()
    for n in range(args.count):
        step(run, rng, n, client=client)
        if run.failures and run.counts.get(Outcome.SERVER_ERROR):
            print(run.failures[-1], file=sys.stderr)
        if (n + 1) % 5000 == 0:
            print(f"{n + 1} requests, {time.monotonic() - started:.0f} s, {run.counts}", flush=True)
    elapsed = time.monotonic() - started
    sessions = PaymentSession.objects.count()
    print(f"{run.requests} requests in {elapsed:.0f} s ({run.requests / elapsed:.0f}/s), seed {args.seed}:")
    for name in (Outcome.ACCEPTED, Outcome.REFUSED, Outcome.SERVER_ERROR, Outcome.WRONG_ACCEPT,
                 Outcome.WRONG_REFUSAL, Outcome.UNCLEAR_REFUSAL):
        print(f"  {name}: {run.counts.get(name, 0)}")
    print(f"  sessions in the database: {sessions} (opened by valid requests: {run.sessions})")
    print("by kind:")
    for kind, count in sorted(run.kinds.items()):
        print(f"  {kind}: {count}")
    for failure in run.failures[:20]:
        print(failure, file=sys.stderr)
    return 0 if run.bad == 0 and sessions == run.sessions else 1


if __name__ == "__main__":
    sys.exit(main())
