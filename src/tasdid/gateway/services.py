"""Writes of the gateway: merchants, payment sessions and the state machine of card attempts.

Every public function here is one short transaction: it locks the row it moves (``select_for_update``),
returns at once when the move already happened, and appends an event row per move. Nothing here talks to
another party: the calls to the directory, the acquirer and the merchant happen in ``flow`` between these
transactions, never inside one.
"""

import datetime as dt
import functools
import hmac
import ipaddress
import logging
import re
import secrets
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from tasdid.core import iso8583
from tasdid.core import response_codes as rc
from tasdid.core.acquiring import AuthorizationResult
from tasdid.core.codes import after_failure, is_locked
from tasdid.core.money import to_minor
from tasdid.core.threeds import ATTEMPTED, AUTHENTICATED

from . import protocol, selectors, store_keys
from .models import (
    ATTEMPT_TERMINAL,
    ATTEMPT_TRANSITIONS,
    OPERATION_TRANSITIONS,
    SESSION_TRANSITIONS,
    ApiAddressLock,
    ApiRequestRecord,
    Attempt,
    AttemptState,
    CallbackAnswer,
    Event,
    Merchant,
    MerchantApiUser,
    MerchantMode,
    Operation,
    OperationKind,
    OperationState,
    PaymentSession,
    PendingReversal,
    SessionState,
    StanDay,
)
from .selectors import browser_digest
from .vault import SEAL_SECONDS

logger = logging.getLogger(__name__)
T = TypeVar("T")

# How long the sweeper waits before taking over an attempt in each state (see flow.sweep_attempt).
CHALLENGE_GRACE = dt.timedelta(seconds=SEAL_SECONDS + 60)
AUTHORIZATION_HOLD = dt.timedelta(days=1)  # an authorization the merchant kept without capture, then voided
SETTLE_SAFETY = dt.timedelta(seconds=60)  # a capture/void not confirmed by then is tried again
MAX_SETTLE_BACKOFF = dt.timedelta(minutes=10)
# The callback: CALLBACK_INLINE_TRIES while the customer waits (flow.deliver_callback), then one try by the task
# worker after each of these delays; after the last one unanswered, the attempt is kept for reconciliation
# (its authorization held until AUTHORIZATION_HOLD after it was granted, then, still unanswered, voided).
CALLBACK_INLINE_TRIES = 3
CALLBACK_RETRY_DELAYS = tuple(dt.timedelta(seconds=s) for s in (15, 30, 60, 120, 240, 480, 900))
CALLBACK_MAX_TRIES = CALLBACK_INLINE_TRIES + len(CALLBACK_RETRY_DELAYS)  # 10 tries over about 31 minutes
MERCHANT_ANSWERS = frozenset({CallbackAnswer.POSTAUTH, CallbackAnswer.APPROVED, CallbackAnswer.FAILURE})


def _exchange_grace() -> dt.timedelta:
    """Time for one exchange with another party (its timeout twice, and a margin)."""
    return dt.timedelta(seconds=2 * settings.PARTY_HTTP_TIMEOUT + 30)


class TransitionError(RuntimeError):
    """A move the transition tables do not allow: a bug, never a customer's doing."""


class SessionBusy(Exception):
    """The session is no longer open for a card: paid, failed, expired, or a payment is in progress."""

    def __init__(self, session: PaymentSession):
        super().__init__(session.state)
        self.session = session


class SessionElsewhere(Exception):
    """A merchant's request, correctly signed, for an order whose payment session is open in another browser: a
    replay (or the link passed on) must not take the session away from the customer's browser."""

    def __init__(self, session_id: int):
        super().__init__(session_id)
        self.session_id = session_id


class RotationOutdated(Exception):
    """The store key changed since the rotation's confirmation was shown (the confirmation posted twice, or
    another rotation meanwhile): nothing rotated again."""


class SelectionChanged(Exception):
    """The invoices changed (in another tab) since the page the customer paid from was shown."""


# --- the only two functions that move a state --------------------------------------------------------


def _move_session(session: PaymentSession, to: str, cause: str, *, now: dt.datetime,
                  attempt: Attempt | None = None) -> None:
    if to not in SESSION_TRANSITIONS[session.state]:
        raise TransitionError(f"session {session.pk}: {session.state} -> {to} is not allowed")
    Event.objects.create(subject=Event.Subject.SESSION, session=session, attempt=attempt,
                         from_state=session.state, to_state=to, cause=cause[:255], at=now)
    session.state, session.updated_at = to, now
    session.save(update_fields=["state", "updated_at"])


def _move_attempt(attempt: Attempt, to: str, cause: str, *, now: dt.datetime, **changes) -> None:
    if to not in ATTEMPT_TRANSITIONS[attempt.state]:
        raise TransitionError(f"attempt {attempt.pk}: {attempt.state} -> {to} is not allowed")
    Event.objects.create(subject=Event.Subject.ATTEMPT, session_id=attempt.session_id, attempt=attempt,
                         from_state=attempt.state, to_state=to, cause=cause[:255], at=now)
    _save_attempt(attempt, now=now, state=to, **changes)


def _session_note(session: PaymentSession, cause: str, *, now: dt.datetime) -> None:
    """Record a change of a session that does not move its state (an invoice deferred, a request re-sent)."""
    Event.objects.create(subject=Event.Subject.SESSION, session=session, from_state=session.state,
                         to_state=session.state, cause=cause[:255], at=now)


def _note(attempt: Attempt, cause: str, *, now: dt.datetime, **changes) -> None:
    """Record a message received on an attempt that does not move its state."""
    Event.objects.create(subject=Event.Subject.ATTEMPT, session_id=attempt.session_id, attempt=attempt,
                         from_state=attempt.state, to_state=attempt.state, cause=cause[:255], at=now)
    if changes:
        _save_attempt(attempt, now=now, **changes)


def _save_attempt(attempt: Attempt, *, now: dt.datetime, **changes) -> None:
    """Set the changes on the attempt and save them with ``updated_at``; a new deadline is watched (_watch)."""
    for name, value in changes.items():
        setattr(attempt, name, value)
    attempt.updated_at = now
    fields = ["updated_at", *changes]
    if "deadline" in changes and not _watched_in_time(attempt):
        _watch(attempt)
        fields.append("watch_at")
    attempt.save(update_fields=fields)


def _watched_in_time(attempt: Attempt) -> bool:
    """Whether a pending watch looks at the attempt at or before its deadline: that one sees a later deadline
    when it runs and watches again then (flow.watch_attempt), so a deadline moved later needs no new watch."""
    return attempt.watch_at is not None and attempt.watch_at <= attempt.deadline


def _watch(attempt: Attempt) -> None:
    """Have the task worker look at the attempt at its deadline (a durable row written in this
    transaction): whatever happens to this process, no attempt is left hanging. The caller saves
    ``watch_at``."""
    from .tasks import watch_attempt

    attempt.watch_at = attempt.deadline
    watch_attempt.using(run_after=attempt.deadline).enqueue(attempt_id=attempt.pk,
                                                            at=attempt.deadline.isoformat())


@transaction.atomic
def attempt_watch_begins(*, attempt_id: int, at: str) -> None:
    """A watch task starts: if it is the attempt's pending watch (run at ``at``), none is pending any more, so
    that a deadline moved from now on is watched anew (_save_attempt)."""
    attempt = _lock_attempt(attempt_id)
    if attempt.watch_at is not None and attempt.watch_at == dt.datetime.fromisoformat(at):
        attempt.watch_at = None
        attempt.save(update_fields=["watch_at"])


@transaction.atomic
def attempt_watch_again(*, attempt_id: int, now: dt.datetime | None = None) -> bool:
    """After a watch looked at the attempt: watched again at its deadline if that is still to come, the attempt
    not finished (not final, or the merchant not told: selectors.attempts_due) and no pending watch sees it in
    time. Whether a watch was enqueued."""
    now = now or timezone.now()
    attempt = _lock_attempt(attempt_id)
    finished = attempt.state in ATTEMPT_TERMINAL and attempt.callback_answer
    if finished or attempt.deadline <= now or _watched_in_time(attempt):
        return False
    _watch(attempt)
    attempt.save(update_fields=["watch_at"])
    return True


def _lock_attempt(attempt_id: int) -> Attempt:
    """The attempt's row locked; its session and the session's merchant are read along, not locked (``of``)."""
    return Attempt.objects.select_for_update(of=("self",)).select_related("session__merchant").get(pk=attempt_id)


def with_locked_attempt(service: Callable[..., T]) -> Callable[..., T]:
    """The opening of every service that moves an attempt or records an operation on it: one transaction, the
    attempt's row locked (``_lock_attempt``: two services on one attempt are taken one after the other) and
    handed to ``service`` as its first argument. The decorated service is called with ``attempt_id=``."""

    @functools.wraps(service)
    def locked(*, attempt_id: int, **kwargs) -> T:
        with transaction.atomic():
            return service(_lock_attempt(attempt_id), **kwargs)

    return locked


# --- merchants ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MerchantChange:
    merchant: Merchant
    created: bool


