"""The clearing's memory does not grow with the day: ten times the answers (50 000 against 5 000, and a refused
answer to skip per ten: 55 000 journal rows), about the same peak; both read more than one chunk of the cursor
(2 000 rows). bench/clearing_bench.py runs 10^6."""

import io
import tracemalloc

import pytest
from bench.clearing_bench import DAY, journal_rows

from tasdid.switch.management.commands.clearing import write_clearing
from tasdid.switch.models import JournalEntry
from tasdid.switch.services import journal_append


def _fill(count: int) -> None:
    rows = []
    for row in journal_rows(count):
        rows.append(row)
        if len(rows) == 10_000:
            journal_append(entries=rows)
            rows = []
    journal_append(entries=rows)


class _Counting(io.TextIOBase):
    """A sink that keeps nothing: what the file would hold is only counted."""

    def __init__(self):
        self.lines = 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        return len(text)


def _peak(count: int) -> tuple[int, int]:
    JournalEntry.objects.all().delete()
    _fill(count)
    sink = _Counting()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        totals = write_clearing(sink, day=DAY)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert totals.lines == count
    return peak, sink.lines


@pytest.mark.django_db
def test_peak_memory_does_not_grow_with_the_number_of_answers():
    _peak(500)  # caches, translations
    small_peak, small_lines = _peak(5_000)
    large_peak, large_lines = _peak(50_000)

    # H + details + one S per (merchant, bank) and one M per merchant (20 merchants, one bank each) + T
    assert (small_lines, large_lines) == (5_000 + 20 + 20 + 2, 50_000 + 20 + 20 + 2)
    assert large_peak < small_peak * 1.3, (small_peak, large_peak)
