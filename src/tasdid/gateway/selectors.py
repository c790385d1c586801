"""Reads of the gateway: merchants, sessions as the hosted page shows them, attempts due for the sweeper, refunds
and what is left to refund."""

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, Sum

from . import protocol
from .models import (
    ATTEMPT_TERMINAL,
    OPERATION_COUNTED,
    ApiRequestRecord,
    Attempt,
    AttemptState,
    Merchant,
    Operation,
    OperationKind,
    OperationState,
    PaymentSession,
    PendingReversal,
    SessionState,
)


def browser_digest(browser_key: str) -> str:
    """What a session stores of the random key that binds it to one browser's gateway session."""
    return hashlib.sha256(browser_key.encode()).hexdigest()


def bin_table() -> Mapping[str, Sequence[str]]:
    return settings.GATEWAY_BIN_TABLE


def merchant_active(client_id: str) -> Merchant | None:
    return Merchant.objects.filter(client_id=client_id, active=True).first()


def merchants() -> list[Merchant]:
    return list(Merchant.objects.order_by("client_id"))


def session_for_browser(token: str, browser_key: str | None) -> PaymentSession | None:
    """The session of ``token`` if it belongs to this browser; None otherwise (as if it did not exist)."""
    if not browser_key or not token:
        return None
    session = PaymentSession.objects.select_related("merchant").filter(token=token).first()
    if session is None or session.browser_digest != browser_digest(browser_key):
        return None
    return session


def latest_attempt(session: PaymentSession) -> Attempt | None:
    return session.attempts.select_related("session__merchant").order_by("-created_at", "-pk").first()


def attempt_by_threeds_id(threeds_server_trans_id: str) -> Attempt | None:
    return (Attempt.objects.select_related("session__merchant")
            .filter(threeds_server_trans_id=threeds_server_trans_id[:36]).first())


@dataclass(frozen=True)
class Invoices:
    """The left side of the hosted page."""

    kept: list[protocol.Item]
    deferred: list[protocol.Item]
    total: Decimal
    can_defer: bool  # a trash button on the kept invoices (never on the last one)
    selection: str  # refs kept, comma-separated: what a card submit pays

    @property
    def has_items(self) -> bool:
        return bool(self.kept or self.deferred)


def invoices_of(session: PaymentSession) -> Invoices:
    items = protocol.items_of(session.items)
    kept = protocol.kept_items(items, session.deferred_refs)
    deferred = [i for i in items if i.ref in set(session.deferred_refs)]
    return Invoices(kept=kept, deferred=deferred, total=protocol.payable(session.amount, items, session.deferred_refs),
                    can_defer=session.allow_defer and len(kept) > 1, selection=",".join(i.ref for i in kept))


def sessions_past_expiry(*, now: dt.datetime) -> list[int]:
    return list(PaymentSession.objects.filter(state=SessionState.OPEN, expires_at__lte=now)
                .values_list("pk", flat=True))


def attempts_due(*, now: dt.datetime) -> list[int]:
    """Attempts past their deadline that are not finished: not in a final state, or the merchant not told."""
    return list(Attempt.objects.filter(deadline__lte=now)
                .filter(~Q(state__in=ATTEMPT_TERMINAL) | Q(callback_answer=""))
                .order_by("deadline").values_list("pk", flat=True))


def callback_unresolved(attempt: Attempt) -> bool:
    """Every callback try spent without the merchant's answer: the order status UNRESOLVED, kept apart for
    reconciliation with the merchant, its authorization held until the merchant answers or the hold ends."""
    return (attempt.unresolved_at is not None and attempt.state == AttemptState.AUTHORIZED
            and not attempt.callback_answer)


def order_of(merchant: Merchant, oid: str) -> tuple[PaymentSession | None, Attempt | None]:
    """A merchant's order and its latest card attempt (one query when there is an attempt, two otherwise);
    the merchant's own row is set on them, read once."""
    attempt = (Attempt.objects.select_related("session").filter(session__merchant=merchant, session__oid=oid)
               .order_by("-created_at", "-pk").first())
    session = attempt.session if attempt else PaymentSession.objects.filter(merchant=merchant, oid=oid).first()
    if session is not None:
        session.merchant = merchant
    return session, attempt


_ATTEMPT_STATUS = {
    AttemptState.AUTHENTICATING: "PROCESSING", AttemptState.CHALLENGE: "PROCESSING",
    AttemptState.AUTHORIZING: "PROCESSING", AttemptState.AUTHORIZED: "AUTHORIZED",
    AttemptState.CAPTURING: "CAPTURED", AttemptState.CAPTURED: "CAPTURED",
    AttemptState.VOIDING: "VOIDED", AttemptState.VOIDED: "VOIDED",
    AttemptState.DECLINED: "DECLINED", AttemptState.FAILED: "FAILED",
}
_SESSION_STATUS = {SessionState.OPEN: "OPEN", SessionState.EXPIRED: "EXPIRED", SessionState.CANCELLED: "CANCELLED"}


