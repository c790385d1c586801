"""3-D Secure, the ACS side: AReq answers, the SMS code challenge, the RReq to the 3DS Server, and the check of
an authentication value (CAVV) that an authorization presents."""

import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from tasdid.core import threeds
from tasdid.core.codes import code_digest, code_matches, generate_numeric
from tasdid.core.http import party_post
from tasdid.core.l10n import amount as written_amount
from tasdid.core.money import from_minor, to_minor
from tasdid.messaging.services import sms_send

from .. import acs, selectors
from ..models import AcsEvent, AcsTransaction, Card

logger = logging.getLogger(__name__)

OTP_LENGTH = 6
OTP_LIFETIME = dt.timedelta(minutes=5)
OTP_LIFETIME_MINUTES = OTP_LIFETIME // dt.timedelta(minutes=1)  # as the SMS and the challenge page say it
OTP_MAX_TRIES = 3
OTP_MAX_SENDS = 3  # the first code and two more on « Renvoyer le code »
CAVV_LIFETIME = dt.timedelta(minutes=30)
# EMV 3DS: the ACS waits this long after its ARes C for the browser's first CReq; later, the challenge has failed
# (challengeCancel 05). The CReq carries no key: what makes it worth a challenge is that it names an ACS
# transaction of ours, from an AReq the directory sent, for the first time, within this time.
CREQ_LIFETIME = dt.timedelta(seconds=30)
# A card whose holder failed this many challenges (wrong codes, cancelled, expired or abandoned) within the
# window gets no new challenge, hence no new SMS and no new tries, until the oldest failure leaves the window.
CHALLENGE_FAILURE_LIMIT = 3
CHALLENGE_FAILURE_WINDOW = dt.timedelta(hours=24)
RREQ_ATTEMPTS = 3
RREQ_BACKOFF_SECONDS = 0.5
RREQ_BUDGET_SECONDS = 20.0


# --- 3-D Secure ACS ----------------------------------------------------------------------------------------


def _acs_event(record: AcsTransaction, kind: str, detail: str = "", *, now: dt.datetime) -> None:
    AcsEvent.objects.create(transaction=record, kind=kind, detail=detail[:200], at=now)


def acs_url() -> str:
    return settings.BANK_URL + "/acs/challenge"



