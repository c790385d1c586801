"""Reads of the switch's tables (called from the asyncio server through threads)."""

import datetime as dt
from collections.abc import Iterator

from django.conf import settings

from tasdid.core import clearing
from tasdid.core import response_codes as rc

from .models import JournalEntry, PendingReversal, Route
from .routing import RouteEntry

# The note of an answer given again to a repeated request (server.REPEAT_NOTE; the server imports this module).
REPEAT_NOTE = "répétition : même réponse"


def routes_active(*, default_host: str | None = None, default_port: int | None = None) -> list[RouteEntry]:
    """The active routes, the default issuer host filled in where a route leaves it empty."""
    host = default_host or settings.ISSUER_HOST
    port = default_port or settings.ISSUER_PORT
    return [RouteEntry(r.bin_prefix, r.bank_name, r.issuer_host or host, r.issuer_port or port)
            for r in Route.objects.filter(active=True)]


def reversals_due(*, now: dt.datetime, limit: int = 100) -> list[PendingReversal]:
    return list(PendingReversal.objects.filter(acknowledged_at__isnull=True, next_attempt_at__lte=now)
                .order_by("next_attempt_at")[:limit])


def reversal_exists(*, host: str, port: int, stan: str, transmitted_at: dt.datetime) -> bool:
    return PendingReversal.objects.filter(issuer_host=host, issuer_port=port, original_stan=stan,
                                          original_transmitted_at=transmitted_at).exists()


def forwarded_original(*, merchant_id: str, mti: str, stan: str, transmitted_at: dt.datetime) -> JournalEntry | None:
    """The switch's own copy of an acquirer's request (the issuer leg: switch STAN and DE7, issuer address, bank),
    found by the acquirer's merchant, type, STAN and DE7 (a DE90); None if it was never forwarded."""
    return (JournalEntry.objects.filter(direction=JournalEntry.Direction.TO_ISSUER, merchant_id=merchant_id, mti=mti,
                                        related_stan=stan, related_transmitted_at=transmitted_at)
            .order_by("-at").first())


def answered_locally(*, merchant_id: str, mti: str, stan: str, transmitted_at: dt.datetime) -> bool:
    """Whether the switch answered that acquirer request itself (no route, issuer down, format error...)."""
    return JournalEntry.objects.filter(direction=JournalEntry.Direction.TO_ACQUIRER, merchant_id=merchant_id,
                                       mti=_response_mti(mti), stan=stan, transmitted_at=transmitted_at).exists()


def _response_mti(mti: str) -> str:
    return mti[:2] + str(int(mti[2]) + 1) + mti[3]


# The answers to the acquirer that move money (or release it), by the kind of the clearing file.
CLEARING_ANSWERS = {"0230": clearing.CAPTURE, "0410": clearing.REVERSAL, "0210": clearing.REFUND}


def clearing_day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def clearing_count(*, day: dt.date) -> int:
    """How many answers the day's clearing reads (the progress bar's total; repeats included)."""
    return _clearing_rows(day).count()


def clearing_details(*, day: dt.date, chunk_size: int = 2000) -> Iterator[clearing.Detail]:
    """The day's approved captures (0230), reversals (0410) and refunds (0210, processing code 20) as the switch
    answered them to the acquirers (UTC day of the answer), by merchant, bank, kind; streamed (a server-side
    cursor on PostgreSQL, chunked reads elsewhere), so memory stays flat whatever the day's volume. An answer
    given again to a repeated request counts once."""
    rows = (_clearing_rows(day)
            .order_by("merchant_id", "bank_name", "mti", "transmitted_at", "stan", "at", "id")
            .values_list("merchant_id", "bank_name", "mti", "stan", "transmitted_at", "original_mti",
                         "original_stan", "original_transmitted_at", "rrn", "order_id", "amount_minor", "currency",
                         "response_code", "at", "processing_code"))
    previous = None
    for (merchant_id, bank, mti, stan, transmitted_at, original_mti, original_stan, original_transmitted_at, rrn,
         order_id, amount, currency, response_code, at, processing_code) in rows.iterator(chunk_size=chunk_size):
        if mti == "0210" and not processing_code.startswith("20"):
            continue  # a purchase, not a refund
        key = (merchant_id, mti, stan, transmitted_at)
        if key == previous:
            continue
        previous = key
        yield clearing.Detail(
            merchant_id=merchant_id, bank=bank, kind=CLEARING_ANSWERS[mti], stan=stan, transmitted_at=transmitted_at,
            original_mti=original_mti, original_stan=original_stan, original_transmitted_at=original_transmitted_at,
            rrn=rrn, order_id=order_id, amount_minor=amount or 0, currency=currency, response_code=response_code,
            answered_at=at)


def _clearing_rows(day: dt.date):
    start, end = clearing_day_bounds(day)
    return JournalEntry.objects.filter(
        direction=JournalEntry.Direction.TO_ACQUIRER, mti__in=tuple(CLEARING_ANSWERS), at__gte=start, at__lt=end,
        response_code=rc.APPROVED, transmitted_at__isnull=False).exclude(note=REPEAT_NOTE)