@transaction.atomic
def merchant_register(*, client_id: str, name: str, return_hosts: Sequence[str], store_key: str | None = None,
                      active: bool = True, mode: str | None = None,
                      now: dt.datetime | None = None) -> MerchantChange:
    """Create a merchant or update it (same client id); ValueError says what is wrong. A new store key replaces
    the current one at once (no overlap: ``merchant_rotate_store_key`` keeps the previous one a while); a new
    merchant is in test unless ``mode`` says otherwise, an existing one keeps its mode when ``mode`` is None."""
    client_id = (client_id or "").strip()
    if not client_id or len(client_id) > 32 or not client_id.isprintable() or " " in client_id:
        raise ValueError(_("L'identifiant marchand doit comporter de 1 à 32 caractères, sans espace."))
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValueError(_("Le nom du marchand doit comporter de 1 à 200 caractères."))
    hosts: list[str] = []
    for entry in return_hosts:
        try:
            host = protocol.normalize_host(entry)
        except ValueError:
            raise ValueError(_("« %(host)s » n'est pas un hôte de retour valide (hôte ou hôte:port, par exemple "
                               "127.0.0.1:8000).") % {"host": entry}) from None
        if host not in hosts:
            hosts.append(host)
    if not hosts:
        raise ValueError(_("Indiquez au moins un hôte de retour autorisé."))
    if store_key is not None and not 8 <= len(store_key) <= 128:
        raise ValueError(_("La clé du magasin doit comporter de 8 à 128 caractères."))
    if mode is not None and mode not in MerchantMode.values:
        raise ValueError(_("Le mode du marchand doit être « test » ou « production »."))
    now = now or timezone.now()
    merchant = Merchant.objects.select_for_update().filter(client_id=client_id).first()
    if merchant is None:
        if store_key is None:
            raise ValueError(_("Indiquez la clé du magasin (--store-key) pour un nouveau marchand."))
        merchant = Merchant(client_id=client_id, name=name, return_hosts=hosts, active=active,
                            mode=mode or MerchantMode.TEST, store_key_changed_at=now)
        merchant.store_key = store_key
        merchant.save()
        return MerchantChange(merchant, created=True)
    merchant.name, merchant.return_hosts, merchant.active = name, hosts, active
    fields = ["name", "return_hosts", "active", "updated_at"]
    if mode is not None:
        merchant.mode = mode
        fields.append("mode")
    if store_key is not None:
        merchant.store_key = store_key
        merchant.previous_store_key_sealed, merchant.previous_store_key_until = "", None
        merchant.store_key_changed_at = now
        fields += ["store_key_sealed", "previous_store_key_sealed", "previous_store_key_until", "store_key_changed_at"]
    merchant.save(update_fields=fields)
    return MerchantChange(merchant, created=False)


# How long a rotated store key stays accepted by default, and at most.
STORE_KEY_OVERLAP = dt.timedelta(days=7)
MAX_STORE_KEY_OVERLAP = dt.timedelta(days=90)


@dataclass(frozen=True)
class StoreKeyRotation:
    merchant: Merchant
    new_key: str = field(repr=False)  # shown once to the staff member who rotated it, never again
    previous_until: dt.datetime


def rotation_confirmation(merchant: Merchant) -> str:
    """What a rotation's confirmation carries: the state of the merchant's key it was shown for."""
    return merchant.store_key_changed_at.isoformat() if merchant.store_key_changed_at else ""


@transaction.atomic
@sensitive_variables("new_key")
def merchant_rotate_store_key(*, merchant_id: int, overlap: dt.timedelta = STORE_KEY_OVERLAP,
                              now: dt.datetime | None = None, confirmation: str | None = None) -> StoreKeyRotation:
    """Give a merchant a new random store key: the gateway signs with it from now on, and accepts the merchant's
    requests signed with the previous one until ``now + overlap`` (the time for the merchant to install the new
    key). A key still in its overlap is dropped at once by a second rotation. ValueError for an overlap beyond
    MAX_STORE_KEY_OVERLAP. With ``confirmation`` (rotation_confirmation when it was shown): RotationOutdated when
    the key changed since, so that a confirmation rotates once however often it is posted."""
    if not dt.timedelta(0) <= overlap <= MAX_STORE_KEY_OVERLAP:
        raise ValueError(_("La période de recouvrement doit être comprise entre 0 et %(days)s jours.")
                         % {"days": MAX_STORE_KEY_OVERLAP.days})
    now = now or timezone.now()
    merchant = Merchant.objects.select_for_update().get(pk=merchant_id)
    if confirmation is not None and not hmac.compare_digest(rotation_confirmation(merchant), confirmation):
        raise RotationOutdated
    new_key = secrets.token_urlsafe(24)  # 32 characters of [A-Za-z0-9_-]: nothing to escape in ver3
    merchant.previous_store_key_sealed = merchant.store_key_sealed
    merchant.previous_store_key_changed_at = merchant.store_key_changed_at
    merchant.previous_store_key_until = now + overlap
    merchant.store_key = new_key
    merchant.store_key_changed_at = now
    merchant.save(update_fields=["store_key_sealed", "previous_store_key_sealed", "previous_store_key_until",
                                 "previous_store_key_changed_at", "store_key_changed_at", "updated_at"])
    logger.info("gateway: store key of merchant %s rotated, previous key accepted until %s", merchant.client_id,
                merchant.previous_store_key_until.isoformat())
    return StoreKeyRotation(merchant=merchant, new_key=new_key, previous_until=merchant.previous_store_key_until)


def store_keys_reseal(*, now: dt.datetime | None = None) -> tuple[int, int]:
    """Seal every merchant's store keys again under the first encryption key (after a new one was put first in
    TASDID_GATEWAY_STORE_KEY_KEYS), one merchant per transaction; a previous key past its date is dropped.
    Returns (merchants re-sealed, merchants already under the first key). StoreKeyError when a row is sealed
    under none of the configured keys (nothing of that row is changed)."""
    now = now or timezone.now()
    resealed = unchanged = 0
    for pk in Merchant.objects.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            merchant = Merchant.objects.select_for_update().get(pk=pk)
            expired = merchant.previous_store_key_sealed and not (
                merchant.previous_store_key_until and now < merchant.previous_store_key_until)
            if expired:
                merchant.previous_store_key_sealed, merchant.previous_store_key_until = "", None
            sealed = [merchant.store_key_sealed, merchant.previous_store_key_sealed]
            if not expired and all(not s or store_keys.sealed_under_first(s) for s in sealed):
                unchanged += 1
                continue
            merchant.store_key_sealed = store_keys.reseal(merchant.store_key_sealed)
            merchant.previous_store_key_sealed = store_keys.reseal(merchant.previous_store_key_sealed)
            merchant.save(update_fields=["store_key_sealed", "previous_store_key_sealed", "previous_store_key_until"])
            resealed += 1
    return resealed, unchanged


# --- payment sessions --------------------------------------------------------------------------------

# Fields that may differ when a merchant posts the same order again (a new random, a new hash, the language the
# customer now reads the merchant's site in: the session then speaks it).
_REPOST_IGNORED = frozenset({"rnd", "hash", "lang"})


def _same_request(a: dict[str, str], b: dict[str, str]) -> bool:
    norm = lambda fields: {k.lower(): v for k, v in fields.items() if k.lower() not in _REPOST_IGNORED}  # noqa: E731
    return norm(a) == norm(b)


@transaction.atomic
def session_open(*, merchant: Merchant, request: protocol.MerchantRequest, browser_key: str,
                 now: dt.datetime | None = None, key_since: dt.datetime | None = None) -> PaymentSession:
    """Start the payment of a merchant's order, or continue it when the same order is posted again.

    An order already paid, failed or expired comes back as it is (not open: nothing starts); one still
    open with other fields is refused (RequestError), from another browser than the one it is open in too
    (SessionElsewhere: the session stays with the browser that opened it, docs/gateway.md). ``key_since`` names
    the store key that signed the request (Merchant.store_keys_held), the one its callbacks and returns use."""
    now = now or timezone.now()
    for _try in range(2):
        existing = PaymentSession.objects.select_for_update().filter(merchant=merchant, oid=request.oid).first()
        if existing is not None:
            _expire_if_due(existing, now)
            if existing.state != SessionState.OPEN:
                return existing
            if not _same_request(existing.request_fields, request.fields):
                raise protocol.RequestError(_("Cette commande est déjà en cours de paiement avec d'autres données."))
            if not hmac.compare_digest(existing.browser_digest, browser_digest(browser_key)):
                raise SessionElsewhere(existing.pk)
            existing.updated_at, existing.lang, existing.request_key_since = now, request.lang, key_since
            existing.save(update_fields=["updated_at", "lang", "request_key_since"])
            _session_note(existing, "commande envoyée à nouveau par le marchand : session reprise", now=now)
            return existing
        try:
            with transaction.atomic():
                session = PaymentSession.objects.create(
                    token=secrets.token_urlsafe(32), merchant=merchant, oid=request.oid,
                    request_fields=request.fields, amount=request.amount, currency="504",
                    items=[{"ref": i.ref, "label": i.label, "amount": str(i.amount)} for i in request.items],
                    allow_defer=request.allow_defer, deferred_refs=[], lang=request.lang, request_key_since=key_since,
                    browser_digest=browser_digest(browser_key), state=SessionState.OPEN, created_at=now,
                    expires_at=now + dt.timedelta(seconds=request.session_seconds), updated_at=now,
                )
        except IntegrityError:
            continue  # the same order posted at the same instant: continue the one that won
        Event.objects.create(subject=Event.Subject.SESSION, session=session, from_state="",
                             to_state=SessionState.OPEN, cause=f"demande du marchand {merchant.client_id}", at=now)
        return session
    raise protocol.RequestError(_("Cette commande est déjà en cours de paiement."))  # pragma: no cover


def _expire_if_due(session: PaymentSession, now: dt.datetime) -> None:
    """An open session whose time is over moves to EXPIRED; the caller holds its row lock."""
    if session.state == SessionState.OPEN and session.expires_at <= now:
        _move_session(session, SessionState.EXPIRED, "délai de la session dépassé", now=now)


def _lock_open_session(session_id: int, now: dt.datetime) -> PaymentSession:
    # Only the session's row is locked (``of``): locking its merchant's too would make every submit of every
    # customer of that merchant wait on the others.
    session = PaymentSession.objects.select_for_update(of=("self",)).select_related("merchant").get(pk=session_id)
    _expire_if_due(session, now)
    return session


