"""Writes of the sandbox bank: accounts and cards, authorizations and their holds, capture and void, and the
ACS (AReq answers, the SMS code challenge, the RReq to the 3DS Server)."""

import datetime as dt
import hmac
import logging
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from tasdid.core import response_codes as rc
from tasdid.core import threeds
from tasdid.core.cards import brand_of, cvv_digest, fingerprint, is_digits, mask, parse_expiry
from tasdid.core.codes import code_digest, code_matches, generate_numeric
from tasdid.core.money import MAD_NUMERIC, MAX_AMOUNT, dh, from_minor, quantize, to_minor
from tasdid.core.phones import PhoneKind, parse_number
from tasdid.messaging.services import sms_send

from . import acs, rules, selectors
from .models import (
    Account,
    AcsEvent,
    AcsTransaction,
    Authorization,
    Bank,
    Card,
    Hold,
    HoldEvent,
    LedgerEntry,
    MessageKey,
)

logger = logging.getLogger(__name__)

REVERSED_BEFORE_ARRIVAL = "authorization reversed before it arrived"
STAN = re.compile(r"[0-9]{6}")  # ASCII: \d takes Arabic-Indic digits

OTP_LENGTH = 6
OTP_LIFETIME = dt.timedelta(minutes=5)
OTP_LIFETIME_MINUTES = OTP_LIFETIME // dt.timedelta(minutes=1)  # as the SMS and the challenge page say it
OTP_MAX_TRIES = 3
OTP_MAX_SENDS = 3  # the first code and two more on « Renvoyer le code »
CAVV_LIFETIME = dt.timedelta(minutes=30)
# A card whose holder failed this many challenges (wrong codes, cancelled, expired or abandoned) within the
# window gets no new challenge, hence no new SMS and no new tries, until the oldest failure leaves the window.
CHALLENGE_FAILURE_LIMIT = 3
CHALLENGE_FAILURE_WINDOW = dt.timedelta(hours=24)
RREQ_ATTEMPTS = 3
RREQ_BACKOFF_SECONDS = 0.5
RREQ_BUDGET_SECONDS = 20.0


# --- Banks, accounts, cards -------------------------------------------------------------------------------


@transaction.atomic
def bank_register(*, code: str, name: str, short_name: str, logo: str, bin_prefixes: list[str]) -> Bank:
    """Create the bank ``code`` or bring its details up to date."""
    if not 1 <= len(short_name) <= 11:
        raise ValueError("an SMS sender name has 1 to 11 characters")
    bank, _created = Bank.objects.update_or_create(
        code=code, defaults={"name": name, "short_name": short_name, "logo": logo, "bin_prefixes": list(bin_prefixes)}
    )
    return bank


@transaction.atomic
def account_open(*, bank_id: int, holder_name: str, opening_balance: Decimal) -> Account:
    """A new account; a positive opening balance is credited by a ledger entry."""
    now = timezone.now()
    opening = quantize(opening_balance)
    if opening < 0:
        raise ValueError("an opening balance is not negative")
    account = Account.objects.create(
        bank_id=bank_id, number=f"MA{secrets.randbelow(10**20):020d}", holder_name=holder_name,
        balance=opening, currency=MAD_NUMERIC, opened_at=now,
    )
    if opening:
        LedgerEntry.objects.create(account=account, kind=LedgerEntry.Kind.CREDIT, amount=opening,
                                   balance_after=opening, label=_("Solde d'ouverture"), created_at=now)
    return account


@sensitive_variables()  # the card number and CVV
@transaction.atomic
def card_issue(
    *,
    account_id: int,
    pan: str,
    expiry: str,
    cvv: str,
    holder_name: str,
    phone: str,
    status: str = Card.Status.ACTIVE,
    three_ds: str = Card.ThreeDS.NONE,
) -> Card:
    """Issue a card on an account. ``pan`` and ``cvv`` are used for their keyed hashes only; ``expiry`` "MM/YY"."""
    account = Account.objects.select_related("bank").get(pk=account_id)
    brand = brand_of(pan)
    if brand is None or not any(pan.startswith(p) for p in account.bank.bin_prefixes):
        raise ValueError("the number is not in one of the bank's BIN ranges")
    if not is_digits(cvv, 3):
        raise ValueError("a CVV has three digits")
    month, year = expiry.split("/")
    parsed = parse_expiry(month, year)
    return Card.objects.create(
        bank=account.bank, account=account, brand=brand, fingerprint=fingerprint(pan), masked_pan=mask(pan),
        last4=pan[-4:], holder_name=holder_name, phone=parse_number(phone, PhoneKind.MOBILE),
        expiry_month=parsed.month, expiry_year=parsed.year, cvv_digest=cvv_digest(pan, cvv),
        status=status, three_ds=three_ds, issued_at=timezone.now(),
    )


