"""Import customers, lines, bills and invoices from a bills file: all or nothing, idempotent, streamed, while
the site keeps answering.

Records are checked as they stream in (``tasdid.billing.importing.records``) and gathered in batches; each
batch costs one key lookup per table and multi-row INSERTs, in a transaction of its own that lasts a fraction
of a second, so that the portal, the gateway's callbacks and the worker get the database between two batches
(on SQLite a writer holds the whole file). Every row written carries the import's ``ImportBatch``, and readers
see none of them (``billing.models.Published``) until the whole file has been checked and written: then one
short UPDATE publishes the batch. One problem, an error, or the process killed, and the batch is never
published: its rows are deleted, a few thousand per transaction, at once or by the next import.

A record already in the database is left as it is when the file says the same thing, and refused, field by
field, when it says something else: the import never overwrites (a paid invoice least of all).

Duplicates inside the file are found without keeping every key in memory: whatever this import created has an
id above the highest id seen before it started, so meeting such a row again means the file repeats itself.
"""

import datetime as dt
import fcntl
import gc
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from typing import BinaryIO

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from tasdid.billing.importing.errors import BillImportFailed, ImportProblem, Problems, TooManyProblems, Where
from tasdid.billing.importing.reader import BillsFile, FileProblem
from tasdid.billing.importing.records import (
    KIND_INTERNET,
    BillRecord,
    CustomerRecord,
    InvoiceRecord,
    LineRecord,
    check_customer,
    check_header,
)
from tasdid.billing.models import Bill, Customer, ImportBatch, Invoice, InvoiceLine, ServiceLine
from tasdid.core.money import wire

# A batch is one write transaction: the longest any other writer waits for the import. 1,000 invoices take a few
# hundredths of a second on an idle machine (0.35 s at most with five processes per core, bench/import_bench.py
# prints it); larger batches cost the same CPU per invoice and hold the database longer.
BATCH_INVOICES = 1000
BATCH_CUSTOMERS = 500
# Rows of an unpublished batch deleted per transaction.
DISCARD_ROWS = 2000
# The import's pg_advisory_lock key: "tasdid" in ASCII.
PG_LOCK_KEY = 0x746173646964


@dataclass
class Tally:
    created: int = 0
    present: int = 0


@dataclass
class ImportSummary:
    """What an import did: records created and records already present, per kind; its duration; the invoices of
    earlier imports that never finished, deleted before this one began."""

    customers: Tally = field(default_factory=Tally)
    lines: Tally = field(default_factory=Tally)
    bills: Tally = field(default_factory=Tally)
    invoices: Tally = field(default_factory=Tally)
    invoice_lines_created: int = 0
    discarded_invoices: int = 0
    seconds: float = 0.0
    # The longest of the import's write transactions: how long another writer may have waited for it.
    longest_transaction: float = 0.0

    @property
    def invoices_per_second(self) -> float:
        total = self.invoices.created + self.invoices.present
        return total / self.seconds if self.seconds > 0 else 0.0


def import_bills(*, source: str | os.PathLike | BinaryIO,
                 progress: Callable[[int], None] | None = None) -> ImportSummary:
    """Import a bills file (docs/import-format.md): everything, or nothing and BillImportFailed.

    ``source``: a path or a seekable binary stream. ``progress`` is called with the number of bytes read as
    the file is read (for a progress bar). Not atomic as a whole on purpose (short transactions, then one that
    publishes); called inside a transaction, it still imports all or nothing, within that transaction.
    """
    started = time.perf_counter()
    problems = Problems()
    summary = ImportSummary()
    bills_file = BillsFile(source)
    with _one_import_at_a_time():
        summary.discarded_invoices = discard_unpublished()
        importer = _Importer(problems, summary, source)
        try:
            try:
                check_header(bills_file.header(), problems)
                if problems:
                    raise BillImportFailed(problems.items)
                with _few_collections():
                    for index, raw in enumerate(bills_file.customers(progress)):
                        record = check_customer(raw, index, problems)
                        if record is not None:
                            importer.add(record)
                    importer.flush()
            except FileProblem as exc:
                raise BillImportFailed([*problems.items, ImportProblem("", "", str(exc))]) from None
            except TooManyProblems:
                raise BillImportFailed(problems.items, truncated=True) from None
            if problems:
                raise BillImportFailed(problems.items)
            if importer.import_batch is not None:  # an import that created nothing leaves no trace
                _publish(importer.import_batch)
        except BaseException:
            # Nothing of it was ever visible; delete it now rather than leave it to the next import, unless the
            # database itself is what failed (then the next import will).
            if importer.import_batch is not None:
                with suppress(Exception):  # the original error is the one to report
                    _discard(importer.import_batch)
            raise
    summary.seconds = time.perf_counter() - started
    return summary


