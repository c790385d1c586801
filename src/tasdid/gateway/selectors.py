"""Reads of the gateway: merchants, sessions as the hosted page shows them, attempts due for the sweeper, the
operations of each attempt (authorization, capture, void, refunds) and the amounts they leave to capture or to
refund."""

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone

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
    """A merchant's order and its latest card attempt, its operations read along (two queries either way: the
    attempt with its session and its operations, or the session alone); the merchant's own row is set on them,
    read once."""
    attempt = (Attempt.objects.select_related("session").prefetch_related("operations")
               .filter(session__merchant=merchant, session__oid=oid).order_by("-created_at", "-pk").first())
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
    """The order's status as the status query tells it (protocol.ORDER_STATUSES), read from the attempt's
    operation rows: a void recorded is VOIDED, a capture recorded CAPTURED (decided, the gateway retries it until
    the switch accepts it), else the authorization's own state. An attempt without any operation (3-D Secure,
    or recorded before the operations were) says it by its own state."""
    if session is None:
        return "UNKNOWN"
    if attempt is None:
        return _SESSION_STATUS.get(session.state, "PROCESSING")
    if callback_unresolved(attempt):
        return "UNRESOLVED"
    states = {op.kind: op.state for op in sorted(attempt.operations.all(), key=lambda op: (op.created_at, op.pk))
              if op.kind != OperationKind.REFUND}
    if OperationKind.VOID in states:
        return "VOIDED"
    if OperationKind.CAPTURE in states:
        return "CAPTURED"
    if OperationKind.AUTHORIZATION in states:
        return _AUTHORIZATION_STATUS[states[OperationKind.AUTHORIZATION]]
    return _ATTEMPT_STATUS[attempt.state]


_AUTHORIZATION_STATUS = {
    OperationState.PENDING: "PROCESSING", OperationState.APPROVED: "AUTHORIZED", OperationState.REFUSED: "DECLINED",
    OperationState.REVERSING: "VOIDED", OperationState.REVERSED: "VOIDED",
}


def reversals_due(*, now: dt.datetime, limit: int = 100) -> list[int]:
    """Reversals owed to the switch whose next try has come, oldest first."""
    return list(PendingReversal.objects.filter(state=PendingReversal.State.PENDING, next_try_at__lte=now)
                .order_by("next_try_at", "pk").values_list("pk", flat=True)[:limit])


# --- Operations after the payment (refunds) -------------------------------------------------------------------


CENT = Decimal("0.01")


def _sum(operations) -> Decimal:
    total = operations.aggregate(total=Sum("amount"))["total"] or Decimal("0.00")
    return Decimal(total).quantize(CENT)  # SQLite sums a decimal column as a float


def authorized_amount(attempt: Attempt) -> Decimal:
    """The amount the attempt's authorization holds or held: its approved authorization's, else 0."""
    return _sum(Operation.objects.filter(attempt=attempt, kind=OperationKind.AUTHORIZATION,
                                         state=OperationState.APPROVED))


def captured_amount(attempt: Attempt, *, decided: bool = False) -> Decimal:
    """What the attempt's capture took: its capture accepted by the switch; with ``decided``, also one recorded
    and not accepted yet (the gateway sends it until it is: the order status counts it captured)."""
    states = (OperationState.PENDING, OperationState.APPROVED) if decided else (OperationState.APPROVED,)
    if decided:  # the order status: the operations its query read along (``order_of``)
        return sum((op.amount for op in attempt.operations.all()
                    if op.kind == OperationKind.CAPTURE and op.state in states), Decimal("0.00")).quantize(CENT)
    return _sum(Operation.objects.filter(attempt=attempt, kind=OperationKind.CAPTURE, state__in=states))


def capturable_amount(attempt: Attempt) -> Decimal:
    """What the merchant may still capture of the attempt: the whole approved authorization while it stands, no
    capture and no void recorded; 0 after any capture (one capture per authorization: a partial one releases
    the rest) or void."""
    if attempt.state != AttemptState.AUTHORIZED:
        return Decimal("0.00")
    if Operation.objects.filter(attempt=attempt, kind__in=(OperationKind.CAPTURE, OperationKind.VOID)).exists():
        return Decimal("0.00")
    return authorized_amount(attempt)