# --- Authorization, capture, void -------------------------------------------------------------------------


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


def _authentication_check(
    *, card: Card, amount_minor: int, eci: str, authentication_value: str, ds_trans_id: str, trans_status: str,
    now: dt.datetime,
) -> AcsTransaction | None:
    """The ACS transaction whose CAVV this authorization presents, when it is valid and unused; else None."""
    if trans_status != threeds.AUTHENTICATED or not authentication_value or not ds_trans_id:
        return None
    try:
        ds_key = uuid.UUID(ds_trans_id)
    except (ValueError, AttributeError, TypeError):
        return None
    record = (
        AcsTransaction.objects.select_for_update()
        .filter(ds_trans_id=ds_key, card=card, state=AcsTransaction.State.AUTHENTICATED, cavv_used_at__isnull=True)
        .first()
    )
    if record is None or record.ended_at is None or record.ended_at < now - CAVV_LIFETIME:
        return None
    if eci != record.eci:
        return None
    if not acs.cavv_matches(authentication_value, acs_trans_id=str(record.acs_trans_id),
                            card_fingerprint=card.fingerprint, amount_minor=amount_minor):
        return None
    return record


@sensitive_variables()  # outermost, so that transaction.atomic's frame is hidden too
@transaction.atomic
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
    first answer again and changes nothing; another message under a key already used gets 94.
    """
    if not (isinstance(stan, str) and STAN.fullmatch(stan)) or not (isinstance(merchant_id, str)
                                                                    and 1 <= len(merchant_id) <= 32):
        # Without a usable key the message cannot be matched to a reversal: refused before anything is written.
        logger.warning("authorization refused: malformed STAN or merchant id")
        return AuthorizationOutcome(rc.FORMAT_ERROR, "format error: STAN or merchant id")
    now = timezone.now()
    sent_at = message_time(transmitted_at)
    key = _lock_key(merchant_id=merchant_id, stan=stan, sent_at=sent_at, now=now)
    pan = pan if isinstance(pan, str) else ""
    card = selectors.card_by_number(pan=pan)
    account = None
    if card is not None:
        account = Account.objects.select_for_update().get(pk=card.account_id)
    requested = _requested_amount(amount_minor)
    amount = _recorded_amount(requested)
    masked = mask(pan) if is_digits(pan) else ""
    common = {
        "card": card, "masked_pan": masked, "amount": amount, "currency": str(currency)[:3],
        "merchant_id": merchant_id, "merchant_name": merchant_name[:120], "order_id": order_id[:64],
        "stan": stan, "transmitted_at": sent_at, "eci": eci[:2], "ds_trans_id": ds_trans_id[:36],
        "trans_status": trans_status[:1], "received_at": now,
    }

    earlier = Authorization.objects.filter(
        merchant_id=merchant_id, stan=stan, transmitted_at=sent_at, duplicate_of__isnull=True
    ).first()
    if earlier is not None:
        if earlier.card_id == (card.pk if card else None) and earlier.masked_pan == masked and earlier.amount == amount:
            Authorization.objects.create(**common, response_code=earlier.response_code,
                                         reason="re-sent message: first answer repeated", auth_code=earlier.auth_code,
                                         rrn=earlier.rrn, duplicate_of=earlier)
            return AuthorizationOutcome(earlier.response_code, earlier.reason, earlier.auth_code, earlier.rrn)
        Authorization.objects.create(**common, response_code=rc.DUPLICATE_TRANSMISSION,
                                     reason="another message already used this STAN", duplicate_of=earlier)
        return AuthorizationOutcome(rc.DUPLICATE_TRANSMISSION, "another message already used this STAN")
    if key.reversed_at is not None:
        # The acquirer gave up on this message and reversed it before it got here: approving it now would
        # place a hold that nothing will ever release.
        logger.warning("authorization declined: reversed before it arrived (merchant %s, STAN %s)", merchant_id, stan)
        Authorization.objects.create(**common, response_code=rc.INVALID_TRANSACTION, reason=REVERSED_BEFORE_ARRIVAL)
        return AuthorizationOutcome(rc.INVALID_TRANSACTION, REVERSED_BEFORE_ARRIVAL)

    presented = None
    if card is not None and card.three_ds != Card.ThreeDS.NONE:
        presented = _authentication_check(
            card=card, amount_minor=to_minor(requested), eci=eci,
            authentication_value=authentication_value, ds_trans_id=ds_trans_id, trans_status=trans_status, now=now,
        )
    snapshot = rules.Snapshot(
        amount=requested,
        currency=str(currency),
        card_known=card is not None,
        today=timezone.localdate(now),
        card_status=card.status if card else "",
        card_expiry=(card.expiry_year, card.expiry_month) if card else None,
        typed_expiry=rules.parse_typed_expiry(expiry_yymm),
        cvv_matches=bool(card) and is_digits(cvv, 3)
        and hmac.compare_digest(cvv_digest(pan, cvv).encode(), card.cvv_digest.encode()),
        enrolment=card.three_ds if card else rules.NOT_ENROLLED,
        authentication_valid=presented is not None,
        available_balance=selectors.account_available(account_id=account.pk, balance=account.balance)
        if account else Decimal("0.00"),
    )
    decision = rules.decide(snapshot)
    if presented is not None:
        # A CAVV serves one authorization, whatever its answer.
        presented.cavv_used_at = now
        presented.save(update_fields=["cavv_used_at"])
        _acs_event(presented, "cavv_used", f"authorization {decision.response_code}", now=now)

    if not decision.approved:
        Authorization.objects.create(**common, response_code=decision.response_code, reason=decision.reason)
        return AuthorizationOutcome(decision.response_code, decision.reason)

    auth_code, rrn = generate_numeric(6), _new_rrn(now)
    record = Authorization.objects.create(**common, response_code=decision.response_code, reason=decision.reason,
                                          auth_code=auth_code, rrn=rrn)
    hold = Hold.objects.create(
        authorization=record, account=account, card=card, amount=amount, currency=MAD_NUMERIC, auth_code=auth_code,
        rrn=rrn, stan=stan, transmitted_at=sent_at, merchant_id=merchant_id, merchant_name=merchant_name[:120],
        order_id=order_id[:64], state=Hold.State.HELD, created_at=now,
    )
    HoldEvent.objects.create(hold=hold, from_state="", to_state=Hold.State.HELD, cause="authorization approved", at=now)
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
    """Capture (0220): the hold becomes a debit of the account. Capturing twice captures once.

    The amount must be the authorized amount (no partial capture here); a released hold is not captured.
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
    if amount != hold.amount:
        return SettlementOutcome(rc.INVALID_AMOUNT, "capture amount differs from the authorized amount")
    if hold.state == Hold.State.CAPTURED:
        return SettlementOutcome(rc.APPROVED, "already captured")
    if hold.state == Hold.State.RELEASED:
        return SettlementOutcome(rc.INVALID_TRANSACTION, "authorization already released")
    now = timezone.now()
    _move_hold(hold, Hold.State.CAPTURED, cause="capture", now=now)
    account.balance -= hold.amount
    account.save(update_fields=["balance"])
    LedgerEntry.objects.create(
        account=account, kind=LedgerEntry.Kind.DEBIT, amount=hold.amount, balance_after=account.balance,
        label=_("Paiement %(merchant)s (autorisation %(auth_code)s)") % {
            "merchant": hold.merchant_name or hold.merchant_id, "auth_code": hold.auth_code},
        hold=hold, created_at=now,
    )
    return SettlementOutcome(rc.APPROVED, "captured")


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


