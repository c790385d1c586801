"""The unpaid-invoice lookup against the size of the invoice table: 10^4, 10^5, 10^6 then 10^7 invoices.

What a customer's consult costs the database: the identification by the internet payment identifier
(``services.identification.identify_internet``: the line, the per-address limit, the attempt written) and the
consult page's read (``selectors.invoices.line_unpaid_invoices``: the line's unpaid invoices and their bills),
the code the portal runs, on one database that grows from one size to the next. The rows are generated in the
database itself (recursive CTE on SQLite, ``generate_series`` on PostgreSQL), the shape of the guide's customers:
each customer has a mobile and an internet line and two monthly bills of one invoice per line; the older month
is paid (about half the table, as in a biller's history), the newer one unpaid.

At each size, after ANALYZE, ``--lookups`` random internet lines drawn from the whole table are looked up; the
report gives p50, p95 and the mean per lookup and their ratio to the first size: the lookup is flat when the
ratio stays within ±20 %. Times are wall times in this process (database included: SQLite runs in it; on
PostgreSQL the server's time is inside the round trip).

    .venv/bin/python bench/invoice_lookup_bench.py                                   # SQLite, up to 10^7
    .venv/bin/python bench/invoice_lookup_bench.py --sizes 10000,100000 --lookups 200
    scripts/with-postgres .venv/bin/python bench/invoice_lookup_bench.py --postgres
"""

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

INVOICES_PER_CUSTOMER = 4  # 2 lines x 2 monthly bills
IDENTIFIER_BASE = 10_000_000  # internet payment identifiers: 8 digits, 10000001 upwards
CHUNK = 250_000  # customers per INSERT … SELECT (one transaction each)


def setup_django(url: str, var_dir: str) -> None:
    os.environ.update({"DATABASE_URL": url, "TASDID_SANDBOX": "1", "TASDID_VAR_DIR": var_dir,
                       "DJANGO_SETTINGS_MODULE": "tasdid.settings"})
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _series(vendor: str, start: int, stop: int) -> str:
    """A CTE ``seq(i)`` of the integers start..stop (inclusive)."""
    if vendor == "postgresql":
        return f"WITH seq(i) AS (SELECT generate_series({start}, {stop}))"
    return (f"WITH RECURSIVE seq(i) AS (SELECT {start} UNION ALL SELECT i + 1 FROM seq WHERE i < {stop})")


def _paid_payment(now: dt.datetime) -> int:
    """One settled payment that every generated paid invoice points at (the constraint wants one; the lookup
    never reads it)."""
    from tasdid.billing.models import Customer, Payment, PaymentOrder, ServiceLine

    customer = Customer.all_objects.create(client_number="B0", name="Paiements générés")
    line = ServiceLine.all_objects.create(customer=customer, kind="internet", payment_identifier="99999999")
    order = PaymentOrder.objects.create(oid="bench-generated", line=line, email="bench@example.ma", amount=1,
                                        state="paid", created_at=now, updated_at=now)
    return Payment.objects.create(order=order, receipt_number="BENCH-0", amount=1, email="bench@example.ma",
                                  paid_at=now, trans_id="bench-0", auth_code="000000", masked_pan="400011******0001",
                                  card_brand="visa", merchant_name="bench").pk


