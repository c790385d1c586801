"""Authorization and holds: the issuer's answer to 0100 (a hold), 0220 (capture), 0400 (release) and 0200 with
processing code 20 (a refund credited to the card's account).

The issuer host (``tasdid.bank.issuer``) calls these functions and nothing else; each runs in one transaction.
"""

import datetime as dt
import hmac
import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connections, router, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from tasdid.core import response_codes as rc
from tasdid.core.cards import cvv_digest, fingerprint, is_digits, mask
from tasdid.core.codes import generate_numeric
from tasdid.core.money import MAD_NUMERIC, MAX_AMOUNT, from_minor, to_minor

from .. import rules, selectors
from ..models import Account, Authorization, Card, Hold, HoldEvent, LedgerEntry, MessageKey, Refund
from . import authentication

logger = logging.getLogger(__name__)

REVERSED_BEFORE_ARRIVAL = "authorization reversed before it arrived"
STAN = re.compile(r"[0-9]{6}")  # ASCII: \d takes Arabic-Indic digits


@dataclass(frozen=True)
class AuthorizationOutcome:
    response_code: str
    reason: str
    auth_code: str = ""
    rrn: str = ""

    @property
    def approved(self) -> bool:
        return rc.is_approved(self.response_code)


@dataclass(frozen=True)
class SettlementOutcome:
    response_code: str
    reason: str

    @property
    def accepted(self) -> bool:
        return rc.is_approved(self.response_code)


def message_time(value: dt.datetime) -> dt.datetime:
    """DE7 has whole seconds: messages are keyed on the UTC second, whatever precision the caller kept."""
    if timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    return value.astimezone(dt.UTC).replace(microsecond=0)


def _requested_amount(amount_minor: int) -> Decimal:
    """The amount a message asks for; 0.00 when ``amount_minor`` is not an integer (the decision says 13)."""
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool):
        return Decimal("0.00")
    return from_minor(amount_minor)


def _recorded_amount(requested: Decimal) -> Decimal:
    """The amount to record; an amount out of every range is recorded as 0 (the decision says 13)."""
    return requested if -MAX_AMOUNT <= requested <= MAX_AMOUNT else Decimal("0.00")


def _new_rrn(now: dt.datetime) -> str:
    """DE37: Julian date and hour, then six random digits; unique among the holds."""
    stamp = now.astimezone(dt.UTC)
    head = f"{stamp:%y}"[-1] + f"{stamp.timetuple().tm_yday:03d}{stamp:%H}"
    while True:
        rrn = head + generate_numeric(6)
        if not Hold.objects.filter(rrn=rrn).exists():
            return rrn


def _lock_key(*, merchant_id: str, stan: str, sent_at: dt.datetime, now: dt.datetime) -> MessageKey:
    """The message key's row, created if needed and locked: an authorization and its reversal queue up on it."""
    key, _created = MessageKey.objects.get_or_create(merchant_id=merchant_id, stan=stan, transmitted_at=sent_at,
                                                     defaults={"created_at": now})
    return MessageKey.objects.select_for_update().get(pk=key.pk)



@sensitive_variables()  # the card number and CVV
def authorize(
    *,
    pan: str,
    expiry_yymm: str,
    cvv: str,
    amount_minor: int,
    currency: str,
    merchant_id: str,
    merchant_name: str = "",
    order_id: str = "",
    stan: str,
    transmitted_at: dt.datetime,
    eci: str = "",
    authentication_value: str = "",
    ds_trans_id: str = "",
    trans_status: str = "",
) -> AuthorizationOutcome:
    """Answer an authorization request (0100): decide by ``rules.decide``, record it, place a hold on approval.

    The card's account is locked for the whole decision, so two authorizations on one account never both
    spend the same money. A message re-sent with the same key (merchant, STAN, transmission time) gets the
    first answer again and changes nothing; another message under a key already used gets 94. One transaction:
    ``authorize_many`` of this one request.
    """
    return authorize_many([AuthorizationAsk(
        pan=pan, expiry_yymm=expiry_yymm, cvv=cvv, amount_minor=amount_minor, currency=currency,
        merchant_id=merchant_id, merchant_name=merchant_name, order_id=order_id, stan=stan,
        transmitted_at=transmitted_at, eci=eci, authentication_value=authentication_value,
        ds_trans_id=ds_trans_id, trans_status=trans_status)])[0]