@transaction.atomic
def session_expire(*, session_id: int, now: dt.datetime | None = None) -> PaymentSession:
    """Close an open session whose time is over (idempotent; an unexpired one is left as it is)."""
    return _lock_open_session(session_id, now or timezone.now())


@transaction.atomic
def session_cancel(*, session_id: int, now: dt.datetime | None = None) -> PaymentSession:
    """« Annuler » on the payment page: the session ends cancelled, nothing paid. SessionBusy when it is not
    open any more (a card being paid, paid, failed, expired or cancelled already)."""
    now = now or timezone.now()
    session = _lock_open_session(session_id, now)
    if session.state != SessionState.OPEN:
        raise SessionBusy(session)
    _move_session(session, SessionState.CANCELLED, "paiement annulé par le client", now=now)
    return session


@transaction.atomic
def session_note(*, session_id: int, cause: str, now: dt.datetime | None = None) -> PaymentSession:
    """Record something that happened to a session without moving it (a callback's answer after it ended)."""
    now = now or timezone.now()
    session = PaymentSession.objects.select_for_update().get(pk=session_id)
    _session_note(session, cause, now=now)
    return session


def session_set_lang(*, session_id: int, lang: str) -> None:
    """The customer switched the hosted page's language: the session's later pages and its 3-D Secure challenge
    speak it. Nothing else moves (not even ``updated_at``, which dates a closed session's result)."""
    if lang not in protocol.LANGS:
        raise ValueError(f"not a language of the payment page: {lang!r}")
    PaymentSession.objects.filter(pk=session_id).update(lang=lang)


@transaction.atomic
def session_defer(*, session_id: int, ref: str, now: dt.datetime | None = None) -> PaymentSession:
    """Defer one invoice to later; the last invoice kept cannot be deferred (protocol.DeferError)."""
    now = now or timezone.now()
    session = _lock_open_session(session_id, now)
    if session.state != SessionState.OPEN:
        raise SessionBusy(session)
    deferred = protocol.defer(protocol.items_of(session.items), session.deferred_refs, ref,
                              allowed=session.allow_defer)
    if deferred != session.deferred_refs:
        session.deferred_refs, session.updated_at = deferred, now
        session.save(update_fields=["deferred_refs", "updated_at"])
        _session_note(session, f"facture {ref} reportée", now=now)
    return session


@transaction.atomic
def session_restore(*, session_id: int, ref: str, now: dt.datetime | None = None) -> PaymentSession:
    """Pay a deferred invoice after all."""
    now = now or timezone.now()
    session = _lock_open_session(session_id, now)
    if session.state != SessionState.OPEN:
        raise SessionBusy(session)
    restored = protocol.restore(protocol.items_of(session.items), session.deferred_refs, ref)
    if restored != session.deferred_refs:
        session.deferred_refs, session.updated_at = restored, now
        session.save(update_fields=["deferred_refs", "updated_at"])
        _session_note(session, f"facture {ref} rétablie", now=now)
    return session


def paid_refs_of(session: PaymentSession) -> list[str]:
    return [i.ref for i in protocol.kept_items(protocol.items_of(session.items), session.deferred_refs)]


_CARD_LENGTH_DIGITS = re.compile(r"[0-9]{13}")


def _new_trans_id(now: dt.datetime) -> str:
    """The gateway's TransId: the day (``%y%j``) and 12 random hex digits. The day alone reads as a MasterCard
    BIN (``26342…``: 2221-2720), so an id whose random part begins with eight digits or more is a run of 13 or
    more digits, a Luhn-valid card number one time in ten, which card-data scanners (ours, an operator's DLP)
    flag: such a draw is made again."""
    while True:
        trans_id = f"{now:%y%j}" + secrets.token_hex(6).upper()
        if not _CARD_LENGTH_DIGITS.search(trans_id):
            return trans_id


# --- attempts ----------------------------------------------------------------------------------------


@transaction.atomic
def attempt_start(*, session_id: int, brand: str, masked_pan: str, pan_fingerprint: str,
                  selection: str | None = None, now: dt.datetime | None = None) -> Attempt:
    """A card was submitted: the session moves to "processing" and a new attempt begins, committed before
    anyone is called. A second submit finds the session busy (SessionBusy): one order, one authorization."""
    now = now or timezone.now()
    session = _lock_open_session(session_id, now)
    if session.state != SessionState.OPEN:
        raise SessionBusy(session)
    paid = paid_refs_of(session)
    if selection is not None and session.items and selection != ",".join(paid):
        raise SelectionChanged
    amount = protocol.payable(session.amount, protocol.items_of(session.items), session.deferred_refs)
    attempt = Attempt.objects.create(
        session=session, state=AttemptState.AUTHENTICATING, amount=amount, paid_refs=paid,
        deferred_refs=list(session.deferred_refs), brand=brand, masked_pan=masked_pan,
        pan_fingerprint=pan_fingerprint, threeds_server_trans_id=str(uuid.uuid4()), trans_id=_new_trans_id(now),
        deadline=now + _exchange_grace(), watch_at=now + _exchange_grace(), created_at=now, updated_at=now,
    )
    Event.objects.create(subject=Event.Subject.ATTEMPT, session=session, attempt=attempt, from_state="",
                         to_state=AttemptState.AUTHENTICATING,
                         cause=f"carte {masked_pan} soumise pour {protocol.wire(amount)} DH", at=now)
    _move_session(session, SessionState.PROCESSING, f"tentative {attempt.trans_id} en cours", now=now,
                  attempt=attempt)
    _watch(attempt)  # watch_at saved with the row
    return attempt


@with_locked_attempt
def attempt_challenge(attempt: Attempt, *, ds_trans_id: str, acs_trans_id: str,
                      now: dt.datetime | None = None) -> Attempt | None:
    """The directory asks for a challenge: the customer goes to the bank's page. None if already moved."""
    now = now or timezone.now()
    if attempt.state != AttemptState.AUTHENTICATING:
        return None
    _move_attempt(attempt, AttemptState.CHALLENGE, "3-D Secure : code demandé par la banque (ARes C)", now=now,
                  ds_trans_id=ds_trans_id[:36], acs_trans_id=acs_trans_id[:36], deadline=now + CHALLENGE_GRACE)
    return attempt


@dataclass(frozen=True)
class RReqOutcome:
    attempt: Attempt | None
    recorded: bool


@transaction.atomic
def attempt_record_rreq(*, rreq: dict, now: dt.datetime | None = None) -> RReqOutcome:
    """The ACS's result of a challenge (the authoritative one). Recorded once, while the challenge is on;
    a re-sent RReq, or one for an attempt that moved on, changes nothing."""
    now = now or timezone.now()
    attempt = (Attempt.objects.select_for_update()
               .filter(threeds_server_trans_id=str(rreq.get("threeDSServerTransID", ""))[:36]).first())
    if attempt is None:
        return RReqOutcome(None, recorded=False)
    if attempt.rreq_received_at is not None or attempt.state != AttemptState.CHALLENGE:
        return RReqOutcome(attempt, recorded=False)
    if str(rreq.get("acsTransID", "")) != attempt.acs_trans_id:
        return RReqOutcome(None, recorded=False)
    status = str(rreq.get("transStatus", ""))[:1]
    cavv = str(rreq.get("authenticationValue", ""))[:64] if status in (AUTHENTICATED, ATTEMPTED) else ""
    _note(attempt, f"RReq reçu : transStatus={status}", now=now, rreq_received_at=now,
          rreq_trans_status=status, rreq_eci=str(rreq.get("eci", ""))[:2], rreq_authentication_value=cavv,
          rreq_trans_status_reason=str(rreq.get("transStatusReason", ""))[:2])
    return RReqOutcome(attempt, recorded=True)


@transaction.atomic
def next_stan(*, now: dt.datetime | None = None) -> str:
    """The next system trace audit number of the day (UTC), 000001-999999."""
    now = now or timezone.now()
    day = now.astimezone(dt.UTC).date()
    row, _created = StanDay.objects.select_for_update().get_or_create(day=day)
    row.last = row.last % 999_999 + 1
    row.save(update_fields=["last"])
    return f"{row.last:06d}"


@with_locked_attempt
def attempt_begin_authorization(attempt: Attempt, *, from_state: str, trans_status: str, eci: str,
                                md_status: str, stan: str, ds_trans_id: str | None = None,
                                now: dt.datetime | None = None) -> Attempt | None:
    """Committed before the acquirer is called: only the caller that moves the attempt here authorizes.
    None when the attempt already left ``from_state`` (a replayed CRes, a second tab, the sweeper)."""
    now = now or timezone.now()
    if attempt.state != from_state:
        return None
    extra = {"ds_trans_id": ds_trans_id[:36]} if ds_trans_id else {}
    _move_attempt(attempt, AttemptState.AUTHORIZING, f"demande d'autorisation (STAN {stan})", now=now,
                  trans_status=trans_status, eci=eci, md_status=md_status, stan=stan, transmitted_at=now,
                  deadline=now + _exchange_grace(), **extra)
    _open_operation(attempt, OperationKind.AUTHORIZATION, attempt.amount, requested_by="", now=now, stan=stan,
                    cause=f"demande d'autorisation de {attempt.amount} DH (STAN {stan})")
    return attempt