# --- 3-D Secure ACS ----------------------------------------------------------------------------------------


def _acs_event(record: AcsTransaction, kind: str, detail: str = "", *, now: dt.datetime) -> None:
    AcsEvent.objects.create(transaction=record, kind=kind, detail=detail[:200], at=now)


def acs_url() -> str:
    return settings.BANK_URL + "/acs/challenge"


@sensitive_variables()  # the AReq carries the card number
@transaction.atomic
def areq_answer(*, message: dict) -> dict:
    """Answer a verified AReq with an ARes: challenge (C) for a card enrolled with a code, authenticated (Y)
    for a frictionless one, unable (U, reason 13) for a card not enrolled or unknown to this directory;
    rejected (R, reason 04) for a card enrolled with a code whose holder failed CHALLENGE_FAILURE_LIMIT
    challenges within CHALLENGE_FAILURE_WINDOW.

    A re-sent AReq (same threeDSServerTransID, same card and amount) gets the same ARes.
    Raises acs.AReqError for a message to answer with Erro.
    """
    areq = acs.parse_areq(message)
    now = timezone.now()
    card = selectors.card_by_number(pan=areq.pan)
    bank = selectors.bank_for_number(pan=areq.pan)
    if card is not None and (bank is None or card.bank_id != bank.pk):
        card = None
    earlier = AcsTransaction.objects.filter(three_ds_server_trans_id=areq.three_ds_server_trans_id).first()
    if earlier is not None:
        if card is not None and earlier.card_id == card.pk and earlier.amount == from_minor(areq.amount_minor):
            return earlier.ares
        raise acs.AReqError(acs.ERR_DUPLICATE, "Duplicate data element", "threeDSServerTransID")

    base = {
        "messageType": "ARes",
        "messageVersion": areq.message_version,
        "threeDSServerTransID": areq.three_ds_server_trans_id,
    }
    if card is None:
        # Not a card of ours: no record to keep, and the same answer each time.
        return {**base, "dsTransID": str(uuid.uuid4()), "acsTransID": str(uuid.uuid4()),
                "transStatus": threeds.UNABLE, "transStatusReason": acs.REASON_NOT_ENROLLED}

    acs_trans_id, ds_trans_id = uuid.uuid4(), uuid.uuid4()
    base |= {"dsTransID": str(ds_trans_id), "acsTransID": str(acs_trans_id)}
    record = AcsTransaction(
        acs_trans_id=acs_trans_id, ds_trans_id=ds_trans_id, three_ds_server_trans_id=areq.three_ds_server_trans_id,
        card=card, message_version=areq.message_version, amount=from_minor(areq.amount_minor),
        currency=areq.currency, merchant_name=areq.merchant_name, acquirer_merchant_id=areq.acquirer_merchant_id,
        purchase_date=areq.purchase_date, three_ds_server_url=areq.three_ds_server_url,
        notification_url=areq.notification_url, language=areq.browser_language, created_at=now,
    )
    if card.three_ds == Card.ThreeDS.CHALLENGE and failed_challenges(card=card, now=now) >= CHALLENGE_FAILURE_LIMIT:
        # Too many failed challenges: no new code to guess, no new SMS to the holder's phone.
        logger.warning("ACS: challenge refused for card %s: %s failed within %s", card.masked_pan,
                       CHALLENGE_FAILURE_LIMIT, CHALLENGE_FAILURE_WINDOW)
        record.state, record.trans_status = AcsTransaction.State.REJECTED, threeds.REJECTED
        record.trans_status_reason = acs.REASON_FREQUENCY_LIMIT
        record.eci = acs.eci_for(card.brand, threeds.REJECTED)
        record.ended_at = now
        ares = {**base, "transStatus": threeds.REJECTED, "transStatusReason": acs.REASON_FREQUENCY_LIMIT}
    elif card.three_ds == Card.ThreeDS.CHALLENGE:
        record.state, record.trans_status = AcsTransaction.State.CHALLENGE, threeds.CHALLENGE
        ares = {**base, "transStatus": threeds.CHALLENGE, "acsURL": acs_url(), "acsChallengeMandated": "Y",
                "authenticationType": "02"}
    elif card.three_ds == Card.ThreeDS.FRICTIONLESS:
        record.state, record.trans_status = AcsTransaction.State.AUTHENTICATED, threeds.AUTHENTICATED
        record.eci = acs.eci_for(card.brand, threeds.AUTHENTICATED)
        record.ended_at = now
        ares = {**base, "transStatus": threeds.AUTHENTICATED, "eci": record.eci,
                "authenticationValue": acs.cavv(acs_trans_id=str(acs_trans_id), card_fingerprint=card.fingerprint,
                                                amount_minor=areq.amount_minor)}
    else:
        record.state, record.trans_status = AcsTransaction.State.NOT_ENROLLED, threeds.UNABLE
        record.trans_status_reason = acs.REASON_NOT_ENROLLED
        record.ended_at = now
        ares = {**base, "transStatus": threeds.UNABLE, "transStatusReason": acs.REASON_NOT_ENROLLED}
    record.ares = ares
    record.save()
    _acs_event(record, "areq", f"transStatus {ares['transStatus']}", now=now)
    return ares