def grow(first: int, last: int, payment_id: int) -> None:
    """Customers ``first..last`` with their lines, bills and invoices, written by the database itself."""
    from django.db import connection, transaction

    vendor = connection.vendor
    now = "'2026-11-02 09:00:00'" if vendor == "sqlite" else "TIMESTAMPTZ '2026-11-02 09:00:00+00'"
    offset = 1_000_000  # ids above the rows migrations and _paid_payment wrote
    for start in range(first, last + 1, CHUNK):
        stop = min(start + CHUNK - 1, last)
        seq = _series(vendor, start, stop)
        text = "CAST(i AS TEXT)" if vendor == "sqlite" else "i::text"
        pad = (lambda expr, width: f"substr('000000000000' || {expr}, -{width}, {width})") if vendor == "sqlite" \
            else (lambda expr, width: f"lpad({expr}, {width}, '0')")
        statements = [
            f"""{seq} INSERT INTO billing_customer (id, client_number, name, address, created_at)
                SELECT {offset} + i, '3' || {pad(text, 9)}, 'Client ' || {text}, '', {now} FROM seq""",
            f"""{seq} INSERT INTO billing_serviceline (id, customer_id, kind, number, payment_identifier,
                       payment_code_digest, label, failed_attempts, created_at)
                SELECT {offset} + 2 * i - 1, {offset} + i, 'mobile', '+2126' || {pad(text, 8)}, NULL, '',
                       'Forfait 20 H', 0, {now} FROM seq
                UNION ALL
                SELECT {offset} + 2 * i, {offset} + i, 'internet', NULL, CAST({IDENTIFIER_BASE} + i AS TEXT), '',
                       'Menara ADSL illimité 4 Mb/s', 0, {now} FROM seq""",
            f"""{seq} INSERT INTO billing_bill (id, customer_id, month, due_date, total_ht, total_vat, total_ttc,
                       loyalty_points, loyalty_balance, created_at)
                SELECT {offset} + 2 * i - 1, {offset} + i, '2026-09-01', '2026-10-20', 165.00, 33.00, 198.00, 10,
                       10, {now} FROM seq
                UNION ALL
                SELECT {offset} + 2 * i, {offset} + i, '2026-10-01', '2026-11-20', 165.00, 33.00, 198.00, 10, 20,
                       {now} FROM seq""",
            f"""{seq} INSERT INTO billing_invoice (id, reference, bill_id, line_id, amount_ht, amount_vat, amount_ttc,
                       status, paid_at, payment_id)
                SELECT {offset} + 4 * i - 4 + k.n, '7' || {pad(text, 12)} || k.n, {offset} + 2 * i - 1 + k.month,
                       {offset} + 2 * i - 1 + k.line, 82.50, 16.50, 99.00,
                       CASE k.month WHEN 0 THEN 'paid' ELSE 'unpaid' END,
                       CASE k.month WHEN 0 THEN {now} END,
                       CASE k.month WHEN 0 THEN {payment_id} END
                FROM seq, (SELECT 1 AS n, 0 AS month, 0 AS line UNION ALL SELECT 2, 0, 1
                           UNION ALL SELECT 3, 1, 0 UNION ALL SELECT 4, 1, 1) AS k""",
        ]
        with transaction.atomic(), connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def measure(customers: int, lookups: int, rng: random.Random) -> tuple[list[float], list[float], list[float]]:
    """(lookups, consults, lookups' CPU): the line found by its identifier and its unpaid invoices read, as the
    consult page reads them (wall time, and this process's CPU time: on SQLite the database's work is in it, and
    a busy machine disturbs it far less than wall time); then the same behind the whole identification (its rate
    limit read and its attempt written and committed, which on SQLite is a disk sync: the write, not the table's
    size, sets that figure)."""
    from django.db import connection

    from tasdid.billing.models import ServiceLine
    from tasdid.billing.selectors.invoices import line_unpaid_invoices
    from tasdid.billing.services.identification import Identified, identify_internet

    reads, consults, cpu = [], [], []
    for n in range(lookups):
        identifier = str(IDENTIFIER_BASE + rng.randint(1, customers))
        started, started_cpu = time.perf_counter(), time.process_time()
        line_id = ServiceLine.objects.filter(kind="internet", payment_identifier=identifier).values_list(
            "pk", flat=True).first()
        invoices = line_unpaid_invoices(line_id=line_id)
        reads.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        assert invoices is not None and len(invoices.invoices) == 1, (identifier, invoices)
        identifier = str(IDENTIFIER_BASE + rng.randint(1, customers))
        started = time.perf_counter()
        found = identify_internet(payment_identifier=identifier, client_ip=f"10.{n % 250}.{n // 250 % 250}.1")
        assert isinstance(found, Identified), (identifier, found)
        invoices = line_unpaid_invoices(line_id=found.line_id)
        consults.append(time.perf_counter() - started)
        assert invoices is not None and len(invoices.invoices) == 1, (identifier, invoices)
    connection.close()
    return reads, consults, cpu