def discard_unpublished() -> int:
    """Delete every unpublished batch (an import refused, failed or killed): the caller holds the import lock,
    so none of them is running. Returns the number of invoices deleted."""
    return sum(_discard(batch) for batch in ImportBatch.objects.filter(published_at__isnull=True,
                                                                       discarded_at__isnull=True).order_by("pk"))


@contextmanager
def _one_import_at_a_time() -> Iterator[None]:
    """One import at a time, so that the unpublished batches found at the start are abandoned ones. The lock
    belongs to the process (a PostgreSQL session lock, a lock on a file beside the SQLite database): a killed
    import releases it."""
    busy = BillImportFailed([ImportProblem("", "", _("un autre import est en cours sur cette base ; "
                                                     "réessayez quand il sera terminé"))])
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [PG_LOCK_KEY])
            if not cursor.fetchone()[0]:
                raise busy
        try:
            yield
        finally:
            if connection.is_usable():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [PG_LOCK_KEY])
        return
    name = str(connection.settings_dict["NAME"])
    if connection.vendor != "sqlite" or name.startswith("file:") or name == ":memory:":
        yield  # an in-memory database belongs to one process
        return
    descriptor = os.open(f"{name}-import.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        yield
    finally:
        os.close(descriptor)


def _publish(batch: ImportBatch) -> None:
    """Make the whole import visible at once: one row updated, whatever the number of rows imported."""
    with transaction.atomic():
        published = ImportBatch.objects.filter(pk=batch.pk, published_at__isnull=True,
                                               discarded_at__isnull=True).update(published_at=timezone.now())
    if not published:  # another import took it for a leftover (this one lost its lock): never publish a remnant
        raise BillImportFailed([ImportProblem("", "", _("l'import a été interrompu par un autre import ; "
                                                        "relancez-le"))])


def _discard(batch: ImportBatch) -> int:
    """Delete an unpublished batch's rows, children first, DISCARD_ROWS per short transaction, then mark it
    discarded. Interrupted, it leaves a batch still unpublished, with fewer rows: the next import finishes."""
    invoices = 0
    sql = _Sql()
    for model, mark in ((Invoice, batch.invoice_mark), (Bill, batch.bill_mark), (ServiceLine, batch.line_mark),
                        (Customer, batch.customer_mark)):
        while True:
            with transaction.atomic():
                ids = list(model.all_objects.filter(pk__gt=mark, import_batch_id=batch.pk).order_by("pk")
                           .values_list("pk", flat=True)[:DISCARD_ROWS])
                if not ids:
                    break
                if model is Invoice:
                    sql.delete_in(InvoiceLine, "invoice_id", ids)
                    invoices += len(ids)
                sql.delete_in(model, "id", ids)
                mark = ids[-1]
    with transaction.atomic():
        ImportBatch.objects.filter(pk=batch.pk, published_at__isnull=True).update(discarded_at=timezone.now())
    return invoices


class _few_collections:
    """Millions of short-lived dicts would trigger the cyclic garbage collector thousands of times for
    nothing (they hold no cycles); collect less often while importing. Memory stays bounded either way."""

    def __enter__(self):
        self.thresholds = gc.get_threshold()
        gc.set_threshold(50_000, *self.thresholds[1:])

    def __exit__(self, *exc):
        gc.set_threshold(*self.thresholds)


# --- SQL for the hot path -----------------------------------------------------------------------------------


class _Sql:
    """Raw statements on the ORM's connection (same transaction): one per batch and table, not one per row."""

    def __init__(self):
        connection.ensure_connection()
        self.sqlite = connection.vendor == "sqlite"
        limit = 65535
        if self.sqlite:
            limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self.max_params = min(limit, 32766)
        self.mark = "?" if self.sqlite else "%s"
        self.quote = connection.ops.quote_name

    def cursor(self):
        # On SQLite, the driver's own cursor: Django's would rewrite every long statement's "%s" into "?".
        return connection.connection.cursor() if self.sqlite else connection.cursor()

    def select_in(self, model, columns: tuple[str, ...], key: str, keys: Iterable,
                  within: tuple[str, tuple] | None = None) -> list[tuple]:
        """``columns`` (attnames) of the rows whose ``key`` is one of ``keys`` (and ``within[0]`` one of
        ``within[1]``: the leading column of a composite index, so that the index serves the lookup)."""
        keys = list(keys)
        if not keys:
            return []
        meta = model._meta
        column = self.quote(meta.get_field(key).column)
        prefix: list = []
        # Identifiers come from the models' metadata, quoted; values are always parameters.
        head = (f"SELECT {', '.join(self.quote(meta.get_field(c).column) for c in columns)} "  # noqa: S608
                f"FROM {self.quote(meta.db_table)} WHERE ")
        if within is not None:
            prefix = list(within[1])
            head += f"{self.quote(meta.get_field(within[0]).column)} IN ({', '.join([self.mark] * len(prefix))}) AND "
        head += f"{column} IN ("
        rows: list[tuple] = []
        step = self.max_params - len(prefix)
        cursor = self.cursor()
        try:
            for start in range(0, len(keys), step):
                chunk = keys[start:start + step]
                cursor.execute(head + ", ".join([self.mark] * len(chunk)) + ")", prefix + chunk)
                rows.extend(cursor.fetchall())
        finally:
            cursor.close()
        return rows

    def delete_in(self, model, key: str, keys: list) -> None:
        """Delete the rows whose ``key`` is one of ``keys`` (fewer than max_params)."""
        meta = model._meta
        # Identifiers come from the models' metadata, quoted; values are always parameters.
        statement = (f"DELETE FROM {self.quote(meta.db_table)} "  # noqa: S608
                     f"WHERE {self.quote(meta.get_field(key).column)} IN ({', '.join([self.mark] * len(keys))})")
        cursor = self.cursor()
        try:
            cursor.execute(statement, list(keys))
        finally:
            cursor.close()


class _Table:
    """Multi-row INSERTs into one model's table, far cheaper than model instances and bulk_create.

    ``given`` are the attnames the import supplies; every other field gets its model default (the import's
    time for auto_now_add), prepared once by Django for this database, but ``import_batch_id``: ``tag()``'s
    value, asked for at the first insert. ``returning`` columns come back, to map new ids to their natural keys.
    """

    def __init__(self, sql: _Sql, model, given: tuple[str, ...], returning: tuple[str, ...] = (),
                 tag: Callable[[], int] | None = None):
        self.sql = sql
        meta = model._meta
        fields = [f for f in meta.concrete_fields if not f.primary_key]
        rest = [f for f in fields if f.attname not in given]
        now = timezone.now()
        self.constant = tuple(
            f.get_db_prep_save(now if getattr(f, "auto_now_add", False) or getattr(f, "auto_now", False)
                               else f.get_default(), connection)
            for f in rest)
        self.tag = tag
        self.tag_slot = [f.attname for f in rest].index("import_batch_id") if tag is not None else None
        quote = sql.quote
        columns = [meta.get_field(name).column for name in given] + [f.column for f in rest]
        self.values = "(" + ", ".join([sql.mark] * len(columns)) + ")"
        # Identifiers come from the models' metadata, quoted; values are always parameters.
        self.head = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(c) for c in columns)}) VALUES "  # noqa: S608
        self.tail = f" RETURNING {', '.join(quote(meta.get_field(c).column) for c in returning)}"
        self.returning = bool(returning)
        self.rows_per_statement = max(1, min(500, sql.max_params // len(columns)))

    def insert(self, rows: list[tuple]) -> list[tuple]:
        """Insert ``rows`` (values of ``given``, in order); the ``returning`` columns of the new rows."""
        if not rows:
            return []
        if self.tag_slot is not None and self.constant[self.tag_slot] is None:
            constant = list(self.constant)
            constant[self.tag_slot] = self.tag()
            self.constant = tuple(constant)
        constant = self.constant
        cursor = self.sql.cursor()
        try:
            if not self.returning:
                cursor.executemany(self.head + self.values, [row + constant for row in rows])
                return []
            out: list[tuple] = []
            step = self.rows_per_statement
            for start in range(0, len(rows), step):
                chunk = rows[start:start + step]
                cursor.execute(self.head + ", ".join([self.values] * len(chunk)) + self.tail,
                               [value for row in chunk for value in row + constant])
                out.extend(cursor.fetchall())
            return out
        finally:
            cursor.close()


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


# --- comparing with what is already there -------------------------------------------------------------------


def _show(value) -> str:
    if value is None:
        return _("rien")
    if isinstance(value, Decimal):
        return wire(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"« {value} »" if value else "« »"
    return str(value)


def _compare(problems: Problems, where: Where | str, pairs: Iterable[tuple[str, object, object]]) -> bool:
    """Report each (field, in file, in database) that differs; True if any did."""
    differs = False
    for name, in_file, in_db in pairs:
        if in_file != in_db:
            problems.add(where, name, _("%(file)s dans le fichier, %(db)s déjà enregistré (l'import ne modifie "
                                        "jamais un enregistrement existant)") % {
                "file": _show(in_file), "db": _show(in_db)})
            differs = True
    return differs


@dataclass
class _Marks:
    """The highest ids before the import: rows above them were created by this import."""

    customer: int
    line: int
    bill: int
    invoice: int

    @classmethod
    def now(cls) -> "_Marks":
        def top(model) -> int:
            return model.all_objects.aggregate(top=Max("pk"))["top"] or 0

        return cls(customer=top(Customer), line=top(ServiceLine), bill=top(Bill), invoice=top(Invoice))


class _Importer:
    """Writes batches of checked customer records. Each step returns the ids of the records it accepted
    (found identical, or created); a record refused at one step is left out of the next, so nothing of it
    is written. Rows are tagged with the import's batch (invisible until published), created with the first row
    written; the lookups read the tables raw, so they see this import's own rows, and, after
    discard_unpublished, no one else's unpublished ones."""

    def __init__(self, problems: Problems, summary: ImportSummary, source):
        self.problems = problems
        self.summary = summary
        self.marks = _Marks.now()
        self.source = os.fsdecode(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "")
        self.import_batch: ImportBatch | None = None
        self.batch: list[CustomerRecord] = []
        self.batch_invoices = 0
        self.sql = sql = _Sql()
        tag = self._open_batch
        self.customers = _Table(sql, Customer, ("client_number", "name"), ("id", "client_number"), tag)
        self.lines = _Table(sql, ServiceLine, ("customer_id", "kind", "number", "payment_identifier",
                                               "payment_code_digest", "label"), ("id", "number", "payment_identifier"),
                            tag)
        self.bills = _Table(sql, Bill, ("customer_id", "month", "due_date", "total_ht", "total_vat", "total_ttc",
                                        "loyalty_points", "loyalty_balance"), ("id", "customer_id", "month"), tag)
        self.invoices = _Table(sql, Invoice, ("reference", "bill_id", "line_id", "amount_ht", "amount_vat",
                                              "amount_ttc"), ("id", "reference"), tag)
        self.items = _Table(sql, InvoiceLine, ("invoice_id", "position", "section", "label", "period_start",
                                               "period_end", "amount_ht", "free"))

    def _open_batch(self) -> int:
        """The batch of this import, created in the transaction of its first row (so that an import writing
        nothing leaves no batch)."""
        if self.import_batch is None:
            self.import_batch = ImportBatch.objects.create(
                started_at=timezone.now(), source=str(self.source)[-255:], customer_mark=self.marks.customer,
                line_mark=self.marks.line, bill_mark=self.marks.bill, invoice_mark=self.marks.invoice)
        return self.import_batch.pk

    def add(self, record: CustomerRecord) -> None:
        self.batch.append(record)
        self.batch_invoices += record.invoice_count
        if self.batch_invoices >= BATCH_INVOICES or len(self.batch) >= BATCH_CUSTOMERS:
            self.flush()

    def flush(self) -> None:
        batch, self.batch, self.batch_invoices = self.batch, [], 0
        if not batch:
            return
        # One short transaction per batch: other writers wait for one batch at most, never for the import.
        began = time.perf_counter()
        with transaction.atomic():
            customer_ids = self._customers(batch)
            line_ids = self._lines(batch, customer_ids)
            bill_ids = self._bills(batch, customer_ids, line_ids)
            self._invoices(batch, line_ids, bill_ids)
        self.summary.longest_transaction = max(self.summary.longest_transaction, time.perf_counter() - began)

    def _customers(self, batch: list[CustomerRecord]) -> dict[int, tuple[int, bool]]:
        """record index -> (customer id, existed before the import)."""
        existing = {number: (pk, name) for pk, number, name in self.sql.select_in(
            Customer, ("id", "client_number", "name"), "client_number", [r.client_number for r in batch])}
        accepted: dict[int, tuple[int, bool]] = {}
        seen: set[str] = set()
        new: list[CustomerRecord] = []
        for record in batch:
            found = existing.get(record.client_number)
            if record.client_number in seen or (found is not None and found[0] > self.marks.customer):
                self.problems.add(record.where, "client_number", _("client en double dans le fichier"))
                continue
            seen.add(record.client_number)
            if found is None:
                new.append(record)
            elif not _compare(self.problems, record.where, [("name", record.name, found[1])]):
                accepted[record.index] = (found[0], True)
                self.summary.customers.present += 1
        ids = {number: pk for pk, number in self.customers.insert([(r.client_number, r.name) for r in new])}
        for record in new:
            accepted[record.index] = (ids[record.client_number], False)
        self.summary.customers.created += len(new)
        return accepted

    def _lines(self, batch, customer_ids) -> dict[int, dict[str, int]]:
        """record index -> {line key -> line id}, for the customers whose every line is accepted."""
        records = [r for r in batch if r.index in customer_ids]
        columns = ("id", "customer_id", "kind", "number", "payment_identifier", "payment_code_digest", "label")
        existing = {row[3]: row for row in self.sql.select_in(
            ServiceLine, columns, "number", [line.key for r in records for line in r.lines if line.number],
            within=("kind", (ServiceLine.Kind.MOBILE, ServiceLine.Kind.FIXED)))}
        existing.update((row[4], row) for row in self.sql.select_in(
            ServiceLine, columns, "payment_identifier",
            [line.key for r in records for line in r.lines if line.payment_identifier]))
        accepted: dict[int, dict[str, int]] = {}
        seen: set[str] = set()
        new: list[tuple[CustomerRecord, LineRecord]] = []
        for record in records:
            customer_id = customer_ids[record.index][0]
            ok = True
            keys: dict[str, int] = {}
            mine: list[tuple[CustomerRecord, LineRecord]] = []
            for line in record.lines:
                key_field = "payment_identifier" if line.kind == KIND_INTERNET else "number"
                row = existing.get(line.key)
                if line.key in seen or (row is not None and row[0] > self.marks.line):
                    self.problems.add(line.where, key_field, _("ligne en double dans le fichier"))
                    ok = False
                    continue
                seen.add(line.key)
                if row is None:
                    mine.append((record, line))
                elif row[1] != customer_id:
                    owner = Customer.all_objects.filter(pk=row[1]).values_list("client_number", flat=True).first()
                    self.problems.add(line.where, key_field, _("ligne déjà enregistrée pour le client %(client)s")
                                      % {"client": owner})
                    ok = False
                elif self._line_differs(line, row):
                    ok = False
                else:
                    keys[line.key] = row[0]
                    self.summary.lines.present += 1
            if ok:
                accepted[record.index] = keys
                new.extend(mine)
        ids = {number or identifier: pk for pk, number, identifier in self.lines.insert([
            (customer_ids[record.index][0], line.kind, line.number, line.payment_identifier,
             line.payment_code_digest, line.label) for record, line in new])}
        for record, line in new:
            accepted[record.index][line.key] = ids[line.key]
        self.summary.lines.created += len(new)
        return accepted

    def _line_differs(self, line: LineRecord, row: tuple) -> bool:
        _pk, _owner, kind, _number, _identifier, digest, label = row
        differs = _compare(self.problems, line.where, [("kind", line.kind, kind)])
        if digest != line.payment_code_digest:
            self.problems.add(line.where, "payment_code", _("différent du code de paiement déjà enregistré pour "
                                                            "cette ligne (l'import ne le modifie jamais)"))
            differs = True
        return _compare(self.problems, line.where, [("label", line.label, label)]) or differs

    def _bills(self, batch, customer_ids, line_ids) -> dict[tuple[int, int], tuple[int, bool]]:
        """(record index, bill index) -> (bill id, existed before the import)."""
        records = [r for r in batch if r.index in line_ids and r.bills]
        existing: dict[tuple[int, dt.date], tuple] = {}
        known = [customer_ids[r.index][0] for r in records if customer_ids[r.index][1]]
        if known:
            months = {bill.month for r in records if customer_ids[r.index][1] for bill in r.bills}
            for row in Bill.all_objects.filter(customer_id__in=known, month__in=months).values_list(
                    "pk", "customer_id", "month", "due_date", "total_ht", "total_vat", "total_ttc",
                    "loyalty_points", "loyalty_balance"):
                existing[(row[1], row[2])] = row
        accepted: dict[tuple[int, int], tuple[int, bool]] = {}
        new: list[tuple[CustomerRecord, BillRecord]] = []
        for record in records:
            customer_id = customer_ids[record.index][0]
            for bill in record.bills:
                row = existing.get((customer_id, bill.month))
                if row is None:
                    new.append((record, bill))
                elif not _compare(self.problems, bill.where, [
                        ("due_date", bill.due_date, row[3]), ("total_ht", bill.total_ht, row[4]),
                        ("total_vat", bill.total_vat, row[5]), ("total_ttc", bill.total_ttc, row[6]),
                        ("loyalty_points", bill.loyalty_points, row[7]),
                        ("loyalty_balance", bill.loyalty_balance, row[8])]):
                    accepted[(record.index, bill.index)] = (row[0], True)
                    self.summary.bills.present += 1
        ids = {(customer_id, _as_date(month)): pk for pk, customer_id, month in self.bills.insert([
            (customer_ids[record.index][0], bill.month, bill.due_date, bill.total_ht, bill.total_vat,
             bill.total_ttc, bill.loyalty_points, bill.loyalty_balance) for record, bill in new])}
        for record, bill in new:
            accepted[(record.index, bill.index)] = (ids[(customer_ids[record.index][0], bill.month)], False)
        self.summary.bills.created += len(new)
        return accepted

    def _invoices(self, batch, line_ids, bill_ids) -> None:
        todo = [(record, bill, invoice, *bill_ids[(record.index, bill.index)])
                for record in batch for bill in record.bills if (record.index, bill.index) in bill_ids
                for invoice in bill.invoices]
        existing = {row[1]: row for row in self.sql.select_in(
            Invoice, ("id", "reference", "bill_id", "line_id"), "reference", [t[2].reference for t in todo])}
        stored = self._stored_invoices([row[0] for row in existing.values() if row[0] <= self.marks.invoice])
        seen: set[str] = set()
        new: list[InvoiceRecord] = []
        rows: list[tuple] = []
        for record, bill, invoice, bill_id, bill_existed in todo:
            found = existing.get(invoice.reference)
            if invoice.reference in seen or (found is not None and found[0] > self.marks.invoice):
                self.problems.add(invoice.where, "reference", _("référence de facture en double dans le fichier"))
                continue
            seen.add(invoice.reference)
            line_id = line_ids[record.index][invoice.line.key]
            if found is None:
                if bill_existed:
                    self.problems.add(invoice.where, "reference", _(
                        "facture absente de la facture mensuelle %(month)s déjà enregistrée (l'import ne complète "
                        "jamais une facture mensuelle existante)") % {"month": f"{bill.month:%m/%Y}"})
                    continue
                new.append(invoice)
                rows.append((invoice.reference, bill_id, line_id, invoice.amount_ht, invoice.amount_vat,
                             invoice.amount_ttc))
                continue
            pk, _reference, their_bill, their_line = found
            amounts, items, client_number, month = stored[pk]
            if their_bill != bill_id:
                self.problems.add(invoice.where, "reference", _(
                    "référence déjà enregistrée sur une autre facture mensuelle (client %(client)s, %(month)s)") % {
                    "client": client_number, "month": f"{month:%m/%Y}"})
            elif their_line != line_id:
                self.problems.add(invoice.where, "line", _("la facture déjà enregistrée sous cette référence est "
                                                           "celle d'une autre ligne"))
            elif not (_compare(self.problems, invoice.where, zip(
                    ("amount_ht", "amount_vat", "amount_ttc"),
                    (invoice.amount_ht, invoice.amount_vat, invoice.amount_ttc), amounts, strict=True))
                      or self._items_differ(invoice, items)):
                self.summary.invoices.present += 1
        ids = {reference: pk for pk, reference in self.invoices.insert(rows)}
        items = [(ids[invoice.reference], item.position, item.section, item.label, item.period_start,
                  item.period_end, item.amount_ht, item.free)
                 for invoice in new for item in invoice.items]
        self.items.insert(items)
        self.summary.invoices.created += len(new)
        self.summary.invoice_lines_created += len(items)

    @staticmethod
    def _stored_invoices(pks: list[int]) -> dict[int, tuple]:
        """id -> ((HT, VAT, TTC), its lines, client number, month) of invoices already there (typed by the ORM)."""
        if not pks:
            return {}
        stored = {pk: ((ht, vat, ttc), [], client_number, month)
                  for pk, ht, vat, ttc, client_number, month in Invoice.all_objects.filter(pk__in=pks).values_list(
                      "pk", "amount_ht", "amount_vat", "amount_ttc", "bill__customer__client_number", "bill__month")}
        for row in InvoiceLine.objects.filter(invoice_id__in=pks).order_by("invoice_id", "position").values_list(
                "invoice_id", "section", "label", "period_start", "period_end", "amount_ht", "free"):
            stored[row[0]][1].append(row[1:])
        return stored

    def _items_differ(self, invoice: InvoiceRecord, stored: list[tuple]) -> bool:
        if len(stored) != len(invoice.items):
            self.problems.add(invoice.where, "lines", _(
                "%(file)d ligne(s) dans le fichier, %(db)d déjà enregistrée(s) pour cette facture") % {
                "file": len(invoice.items), "db": len(stored)})
            return True
        differs = False
        for item, (section, label, start, end, amount, free) in zip(invoice.items, stored, strict=True):
            differs = _compare(self.problems, Where(invoice.where, "lines", item.position - 1), [
                ("section", item.section, section), ("label", item.label, label),
                ("period_start", item.period_start, start), ("period_end", item.period_end, end),
                ("amount_ht", item.amount_ht, amount), ("free", item.free, free)]) or differs
        return differs