@with_locked_attempt
def attempt_record_authorization(attempt: Attempt, *, result: AuthorizationResult,
                                 now: dt.datetime | None = None) -> Attempt:
    now = now or timezone.now()
    code = (result.response_code or "")[:2]
    if attempt.state != AttemptState.AUTHORIZING:
        # Too late: the sweeper already reversed it (the attempt is VOIDING or VOIDED). Keep the references the
        # void needs; an approval whose reversal was already acknowledged, maybe before the bank had the
        # authorization, is voided again, with its RRN this time, or its hold would stay.
        cause = f"réponse d'autorisation tardive {code}"
        if result.approved and attempt.state == AttemptState.VOIDED:
            logger.warning("gateway: approval of %s after its reversal: voiding again with its RRN", attempt.trans_id)
            _move_attempt(attempt, AttemptState.VOIDING, cause + " après l'annulation : nouvelle annulation", now=now,
                          auth_code=result.auth_code[:6], rrn=result.rrn[:12], settled_at=None, deadline=now)
            _open_operation(attempt, OperationKind.VOID, attempt.amount, requested_by="passerelle", now=now,
                            cause="autorisation accordée après son annulation : nouvelle annulation avec son RRN")
        else:
            _note(attempt, cause, now=now, auth_code=result.auth_code[:6], rrn=result.rrn[:12])
        authorization = _operation_of(attempt, OperationKind.AUTHORIZATION)
        if authorization is not None:
            _operation_note(authorization, cause, now=now)
        return attempt
    common = {"response_code": code, "auth_code": result.auth_code[:6], "rrn": result.rrn[:12],
              "deadline": now + _exchange_grace()}
    if result.approved:
        cause = f"autorisation accordée ({result.auth_code})"
        _move_attempt(attempt, AttemptState.AUTHORIZED, cause, now=now,
                      proc_return_code=rc.APPROVED, err_msg="", authorized_at=now, **common)
    else:
        cause = f"autorisation refusée (code {code})"
        _move_attempt(attempt, AttemptState.DECLINED, cause, now=now,
                      proc_return_code=code or protocol.ERROR_CODE, err_msg=protocol.err_msg_for(code), **common)
    authorization = _operation_of(attempt, OperationKind.AUTHORIZATION)
    if authorization is not None and authorization.state == OperationState.PENDING:
        _move_operation(authorization, OperationState.APPROVED if result.approved else OperationState.REFUSED, cause,
                        now=now, response_code=code, rrn=result.rrn[:12], decided_at=now)
    return attempt


@with_locked_attempt
def attempt_authorization_lost(attempt: Attempt, *, cause: str, now: dt.datetime | None = None) -> Attempt:
    """The acquirer did not answer: whatever the bank decided is reversed."""
    now = now or timezone.now()
    if attempt.state != AttemptState.AUTHORIZING:
        return attempt
    code = rc.ISSUER_UNAVAILABLE
    _move_attempt(attempt, AttemptState.VOIDING, cause, now=now, response_code=code, proc_return_code=code,
                  err_msg=protocol.err_msg_for(code), deadline=now)
    authorization = _operation_of(attempt, OperationKind.AUTHORIZATION)
    if authorization is not None and authorization.state == OperationState.PENDING:
        _move_operation(authorization, OperationState.REVERSING, cause, now=now)
    _open_operation(attempt, OperationKind.VOID, attempt.amount, requested_by="passerelle", now=now, cause=cause)
    return attempt


@with_locked_attempt
def attempt_fail(attempt: Attempt, *, cause: str, err_msg: str, md_status: str,
                 proc_return_code: str = protocol.ERROR_CODE, eci: str | None = None,
                 trans_status: str | None = None, now: dt.datetime | None = None) -> Attempt | None:
    """End an attempt before any authorization (3-D Secure failed, directory unreachable, abandoned).
    None if it already moved past authentication."""
    now = now or timezone.now()
    if attempt.state not in (AttemptState.AUTHENTICATING, AttemptState.CHALLENGE):
        return None
    extra = {}
    if eci is not None:
        extra["eci"] = eci
    if trans_status is not None:
        extra["trans_status"] = trans_status
    _move_attempt(attempt, AttemptState.FAILED, cause, now=now, md_status=md_status,
                  proc_return_code=proc_return_code, err_msg=err_msg[:255], deadline=now + _exchange_grace(),
                  **extra)
    return attempt


def callback_retry_delay(tries: int) -> dt.timedelta:
    """When the task worker tries the callback again after ``tries`` tries without a usable answer."""
    return CALLBACK_RETRY_DELAYS[min(max(tries - CALLBACK_INLINE_TRIES, 0), len(CALLBACK_RETRY_DELAYS) - 1)]


def callback_pending(attempt: Attempt) -> bool:
    """An authorization whose callback was sent (or begun) without a usable answer yet: it stands while the
    callback is tried again, or while it waits for reconciliation (the merchant may have recorded the payment)."""
    return attempt.state == AttemptState.AUTHORIZED and not attempt.callback_answer and (
        attempt.callback_tries > 0 or attempt.callback_tries_begun > 0)


callback_unresolved = selectors.callback_unresolved


def callback_in_flight(attempt: Attempt, *, now: dt.datetime) -> bool:
    """A try begun but not recorded yet, recently enough that its sender may still be waiting for the answer."""
    return (attempt.callback_tries_begun > attempt.callback_tries and attempt.callback_last_begun_at is not None
            and attempt.callback_last_begun_at + _exchange_grace() > now)


@with_locked_attempt
def attempt_begin_callback(attempt: Attempt, *, now: dt.datetime | None = None) -> Attempt | None:
    """Committed before each send of the callback: the try's number and time. Whatever happens to this process
    after it, the try counts as possibly delivered, and the sweeper takes the attempt over once the exchange
    could no longer be under way. None when the merchant's answer is already recorded (nothing to send)."""
    now = now or timezone.now()
    if attempt.callback_answer:
        return None
    begun = max(attempt.callback_tries_begun, attempt.callback_tries) + 1
    changes = {"callback_tries_begun": begun, "callback_last_begun_at": now}
    if attempt.deadline < now + _exchange_grace():
        changes["deadline"] = now + _exchange_grace()
    _save_attempt(attempt, now=now, **changes)
    return attempt


@with_locked_attempt
def attempt_record_callback(attempt: Attempt, *, answer: str, schedule_retry: bool = True,
                            now: dt.datetime | None = None) -> Attempt:
    """One try of the callback and what came of it; the first answer wins.

    The merchant's answer (POSTAUTH, APPROVED, FAILURE) decides the settlement and the session's end, even on
    an attempt kept for reconciliation. The decision reads the tries begun (``attempt_begin_callback``), not
    the tries recorded: a try begun and never recorded (the process died) may have been delivered.
    NOT_DELIVERED when this try is the only one ever begun (nothing can have reached the merchant, which
    cannot have recorded anything): as UNREACHABLE, the authorization is voided. AMBIGUOUS, or NOT_DELIVERED
    after any other try: the authorization stands, the try is counted and, with ``schedule_retry``, the task
    worker tries again after callback_retry_delay; once CALLBACK_MAX_TRIES tries are begun without an answer,
    the attempt is kept apart for reconciliation (``unresolved_at``, ERROR logged once), its authorization held
    until AUTHORIZATION_HOLD after it was granted (``attempt_hold_expired``). An attempt not authorized waits
    on no answer: a try without one is recorded as UNREACHABLE at once."""
    now = now or timezone.now()
    if attempt.callback_answer:
        return attempt
    tries = attempt.callback_tries + 1
    begun = max(attempt.callback_tries_begun, tries)
    if answer not in MERCHANT_ANSWERS:
        only_try = answer == protocol.NOT_DELIVERED and begun == 1
        if attempt.state == AttemptState.AUTHORIZED and not only_try:
            _callback_unanswered(attempt, answer, tries=tries, begun=begun, schedule_retry=schedule_retry, now=now)
            return attempt
        answer = CallbackAnswer.UNREACHABLE
    return _settle_on_answer(attempt, answer, tries=tries, now=now)


def _callback_unanswered(attempt: Attempt, answer: str, *, tries: int, begun: int, schedule_retry: bool,
                         now: dt.datetime) -> None:
    """A try without a usable answer on an authorization that stands: counted, tried again later, or, the
    tries spent, kept apart for reconciliation. The caller holds the attempt's lock."""
    changes: dict = {"callback_tries": tries, "callback_tries_begun": begun}
    if attempt.unresolved_at is not None:
        _note(attempt, f"rappel n° {begun} (à rapprocher) sans réponse claire du marchand ({answer})", now=now,
              **changes)
        return
    if begun < CALLBACK_MAX_TRIES:
        logger.warning("gateway: callback of %s without a usable answer (%s, try %s of %s)",
                       attempt.trans_id, answer, begun, CALLBACK_MAX_TRIES)
        cause = f"rappel n° {begun} sans réponse claire du marchand ({answer})"
        if schedule_retry:
            delay = callback_retry_delay(begun)
            changes["deadline"] = now + delay
            cause += f" : nouvel essai dans {int(delay.total_seconds())} s"
        _note(attempt, cause, now=now, **changes)
        return
    attempt.unresolved_at = now
    hold_ends = unresolved_hold_end(attempt)
    logger.error("gateway: callback of %s unanswered after %s tries: kept for reconciliation with merchant %s, "
                 "which may have recorded order %s as paid; the authorization is held until %s", attempt.trans_id,
                 begun, attempt.session.merchant.client_id, attempt.session.oid, hold_ends.isoformat())
    _note(attempt, f"rappel n° {begun} sans réponse claire du marchand ({answer}) : essais épuisés, à rapprocher "
                   f"avec le marchand ; autorisation conservée jusqu'au {hold_ends:%Y-%m-%d %H:%M} UTC", now=now,
          unresolved_at=now, deadline=hold_ends, **changes)


def unresolved_hold_end(attempt: Attempt) -> dt.datetime:
    """When an attempt kept for reconciliation stops being held: AUTHORIZATION_HOLD after its authorization, as
    an authorization the merchant kept (and never before the sweeper can make a last try)."""
    return max((attempt.authorized_at or attempt.unresolved_at) + AUTHORIZATION_HOLD,
               attempt.unresolved_at + SETTLE_SAFETY)