def failed_challenges(*, card: Card, now: dt.datetime) -> int:
    """The card's challenges that failed within CHALLENGE_FAILURE_WINDOW: ended failed, or left open past their
    code's expiry (abandoned: its SMS was sent, nobody finished)."""
    since = now - CHALLENGE_FAILURE_WINDOW
    ended = AcsTransaction.objects.filter(card=card, state=AcsTransaction.State.FAILED, ended_at__gte=since)
    abandoned = AcsTransaction.objects.filter(card=card, state=AcsTransaction.State.CHALLENGE,
                                              otp_expires_at__gte=since, otp_expires_at__lte=now)
    return ended.count() + abandoned.count()


class ChallengeNotFound(LookupError):
    """No challenge of this bank matches the message."""


def _lock_challenge(acs_trans_id: str) -> AcsTransaction:
    try:
        key = uuid.UUID(str(acs_trans_id))
    except ValueError:
        raise ChallengeNotFound(acs_trans_id) from None
    record = AcsTransaction.objects.select_for_update().select_related("card__bank").filter(acs_trans_id=key).first()
    if record is None or not record.is_challenge:
        raise ChallengeNotFound(acs_trans_id)
    return record


def _end(record: AcsTransaction, *, authenticated: bool, reason: str = "", cancel: str = "", cause: str,
         now: dt.datetime) -> None:
    if authenticated:
        record.state, record.trans_status = AcsTransaction.State.AUTHENTICATED, threeds.AUTHENTICATED
    else:
        record.state, record.trans_status = AcsTransaction.State.FAILED, threeds.NOT_AUTHENTICATED
    record.trans_status_reason, record.challenge_cancel = reason, cancel
    record.eci = acs.eci_for(record.card.brand, record.trans_status)
    record.otp_digest = ""
    record.ended_at = now
    record.save(update_fields=["state", "trans_status", "trans_status_reason", "challenge_cancel", "eci",
                               "otp_digest", "ended_at", "otp_failures", "interaction_counter"])
    _acs_event(record, record.state, cause, now=now)


