"""The import's memory does not grow with the file: eight times the invoices, about the same peak.

The peak is bounded by a batch of records and by what the parser builds from one read of the file (256 KiB):
both files here are larger than that, so that only their length differs."""

import tracemalloc

import pytest

from tasdid.billing.models import Invoice
from tasdid.billing.services import importing
from tasdid.billing.services.importing import import_bills
from tests.billing.bills_files import document, mobile_customer, write


def _customers(count: int, start: int) -> list[dict]:
    customers = []
    for i in range(start, start + count):
        customer = mobile_customer()
        customer["client_number"] = f"3{i:08d}"
        number = f"06 61 {i // 10000 % 100:02d} {i // 100 % 100:02d} {i % 100:02d}"
        customer["lines"][0]["number"] = number
        invoice = customer["bills"][0]["invoices"][0]
        invoice["line"] = number
        invoice["reference"] = f"00{i:014d}"
        customers.append(customer)
    return customers


@pytest.mark.django_db
def test_peak_memory_does_not_grow_with_the_number_of_invoices(tmp_path, monkeypatch):
    monkeypatch.setattr(importing, "BATCH_INVOICES", 100)
    small = write(tmp_path / "small.json", document(*_customers(1000, 0)))
    large = write(tmp_path / "large.json", document(*_customers(8000, 1000)))
    import_bills(source=write(tmp_path / "warm.json", document(*_customers(100, 10000))))  # caches, translations

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        import_bills(source=small)
        small_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        import_bills(source=large)
        large_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert Invoice.objects.count() == 9100
    assert large.stat().st_size > 7 * small.stat().st_size > 7 * 2 * 256 * 1024
    assert large_peak < small_peak * 1.3, (small_peak, large_peak)