def _settle_on_answer(attempt: Attempt, answer: str, *, tries: int, now: dt.datetime, cause: str = "") -> Attempt:
    """Record the callback's answer and move the attempt and its session as it says. The caller holds the
    attempt's lock."""
    # The answer ends the session too: its row is locked here, after the attempt's (``_lock_attempt`` only read
    # it along, unlocked), and this fresh copy is the one that moves.
    session = PaymentSession.objects.select_for_update().get(pk=attempt.session_id)
    # The answer is saved with the move it decides (one UPDATE of the attempt's row).
    answered = {"callback_answer": answer, "callback_at": now, "callback_tries": tries,
                "callback_tries_begun": max(attempt.callback_tries_begun, tries)}
    if not cause:
        cause = f"réponse du marchand : {answer}" + (" (rapprochée)" if attempt.unresolved_at is not None else "")
    succeeded = False
    if attempt.state == AttemptState.AUTHORIZED:
        capture = answer == CallbackAnswer.POSTAUTH or (answer == CallbackAnswer.APPROVED
                                                        and protocol.tran_type(session.request_fields) == "Auth")
        if capture:
            _move_attempt(attempt, AttemptState.CAPTURING, cause, now=now, deadline=now + SETTLE_SAFETY, **answered)
            _open_operation(attempt, OperationKind.CAPTURE, attempt.amount, now=now, cause=cause,
                            requested_by=f"marchand ({answer})")
            succeeded = True
        elif answer == CallbackAnswer.APPROVED:
            _note(attempt, cause + " : autorisation conservée sans remise", now=now,
                  deadline=now + AUTHORIZATION_HOLD, **answered)
            succeeded = True
        else:
            _move_attempt(attempt, AttemptState.VOIDING, cause, now=now, proc_return_code=protocol.ERROR_CODE,
                          err_msg=protocol.errmsg("Le commerçant n'a pas validé le paiement : il a été annulé et "
                                            "votre carte n'est pas débitée"), deadline=now + SETTLE_SAFETY,
                          **answered)
            _open_operation(attempt, OperationKind.VOID, attempt.amount, requested_by="passerelle", now=now,
                            cause=cause)
    else:
        for name, value in answered.items():
            setattr(attempt, name, value)
        attempt.save(update_fields=list(answered))
        _note(attempt, cause, now=now)
    if session.state == SessionState.PROCESSING:
        _move_session(session, SessionState.SUCCEEDED if succeeded else SessionState.FAILED,
                      f"tentative {attempt.trans_id} : {attempt.get_state_display()}", now=now, attempt=attempt)
    return attempt


@with_locked_attempt
def attempt_hold_expired(attempt: Attempt, *, now: dt.datetime | None = None) -> Attempt:
    """An authorization kept without capture past its hold is reversed (every approval ends settled): one the
    merchant kept (APPROVED), or one kept for reconciliation that no answer settled within the hold (the
    caller tried the callback a last time first). That void is logged at ERROR: a merchant that recorded the
    payment must reopen it (its reconciliation reads VOIDED in the order status)."""
    now = now or timezone.now()
    if attempt.state != AttemptState.AUTHORIZED:
        return attempt
    if attempt.callback_answer and attempt.deadline <= now:
        cause = "autorisation non remise dans le délai : annulation"
        _move_attempt(attempt, AttemptState.VOIDING, cause, now=now, deadline=now + SETTLE_SAFETY)
        _open_operation(attempt, OperationKind.VOID, attempt.amount, requested_by="passerelle", now=now, cause=cause)
    elif callback_unresolved(attempt) and unresolved_hold_end(attempt) <= now:
        logger.error("gateway: %s still unanswered at the end of its hold: the authorization is voided; merchant "
                     "%s must reopen order %s if it recorded it as paid", attempt.trans_id,
                     attempt.session.merchant.client_id, attempt.session.oid)
        _settle_on_answer(attempt, CallbackAnswer.UNREACHABLE, tries=attempt.callback_tries, now=now,
                          cause="fin de la réservation sans réponse du marchand : annulation, à rapprocher")
    return attempt


@with_locked_attempt
def attempt_record_settlement(attempt: Attempt, *, accepted: bool, detail: str, response_code: str = "",
                              now: dt.datetime | None = None) -> Attempt:
    """The acquirer's answer to the attempt's capture or void (its PENDING operation row, sent by flow.settle);
    a refusal or a fault is tried again later. A void accepted ends the reversal of an authorization whose
    answer never came too."""
    now = now or timezone.now()
    if attempt.state not in (AttemptState.CAPTURING, AttemptState.VOIDING):
        return attempt
    capturing = attempt.state == AttemptState.CAPTURING
    operation = _pending_settlement(attempt)
    if accepted:
        to = AttemptState.CAPTURED if capturing else AttemptState.VOIDED
        _move_attempt(attempt, to, detail, now=now, settled_at=now, settle_tries=attempt.settle_tries + 1)
        if operation is not None:
            _move_operation(operation, OperationState.APPROVED, detail, now=now, response_code=response_code[:2],
                            decided_at=now)
        if not capturing:
            authorization = _operation_of(attempt, OperationKind.AUTHORIZATION)
            if authorization is not None and authorization.state == OperationState.REVERSING:
                _move_operation(authorization, OperationState.REVERSED, detail, now=now, decided_at=now)
        return attempt
    tries = attempt.settle_tries + 1
    backoff = min(dt.timedelta(seconds=5 * 2 ** min(tries, 10)), MAX_SETTLE_BACKOFF)
    logger.warning("gateway: %s of %s not accepted (%s), try %s again in %s", attempt.state, attempt.trans_id,
                   detail, tries, backoff)
    cause = f"{detail} : nouvel essai dans {int(backoff.total_seconds())} s"
    _note(attempt, cause, now=now, settle_tries=tries, deadline=now + backoff)
    if operation is not None:
        _operation_note(operation, cause, now=now, response_code=response_code[:2])
    return attempt


# --- Reversals owed to the switch (tasdid.gateway.rails) ---------------------------------------------------------

REVERSAL_FIRST_DELAY = 1.0  # seconds before the second try; doubling up to REVERSAL_MAX_DELAY
REVERSAL_MAX_DELAY = 300.0


def reversal_open(*, merchant_id: str, original_mti: str, original_stan: str, original_transmitted_at: dt.datetime,
                  processing_code: str, amount_minor: int, currency: str, order_id: str = "", rrn: str = "",
                  auth_code: str = "", now: dt.datetime | None = None) -> PendingReversal:
    """The reversal owed for an original message, recorded once (the row already there is returned as it is).
    Due at once. Committed on return: it outlives the process."""
    now = now or timezone.now()
    original_transmitted_at = original_transmitted_at.replace(microsecond=0)  # DE7 carries whole seconds
    key = {"merchant_id": merchant_id, "original_mti": original_mti, "original_stan": original_stan,
           "original_transmitted_at": original_transmitted_at}
    try:
        with transaction.atomic():
            row, created = PendingReversal.objects.get_or_create(**key, defaults={
                "processing_code": processing_code, "amount_minor": amount_minor, "currency": currency,
                "order_id": order_id[:64], "rrn": rrn[:12], "auth_code": auth_code[:6], "next_try_at": now,
                "created_at": now})
    except IntegrityError:  # another process recorded it at the same moment
        return PendingReversal.objects.get(**key)
    if created:
        logger.warning("gateway: reversal of %s STAN %s (merchant %s) recorded", original_mti, original_stan,
                       merchant_id)
    return row


def reversal_claim(*, reversal_id: int, hold_seconds: float, now: dt.datetime | None = None) -> bool:
    """Take a due reversal for one send: its next try moves ``hold_seconds`` on, so that no other process sends it
    meanwhile. False when it is done or not due (another process has it)."""
    now = now or timezone.now()
    return PendingReversal.objects.filter(
        pk=reversal_id, state=PendingReversal.State.PENDING, next_try_at__lte=now,
    ).update(next_try_at=now + dt.timedelta(seconds=hold_seconds)) == 1


@transaction.atomic
def reversal_retry_later(*, reversal_id: int, error: str, now: dt.datetime | None = None) -> PendingReversal:
    """A send without a final answer: once more after a doubling delay."""
    now = now or timezone.now()
    row = PendingReversal.objects.select_for_update().get(pk=reversal_id)
    if row.state != PendingReversal.State.PENDING:
        return row
    row.tries += 1
    delay = min(REVERSAL_FIRST_DELAY * 2 ** (row.tries - 1), REVERSAL_MAX_DELAY)
    row.next_try_at = now + dt.timedelta(seconds=delay)
    row.last_error = error[:200]
    row.save(update_fields=["tries", "next_try_at", "last_error"])
    return row


@transaction.atomic
def reversal_done(*, reversal_id: int, response_code: str, now: dt.datetime | None = None) -> PendingReversal:
    """The switch's 0410 came with a final answer: the reversal is over."""
    now = now or timezone.now()
    row = PendingReversal.objects.select_for_update().get(pk=reversal_id)
    if row.state == PendingReversal.State.DONE:
        return row
    row.tries += 1
    row.state = PendingReversal.State.DONE
    row.response_code = response_code[:2]
    row.done_at = now
    row.last_error = ""
    row.save(update_fields=["tries", "state", "response_code", "done_at", "last_error"])
    return row


# --- Operations: authorization, capture, void, refund (flow sends them) ------------------------------------------

# A refund still PENDING this long after it was recorded never got its answer recorded (the process died between
# the send and the answer, or is stuck): the sweeper reverses it (flow.sweep_operations). Longer than any wait for
# an answer (rails: RAILS_TIMEOUT, plus its connection wait).
def operation_answer_grace() -> dt.timedelta:
    return dt.timedelta(seconds=2 * settings.RAILS_TIMEOUT + 60)