@dataclass(frozen=True)
class AuthorizationAsk:
    """One authorization request (0100), as ``authorize`` takes it. Its repr hides the card number and CVV."""

    pan: str = field(repr=False)
    expiry_yymm: str = field(repr=False)
    cvv: str = field(repr=False)
    amount_minor: int
    currency: str
    merchant_id: str
    stan: str
    transmitted_at: dt.datetime
    merchant_name: str = ""
    order_id: str = ""
    eci: str = ""
    authentication_value: str = field(default="", repr=False)
    ds_trans_id: str = ""
    trans_status: str = ""


class _Batch:
    """What the requests of one ``authorize_many`` share: their keys and accounts locked, their cards, earlier
    answers and held amounts read in one query each, and the rows to write, written together at the end."""

    def __init__(self, asks: list[AuthorizationAsk], fingerprints: list[str], now: dt.datetime):
        self.now = now
        keys = {(a.merchant_id, a.stan, message_time(a.transmitted_at)) for a in asks}
        # The message keys first (as ``_lock_key``), then the accounts: the order every writer takes them in.
        MessageKey.objects.bulk_create(
            [MessageKey(merchant_id=m, stan=s, transmitted_at=t, created_at=now) for m, s, t in sorted(keys)],
            ignore_conflicts=True)
        self.keys = {(k.merchant_id, k.stan, k.transmitted_at): k for k in _locked(MessageKey, keys)}
        self.cards = selectors.cards_by_fingerprint(fingerprints=[f for f in fingerprints if f])
        account_ids = sorted({card.account_id for card in self.cards.values()})
        self.accounts = {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=account_ids).order_by("pk")}
        self.held = selectors.accounts_held(account_ids=account_ids)
        self.earlier = {(e.merchant_id, e.stan, e.transmitted_at): e for e in _matching(Authorization, keys).filter(
            duplicate_of__isnull=True)}
        self.rrns = _new_rrns(now, len(asks))
        self.authorizations: list[Authorization] = []
        self.holds: list[Hold] = []
        self.decided: set[tuple] = set()  # keys answered in this batch, not written yet

    def write(self) -> None:
        """The rows of the answers so far, in three INSERTs."""
        _insert(Authorization, self.authorizations)
        for hold in self.holds:
            hold.authorization_id = hold.authorization.pk
        _insert(Hold, self.holds)
        _insert(HoldEvent, [HoldEvent(hold_id=hold.pk, from_state="", to_state=Hold.State.HELD,
                                      cause="authorization approved", at=self.now) for hold in self.holds])
        for record in self.authorizations:
            if record.duplicate_of_id is None:
                self.earlier[(record.merchant_id, record.stan, record.transmitted_at)] = record
        self.authorizations, self.holds, self.decided = [], [], set()


# Columns whose Python value is what the database drivers take as it is (get_db_prep_save would return it).
_AS_IS = frozenset({"CharField", "TextField", "SlugField", "IntegerField", "BigIntegerField", "PositiveIntegerField",
                    "SmallIntegerField", "BooleanField", "ForeignKey", "OneToOneField"})


