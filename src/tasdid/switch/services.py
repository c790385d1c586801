"""Writes of the switch: the journal (in batches), the reversals it owes, the seed routes."""

import datetime as dt
import functools
from collections.abc import Iterable

from django.db import IntegrityError, connections, router, transaction
from django.db.models import F
from django.utils import timezone

from .models import JournalEntry, PendingReversal, Route

# The sandbox banks' BIN prefixes (docs/sandbox-bank.md), routed to the default issuer host.
SANDBOX_ROUTES = (
    ("400011", "Banque Atlas"),  # Visa
    ("606101", "Banque Atlas"),  # CMI, the domestic range
    ("522011", "Crédit du Sahel"),  # MasterCard
)


def journal_append(*, entries: Iterable[dict]) -> int:
    """Write a batch of journal rows (each a dict of JournalEntry fields; the others take their defaults) in one
    short transaction, without building model instances: the journal is written beside the switch's event loop,
    and the ORM's per-row work would hold the interpreter from it. On PostgreSQL the rows go by one ``COPY`` (no
    statement per row, no client-side rendering of each value); elsewhere by one INSERT executed for many rows."""
    fields, names, defaults, times = _journal_columns()
    entries = list(entries)
    unknown = {name for entry in entries for name in entry} - set(names)
    if unknown:
        raise ValueError(f"not journal fields: {', '.join(sorted(unknown))}")
    if not entries:
        return 0
    connection = connections[router.db_for_write(JournalEntry)]
    quote = connection.ops.quote_name
    table = quote(JournalEntry._meta.db_table)
    columns = ", ".join(quote(f.column) for f in fields)
    if connection.vendor == "postgresql":
        # psycopg adapts each value itself (aware datetimes included) in its C loader.
        with (transaction.atomic(using=connection.alias), connection.cursor() as cursor,
              cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy):  # names from the model
            for entry in entries:
                copy.write_row([entry.get(name, defaults[name]) for name in names])
        return len(entries)
    # What get_db_prep_save would do, field by field, without its per-value calls: the times adapted by the
    # backend, the other columns (text and integers) as they are.
    adapt = connection.ops.adapt_datetimefield_value
    rows = [[adapt(value) if name in times and value is not None else value
             for name in names for value in (entry.get(name, defaults[name]),)]
            for entry in entries]
    sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"  # noqa: S608
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.executemany(sql, rows)
    return len(rows)


@functools.cache
def _journal_columns() -> tuple[list, list[str], dict, frozenset[str]]:
    """The journal's columns (all but the key), their attribute names, defaults, and which hold times."""
    fields = [f for f in JournalEntry._meta.concrete_fields if not f.primary_key]
    return (fields, [f.attname for f in fields], {f.attname: f.get_default() for f in fields},
            frozenset(f.attname for f in fields if f.get_internal_type() == "DateTimeField"))


def reversal_open(*, host: str, port: int, bank_name: str, original_mti: str, original_stan: str,
                  original_transmitted_at: dt.datetime, processing_code: str, amount_minor: int, currency: str,
                  merchant_id: str, order_id: str = "", now: dt.datetime | None = None) -> PendingReversal:
    """Record a reversal owed to an issuer, due at once; the same original twice makes one row."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            return PendingReversal.objects.create(
                created_at=now, issuer_host=host, issuer_port=port, bank_name=bank_name, original_mti=original_mti,
                original_stan=original_stan, original_transmitted_at=original_transmitted_at,
                processing_code=processing_code, amount_minor=amount_minor, currency=currency,
                merchant_id=merchant_id, order_id=order_id, next_attempt_at=now)
    except IntegrityError:
        return PendingReversal.objects.get(issuer_host=host, issuer_port=port, original_stan=original_stan,
                                           original_transmitted_at=original_transmitted_at)


def reversal_acknowledge(*, reversal_id: int, response_code: str, now: dt.datetime | None = None) -> bool:
    """The issuer answered the 0400 (any 0410 acknowledges it). False if it was already acknowledged."""
    updated = PendingReversal.objects.filter(id=reversal_id, acknowledged_at__isnull=True).update(
        acknowledged_at=now or timezone.now(), response_code=response_code, last_error="", attempts=F("attempts") + 1)
    return updated == 1


def reversal_retry_later(*, reversal_id: int, delay_seconds: float, error: str,
                         now: dt.datetime | None = None) -> None:
    """Another send failed: count it and try again after ``delay_seconds``."""
    now = now or timezone.now()
    with transaction.atomic():
        reversal = PendingReversal.objects.select_for_update().get(id=reversal_id)
        if reversal.acknowledged_at is not None:
            return
        reversal.attempts += 1
        reversal.next_attempt_at = now + dt.timedelta(seconds=delay_seconds)
        reversal.last_error = error[:200]
        reversal.save(update_fields=["attempts", "next_attempt_at", "last_error"])


def routes_seed() -> int:
    """The sandbox banks' routes, if missing (idempotent); returns how many were added."""
    added = 0
    for prefix, bank in SANDBOX_ROUTES:
        _route, created = Route.objects.get_or_create(bin_prefix=prefix, defaults={"bank_name": bank})
        added += created
    return added