class OperationRefused(Exception):
    """An operation the gateway refuses before anything is recorded or sent. ``code`` is stable (for the
    merchant API and the tests): ``invalid_amount``, ``not_authorized``, ``awaiting_callback``,
    ``already_captured``, ``voided``, ``amount_above_capturable``, ``not_captured``, ``amount_above_refundable``;
    the message says it in the staff's language."""

    def __init__(self, code: str, message: str, *, capturable: Decimal | None = None,
                 refundable: Decimal | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.capturable = capturable
        self.refundable = refundable


class RefundRefused(OperationRefused):
    """A refund the gateway refuses before anything is sent: the payment is not captured, or the amount is not a
    positive amount in centimes within what is left to refund (``refundable``)."""


@dataclass(frozen=True)
class Opened:
    """An operation recorded by a merchant's request, or the same one found already recorded (``created``
    False: a request repeated, or asked twice at once)."""

    operation: Operation
    created: bool


def _move_operation(operation: Operation, to: str, cause: str, *, now: dt.datetime, **changes) -> None:
    """The one function that moves an operation's state: checked against OPERATION_TRANSITIONS, one event row."""
    if to not in OPERATION_TRANSITIONS[operation.state]:
        raise TransitionError(f"operation {operation.pk}: {operation.state} -> {to} is not allowed")
    Event.objects.create(subject=Event.Subject.OPERATION, session_id=operation.attempt.session_id,
                         attempt_id=operation.attempt_id, operation=operation, from_state=operation.state,
                         to_state=to, cause=cause[:255], at=now)
    for name, value in {"state": to, **changes}.items():
        setattr(operation, name, value)
    operation.updated_at = now
    operation.save(update_fields=["state", "updated_at", *changes])


def _operation_note(operation: Operation, cause: str, *, now: dt.datetime, **changes) -> None:
    """Record something that happened to an operation without moving its state (a try refused, a late answer)."""
    Event.objects.create(subject=Event.Subject.OPERATION, session_id=operation.attempt.session_id,
                         attempt_id=operation.attempt_id, operation=operation, from_state=operation.state,
                         to_state=operation.state, cause=cause[:255], at=now)
    for name, value in changes.items():
        setattr(operation, name, value)
    operation.updated_at = now
    operation.save(update_fields=["updated_at", *changes])


def _open_operation(attempt: Attempt, kind: str, amount: Decimal, *, requested_by: str, now: dt.datetime,
                    cause: str, stan: str = "") -> Operation:
    """Record a new PENDING operation of the attempt (the caller holds the attempt's lock), with its first event.
    A capture or a void takes its STAN and DE7 before each send (``operation_begin_send``); an authorization
    or a refund has its own already."""
    operation = Operation.objects.create(
        attempt=attempt, kind=kind, state=OperationState.PENDING, amount=amount, currency=attempt.session.currency,
        stan=stan, transmitted_at=now.replace(microsecond=0), requested_by=requested_by[:150], created_at=now,
        updated_at=now)
    operation.attempt = attempt
    Event.objects.create(subject=Event.Subject.OPERATION, session_id=attempt.session_id, attempt=attempt,
                         operation=operation, from_state="", to_state=OperationState.PENDING, cause=cause[:255],
                         at=now)
    return operation


def _operation_of(attempt: Attempt, kind: str) -> Operation | None:
    """The attempt's latest operation of ``kind``, locked (the caller holds the attempt's lock)."""
    operation = (Operation.objects.select_for_update(of=("self",)).filter(attempt=attempt, kind=kind)
                 .order_by("-created_at", "-pk").first())
    if operation is not None:
        operation.attempt = attempt
    return operation


def _pending_settlement(attempt: Attempt) -> Operation | None:
    """The capture or the void the attempt waits for (CAPTURING or VOIDING), locked."""
    kind = OperationKind.CAPTURE if attempt.state == AttemptState.CAPTURING else OperationKind.VOID
    operation = _operation_of(attempt, kind)
    return operation if operation is not None and operation.state == OperationState.PENDING else None


def _lock_operation(operation_id: int) -> Operation:
    return Operation.objects.select_for_update(of=("self",)).select_related("attempt").get(pk=operation_id)


def _checked_amount(amount) -> Decimal | None:
    """A positive amount in whole centimes, or None."""
    try:
        amount = Decimal(amount)
        valid = amount.is_finite() and amount > 0 and amount == amount.quantize(Decimal("0.01"))
    except (InvalidOperation, TypeError, ValueError):
        valid = False
    return amount if valid else None


def _refuse(code: str, message: str, **amounts) -> OperationRefused:
    logger.info("gateway: operation refused (%s): %s", code, message)
    return OperationRefused(code, message, **amounts)


class ApiClaimLost(Exception):
    """The XML API request's claim is no longer its holder's (taken over by a repeat after the holder seemed dead,
    api_request_take_over): the holder records nothing, its transaction rolled back."""


def _api_request_link(record: ApiRequestRecord | None, operation: Operation) -> Operation:
    """Link the claim of the XML API request that asked for ``operation`` to it, in the transaction that records it
    (before anything is sent); only while the claim is still the holder's (in flight, claimed when the holder
    claimed it), else ApiClaimLost and the transaction rolls back."""
    if record is not None and not _api_claim_held(record).update(operation=operation):
        raise ApiClaimLost(f"API request {record.pk}: its claim was taken over")
    return operation


def _api_claim_held(record: ApiRequestRecord):
    return ApiRequestRecord.objects.filter(pk=record.pk, state=ApiRequestRecord.State.IN_FLIGHT,
                                           created_at=record.created_at)


@with_locked_attempt
def capture_open(attempt: Attempt, *, amount: Decimal | None, requested_by: str,
                 api_request: ApiRequestRecord | None = None, now: dt.datetime | None = None) -> Opened:
    """Record the capture a merchant asks of an authorization it kept (its callback answered APPROVED), before
    anything is sent: the whole authorized amount (``amount`` None) or part of it. One capture per authorization,
    as CMI's PostAuth: a partial capture releases the rest (the issuer frees it), nothing more can be captured
    after it. The same capture asked again, for the same amount (or twice at once: the attempt's lock takes them
    one after the other), finds the first one (``created`` False), sent once. OperationRefused otherwise, nothing
    recorded. ``api_request``: the XML API request's claim, linked to the operation in the same transaction
    (ApiClaimLost, nothing recorded, when that claim is no longer its holder's)."""
    now = now or timezone.now()
    capturable = selectors.capturable_amount(attempt)
    existing = _operation_of(attempt, OperationKind.CAPTURE)
    if existing is not None:
        wanted = selectors.authorized_amount(attempt) if amount is None else _checked_amount(amount)
        if wanted == existing.amount:
            return Opened(_api_request_link(api_request, existing), created=False)
        raise _refuse("already_captured", _("Le paiement %(trans_id)s a déjà été remis (%(amount)s DH) : le reste "
                                            "de l'autorisation est libéré.")
                      % {"trans_id": attempt.trans_id, "amount": existing.amount}, capturable=capturable)
    if attempt.state in (AttemptState.VOIDING, AttemptState.VOIDED):
        raise _refuse("voided", _("L'autorisation du paiement %(trans_id)s est annulée : rien à remettre.")
                      % {"trans_id": attempt.trans_id}, capturable=capturable)
    if attempt.state != AttemptState.AUTHORIZED or selectors.authorized_amount(attempt) <= 0:
        raise _refuse("not_authorized", _("Le paiement %(trans_id)s n'a pas d'autorisation en cours : rien à "
                                          "remettre.") % {"trans_id": attempt.trans_id}, capturable=capturable)
    if attempt.callback_answer != CallbackAnswer.APPROVED:
        raise _refuse("awaiting_callback", _("Le marchand n'a pas encore répondu au rappel du paiement "
                                             "%(trans_id)s : la remise attend sa réponse.")
                      % {"trans_id": attempt.trans_id}, capturable=capturable)
    checked = capturable if amount is None else _checked_amount(amount)
    if checked is None:
        raise _refuse("invalid_amount", _("Montant invalide : %(amount)s (un montant positif, en centimes "
                                          "entiers).") % {"amount": str(amount)[:40]}, capturable=capturable)
    if checked > capturable:
        raise _refuse("amount_above_capturable", _("Remise de %(amount)s DH refusée : l'autorisation est de "
                                                   "%(capturable)s DH.")
                      % {"amount": checked, "capturable": capturable}, capturable=capturable)
    partial = " partielle (le reste est libéré)" if checked < capturable else ""
    cause = f"remise{partial} de {checked} DH demandée par {requested_by or '?'}"
    _move_attempt(attempt, AttemptState.CAPTURING, cause, now=now, deadline=now + SETTLE_SAFETY)
    return Opened(_api_request_link(api_request, _open_operation(
        attempt, OperationKind.CAPTURE, checked, requested_by=requested_by, now=now, cause=cause)), created=True)


@with_locked_attempt
def void_open(attempt: Attempt, *, requested_by: str, api_request: ApiRequestRecord | None = None,
              now: dt.datetime | None = None) -> Opened:
    """Record the void a merchant asks of an authorization it kept and did not capture, before anything is sent.
    Asked again (or twice at once), the void already recorded is found (``created`` False). A void after a
    capture is refused (``already_captured``: a refund gives the money back), as any void of an attempt without
    an authorization standing; OperationRefused, nothing recorded. ``api_request``: as for capture_open."""
    now = now or timezone.now()
    if attempt.state in (AttemptState.VOIDING, AttemptState.VOIDED):
        existing = _operation_of(attempt, OperationKind.VOID)
        if existing is not None:
            return Opened(_api_request_link(api_request, existing), created=False)
    if attempt.state in (AttemptState.CAPTURING, AttemptState.CAPTURED) \
            or _operation_of(attempt, OperationKind.CAPTURE) is not None:
        raise _refuse("already_captured", _("Le paiement %(trans_id)s est remis : il ne peut plus être annulé, "
                                            "seulement remboursé.") % {"trans_id": attempt.trans_id})
    if attempt.state != AttemptState.AUTHORIZED or selectors.authorized_amount(attempt) <= 0:
        raise _refuse("not_authorized", _("Le paiement %(trans_id)s n'a pas d'autorisation en cours : rien à "
                                          "annuler.") % {"trans_id": attempt.trans_id})
    if attempt.callback_answer != CallbackAnswer.APPROVED:
        raise _refuse("awaiting_callback", _("Le marchand n'a pas encore répondu au rappel du paiement "
                                             "%(trans_id)s : l'annulation attend sa réponse.")
                      % {"trans_id": attempt.trans_id})
    cause = f"annulation de l'autorisation demandée par {requested_by or '?'}"
    _move_attempt(attempt, AttemptState.VOIDING, cause, now=now, deadline=now + SETTLE_SAFETY)
    return Opened(_api_request_link(api_request, _open_operation(
        attempt, OperationKind.VOID, attempt.amount, requested_by=requested_by, now=now, cause=cause)), created=True)


@transaction.atomic
def operation_begin_send(*, operation_id: int, now: dt.datetime | None = None) -> Operation | None:
    """A capture's or a void's STAN and DE7 for its next send, committed before it leaves (a new pair for each
    send: the switch answers a repeat of the same message with its first answer, which may be a fault). None
    when the operation is no longer PENDING."""
    now = now or timezone.now()
    operation = _lock_operation(operation_id)
    if operation.state != OperationState.PENDING:
        return None
    operation.stan = next_stan(now=now)
    operation.transmitted_at = now.replace(microsecond=0)
    operation.tries += 1
    operation.updated_at = now
    operation.save(update_fields=["stan", "transmitted_at", "tries", "updated_at"])
    return operation


@with_locked_attempt
def refund_open(attempt: Attempt, *, amount: Decimal, requested_by: str, expected_left: Decimal | None = None,
                api_request: ApiRequestRecord | None = None, now: dt.datetime | None = None) -> Operation:
    """Record a refund of a captured attempt, before anything is sent: the attempt locked (two refunds at once
    are taken one after the other), the amount checked against what is left to refund (captured less the
    refunds done or pending), the refund's own STAN and DE7 taken. Committed on return, PENDING: whatever
    happens to the process next, the sweeper finds it (flow.sweep_operations). RefundRefused otherwise, and
    nothing is recorded; ``expected_left``: what staff saw left to refund when they confirmed (refused if it
    changed). ``api_request``: as for capture_open."""
    now = now or timezone.now()
    left = selectors.refundable_amount(attempt)
    checked = _checked_amount(amount)
    if selectors.captured_amount(attempt) <= 0 or not attempt.rrn or attempt.transmitted_at is None:
        raise RefundRefused("not_captured", _("Le paiement %(trans_id)s n'est pas remis : rien à rembourser.")
                            % {"trans_id": attempt.trans_id}, refundable=left)
    if checked is None:
        raise RefundRefused("invalid_amount", _("Montant invalide : %(amount)s (un montant positif, en centimes "
                                                "entiers).") % {"amount": str(amount)[:40]}, refundable=left)
    if expected_left is not None and expected_left != left:  # a confirmation posted twice, or another refund since
        raise RefundRefused("changed", _("Le reste à rembourser sur %(trans_id)s n'est plus %(expected)s DH mais "
                                         "%(left)s DH (un remboursement a eu lieu depuis la confirmation) : rien "
                                         "n'est envoyé, vérifiez ses opérations.")
                            % {"trans_id": attempt.trans_id, "expected": expected_left, "left": left}, refundable=left)
    if checked > left:
        raise RefundRefused("amount_above_refundable", _("Remboursement de %(amount)s DH refusé : il reste "
                                                         "%(left)s DH à rembourser sur %(trans_id)s.")
                            % {"amount": checked, "left": left, "trans_id": attempt.trans_id}, refundable=left)
    return _api_request_link(api_request, _open_operation(
        attempt, OperationKind.REFUND, checked, requested_by=requested_by, now=now, stan=next_stan(now=now),
        cause=f"remboursement de {checked} DH demandé par {requested_by or '?'}"))


@transaction.atomic
def operation_record_answer(*, operation_id: int, response_code: str, rrn: str = "",
                            now: dt.datetime | None = None) -> Operation:
    """The switch's answer to an operation: approved (00) or refused (any other DE39). An answer for an operation
    that moved on (the sweeper reversed it meanwhile) changes nothing: its reversal takes it back."""
    now = now or timezone.now()
    operation = _lock_operation(operation_id)
    code = (response_code or "")[:2]
    if operation.state != OperationState.PENDING:
        _operation_note(operation, f"réponse tardive {code} ignorée", now=now)
        return operation
    to = OperationState.APPROVED if rc.is_approved(code) else OperationState.REFUSED
    _move_operation(operation, to, f"réponse {code} ({rc.lookup(code).meaning})", now=now, response_code=code,
                    rrn=(rrn or "")[:12], decided_at=now)
    return operation


@transaction.atomic
def operation_reverse(*, operation_id: int, cause: str, now: dt.datetime | None = None) -> Operation:
    """An operation whose answer never came: its reversal (0400) is owed to the switch (``PendingReversal``, sent
    by rails.sweep_reversals), and the operation waits for it (REVERSING)."""
    now = now or timezone.now()
    operation = _lock_operation(operation_id)
    if operation.state != OperationState.PENDING:
        return operation
    attempt = Attempt.objects.select_related("session__merchant").get(pk=operation.attempt_id)
    reversal_open(merchant_id=attempt.session.merchant.client_id, original_mti="0200", original_stan=operation.stan,
                  original_transmitted_at=operation.transmitted_at, processing_code=iso8583.REFUND,
                  amount_minor=to_minor(operation.amount), currency=operation.currency, order_id=attempt.session.oid,
                  rrn=attempt.rrn, now=now)
    _move_operation(operation, OperationState.REVERSING, cause, now=now)
    return operation


@transaction.atomic
def operation_reversed(*, operation_id: int, response_code: str, now: dt.datetime | None = None) -> Operation:
    """The switch acknowledged the operation's reversal: nothing of it stands."""
    now = now or timezone.now()
    operation = _lock_operation(operation_id)
    if operation.state != OperationState.REVERSING:
        return operation
    _move_operation(operation, OperationState.REVERSED, f"annulation acquittée ({response_code})", now=now,
                    decided_at=now)
    return operation


# --- The merchant XML API (``/fim/api``): its users, their lockout, and the requests answered once -------------

API_LOCK_AFTER_FAILURES = 5  # wrong passwords in a row from one client address lock that address for the user
API_LOCK_FOR = dt.timedelta(minutes=30)
# Wrong passwords for one user from all addresses within API_LOCK_FOR that lock the user itself (guesses spread over
# many addresses); an address already locked counts no more, so that one address cannot lock the user out.
API_USER_LOCK_AFTER_FAILURES = 50
API_PASSWORD_LENGTH = 24  # characters of a generated password (token_urlsafe: about 144 bits)
API_MIN_PASSWORD = 12
# A request the same as one answered this recently gets that answer again and moves nothing (docs §9).
API_REPLAY_WINDOW = dt.timedelta(hours=24)
API_NAME = re.compile(r"[A-Za-z0-9._@-]{3,64}")
_VERIFIED_MAX = 4096
_verified: "OrderedDict[tuple[int, str], str]" = OrderedDict()  # (user, its password hash) -> keyed digest
_verified_key = secrets.token_bytes(32)
_verified_lock = threading.Lock()


class ApiAuthRefused(Exception):
    """A CC5Request whose Name, Password and ClientId do not open the API: ``code`` for programs, the French
    message for the merchant's staff. The same message for an unknown name and a wrong password."""

    def __init__(self, code: str, message: str, *, locked_until: dt.datetime | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.locked_until = locked_until


@dataclass(frozen=True)
class ApiUserCreated:
    user: MerchantApiUser
    password: str  # the password in clear: shown once, to the person who asked for it, then forgotten


def api_user_create(*, merchant: Merchant, name: str, password: str | None = None) -> ApiUserCreated:
    """A new API user for ``merchant``, with ``password`` or a generated one (returned once, kept hashed only).
    ValueError says what is wrong."""
    name = (name or "").strip()
    if not API_NAME.fullmatch(name):
        raise ValueError(_("Le nom d'utilisateur API doit comporter de 3 à 64 caractères : lettres, chiffres, "
                           ". _ @ -."))
    password = password if password is not None else secrets.token_urlsafe(API_PASSWORD_LENGTH)[:API_PASSWORD_LENGTH]
    _check_api_password(password)
    try:
        with transaction.atomic():
            user = MerchantApiUser.objects.create(merchant=merchant, name=name, password=make_password(password))
    except IntegrityError:
        raise ValueError(_("Le nom d'utilisateur API « %(name)s » est déjà pris.") % {"name": name}) from None
    return ApiUserCreated(user=user, password=password)


def _check_api_password(password: str) -> None:
    if not API_MIN_PASSWORD <= len(password) <= 128 or not password.isprintable():
        raise ValueError(_("Le mot de passe API doit comporter de %(min)s à 128 caractères imprimables.")
                         % {"min": API_MIN_PASSWORD})


@transaction.atomic
def api_user_set_password(*, user_id: int, password: str) -> MerchantApiUser:
    """Set an API user's password (kept hashed); its lockout ends."""
    _check_api_password(password)
    user = MerchantApiUser.objects.select_for_update().get(pk=user_id)
    user.password, user.failed_attempts, user.failures_since, user.locked_until = make_password(password), 0, None, None
    user.save(update_fields=["password", "failed_attempts", "failures_since", "locked_until"])
    ApiAddressLock.objects.filter(api_user=user).delete()
    return user


@transaction.atomic
def api_user_unlock(*, user_id: int) -> int:
    """Lift an API user's locks, its own and those of its client addresses, and forget their wrong passwords (staff,
    once the cause is known). The number of address locks lifted."""
    user = MerchantApiUser.objects.select_for_update().get(pk=user_id)
    user.failed_attempts, user.failures_since, user.locked_until = 0, None, None
    user.save(update_fields=["failed_attempts", "failures_since", "locked_until"])
    lifted, _kinds = ApiAddressLock.objects.filter(api_user=user).delete()
    return lifted


def api_address_key(address: str) -> str:
    """The client address wrong passwords are counted under: an IPv4 address as is (an IPv4-mapped IPv6 one as its
    IPv4), an IPv6 address by its /64 (one customer's network: its addresses are many), anything else as given."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return (address or "").strip()[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _password_matches(user: MerchantApiUser, password: str) -> bool:
    """Django's password check; a password that matched this user's current hash lately is recognized by a keyed
    digest kept in this process's memory (the hash is slow on purpose, and a merchant's program calls often)."""
    digest = hmac.new(_verified_key, f"{user.pk}\x1f{user.password}\x1f{password}".encode(), "sha256").hexdigest()
    with _verified_lock:
        if hmac.compare_digest(_verified.get((user.pk, user.password), ""), digest):
            return True
    if not check_password(password, user.password):
        return False
    with _verified_lock:
        _verified[(user.pk, user.password)] = digest
        while len(_verified) > _VERIFIED_MAX:
            _verified.popitem(last=False)
    return True


def _hash_once(password: str) -> None:
    """The password hasher's work once, for a name that has no password to check: an unknown name then costs what
    a wrong password costs (as Django's ModelBackend does), so the time of the answer does not tell which names
    exist."""
    make_password(password)


def api_authenticate(*, name: str, password: str, client_id: str, address: str = "",
                     now: dt.datetime | None = None) -> MerchantApiUser:
    """The active API user ``name`` of the active merchant ``client_id`` whose password is ``password``, or
    ApiAuthRefused. ``address``: the client's (core.http.client_ip). API_LOCK_AFTER_FAILURES wrong passwords in a
    row from one address lock that address for this user for API_LOCK_FOR (refused there, right password or not,
    until then), while the right password from another address still opens; a right one from the address ends its
    count. API_USER_LOCK_AFTER_FAILURES wrong ones within API_LOCK_FOR from all addresses lock the user everywhere.
    The password hasher runs once whatever the case; nothing is written for an unknown name."""
    now = now or timezone.now()
    unknown = ApiAuthRefused("AUTH", protocol.errmsg("Identifiants API invalides : Name ou Password incorrect."))
    user = MerchantApiUser.objects.select_related("merchant").filter(name=name[:64]).first()
    if user is None:
        _hash_once(password)
        raise unknown
    key = api_address_key(address)
    here = ApiAddressLock.objects.filter(api_user=user, address=key).first()
    locked_until = max((t for t in (user.locked_until, here and here.locked_until) if is_locked(t, now)),
                       default=None)
    if locked_until is not None:
        # Said only to whoever knows the password: to anyone else a locked user answers as an unknown name does, so
        # that the lock does not tell which names exist. A locked address's wrong passwords count no more.
        if not _password_matches(user, password):
            raise unknown
        raise ApiAuthRefused("LOCKED", protocol.errmsg(
            "Utilisateur API bloqué après trop de mots de passe erronés : réessayez plus tard."),
            locked_until=locked_until)
    if not _password_matches(user, password):
        _api_wrong_password(user_id=user.pk, address=key, now=now)
        raise unknown
    if not user.active or not user.merchant.active:
        raise ApiAuthRefused("INACTIVE", protocol.errmsg("Utilisateur API ou marchand désactivé."))
    if user.merchant.client_id != client_id:
        raise ApiAuthRefused("CLIENTID", protocol.errmsg(
            "Cet utilisateur API n'appartient pas au marchand indiqué par ClientId."))
    if here is not None:
        ApiAddressLock.objects.filter(pk=here.pk).delete()
    MerchantApiUser.objects.filter(pk=user.pk).update(last_used_at=now)
    return user


@transaction.atomic
def _api_wrong_password(*, user_id: int, address: str, now: dt.datetime) -> None:
    """Count a wrong password for the user from ``address`` (its key), the user's row locked: one more in a row for
    the address (a count left untouched for API_LOCK_FOR starts over), one more within API_LOCK_FOR for the user."""
    user = MerchantApiUser.objects.select_for_update().get(pk=user_id)
    here, _created = ApiAddressLock.objects.get_or_create(api_user=user, address=address,
                                                          defaults={"last_failure_at": now})
    if is_locked(here.locked_until, now) or is_locked(user.locked_until, now):
        return  # a wrong password racing the one that locked: nothing more to count
    failures = here.failures if here.last_failure_at > now - API_LOCK_FOR else 0
    lockout = after_failure(failures=failures, now=now, limit=API_LOCK_AFTER_FAILURES, lock_for=API_LOCK_FOR)
    here.failures, here.locked_until, here.last_failure_at = lockout.failures, lockout.locked_until, now
    here.save(update_fields=["failures", "locked_until", "last_failure_at"])
    if lockout.locked_until is not None:
        logger.warning("gateway: API user %s locked from %s after %s wrong passwords", user.name, address,
                       API_LOCK_AFTER_FAILURES)
    if user.failures_since is None or user.failures_since <= now - API_LOCK_FOR:
        user.failed_attempts, user.failures_since = 0, now
    user.failed_attempts += 1
    if user.failed_attempts >= API_USER_LOCK_AFTER_FAILURES:
        user.failed_attempts, user.failures_since, user.locked_until = 0, None, now + API_LOCK_FOR
        logger.warning("gateway: API user %s locked after %s wrong passwords from all addresses", user.name,
                       API_USER_LOCK_AFTER_FAILURES)
    user.save(update_fields=["failed_attempts", "failures_since", "locked_until"])


def api_locks_forget(*, now: dt.datetime | None = None) -> int:
    """Forget the address counts that no longer matter (no wrong password for API_LOCK_FOR and no lock standing):
    what an attacker's many addresses leave behind does not pile up. The number of rows deleted."""
    now = now or timezone.now()
    deleted, _kinds = (ApiAddressLock.objects.filter(last_failure_at__lte=now - API_LOCK_FOR)
                       .exclude(locked_until__gt=now).delete())
    return deleted


@dataclass(frozen=True)
class ApiClaim:
    """The outcome of claiming a request's idempotency key: ``record`` to answer (its answer when ``answer`` is
    set: a repeat; else this request is the one that acts), or ``busy`` when the same request is being processed."""

    record: ApiRequestRecord | None
    answer: str = ""
    busy: bool = False


def api_request_claim(*, user: MerchantApiUser, key: str, kind: str, order_id: str,
                      now: dt.datetime | None = None) -> ApiClaim:
    """Claim ``key`` for this request, committed before anything moves: the first request with a key acts; a
    repeat within API_REPLAY_WINDOW gets the stored answer (``answer``), or ``busy`` while the first is still being
    processed. A record older than the window is claimed anew. Concurrent duplicates: the unique key lets one
    insert win; the others find its record."""
    now = now or timezone.now()
    for _try in range(3):
        with transaction.atomic():
            record = ApiRequestRecord.objects.select_for_update().filter(key=key).first()
            if record is not None:
                if record.created_at > now - API_REPLAY_WINDOW:
                    if record.state == ApiRequestRecord.State.DONE:
                        return ApiClaim(record=record, answer=record.answer)
                    return ApiClaim(record=record, busy=True)
                record.state, record.answer, record.created_at, record.answered_at, record.operation = (
                    ApiRequestRecord.State.IN_FLIGHT, "", now, None, None)
                record.kind, record.order_id = kind, order_id[:64]
                record.save(update_fields=["state", "answer", "created_at", "answered_at", "kind", "order_id",
                                           "operation"])
                return ApiClaim(record=record)
        try:
            with transaction.atomic():
                record = ApiRequestRecord.objects.create(api_user=user, key=key, kind=kind, order_id=order_id[:64],
                                                         created_at=now)
            return ApiClaim(record=record)
        except IntegrityError:
            continue  # the same request at the same instant: read the one that won
    return ApiClaim(record=None, busy=True)  # pragma: no cover


def api_request_take_over(*, record: ApiRequestRecord, stale_before: dt.datetime,
                          now: dt.datetime | None = None) -> ApiRequestRecord | None:
    """Take over the claim of a request left in flight since before ``stale_before`` by a process that recorded no
    operation for it (it died before, or stopped on something else): one conditional UPDATE, so that of repeats
    arriving together one only wins; the winner acts (the record, claimed anew), the others get None. A holder
    still alive that records its operation later is refused it (ApiClaimLost): the money moves once."""
    now = now or timezone.now()
    taken = ApiRequestRecord.objects.filter(pk=record.pk, state=ApiRequestRecord.State.IN_FLIGHT,
                                            operation__isnull=True, created_at=record.created_at,
                                            created_at__lt=stale_before).update(created_at=now)
    if not taken:
        return None
    logger.warning("gateway: XML API request %s (%s %s) taken over: its claim of %s was left in flight", record.pk,
                   record.kind, record.order_id, record.created_at.isoformat())
    return ApiRequestRecord.objects.get(pk=record.pk)


def api_request_answered(*, record: ApiRequestRecord, answer: str, keep: bool, now: dt.datetime | None = None) -> bool:
    """The answer sent for a claimed request: kept for its repeats (``keep``: the operation reached the bank, or
    moved a state), or the claim released (a refusal before anything moved: the same request may be tried again).
    Only while the claim is still ``record``'s holder's; False when it is not (taken over, or answered by another
    repeat meanwhile): nothing written."""
    now = now or timezone.now()
    held = _api_claim_held(record)
    if keep:
        return bool(held.update(state=ApiRequestRecord.State.DONE, answer=answer, answered_at=now))
    deleted, _kinds = held.delete()
    return bool(deleted)
