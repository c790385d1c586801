"""The consult's reads find their rows by index, whatever the size of the tables (bench/invoice_lookup_bench.py
measures them from 10^4 to 10^7 invoices): the line by its identifier or number, its unpaid invoices by
(line, status). On PostgreSQL, sequential scans are priced out so that the plan shows whether an index can serve
the query at all (on a few rows the planner rightly prefers a scan)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tasdid.billing.models import Invoice, ServiceLine
from tests import factories

ROOT = Path(__file__).resolve().parents[2]


def _plan(queryset) -> str:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET enable_seqscan = off")
        try:
            return queryset.explain()
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET enable_seqscan")
    return queryset.explain()


def _uses_index(plan: str, table: str) -> bool:
    if connection.vendor == "postgresql":
        return f"Seq Scan on {table}" not in plan and ("Index Scan" in plan or "Index Only Scan" in plan
                                                         or "Bitmap Index Scan" in plan)
    return f"SEARCH {table} USING" in plan and f"SCAN {table}" not in plan


@pytest.mark.django_db
def test_the_consult_reads_use_indexes():
    line = factories.internet_line(identifier="12345678")
    factories.invoice(line=line)
    mobile = factories.mobile_line(number="+212661000001")

    by_identifier = ServiceLine.objects.filter(kind="internet", payment_identifier="12345678")
    by_number = ServiceLine.objects.filter(kind="mobile", number=mobile.number)
    unpaid = (Invoice.objects.filter(line_id=line.pk, status=Invoice.Status.UNPAID).select_related("bill")
              .order_by("bill__due_date", "reference"))
    for queryset, table in ((by_identifier, "billing_serviceline"), (by_number, "billing_serviceline"),
                            (unpaid, "billing_invoice")):
        plan = _plan(queryset)
        assert _uses_index(plan, table), plan
    assert list(by_identifier) == [line]  # the queries planned are the ones that find the rows


def test_the_lookup_benchmark_runs_and_stays_on_its_indexes(tmp_path):
    """A short run of the benchmark (two small sizes), so that it cannot rot: it grows the tables, looks lines
    up and prints the plans it ran with."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench/invoice_lookup_bench.py"), "--sizes", "400,4000", "--lookups", "30",
         "--json", str(tmp_path / "lookup.json")],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SEARCH billing_serviceline USING INDEX line_unique_payment_identifier" in result.stdout
    assert "SEARCH billing_invoice USING INDEX" in result.stdout
    rows = json.loads((tmp_path / "lookup.json").read_text())["rows"]
    assert [row["invoices"] for row in rows] == [400, 4000]
    assert all(row["lookup_p50_ms"] > 0 and row["consult_p50_ms"] > 0 for row in rows)
