"""Long fuzz of the merchant XML API (``POST /fim/api``): N generated CC5Request bodies (valid operations and their
repeats, status and history queries, invalid and malicious XML, wrong credentials; tests/gateway/api_fuzzing.py)
posted through Django's test client to the gateway, on a fresh SQLite database (or DATABASE_URL's), the acquirer
approving in-process.

    nice -n 10 .venv/bin/python bench/api_fuzz.py --count 100000 --seed 1
    scripts/with-postgres nice -n 10 .venv/bin/python bench/api_fuzz.py --count 5000 --seed 2

Prints the outcomes (approved, declined, refused, server error, wrong accept, wrong refusal, wrong answer), the
cases by kind, and checks at the end that every order's state and refunds in the database are the model's. Exits 1
unless there are 0 server errors, 0 wrong accepts, 0 wrong refusals, 0 wrong answers and no difference. The short
version runs in the suite (tests/gateway/test_api_fuzz.py).
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
    os.environ.setdefault("TASDID_VAR_DIR", tempfile.mkdtemp(prefix="tasdid-api-fuzz-"))
    os.environ.setdefault("TASDID_LOG_LEVEL", "ERROR")
    os.environ["TASDID_GATEWAY_ACQUIRER"] = "tests.gateway.api_fuzzing.FuzzAcquirer"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tasdid.settings"
    import django

    django.setup()
    import logging

    from django.core.management import call_command
    from django.test.utils import setup_test_environment
    from tests.gateway.api_fuzzing import Model, Outcome, Run, check_money, gateway_client, setup_merchants, step

    logging.getLogger("django.request").setLevel(logging.ERROR)
    logging.getLogger("tasdid").setLevel(logging.ERROR)
    setup_test_environment()
    from django.db import connection

    if connection.vendor == "postgresql":  # scripts/with-postgres gives a server, not its database
        name = connection.settings_dict["NAME"]
        with connection._nodb_cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
    call_command("migrate", "--no-input", verbosity=0)
    setup_merchants()
    rng, run, model, client = random.Random(args.seed), Run(), Model(), gateway_client()
    started = time.monotonic()
    for n in range(args.count):
        step(run, model, rng, n, client=client)
        if (n + 1) % 5000 == 0:
            print(f"{n + 1} requests, {time.monotonic() - started:.0f} s, {run.counts}", flush=True)
    elapsed = time.monotonic() - started
    problems = check_money(model)
    print(f"{run.requests} requests in {elapsed:.0f} s ({run.requests / elapsed:.0f}/s), seed {args.seed}:")
    for name in (Outcome.APPROVED, Outcome.DECLINED, Outcome.REFUSED, Outcome.SERVER_ERROR, Outcome.WRONG_ACCEPT,
                 Outcome.WRONG_REFUSAL, Outcome.WRONG_ANSWER):
        print(f"  {name}: {run.counts.get(name, 0)}")
    print(f"  orders: {len(model.orders)}, differences with the model: {len(problems)}")
    print("by kind:")
    for kind, count in sorted(run.kinds.items()):
        print(f"  {kind}: {count}")
    for failure in [*run.failures[:20], *problems[:20]]:
        print(failure, file=sys.stderr)
    return 0 if run.bad == 0 and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
