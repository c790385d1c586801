"""Reads of the switch's tables (called from the asyncio server through threads)."""

import datetime as dt

from django.conf import settings

from .models import JournalEntry, PendingReversal, Route
from .routing import RouteEntry


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