def presented_authentication(
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



def cavv_used(record: AcsTransaction, response_code: str, *, now: dt.datetime) -> None:
    """A CAVV serves one authorization, whatever its answer."""
    record.cavv_used_at = now
    record.save(update_fields=["cavv_used_at"])
    _acs_event(record, "cavv_used", f"authorization {response_code}", now=now)


@sensitive_variables()  # the AReq carries the card number
@transaction.atomic
def areq_answer(*, message: dict) -> dict:
    """Answer a verified AReq (from the directory, the switch) with an ARes: challenge (C) for a card enrolled
    with a code, authenticated (Y) for a frictionless one, unable (U, reason 13) for a card not enrolled or
    unknown to this ACS;
    rejected (R, reason 04) for a card enrolled with a code whose holder failed CHALLENGE_FAILURE_LIMIT
    challenges within CHALLENGE_FAILURE_WINDOW.

    A re-sent AReq (same threeDSServerTransID, same card and amount) gets the same ARes.
    Raises acs.AReqError for a message to answer with Erro.
    """
    areq = acs.parse_areq(message)
    now = timezone.now()
    card = selectors.card_by_number(pan=areq.pan)  # the directory routed the card's BIN to this ACS
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
        return {**base, "dsTransID": areq.ds_trans_id, "acsTransID": str(uuid.uuid4()),
                "transStatus": threeds.UNABLE, "transStatusReason": acs.REASON_NOT_ENROLLED}

    acs_trans_id = uuid.uuid4()
    ds_trans_id = uuid.UUID(areq.ds_trans_id)
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
    record.otp_digest = code_digest(_otp_scope(record), code, purpose="otp")
    record.otp_expires_at = now + OTP_LIFETIME
    record.save(update_fields=["otp_sent_count", "otp_digest", "otp_expires_at"])
    bank = record.card.bank
    with translation.override(record.language):  # the customer's language, from the AReq or the page's switch
        text = _(
            "%(bank)s : votre code de sécurité est %(code)s pour le paiement de %(amount)s chez %(merchant)s. "
            "Il expire dans %(minutes)s minutes. Ne le communiquez à personne."
        ) % {"bank": bank.name, "code": code, "amount": sms_amount(record.amount), "merchant": record.merchant_name,
             "minutes": OTP_LIFETIME_MINUTES}
    sms_send(sender=bank.short_name, to=record.card.phone, text=text, secrets=[code])
    _acs_event(record, "otp_sent", f"code n° {record.otp_sent_count}", now=now)


def sms_amount(value) -> str:
    """The amount as the page in the customer's language writes it ("285.00 DH", "285.00 درهم"), with a plain
    space: a no-break space is not in the GSM 7-bit alphabet and would turn a French SMS into UCS-2."""
    return written_amount(value).replace("\u00a0", " ")


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
    """What a step of the challenge led to. ``outcome``: open, late (the CReq came too late), wrong, authenticated,
    failed, expired, cancelled, resent, resend_limit, ended (nothing done: it had ended before)."""

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


class CReqReplayed(ChallengeNotFound):
    """A CReq for a challenge that already received its CReq: it opens nothing, sends nothing, changes nothing."""

    def __init__(self, record: AcsTransaction):
        super().__init__(str(record.acs_trans_id))
        self.transaction = record


@transaction.atomic
def challenge_open(*, acs_trans_id: str, three_ds_server_trans_id: str) -> ChallengeStep:
    """The browser arrived with a CReq (under no key: it names the transaction, nothing more). Accepted once, for a
    challenge this ACS answered C to an AReq from the directory, within CREQ_LIFETIME of that answer: the SMS code
    is sent. Too late: the challenge fails (N, challengeCancel 05) and the step says so (outcome "late").
    Any CReq after the first raises CReqReplayed; one naming no such challenge, ChallengeNotFound."""
    record = _lock_challenge(acs_trans_id)
    if record.three_ds_server_trans_id != str(three_ds_server_trans_id):
        raise ChallengeNotFound(acs_trans_id)
    now = timezone.now()
    if record.creq_received_at is not None:
        raise CReqReplayed(record)
    record.creq_received_at = now
    record.save(update_fields=["creq_received_at"])
    if (closed := _closed_step(record, now)) is not None:
        return closed
    if now > record.created_at + CREQ_LIFETIME:
        _end(record, authenticated=False, reason=acs.REASON_TIMED_OUT, cancel=acs.CANCEL_NO_CREQ,
             cause=f"CReq reçue {int((now - record.created_at).total_seconds())} s après l'ARes", now=now)
        return ChallengeStep("late", record)
    _acs_event(record, "creq", "CReq reçue", now=now)
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
    if record.otp_digest and code_matches(_otp_scope(record), code, record.otp_digest, purpose="otp"):
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
    response = party_post(
        record.three_ds_server_url, content=body, timeout=timeout,
        headers={"Content-Type": "application/json", threeds.SIGNATURE_HEADER: signature},
    )
    if response.status_code != 200:
        raise threeds.MessageError(f"HTTP {response.status_code}")
    rres = threeds.verify_body(response.content, response.headers.get(threeds.SIGNATURE_HEADER),
                               message_type="RRes", link=threeds.LINK_DIRECTORY_ACS)
    if (rres.get("threeDSServerTransID") != record.three_ds_server_trans_id
            or rres.get("acsTransID") != str(record.acs_trans_id)):
        raise threeds.MessageError("RRes for another transaction")
    if rres.get("resultsStatus") != "01":
        raise threeds.MessageError(f"resultsStatus {rres.get('resultsStatus')!r}")


def rreq_deliver(*, acs_trans_id: str, attempts: int = RREQ_ATTEMPTS) -> bool:
    """Send the RReq of an ended challenge to the directory (the AReq's threeDSServerURL, which the directory
    set to its own relay to the 3DS Server) until it acknowledges with a signed RRes, at most
    ``attempts`` times and within RREQ_BUDGET_SECONDS (the cardholder is waiting). True once delivered (then
    never sent again). Runs outside any transaction: it waits on the network."""
    record = selectors.acs_transaction(acs_trans_id=acs_trans_id)
    if record is None or not record.is_challenge or not record.ended:
        return False
    if record.rreq_delivered_at is not None:
        return True
    body, signature = threeds.sign_body(rreq_message(record), link=threeds.LINK_DIRECTORY_ACS)
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
