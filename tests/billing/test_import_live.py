"""An import while the site is live: short transactions, nothing visible before the publish, nothing left after
a refusal or a kill, and the portal answering throughout (real HTTP, real ``tasdid import-bills`` processes).

Run on SQLite by default and on PostgreSQL with ``scripts/with-postgres``."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench.generate_bills import generate
from bench.portal_probe import PortalProbe, write_seed
from django.db import connection

from tasdid.billing.importing.errors import BillImportFailed
from tasdid.billing.models import Bill, Customer, ImportBatch, Invoice, InvoiceLine, ServiceLine
from tasdid.billing.services import importing
from tasdid.billing.services.importing import import_bills
from tests.billing.bills_files import document, mobile_customer, write
from tests.support.tasks import database_url

TASDID = Path(sys.executable).with_name("tasdid")
# Enough for the import to take a few seconds (48 batches): long enough for a portal request to have waited for
# all of it if the import held the database, short enough for CI.
LARGE = 48_000
# The import may make a request wait for one batch, well under a second; the rest is this machine's own latency
# when busy (the bound is about correctness, not speed: a request that waited for the whole import exceeds it).
WAIT_BOUND = 2.0


# Sixteen batches: killed after the first ones, the rest for the next import.
SMALL = 16_000


@pytest.fixture(scope="module")
def large_file(tmp_path_factory) -> Path:
    return generate_file(tmp_path_factory.mktemp("bills") / "large.json", LARGE)


@pytest.fixture(scope="module")
def small_file(tmp_path_factory) -> Path:
    return generate_file(tmp_path_factory.mktemp("bills") / "small.json", SMALL)


def generate_file(path: Path, invoices: int) -> Path:
    generate(path, invoices)
    return path


def import_process(path: Path, tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tasdid.settings", "TASDID_SANDBOX": "1",
           "DATABASE_URL": database_url(), "TASDID_VAR_DIR": str(tmp_path)}
    return subprocess.Popen([str(TASDID), "import-bills", str(path), "--no-progress"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def visible() -> tuple[int, int, int, int]:
    return (Customer.objects.count(), ServiceLine.objects.count(), Bill.objects.count(), Invoice.objects.count())


def stored() -> tuple[int, int, int, int, int]:
    return (Customer.all_objects.count(), ServiceLine.all_objects.count(), Bill.all_objects.count(),
            Invoice.all_objects.count(), InvoiceLine.objects.count())


def test_the_portal_keeps_answering_while_a_large_import_runs(parties, settings, tmp_path, large_file):
    settings.SESSION_COOKIE_SECURE = False  # plain HTTP on loopback, as in the demo
    seed = write_seed(tmp_path / "seed.json")
    import_bills(source=seed)
    probe = PortalProbe(parties["biller"]).start()
    time.sleep(1.0)  # a few journeys before: the portal works
    process = import_process(large_file, tmp_path)
    began = time.monotonic()
    counts: set[int] = set()
    refused: BillImportFailed | None = None
    while process.poll() is None and time.monotonic() - began < 300:
        counts.add(Invoice.objects.count())
        if refused is None and ImportBatch.objects.filter(published_at__isnull=True).exists():
            try:  # a second import meanwhile is refused, and writes nothing
                import_bills(source=seed)
            except BillImportFailed as failure:
                refused = failure
        time.sleep(0.05)
    out, err = process.communicate(timeout=60)
    ended = time.monotonic()
    samples = probe.stop()
    counts.add(Invoice.objects.count())

    assert process.returncode == 0, err
    assert "  factures : 48\u202f000 créé(s), 0 déjà présent(s)" in out.splitlines()
    # Readers saw the seed alone, then everything: never a part of the import.
    assert counts == {1, 1 + LARGE}
    assert refused is not None and [str(p) for p in refused.problems] == [
        "un autre import est en cours sur cette base ; réessayez quand il sera terminé"]
    during = [s for s in samples if s.at < ended and s.at + s.seconds > began]
    assert sum(1 for s in during if s.request == "POST /internet") >= 5, samples  # the import was well probed
    assert [s for s in samples if s.wrong] == []  # every form, identification and consult page answered, right
    slow = [s for s in during if s.seconds > WAIT_BOUND]
    assert slow == [], slow


def test_an_import_killed_midway_shows_nothing_and_the_next_one_imports_it_all(transactional_db, tmp_path,
                                                                                  small_file):
    process = import_process(small_file, tmp_path)
    deadline = time.monotonic() + 300
    while Invoice.all_objects.count() == 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, process.communicate()  # still importing: the first batches are written
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL

    written = stored()
    assert 0 < written[3] < SMALL  # killed with some batches written…
    assert visible() == (0, 0, 0, 0)  # …which no reader sees
    [batch] = ImportBatch.objects.all()
    assert batch.published_at is None

    rerun = import_process(small_file, tmp_path)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    lines = out.splitlines()
    assert "  factures : 16\u202f000 créé(s), 0 déjà présent(s)" in lines
    deleted = f"{written[3]:,}".replace(",", "\u202f")
    assert f"  (un import interrompu, jamais publié, a été effacé avant : {deleted} facture(s))" in lines
    assert visible() == (4_000, 8_000, 8_000, SMALL)
    assert stored()[:4] == visible()  # nothing of the killed import is left
    killed, done = ImportBatch.objects.order_by("pk")
    assert (killed.published_at, killed.discarded_at is not None) == (None, True)
    assert (done.published_at is not None, done.discarded_at) == (True, None)

    again = import_process(small_file, tmp_path)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert "  factures : 0 créé(s), 16\u202f000 déjà présent(s)" in out.splitlines()
    assert ImportBatch.objects.count() == 2  # importing the same file again changes nothing


def _customers(count: int) -> list[dict]:
    customers = []
    for i in range(count):
        customer = mobile_customer()
        customer["client_number"] = f"3{i:08d}"
        number = f"06 61 00 {i // 100 % 100:02d} {i % 100:02d}"
        customer["lines"][0]["number"] = number
        invoice = customer["bills"][0]["invoices"][0]
        invoice["line"] = number
        invoice["reference"] = f"00{i:014d}"
        customers.append(customer)
    return customers


def test_an_error_at_the_end_leaves_nothing_visible_nor_stored(transactional_db, tmp_path, monkeypatch):
    monkeypatch.setattr(importing, "BATCH_INVOICES", 3)
    customers = _customers(30)
    customers[-1]["bills"][0]["invoices"][0]["reference"] = customers[0]["bills"][0]["invoices"][0]["reference"]
    seen: list[tuple] = []
    flush = importing._Importer.flush

    def observed(importer) -> None:
        flush(importer)
        seen.append((connection.in_atomic_block, visible(), stored()))

    monkeypatch.setattr(importing._Importer, "flush", observed)
    with pytest.raises(BillImportFailed) as failure:
        import_bills(source=write(tmp_path / "bills.json", document(*customers)))

    assert [p.field for p in failure.value.problems] == ["reference"]
    assert "en double dans le fichier" in failure.value.problems[0].message
    # Ten batches written (then the end of the file), each committed on its own (no transaction open after it)…
    assert [(atomic, rows[3]) for atomic, _visible, rows in seen] == [(False, n) for n in (*range(3, 28, 3), 29, 29)]
    assert {v for _atomic, v, _rows in seen} == {(0, 0, 0, 0)}  # …and none of it ever visible
    assert stored() == (0, 0, 0, 0, 0)
    [batch] = ImportBatch.objects.all()  # the attempt, on record
    assert (batch.published_at, batch.discarded_at is not None) == (None, True)


def test_leftovers_of_an_import_that_could_not_clean_up_are_deleted_by_the_next_one(transactional_db, tmp_path,
                                                                                      monkeypatch):
    monkeypatch.setattr(importing, "BATCH_INVOICES", 3)
    customers = _customers(12)
    bad = [*customers, {**customers[0]}]  # the first customer twice: refused, after four batches were written

    def database_gone(batch):
        raise RuntimeError("database gone")

    with monkeypatch.context() as patch:
        patch.setattr(importing, "_discard", database_gone)
        with pytest.raises(BillImportFailed):
            import_bills(source=write(tmp_path / "bad.json", document(*bad)))
    assert stored()[3] == 12
    assert visible() == (0, 0, 0, 0)

    summary = import_bills(source=write(tmp_path / "good.json", document(*customers)))
    assert summary.discarded_invoices == 12
    assert (summary.customers.created, summary.invoices.created) == (12, 12)
    assert visible() == (12, 12, 12, 12)
    assert stored()[:4] == visible()
    failed, done = ImportBatch.objects.order_by("pk")
    assert (failed.published_at, failed.discarded_at is not None) == (None, True)
    assert (done.published_at is not None, done.discarded_at) == (True, None)


@pytest.mark.django_db(transaction=True)
def test_a_batch_discarded_by_another_import_meanwhile_is_never_published(tmp_path, monkeypatch):
    """Had this import lost its lock, another one would take its batch for a leftover and delete it: the publish
    step then refuses, and nothing of the file is ever visible."""
    from django.utils import timezone

    from tests.billing.bills_files import guide_customer

    publish = importing._publish

    def discarded_first(batch):
        ImportBatch.objects.filter(pk=batch.pk).update(discarded_at=timezone.now())
        publish(batch)

    monkeypatch.setattr(importing, "_publish", discarded_first)
    with pytest.raises(BillImportFailed) as failure:
        import_bills(source=write(tmp_path / "bills.json", document(guide_customer())))
    assert [str(p) for p in failure.value.problems] == ["l'import a été interrompu par un autre import ; relancez-le"]
    assert ImportBatch.objects.filter(published_at__isnull=False).count() == 0
    assert Invoice.objects.count() == 0 and Invoice.all_objects.count() == 0