def _insert(model, objects: list) -> None:
    """``bulk_create`` without its per-value work: one INSERT of every row through the ORM's connection, each
    object given its primary key (RETURNING, in the order of the rows, as bulk_create relies on too). Only the
    columns that need it (times, amounts) go through the field's get_db_prep_save."""
    if not objects:
        return
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    prepared = [(f.attname, None if f.get_internal_type() in _AS_IS else f) for f in fields]
    params = []
    for obj in objects:
        for attname, field_ in prepared:
            value = getattr(obj, attname)
            params.append(value if field_ is None else field_.get_db_prep_save(value, connection))
    row = f"({', '.join(['%s'] * len(fields))})"
    sql = (f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
           f"VALUES {', '.join([row] * len(objects))} RETURNING {quote(model._meta.pk.column)}")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The values bound by the server (psycopg's own cursor) rather than written into the query's text by
            # the client as Django's cursor does: that rendering, value by value, cost a fifth of a batch's CPU.
            import psycopg

            with psycopg.Cursor(cursor.cursor.connection) as bound:
                bound.execute(sql, params)
                keys = [key for (key,) in bound.fetchall()]
        else:
            cursor.execute(sql, params)
            keys = [key for (key,) in cursor.fetchall()]
    for obj, key in zip(objects, keys, strict=True):
        obj.pk = key
        obj._state.adding, obj._state.db = False, connection.alias


def _matching(model, keys: set[tuple]):
    """Rows of ``model`` whose (merchant_id, stan, transmitted_at) is one of ``keys``: a query that may take a
    few more (the product of the three sets), filtered by the caller's dictionary lookups."""
    return model.objects.filter(merchant_id__in={k[0] for k in keys}, stan__in={k[1] for k in keys},
                                transmitted_at__in={k[2] for k in keys})


def _locked(model, keys: set[tuple]) -> list:
    """The rows of ``keys`` locked, in primary-key order (one order for every batch: no deadlock among them)."""
    return [row for row in _matching(model, keys).select_for_update().order_by("pk")
            if (row.merchant_id, row.stan, row.transmitted_at) in keys]


def _new_rrns(now: dt.datetime, count: int) -> list[str]:
    """``count`` RRNs (``_new_rrn``), unique among the holds and among themselves, checked in one query."""
    stamp = now.astimezone(dt.UTC)
    head = f"{stamp:%y}"[-1] + f"{stamp.timetuple().tm_yday:03d}{stamp:%H}"
    rrns: set[str] = set()
    while len(rrns) < count:
        fresh = {head + generate_numeric(6) for _ in range(count - len(rrns))} - rrns
        rrns |= fresh - set(Hold.objects.filter(rrn__in=fresh).values_list("rrn", flat=True))
    return sorted(rrns)


@sensitive_variables()  # the card numbers and CVVs
@transaction.atomic
def authorize_many(asks: list[AuthorizationAsk]) -> list[AuthorizationOutcome]:
    """``authorize`` for each request, in order, in one transaction (the issuer host's group commit): each
    answer is the one it would get alone after the ones before it, and none is given before all are committed.

    Their message keys and accounts are locked together, and their reads and writes go in a few queries for the
    lot rather than a dozen per request; a request whose key came earlier in the same batch sees that one."""
    now = timezone.now()
    outcomes: list[AuthorizationOutcome] = []
    usable = [_key_usable(merchant_id=ask.merchant_id, stan=ask.stan) for ask in asks]
    prints = [fingerprint(ask.pan) if isinstance(ask.pan, str) and is_digits(ask.pan) else "" for ask in asks]
    batch = _Batch([a for a, ok in zip(asks, usable, strict=True) if ok], prints, now) if any(usable) else None
    for ask, ok, print_ in zip(asks, usable, prints, strict=True):
        if not ok:
            # Without a usable key the message cannot be matched to a reversal: refused before anything is written.
            logger.warning("authorization refused: malformed STAN or merchant id")
            outcomes.append(AuthorizationOutcome(rc.FORMAT_ERROR, "format error: STAN or merchant id"))
            continue
        outcomes.append(_decide(ask, batch, print_))
    if batch is not None:
        batch.write()
    return outcomes


@sensitive_variables()  # the card number and CVV
def _decide(ask: AuthorizationAsk, batch: _Batch, card_fingerprint: str) -> AuthorizationOutcome:
    now = batch.now
    merchant_id, stan, pan, cvv, amount_minor = ask.merchant_id, ask.stan, ask.pan, ask.cvv, ask.amount_minor
    sent_at = message_time(ask.transmitted_at)
    message_key = (merchant_id, stan, sent_at)
    if message_key in batch.decided:  # the same key twice in one batch: the second sees the first written
        batch.write()
    batch.decided.add(message_key)
    key = batch.keys[message_key]
    pan = pan if isinstance(pan, str) else ""
    card = batch.cards.get(card_fingerprint) if card_fingerprint else None
    account = batch.accounts[card.account_id] if card is not None else None
    requested = _requested_amount(amount_minor)
    amount = _recorded_amount(requested)
    masked = mask(pan) if is_digits(pan) else ""
    common = {
        "card": card, "masked_pan": masked, "amount": amount, "currency": str(ask.currency)[:3],
        "merchant_id": merchant_id, "merchant_name": ask.merchant_name[:120], "order_id": ask.order_id[:64],
        "stan": stan, "transmitted_at": sent_at, "eci": ask.eci[:2], "ds_trans_id": ask.ds_trans_id[:36],
        "trans_status": ask.trans_status[:1], "received_at": now,
    }

    def record(**fields) -> Authorization:
        row = Authorization(**common, **fields)
        batch.authorizations.append(row)
        return row

    earlier = batch.earlier.get(message_key)
    if earlier is not None:
        if earlier.card_id == (card.pk if card else None) and earlier.masked_pan == masked and earlier.amount == amount:
            record(response_code=earlier.response_code, reason="re-sent message: first answer repeated",
                   auth_code=earlier.auth_code, rrn=earlier.rrn, duplicate_of=earlier)
            return AuthorizationOutcome(earlier.response_code, earlier.reason, earlier.auth_code, earlier.rrn)
        record(response_code=rc.DUPLICATE_TRANSMISSION, reason="another message already used this STAN",
               duplicate_of=earlier)
        return AuthorizationOutcome(rc.DUPLICATE_TRANSMISSION, "another message already used this STAN")
    if key.reversed_at is not None:
        # The acquirer gave up on this message and reversed it before it got here: approving it now would
        # place a hold that nothing will ever release.
        logger.warning("authorization declined: reversed before it arrived (merchant %s, STAN %s)", merchant_id, stan)
        record(response_code=rc.INVALID_TRANSACTION, reason=REVERSED_BEFORE_ARRIVAL)
        return AuthorizationOutcome(rc.INVALID_TRANSACTION, REVERSED_BEFORE_ARRIVAL)

    presented = None
    if card is not None and card.three_ds != Card.ThreeDS.NONE:
        presented = authentication.presented_authentication(
            card=card, amount_minor=to_minor(requested), eci=ask.eci,
            authentication_value=ask.authentication_value, ds_trans_id=ask.ds_trans_id,
            trans_status=ask.trans_status, now=now,
        )
    snapshot = rules.Snapshot(
        amount=requested,
        currency=str(ask.currency),
        card_known=card is not None,
        today=timezone.localdate(now),
        card_status=card.status if card else "",
        card_expiry=(card.expiry_year, card.expiry_month) if card else None,
        typed_expiry=rules.parse_typed_expiry(ask.expiry_yymm),
        cvv_matches=bool(card) and is_digits(cvv, 3)
        and hmac.compare_digest(cvv_digest(pan, cvv).encode(), card.cvv_digest.encode()),
        enrolment=card.three_ds if card else rules.NOT_ENROLLED,
        authentication_valid=presented is not None,
        available_balance=account.balance - batch.held[account.pk] if account else Decimal("0.00"),
    )
    decision = rules.decide(snapshot)
    if presented is not None:
        authentication.cavv_used(presented, decision.response_code, now=now)

    if not decision.approved:
        record(response_code=decision.response_code, reason=decision.reason)
        return AuthorizationOutcome(decision.response_code, decision.reason)

    auth_code, rrn = generate_numeric(6), batch.rrns.pop()
    approved = record(response_code=decision.response_code, reason=decision.reason, auth_code=auth_code, rrn=rrn)
    batch.holds.append(Hold(
        authorization=approved, account=account, card=card, amount=amount, currency=MAD_NUMERIC, auth_code=auth_code,
        rrn=rrn, stan=stan, transmitted_at=sent_at, merchant_id=merchant_id, merchant_name=ask.merchant_name[:120],
        order_id=ask.order_id[:64], state=Hold.State.HELD, created_at=now,
    ))
    batch.held[account.pk] += amount
    return AuthorizationOutcome(decision.response_code, decision.reason, auth_code, rrn)


def _find_hold(*, merchant_id: str, rrn: str, original_stan: str, original_transmitted_at: dt.datetime) -> Hold | None:
    holds = Hold.objects.filter(merchant_id=merchant_id)
    if rrn:
        return holds.filter(rrn=rrn).first()
    return holds.filter(stan=original_stan, transmitted_at=message_time(original_transmitted_at)).first()


def _move_hold(hold: Hold, to_state: str, *, cause: str, now: dt.datetime) -> None:
    if to_state not in Hold.TRANSITIONS[hold.state]:
        raise ValueError(f"a hold does not go from {hold.state} to {to_state}")
    from_state = hold.state
    hold.state = to_state
    fields = ["state"]
    if to_state == Hold.State.CAPTURED:
        hold.captured_at = now
        fields.append("captured_at")
    else:
        hold.released_at = now
        fields.append("released_at")
    hold.save(update_fields=fields)
    HoldEvent.objects.create(hold=hold, from_state=from_state, to_state=to_state, cause=cause, at=now)


@transaction.atomic
def hold_capture(
    *, merchant_id: str, rrn: str = "", original_stan: str, original_transmitted_at: dt.datetime, amount_minor: int,
    currency: str,
) -> SettlementOutcome:
    """Capture (0220): the hold becomes a debit of the account, for the amount asked, up to the hold.

    A partial capture debits what it asks and frees the rest (the hold is captured: it reserves nothing more).
    More than the hold, or nothing: 13, nothing moves. Capturing again for the amount captured is acknowledged
    (00) and debits nothing; for another amount, 12. A released hold is not captured (12).
    """
    found = _find_hold(merchant_id=merchant_id, rrn=rrn, original_stan=original_stan,
                       original_transmitted_at=original_transmitted_at)
    if found is None:
        return SettlementOutcome(rc.INVALID_TRANSACTION, "no such authorization")
    account = Account.objects.select_for_update().get(pk=found.account_id)
    hold = Hold.objects.select_for_update().get(pk=found.pk)
    amount = _requested_amount(amount_minor)
    if currency != hold.currency:
        return SettlementOutcome(rc.INVALID_TRANSACTION, "currency differs from the authorization")
    if hold.state == Hold.State.CAPTURED:
        if LedgerEntry.objects.filter(hold=hold, amount=amount).exists():
            return SettlementOutcome(rc.APPROVED, "already captured")
        return SettlementOutcome(rc.INVALID_TRANSACTION, "already captured for another amount")
    if not Decimal("0.00") < amount <= hold.amount:
        return SettlementOutcome(rc.INVALID_AMOUNT, "capture amount is more than the authorized amount or none")
    if hold.state == Hold.State.RELEASED:
        return SettlementOutcome(rc.INVALID_TRANSACTION, "authorization already released")
    now = timezone.now()
    partial = amount < hold.amount
    _move_hold(hold, Hold.State.CAPTURED, cause=f"partial capture of {amount} (rest released)" if partial
               else "capture", now=now)
    account.balance -= amount
    account.save(update_fields=["balance"])
    LedgerEntry.objects.create(
        account=account, kind=LedgerEntry.Kind.DEBIT, amount=amount, balance_after=account.balance,
        label=_("Paiement %(merchant)s (autorisation %(auth_code)s)") % {
            "merchant": hold.merchant_name or hold.merchant_id, "auth_code": hold.auth_code},
        hold=hold, created_at=now,
    )
    return SettlementOutcome(rc.APPROVED, "partially captured" if partial else "captured")


@transaction.atomic
def hold_void(
    *, merchant_id: str, rrn: str = "", original_stan: str, original_transmitted_at: dt.datetime,
) -> SettlementOutcome:
    """Void or reversal (0400): release the hold. Found by RRN, or by the original STAN and transmission time
    when the authorization's answer never came back.

    Already released: acknowledged (00) without change, so that a reversal repeated until acknowledged stops.
    Unknown: acknowledged too, and the original's key (merchant, STAN, transmission time) is marked reversed,
    so that the authorization, should it arrive after its reversal, is declined instead of holding money
    forever. A captured hold is not voided.
    """
    found = _find_hold(merchant_id=merchant_id, rrn=rrn, original_stan=original_stan,
                       original_transmitted_at=original_transmitted_at)
    if found is None:
        if not (isinstance(original_stan, str) and STAN.fullmatch(original_stan)):
            return SettlementOutcome(rc.APPROVED, "no such authorization: nothing to release")
        now = timezone.now()
        sent_at = message_time(original_transmitted_at)
        key = _lock_key(merchant_id=merchant_id, stan=original_stan, sent_at=sent_at, now=now)
        # Under the key's lock an authorization of this key has either committed (its hold is seen now) or
        # will find the key reversed.
        found = Hold.objects.filter(merchant_id=merchant_id, stan=original_stan, transmitted_at=sent_at).first()
        if found is None:
            if key.reversed_at is None:
                key.reversed_at = now
                key.save(update_fields=["reversed_at"])
            return SettlementOutcome(rc.APPROVED, "no such authorization: a late one will be declined")
    hold = Hold.objects.select_for_update().get(pk=found.pk)
    if hold.state == Hold.State.RELEASED:
        return SettlementOutcome(rc.APPROVED, "already released")
    if hold.state == Hold.State.CAPTURED:
        return SettlementOutcome(rc.INVALID_TRANSACTION, "already captured: cannot be voided")
    _move_hold(hold, Hold.State.RELEASED, cause="void", now=timezone.now())
    return SettlementOutcome(rc.APPROVED, "released")


# --- Refunds ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundOutcome:
    response_code: str
    reason: str
    rrn: str = ""

    @property
    def approved(self) -> bool:
        return rc.is_approved(self.response_code)


def _key_usable(*, merchant_id: str, stan: str) -> bool:
    return (isinstance(stan, str) and bool(STAN.fullmatch(stan)) and isinstance(merchant_id, str)
            and 1 <= len(merchant_id) <= 32)


@sensitive_variables()  # the card number
@transaction.atomic
def refund(
    *, merchant_id: str, stan: str, transmitted_at: dt.datetime, amount_minor: int, currency: str, pan: str = "",
    rrn: str = "", merchant_name: str = "",
) -> RefundOutcome:
    """Refund (0200, processing code 20): credit the card's account with ``amount_minor``.

    The account is the one of the captured payment named by ``rrn`` (DE37, the gateway keeps no card number) or
    of the card ``pan``. The refunds of one payment never exceed what was captured (13 beyond). The same message
    again (merchant, STAN, transmission time) gets the first answer and credits nothing more; other content
    under that key gets 94. A refund whose reversal came first is declined (12).
    """
    if not _key_usable(merchant_id=merchant_id, stan=stan):
        return RefundOutcome(rc.FORMAT_ERROR, "format error: STAN or merchant id")
    now = timezone.now()
    sent_at = message_time(transmitted_at)
    key = _lock_key(merchant_id=merchant_id, stan=stan, sent_at=sent_at, now=now)
    pan = pan if isinstance(pan, str) else ""
    card = selectors.card_by_number(pan=pan) if pan else None
    hold = Hold.objects.filter(merchant_id=merchant_id, rrn=rrn).select_related("card").first() if rrn else None
    if hold is not None and card is None and not pan:
        card = hold.card
    requested = _requested_amount(amount_minor)
    amount = _recorded_amount(requested)
    common = {"merchant_id": merchant_id, "stan": stan, "transmitted_at": sent_at, "card": card, "hold": hold,
              "masked_pan": mask(pan) if is_digits(pan) else (card.masked_pan if card else ""),
              "original_rrn": rrn[:12], "amount": amount, "currency": str(currency)[:3], "received_at": now}

    earlier = Refund.objects.filter(merchant_id=merchant_id, stan=stan, transmitted_at=sent_at).first()
    if earlier is not None:
        if earlier.card_id == (card.pk if card else None) and earlier.amount == amount \
                and earlier.original_rrn == rrn[:12]:
            return RefundOutcome(earlier.response_code, earlier.reason, earlier.rrn)
        logger.warning("refund refused: another message already used STAN %s (merchant %s)", stan, merchant_id)
        return RefundOutcome(rc.DUPLICATE_TRANSMISSION, "another message already used this STAN")

    def answer(code: str, reason: str, **extra) -> RefundOutcome:
        record = Refund.objects.create(**common, response_code=code, reason=reason, **extra)
        return RefundOutcome(code, reason, record.rrn)

    if key.reversed_at is not None:
        return answer(rc.INVALID_TRANSACTION, "refund reversed before it arrived")
    if requested <= 0 or requested > MAX_AMOUNT or requested != amount:
        return answer(rc.INVALID_AMOUNT, "invalid amount")
    if str(currency) != MAD_NUMERIC:
        return answer(rc.NOT_PERMITTED, "currency is not MAD")
    if rrn and (hold is None or hold.state != Hold.State.CAPTURED):
        return answer(rc.INVALID_TRANSACTION, "no captured payment with this RRN")
    if card is None or (hold is not None and hold.card_id != card.pk):
        return answer(rc.INVALID_CARD_NUMBER, "unknown card number")
    account = Account.objects.select_for_update().get(pk=card.account_id)
    if hold is not None:
        captured = LedgerEntry.objects.get(hold=hold).amount
        refunded = sum((r.amount for r in Refund.objects.filter(hold=hold, response_code=rc.APPROVED,
                                                                 reversed_at__isnull=True)), Decimal("0.00"))
        if refunded + amount > captured:
            return answer(rc.INVALID_AMOUNT, "refunds would exceed the captured amount")
    account.balance += amount
    account.save(update_fields=["balance"])
    entry = LedgerEntry.objects.create(
        account=account, kind=LedgerEntry.Kind.CREDIT, amount=amount, balance_after=account.balance,
        label=_("Remboursement %(merchant)s") % {"merchant": merchant_name[:120] or (
            hold.merchant_name if hold else "") or merchant_id},
        created_at=now,
    )
    return answer(rc.APPROVED, "refunded", rrn=hold.rrn if hold else _new_rrn(now), credit=entry)


@transaction.atomic
def refund_reverse(*, merchant_id: str, original_stan: str, original_transmitted_at: dt.datetime) -> SettlementOutcome:
    """Reversal (0400) of a refund: the credit is taken back, once. Already reversed, declined or unknown:
    acknowledged (00) without change; an unknown one's key is marked reversed, so that the refund, should it
    arrive after its reversal, is declined and credits nothing."""
    if not _key_usable(merchant_id=merchant_id, stan=original_stan):
        return SettlementOutcome(rc.APPROVED, "no such refund: nothing to take back")
    now = timezone.now()
    sent_at = message_time(original_transmitted_at)
    key = _lock_key(merchant_id=merchant_id, stan=original_stan, sent_at=sent_at, now=now)
    record = Refund.objects.filter(merchant_id=merchant_id, stan=original_stan, transmitted_at=sent_at).first()
    if record is None:
        if key.reversed_at is None:
            key.reversed_at = now
            key.save(update_fields=["reversed_at"])
        return SettlementOutcome(rc.APPROVED, "no such refund: a late one will be declined")
    if record.reversed_at is not None or not rc.is_approved(record.response_code):
        return SettlementOutcome(rc.APPROVED, "nothing to take back")
    account = Account.objects.select_for_update().get(pk=record.credit.account_id)
    account.balance -= record.amount
    account.save(update_fields=["balance"])
    record.reversal = LedgerEntry.objects.create(
        account=account, kind=LedgerEntry.Kind.DEBIT, amount=record.amount, balance_after=account.balance,
        label=_("Annulation du remboursement %(merchant)s") % {"merchant": merchant_id}, created_at=now,
    )
    record.reversed_at = now
    record.save(update_fields=["reversal", "reversed_at"])
    return SettlementOutcome(rc.APPROVED, "refund reversed")