def refundable_amount(attempt: Attempt) -> Decimal:
    """What is left to refund of an attempt: what its capture took less its refunds done, or sent and not yet
    undone (a refund without an answer may have been credited until its reversal says otherwise). 0 for an
    attempt not captured."""
    captured = captured_amount(attempt)
    if captured <= 0:
        return Decimal("0.00")
    counted = _sum(Operation.objects.filter(attempt=attempt, kind=OperationKind.REFUND, state__in=OPERATION_COUNTED))
    return max(captured - counted, Decimal("0.00"))


def operations_unanswered(*, before: dt.datetime, limit: int = 100) -> list[int]:
    """Refunds sent before ``before`` whose answer was never recorded (the process died, or is still waiting
    past any timeout), oldest first. (An authorization, a capture or a void is taken over with its attempt, at
    the attempt's deadline: ``attempts_due``.)"""
    return list(Operation.objects.filter(kind=OperationKind.REFUND, state=OperationState.PENDING, created_at__lt=before)
                .order_by("created_at", "pk").values_list("pk", flat=True)[:limit])


def operations_reversing(*, limit: int = 100) -> list[Operation]:
    """Refunds whose reversal is owed, with their merchant (to find the reversal)."""
    return list(Operation.objects.filter(kind=OperationKind.REFUND, state=OperationState.REVERSING)
                .select_related("attempt__session__merchant")
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


def captures_on(*, start: dt.datetime, end: dt.datetime):
    """The captures the switch accepted in [start, end) (by the time the gateway recorded it), with their
    attempt and merchant, streamed."""
    return (Operation.objects.filter(kind=OperationKind.CAPTURE, state=OperationState.APPROVED,
                                     decided_at__gte=start, decided_at__lt=end)
            .select_related("attempt__session__merchant").order_by("pk").iterator(chunk_size=2000))


def pending_settlement(attempt: Attempt) -> Operation | None:
    """The capture or the void an attempt CAPTURING or VOIDING waits for: its latest such row still PENDING."""
    kind = OperationKind.CAPTURE if attempt.state == AttemptState.CAPTURING else OperationKind.VOID
    return (Operation.objects.filter(attempt=attempt, kind=kind, state=OperationState.PENDING)
            .order_by("-created_at", "-pk").first())


def capture_of(attempt: Attempt) -> Operation | None:
    """The attempt's capture, if one was recorded."""
    return Operation.objects.filter(attempt=attempt, kind=OperationKind.CAPTURE).first()


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


# --- The back office: a merchant's transactions and its daily settlement report --------------------------------

# The statuses of the daily report, in its order: the attempts by where they rest (a capture or a void decided
# and not yet confirmed by the acquirer counts as done, as the status query says), then the refunds approved.
REPORT_STATUSES = ("captured", "authorized", "voided", "declined", "failed", "processing", "refunded")
REPORT_STATUS_OF_STATE = {
    AttemptState.CAPTURED: "captured", AttemptState.CAPTURING: "captured",
    AttemptState.AUTHORIZED: "authorized",
    AttemptState.VOIDED: "voided", AttemptState.VOIDING: "voided",
    AttemptState.DECLINED: "declined", AttemptState.FAILED: "failed",
    AttemptState.AUTHENTICATING: "processing", AttemptState.CHALLENGE: "processing",
    AttemptState.AUTHORIZING: "processing",
}


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a calendar day in the platform's time zone (settings.TIME_ZONE)."""
    tz = timezone.get_default_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start, end


@dataclass(frozen=True)
class TransactionSearch:
    """What staff look a merchant's transactions up by; empty fields do not filter. The card by its first six and
    last four digits only: the masked card is all the gateway keeps."""

    oid: str = ""
    card_first6: str = ""
    card_last4: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    status: str = ""  # an AttemptState
    amount: Decimal | None = None


def merchant_transactions(merchant: Merchant, search: TransactionSearch = TransactionSearch()):
    """A merchant's card attempts, newest first, with their session, filtered by ``search`` (a queryset, for
    paging). Served by the indexes on (session, created_at), (masked_pan) and (merchant, oid)."""
    rows = Attempt.objects.filter(session__merchant=merchant).select_related("session")
    if search.oid:
        rows = rows.filter(session__oid=search.oid)
    if search.card_first6:
        rows = rows.filter(masked_pan__startswith=search.card_first6)
    if search.card_last4:
        rows = rows.filter(masked_pan__endswith=search.card_last4)
    if search.date_from:
        rows = rows.filter(created_at__gte=day_bounds(search.date_from)[0])
    if search.date_to:
        rows = rows.filter(created_at__lt=day_bounds(search.date_to)[1])
    if search.status:
        rows = rows.filter(state=search.status)
    if search.amount is not None:
        rows = rows.filter(amount=search.amount)
    return rows.order_by("-created_at", "-pk")


def attempt_totals_by_state(merchant: Merchant, *, start: dt.datetime,
                            end: dt.datetime) -> dict[str, tuple[int, Decimal]]:
    """(count, amount) of a merchant's attempts begun in [start, end), by state. The amounts are the attempts'
    own for now; the capture and void operations will carry theirs."""
    rows = (Attempt.objects.filter(session__merchant=merchant, created_at__gte=start, created_at__lt=end)
            .order_by().values("state").annotate(count=Count("pk"), total=Sum("amount")))
    return {row["state"]: (row["count"], _cents(row["total"])) for row in rows}


def _cents(total: Decimal | None) -> Decimal:
    """A sum as the database returns it (SQLite drops the trailing zeros) written with its two decimals."""
    return (total or Decimal("0")).quantize(Decimal("0.01"))


def refunds_approved_for(merchant: Merchant, *, start: dt.datetime, end: dt.datetime):
    """A merchant's refunds approved in [start, end) (by the time the answer was recorded), with their attempt."""
    return (Operation.objects.filter(kind=OperationKind.REFUND, state=OperationState.APPROVED,
                                     attempt__session__merchant=merchant, decided_at__gte=start, decided_at__lt=end)
            .select_related("attempt__session").order_by("decided_at", "pk"))


@dataclass(frozen=True)
class ReportLine:
    status: str  # one of REPORT_STATUSES
    count: int
    total: Decimal


@dataclass(frozen=True)
class DailyReport:
    merchant: Merchant
    day: dt.date
    lines: list[ReportLine]  # every status of REPORT_STATUSES, in its order, zeros included

    def line(self, status: str) -> ReportLine:
        return next(line for line in self.lines if line.status == status)

    @property
    def net(self) -> Decimal:
        """What the day settles to the merchant: captured less refunded."""
        return self.line("captured").total - self.line("refunded").total


def daily_report(merchant: Merchant, day: dt.date) -> DailyReport:
    """A merchant's day: its attempts of the day by where they rest, and the refunds approved that day."""
    start, end = day_bounds(day)
    counts = {status: 0 for status in REPORT_STATUSES}
    totals = {status: Decimal("0.00") for status in REPORT_STATUSES}
    for state, (count, total) in attempt_totals_by_state(merchant, start=start, end=end).items():
        status = REPORT_STATUS_OF_STATE[state]
        counts[status] += count
        totals[status] += total
    refunds = refunds_approved_for(merchant, start=start, end=end).aggregate(count=Count("pk"), total=Sum("amount"))
    counts["refunded"], totals["refunded"] = refunds["count"], _cents(refunds["total"])
    return DailyReport(merchant=merchant, day=day, lines=[ReportLine(s, counts[s], totals[s]) for s in REPORT_STATUSES])


def day_attempts(merchant: Merchant, day: dt.date):
    """A merchant's attempts begun on ``day``, oldest first, streamed."""
    start, end = day_bounds(day)
    return (Attempt.objects.filter(session__merchant=merchant, created_at__gte=start, created_at__lt=end)
            .select_related("session").order_by("created_at", "pk").iterator(chunk_size=2000))

# --- The merchant XML API (tasdid.gateway.api) -----------------------------------------------------------------


def refunds_of(attempt: Attempt) -> list[Operation]:
    """An attempt's refunds, in the order they were asked."""
    return list(Operation.objects.filter(attempt=attempt, kind=OperationKind.REFUND).order_by("created_at", "pk"))


def api_request_answer(record_id: int) -> str | None:
    """The answer stored for a claimed XML API request; None while it is being processed (or was released)."""
    return (ApiRequestRecord.objects.filter(pk=record_id, state=ApiRequestRecord.State.DONE)
            .values_list("answer", flat=True).first())


def session_store_key(session: PaymentSession, now: dt.datetime | None = None) -> str:
    """The store key a session's callbacks and returns are signed with: the one that signed its request while the
    merchant's keys still hold it (the previous key during a rotation's overlap), else the current one."""
    merchant = session.merchant
    if session.request_key_since is not None:
        for since, key in merchant.store_keys_held(now or timezone.now()):
            if since == session.request_key_since:
                return key
    return merchant.store_key