def order_status(session: PaymentSession | None, attempt: Attempt | None) -> str:
    """The order's status as the status query tells it (protocol.ORDER_STATUSES). A capture decided but not yet
    confirmed by the acquirer is CAPTURED (the gateway retries it until done), a void decided VOIDED."""
    if session is None:
        return "UNKNOWN"
    if attempt is None:
        return _SESSION_STATUS.get(session.state, "PROCESSING")
    if callback_unresolved(attempt):
        return "UNRESOLVED"
    return _ATTEMPT_STATUS[attempt.state]


def reversals_due(*, now: dt.datetime, limit: int = 100) -> list[int]:
    """Reversals owed to the switch whose next try has come, oldest first."""
    return list(PendingReversal.objects.filter(state=PendingReversal.State.PENDING, next_try_at__lte=now)
                .order_by("next_try_at", "pk").values_list("pk", flat=True)[:limit])


# --- Operations after the payment (refunds) -------------------------------------------------------------------


def refundable_amount(attempt: Attempt) -> Decimal:
    """What is left to refund of an attempt: what was captured less its refunds done, or sent and not yet
    undone (a refund without an answer may have been credited until its reversal says otherwise). 0 for an
    attempt not captured."""
    if attempt.state != AttemptState.CAPTURED:
        return Decimal("0.00")
    counted = (Operation.objects.filter(attempt=attempt, kind=OperationKind.REFUND, state__in=OPERATION_COUNTED)
               .aggregate(total=Sum("amount"))["total"] or Decimal("0.00"))
    return max(attempt.amount - counted, Decimal("0.00"))


def operations_unanswered(*, before: dt.datetime, limit: int = 100) -> list[int]:
    """Operations sent before ``before`` whose answer was never recorded (the process died, or is still waiting
    past any timeout), oldest first."""
    return list(Operation.objects.filter(state=OperationState.PENDING, created_at__lt=before)
                .order_by("created_at", "pk").values_list("pk", flat=True)[:limit])


def operations_reversing(*, limit: int = 100) -> list[Operation]:
    """Operations whose reversal is owed, with their merchant (to find the reversal)."""
    return list(Operation.objects.filter(state=OperationState.REVERSING).select_related("attempt__session__merchant")
                .order_by("created_at", "pk")[:limit])


# --- Reconciliation with the switch's clearing file (tasdid.gateway.reconcile) ---------------------------------


def refunds_approved_on(*, start: dt.datetime, end: dt.datetime):
    """The refunds the switch approved in [start, end) (by the time the gateway recorded the answer), with their
    attempt and merchant, streamed."""
    return (Operation.objects.filter(kind=OperationKind.REFUND, state=OperationState.APPROVED, decided_at__gte=start,
                                     decided_at__lt=end)
            .select_related("attempt__session__merchant").order_by("pk").iterator(chunk_size=2000))


def refund_by_message(*, merchant_id: str, stan: str, transmitted_at: dt.datetime) -> Operation | None:
    """The refund sent under ``stan`` at ``transmitted_at`` (DE7, whole seconds) for ``merchant_id``."""
    return (Operation.objects.filter(kind=OperationKind.REFUND, attempt__session__merchant__client_id=merchant_id,
                                     stan=stan, transmitted_at=transmitted_at.replace(microsecond=0))
            .select_related("attempt__session__merchant").first())


def captured_on(*, start: dt.datetime, end: dt.datetime):
    """The attempts captured (settled) in [start, end), with their merchant, streamed."""
    return (Attempt.objects.filter(state=AttemptState.CAPTURED, settled_at__gte=start, settled_at__lt=end)
            .select_related("session__merchant").order_by("pk").iterator(chunk_size=2000))


def attempt_by_authorization(*, merchant_id: str, stan: str, transmitted_at: dt.datetime) -> Attempt | None:
    """The attempt whose authorization went out under ``stan`` at ``transmitted_at`` (DE7: whole seconds)."""
    second = transmitted_at.replace(microsecond=0)
    return (Attempt.objects.filter(session__merchant__client_id=merchant_id, stan=stan, transmitted_at__gte=second,
                                   transmitted_at__lt=second + dt.timedelta(seconds=1))
            .select_related("session__merchant").first())


def reversals_done_on(*, start: dt.datetime, end: dt.datetime):
    """The reversals the switch acknowledged in [start, end), streamed."""
    return (PendingReversal.objects.filter(state=PendingReversal.State.DONE, done_at__gte=start, done_at__lt=end)
            .order_by("pk").iterator(chunk_size=2000))


def reversal_by_original(*, merchant_id: str, original_mti: str, original_stan: str,
                         original_transmitted_at: dt.datetime) -> PendingReversal | None:
    return PendingReversal.objects.filter(merchant_id=merchant_id, original_mti=original_mti,
                                          original_stan=original_stan,
                                          original_transmitted_at=original_transmitted_at).first()


# --- The merchant XML API (tasdid.gateway.api) -----------------------------------------------------------------


def refunds_of(attempt: Attempt) -> list[Operation]:
    """An attempt's refunds, in the order they were asked."""
    return list(Operation.objects.filter(attempt=attempt, kind=OperationKind.REFUND).order_by("created_at", "pk"))


def api_request_answer(record_id: int) -> str | None:
    """The answer stored for a claimed XML API request; None while it is being processed (or was released)."""
    return (ApiRequestRecord.objects.filter(pk=record_id, state=ApiRequestRecord.State.DONE)
            .values_list("answer", flat=True).first())