def _otp_scope(record: AcsTransaction) -> str:
    # Bound to the challenge and to the n-th code sent: an earlier code never matches a later one.
    return f"acs:{record.acs_trans_id}:{record.otp_sent_count}"


@sensitive_variables()  # the code in clear, and the SMS text
def _send_otp(record: AcsTransaction, *, now: dt.datetime) -> None:
    code = generate_numeric(OTP_LENGTH)
    record.otp_sent_count += 1
    record.otp_digest = code_digest(_otp_scope(record), code)
    record.otp_expires_at = now + OTP_LIFETIME
    record.save(update_fields=["otp_sent_count", "otp_digest", "otp_expires_at"])
    bank = record.card.bank
    with translation.override(record.language):  # the customer's language, from the AReq or the page's switch
        text = _(
            "%(bank)s : votre code de sécurité est %(code)s pour le paiement de %(amount)s chez %(merchant)s. "
            "Il expire dans %(minutes)s minutes. Ne le communiquez à personne."
        ) % {"bank": bank.name, "code": code, "amount": dh(record.amount), "merchant": record.merchant_name,
             "minutes": OTP_LIFETIME_MINUTES}
    sms_send(sender=bank.short_name, to=record.card.phone, text=text, secrets=[code])
    _acs_event(record, "otp_sent", f"code n° {record.otp_sent_count}", now=now)


def _expired(record: AcsTransaction, now: dt.datetime) -> bool:
    return record.otp_expires_at is not None and now >= record.otp_expires_at