def plans() -> dict[str, str]:
    """The query plans of the consult page's two reads, as the database chose them at this size."""
    from django.db import connection

    from tasdid.billing.models import Invoice, ServiceLine

    line = ServiceLine.objects.filter(kind="internet", payment_identifier=str(IDENTIFIER_BASE + 1))
    invoices = (Invoice.objects.filter(line_id=2_000_002, status="unpaid").select_related("bill")
                .order_by("bill__due_date", "reference"))
    explain = {"sqlite": {}, "postgresql": {}}[connection.vendor]
    return {"line": line.explain(**explain), "invoices": invoices.explain(**explain)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000,10000000",
                        help="invoice counts, increasing (each a multiple of 4)")
    parser.add_argument("--lookups", type=int, default=2000, help="lookups measured at each size")
    parser.add_argument("--postgres", action="store_true",
                        help="a new database on DATABASE_URL's PostgreSQL server (scripts/with-postgres)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if sizes != sorted(sizes) or any(s % INVOICES_PER_CUSTOMER for s in sizes):
        parser.error("sizes must increase and be multiples of 4")
    work = tempfile.mkdtemp(prefix="tasdid-lookup-")
    if args.postgres:
        import psycopg

        server = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        with psycopg.connect(server + "/postgres", autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS tasdid_lookup")
            admin.execute("CREATE DATABASE tasdid_lookup")
        url = server + "/tasdid_lookup"
    else:
        url = f"sqlite:///{work}/lookup.sqlite3"
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    try:
        return run(args, sizes, url, work, server if args.postgres else "")
    finally:
        shutil.rmtree(work, ignore_errors=True)  # a 10^7 database is gigabytes


def run(args, sizes: list[int], url: str, work: str, server: str) -> int:
    setup_django(url, work)
    from django.db import connection

    payment_id = _paid_payment(dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC))
    rng = random.Random(args.seed)
    rows, done = [], 0
    print(f"database: {connection.vendor} ({connection.settings_dict['NAME']}); {args.lookups} lookups per size")
    print(f"{'invoices':>12} {'grow s':>7} | lookup CPU: {'p50 ms':>7} {'ratio':>5} | lookup: {'p50 ms':>7} "
          f"{'p95 ms':>7} {'ratio':>5} | identification + lookup: {'p50 ms':>7} {'p95 ms':>7} {'ratio':>5}")
    for size in sizes:
        customers = size // INVOICES_PER_CUSTOMER
        started = time.perf_counter()
        grow(done + 1, customers, payment_id)
        analyze()
        grown = time.perf_counter() - started
        done = customers
        measure(customers, min(200, args.lookups), rng)  # warm the caches as a running portal's are
        reads, consults, cpu = measure(customers, args.lookups, rng)
        row = {"invoices": size, "grow_seconds": round(grown, 1)}
        for name, times in (("lookup", reads), ("consult", consults), ("lookup_cpu", cpu)):
            row[f"{name}_p50_ms"] = round(statistics.median(times) * 1000, 3)
            row[f"{name}_p95_ms"] = round(statistics.quantiles(times, n=20)[-1] * 1000, 3)
        rows.append(row)
        first = rows[0]
        print(f"{size:>12,} {grown:>7.1f} | {'':>11} {row['lookup_cpu_p50_ms']:>7.3f} "
              f"{row['lookup_cpu_p50_ms'] / first['lookup_cpu_p50_ms']:>5.2f} | {'':>7} "
              f"{row['lookup_p50_ms']:>7.3f} {row['lookup_p95_ms']:>7.3f} "
              f"{row['lookup_p50_ms'] / first['lookup_p50_ms']:>5.2f} | {'':>24} {row['consult_p50_ms']:>7.3f} "
              f"{row['consult_p95_ms']:>7.3f} {row['consult_p50_ms'] / first['consult_p50_ms']:>5.2f}", flush=True)
    for name, plan in plans().items():
        print(f"plan of the {name} read at {sizes[-1]:,} invoices:\n  " + plan.replace("\n", "\n  "))
    result = {"database": connection.vendor, "lookups": args.lookups, "date": dt.date.today().isoformat(),
              "rows": rows, "plans": plans()}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    connection.close()
    if args.postgres:
        import psycopg

        with psycopg.connect(server + "/postgres", autocommit=True) as admin:
            admin.execute("DROP DATABASE tasdid_lookup")
    for metric in ("lookup_cpu_p50_ms", "lookup_p50_ms"):
        flat = all(0.8 <= r[metric] / rows[0][metric] <= 1.2 for r in rows)
        print(f"{metric} flat (within ±20 % of the first size's):", "yes" if flat else "no")
    return 0


if __name__ == "__main__":
    sys.exit(main())