def _end_if_expired(record: AcsTransaction, now: dt.datetime) -> bool:
    if _expired(record, now):
        _end(record, authenticated=False, reason=acs.REASON_TIMED_OUT, cancel=acs.CANCEL_TIMED_OUT,
             cause="code expired", now=now)
        return True
    return False


@dataclass(frozen=True)
class ChallengeStep:
    """What a step of the challenge led to. ``outcome``: open, wrong, authenticated, failed, expired,
    cancelled, resent, resend_limit, ended (nothing done: it had ended before)."""

    outcome: str
    transaction: AcsTransaction
    remaining_tries: int = 0
    remaining_sends: int = 0


def remaining_sends(record: AcsTransaction) -> int:
    """How many more codes « Renvoyer le code » may still send."""
    return max(0, OTP_MAX_SENDS - record.otp_sent_count)


def _closed_step(record: AcsTransaction, now: dt.datetime) -> ChallengeStep | None:
    """The step to show when the challenge is over (ended before, or expiring now), else None."""
    if record.ended:
        return ChallengeStep("ended", record)
    if _end_if_expired(record, now):
        return ChallengeStep("expired", record)
    return None


@transaction.atomic
def challenge_open(*, acs_trans_id: str, three_ds_server_trans_id: str) -> ChallengeStep:
    """The browser arrived with a CReq: send the SMS code (once; opening again does not send another)."""
    record = _lock_challenge(acs_trans_id)
    if record.three_ds_server_trans_id != str(three_ds_server_trans_id):
        raise ChallengeNotFound(acs_trans_id)
    now = timezone.now()
    if (closed := _closed_step(record, now)) is not None:
        return closed
    if record.otp_sent_count == 0:
        _send_otp(record, now=now)
    return ChallengeStep("open", record, OTP_MAX_TRIES - record.otp_failures, remaining_sends(record))


@sensitive_variables()  # the code typed
@transaction.atomic
def challenge_submit_code(*, acs_trans_id: str, code: str) -> ChallengeStep:
    """Check the code typed: right → authenticated (Y); wrong → one try less; the third wrong → failed (N)."""
    record = _lock_challenge(acs_trans_id)
    now = timezone.now()
    if (closed := _closed_step(record, now)) is not None:
        return closed
    record.interaction_counter += 1
    if record.otp_digest and code_matches(_otp_scope(record), code, record.otp_digest):
        _end(record, authenticated=True, cause="right code", now=now)
        return ChallengeStep("authenticated", record)
    record.otp_failures += 1
    if record.otp_failures >= OTP_MAX_TRIES:
        _end(record, authenticated=False, reason=acs.REASON_AUTH_FAILED, cause="wrong code, no try left", now=now)
        return ChallengeStep("failed", record)
    record.save(update_fields=["otp_failures", "interaction_counter"])
    _acs_event(record, "wrong_code", f"{record.otp_failures} wrong", now=now)
    return ChallengeStep("wrong", record, OTP_MAX_TRIES - record.otp_failures, remaining_sends(record))


@transaction.atomic
def challenge_resend_code(*, acs_trans_id: str) -> ChallengeStep:
    """A new code replaces the previous one (which stops working), within the limit of sends."""
    record = _lock_challenge(acs_trans_id)
    now = timezone.now()
    if (closed := _closed_step(record, now)) is not None:
        return closed
    if record.otp_sent_count >= OTP_MAX_SENDS:
        return ChallengeStep("resend_limit", record, OTP_MAX_TRIES - record.otp_failures, 0)
    _send_otp(record, now=now)
    return ChallengeStep("resent", record, OTP_MAX_TRIES - record.otp_failures, remaining_sends(record))


def challenge_set_language(*, acs_trans_id: str, language: str) -> None:
    """The cardholder switched the challenge page's language: the page and any code sent again speak it."""
    if language not in dict(settings.LANGUAGES):
        raise ValueError(f"not a language of the challenge page: {language!r}")
    AcsTransaction.objects.filter(acs_trans_id=acs_trans_id).update(language=language)


@transaction.atomic
def challenge_cancel(*, acs_trans_id: str) -> ChallengeStep:
    """« Annuler »: the authentication fails (N, cancelled by the cardholder)."""
    record = _lock_challenge(acs_trans_id)
    now = timezone.now()
    if (closed := _closed_step(record, now)) is not None:
        return closed
    _end(record, authenticated=False, reason=acs.REASON_AUTH_FAILED, cancel=acs.CANCEL_BY_CARDHOLDER,
         cause="cancelled by the cardholder", now=now)
    return ChallengeStep("cancelled", record)


def rreq_message(record: AcsTransaction) -> dict:
    """The RReq for an ended challenge (the authoritative result for the 3DS Server)."""
    message = {
        "messageType": "RReq",
        "messageVersion": record.message_version,
        "threeDSServerTransID": record.three_ds_server_trans_id,
        "acsTransID": str(record.acs_trans_id),
        "dsTransID": str(record.ds_trans_id),
        "transStatus": record.trans_status,
        "eci": record.eci,
        "interactionCounter": f"{record.interaction_counter:02d}",
        "messageCategory": "01",
    }
    if record.trans_status == threeds.AUTHENTICATED:
        message["authenticationValue"] = acs.cavv(acs_trans_id=str(record.acs_trans_id),
                                                  card_fingerprint=record.card.fingerprint,
                                                  amount_minor=to_minor(record.amount))
    else:
        message["transStatusReason"] = record.trans_status_reason
        if record.challenge_cancel:
            message["challengeCancel"] = record.challenge_cancel
    return message


def cres_message(record: AcsTransaction) -> dict:
    return {
        "messageType": "CRes",
        "messageVersion": record.message_version,
        "threeDSServerTransID": record.three_ds_server_trans_id,
        "acsTransID": str(record.acs_trans_id),
        "transStatus": record.trans_status,
        "challengeCompletionInd": "Y",
    }


def _post_rreq(record: AcsTransaction, body: bytes, signature: str, *, timeout: float) -> None:
    """One delivery try; raises on anything but a signed RRes for this transaction with resultsStatus 01."""
    response = httpx.post(
        record.three_ds_server_url, content=body, timeout=timeout,
        headers={"Content-Type": "application/json", threeds.SIGNATURE_HEADER: signature},
    )
    if response.status_code != 200:
        raise threeds.MessageError(f"HTTP {response.status_code}")
    rres = threeds.verify_body(response.content, response.headers.get(threeds.SIGNATURE_HEADER),
                               message_type="RRes")
    if (rres.get("threeDSServerTransID") != record.three_ds_server_trans_id
            or rres.get("acsTransID") != str(record.acs_trans_id)):
        raise threeds.MessageError("RRes for another transaction")
    if rres.get("resultsStatus") != "01":
        raise threeds.MessageError(f"resultsStatus {rres.get('resultsStatus')!r}")


def rreq_deliver(*, acs_trans_id: str, attempts: int = RREQ_ATTEMPTS) -> bool:
    """Send the RReq of an ended challenge to the 3DS Server until it acknowledges with a signed RRes, at most
    ``attempts`` times and within RREQ_BUDGET_SECONDS (the cardholder is waiting). True once delivered (then
    never sent again). Runs outside any transaction: it waits on the network."""
    record = selectors.acs_transaction(acs_trans_id=acs_trans_id)
    if record is None or not record.is_challenge or not record.ended:
        return False
    if record.rreq_delivered_at is not None:
        return True
    body, signature = threeds.sign_body(rreq_message(record))
    deadline = time.monotonic() + RREQ_BUDGET_SECONDS
    for attempt in range(1, attempts + 1):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        AcsTransaction.objects.filter(pk=record.pk).update(rreq_attempts=F("rreq_attempts") + 1)
        try:
            _post_rreq(record, body, signature, timeout=min(settings.PARTY_HTTP_TIMEOUT, left))
        except (httpx.HTTPError, threeds.MessageError) as exc:
            logger.warning("RReq %s not delivered (try %s): %s", record.acs_trans_id, attempt, type(exc).__name__)
            _acs_event(record, "rreq_failed", f"{type(exc).__name__}: {exc}", now=timezone.now())
            if attempt < attempts:
                time.sleep(min(RREQ_BACKOFF_SECONDS * attempt, max(0.0, deadline - time.monotonic())))
            continue
        now = timezone.now()
        with transaction.atomic():
            AcsTransaction.objects.filter(pk=record.pk, rreq_delivered_at__isnull=True).update(rreq_delivered_at=now)
            _acs_event(record, "rreq_delivered", f"try {attempt}", now=now)
        return True
    return False
