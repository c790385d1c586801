"""The payment as it travels between the parties: 3-D Secure with the directory, the authorization with the
acquirer, the callback to the merchant, then the capture or the void.

Each step moves the state machine in its own short transaction (``services``) and calls the other party
only after that transaction has committed: no database transaction is ever open while another party is
called, so a slow bank or merchant never holds a lock.
"""

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django.views.decorators.debug import sensitive_variables

from tasdid.core import threeds
from tasdid.core.acquiring import (
    Acquirer,
    AcquirerUnavailable,
    Authentication,
    AuthorizationRequest,
    CardData,
    RefundRequest,
    SettlementRequest,
)
from tasdid.core.cards import fingerprint, mask
from tasdid.core.http import party_post
from tasdid.core.money import MAD_NUMERIC, to_minor

from . import protocol, selectors, services, threeds_server, vault
from .models import (
    ApiRequestRecord,
    Attempt,
    AttemptState,
    CallbackAnswer,
    Merchant,
    Operation,
    OperationState,
    PaymentSession,
    PendingReversal,
    SessionState,
)

logger = logging.getLogger(__name__)
_fr = protocol.errmsg  # an ErrMsg is the protocol's French text, whatever language the customer's pages speak


@dataclass(frozen=True)
class BrowserStep:
    """Where the customer's browser goes next: the bank's challenge page or the merchant's return URL
    (an auto-submitted form), or the gateway's own page saying the order is in progress or processed."""

    kind: str  # "challenge", "merchant" or "status"
    action: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    session: PaymentSession | None = None


class ChallengeError(Exception):
    """A CRes or its threeDSSessionData that cannot belong to any attempt of ours."""


def get_acquirer() -> Acquirer:
    return import_string(settings.GATEWAY_ACQUIRER)()


def _outside_transaction() -> None:
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("another party must never be called inside a database transaction")


def _status(attempt_or_session: Attempt | PaymentSession) -> BrowserStep:
    session = attempt_or_session if isinstance(attempt_or_session, PaymentSession) else attempt_or_session.session
    session.refresh_from_db()
    return BrowserStep(kind="status", session=session)


# --- card submit and 3-D Secure ----------------------------------------------------------------------


@sensitive_variables()  # the card, the AReq: hidden in error reports, with every frame below
def submit_card(*, session: PaymentSession, card: CardData, brand: str, selection: str | None) -> BrowserStep:
    """A valid card form was posted: start one attempt (services.SessionBusy if the order is already being
    paid), authenticate it with the directory, and go on as the ARes says."""
    attempt = services.attempt_start(session_id=session.pk, brand=brand, masked_pan=mask(card.pan),
                                     pan_fingerprint=fingerprint(card.pan, purpose="gateway-cards"),
                                     selection=selection)
    _outside_transaction()
    areq = threeds_server.build_areq(attempt=attempt, merchant=session.merchant, card=card, now=timezone.now(),
                                     lang=session.lang)
    try:
        ares = threeds_server.send_areq(areq)
    except threeds_server.DirectoryError as exc:
        logger.warning("gateway: 3-D Secure directory fault for %s: %s", attempt.trans_id, exc)
        moved = services.attempt_fail(
            attempt_id=attempt.pk, cause=f"annuaire 3-D Secure en défaut ({exc})"[:255],
            err_msg=_fr("Le service d'authentification 3-D Secure est indisponible, veuillez réessayer plus tard"),
            md_status=protocol.MD_STATUS_ERROR)
        return conclude(attempt_id=attempt.pk) if moved else _status(attempt)

    status = ares["transStatus"]
    ds_trans_id = str(ares.get("dsTransID", ""))
    if status == threeds.CHALLENGE:
        moved = services.attempt_challenge(attempt_id=attempt.pk, ds_trans_id=ds_trans_id,
                                           acs_trans_id=str(ares["acsTransID"]))
        if moved is None:
            return _status(attempt)
        return BrowserStep(kind="challenge", action=str(ares["acsURL"]), fields={
            "creq": threeds_server.build_creq(attempt=moved),
            "threeDSSessionData": vault.seal(attempt_id=moved.pk,
                                             threeds_server_trans_id=moved.threeds_server_trans_id, card=card),
        })
    if status in (threeds.AUTHENTICATED, threeds.ATTEMPTED) and ares.get("eci") and ares.get("authenticationValue"):
        authentication = Authentication(eci=str(ares["eci"])[:2], authentication_value=str(ares["authenticationValue"]),
                                        ds_trans_id=ds_trans_id, trans_status=status)
        return authorize(attempt_id=attempt.pk, card=card, authentication=authentication,
                         from_state=AttemptState.AUTHENTICATING, trans_status=status, eci=authentication.eci,
                         md_status=protocol.MD_STATUS[status])
    if status == threeds.UNABLE:
        return authorize(attempt_id=attempt.pk, card=card, authentication=None,
                         from_state=AttemptState.AUTHENTICATING, trans_status=status,
                         eci=threeds.ECI_NONE.get(brand, "07"), md_status=protocol.MD_STATUS[status])
    if status in (threeds.AUTHENTICATED, threeds.ATTEMPTED):
        cause, err, md = (f"ARes {status} sans ECI ni CAVV", _fr("Authentification 3-D Secure échouée"),
                          protocol.MD_STATUS_ERROR)
    elif status == threeds.NOT_AUTHENTICATED and ares.get("transStatusReason") == threeds.REASON_NO_CARD_RECORD:
        cause = "3-D Secure : carte dans aucune plage BIN de l'annuaire (ARes N, raison 08)"
        err = _fr("Carte non reconnue : aucune banque émettrice ne correspond à ce numéro de carte. Vérifiez le "
                  "numéro ou utilisez une autre carte.")
        md = protocol.MD_STATUS["N"]
    elif status == threeds.REJECTED and ares.get("transStatusReason") == threeds.REASON_FREQUENCY_LIMIT:
        cause = "3-D Secure : authentification refusée, trop de tentatives pour cette carte (ARes R, raison 04)"
        err = _fr("Authentification 3-D Secure refusée par votre banque : trop de tentatives ont échoué pour cette "
                "carte. Réessayez plus tard.")
        md = protocol.MD_STATUS["R"]
    else:
        cause, err, md = f"3-D Secure : authentification refusée (ARes {status})", \
            _fr("Authentification 3-D Secure échouée"), protocol.MD_STATUS["N"]
    moved = services.attempt_fail(attempt_id=attempt.pk, cause=cause, err_msg=err, md_status=md,
                                  trans_status=status, eci=str(ares.get("eci", ""))[:2])
    return conclude(attempt_id=attempt.pk) if moved else _status(attempt)


@sensitive_variables()  # the sealed and unsealed card
def complete_challenge(*, cres_text: str, session_data: str) -> BrowserStep:
    """The customer is back from the bank's challenge page. The CRes is no proof of anything (it comes under no
    key, as EMV 3DS's browser flow has it): it names the attempt, which must also be the one sealed in
    threeDSSessionData. The result that counts is the one the ACS sent by RReq, through the directory, signed on
    each link; a CRes that comes before it (forged, or the browser's own) changes nothing: the attempt waits for
    its RReq or its deadline (the sweeper)."""
    try:
        cres = threeds.decode_browser_message(cres_text, message_type="CRes")
    except threeds.MessageError as exc:
        raise ChallengeError(str(exc)) from exc
    attempt = selectors.attempt_by_threeds_id(cres["threeDSServerTransID"])
    if attempt is None or (attempt.acs_trans_id and cres["acsTransID"] != attempt.acs_trans_id):
        raise ChallengeError("CRes for no attempt of ours")
    try:
        sealed = vault.unseal(session_data)
    except vault.VaultError:
        # Without the sealed card data nothing can be authorized: the challenge came back too late.
        moved = services.attempt_fail(
            attempt_id=attempt.pk, cause="retour du défi 3-D Secure sans données de session valables",
            err_msg=_fr("Authentification 3-D Secure non aboutie dans le délai"), md_status=protocol.MD_STATUS["N"])
        return conclude(attempt_id=attempt.pk) if moved else _status(attempt)
    if sealed.attempt_id != attempt.pk or sealed.threeds_server_trans_id != attempt.threeds_server_trans_id:
        raise ChallengeError("threeDSSessionData of another attempt")
    if attempt.state != AttemptState.CHALLENGE:
        return _status(attempt)  # a replayed CRes, the back button: nothing happens twice
    if attempt.rreq_received_at is None:
        logger.warning("gateway: CRes for %s before any RReq: nothing changes", attempt.trans_id)
        return _status(attempt)
    status = attempt.rreq_trans_status
    if status in (threeds.AUTHENTICATED, threeds.ATTEMPTED) and attempt.rreq_authentication_value:
        authentication = Authentication(eci=attempt.rreq_eci, authentication_value=attempt.rreq_authentication_value,
                                        ds_trans_id=attempt.ds_trans_id, trans_status=status)
        return authorize(attempt_id=attempt.pk, card=sealed.card, authentication=authentication,
                         from_state=AttemptState.CHALLENGE, trans_status=status, eci=attempt.rreq_eci,
                         md_status=protocol.MD_STATUS[status])
    moved = services.attempt_fail(attempt_id=attempt.pk, cause=f"3-D Secure : RReq {status}",
                                  err_msg=_fr("Authentification 3-D Secure échouée"),
                                  md_status=protocol.MD_STATUS["N"], trans_status=status or "N",
                                  eci=attempt.rreq_eci)
    return conclude(attempt_id=attempt.pk) if moved else _status(attempt)


# --- authorization, callback, settlement -------------------------------------------------------------


@sensitive_variables()  # the card and the authorization request
def authorize(*, attempt_id: int, card: CardData, authentication: Authentication | None, from_state: str,
              trans_status: str, eci: str, md_status: str) -> BrowserStep:
    stan = services.next_stan()
    attempt = services.attempt_begin_authorization(
        attempt_id=attempt_id, from_state=from_state, trans_status=trans_status, eci=eci, md_status=md_status,
        stan=stan, ds_trans_id=authentication.ds_trans_id if authentication else None)
    if attempt is None:
        return _status(Attempt.objects.select_related("session").get(pk=attempt_id))
    _outside_transaction()
    session = attempt.session
    request = AuthorizationRequest(
        card=card, amount_minor=to_minor(attempt.amount), currency=MAD_NUMERIC,
        merchant_id=session.merchant.client_id, merchant_name=session.merchant.name, order_id=session.oid,
        stan=attempt.stan, transmitted_at=attempt.transmitted_at, authentication=authentication,
    )
    try:
        result = get_acquirer().authorize(request)
    except AcquirerUnavailable as exc:
        logger.warning("gateway: no authorization answer for %s (%s): reversing", attempt.trans_id, type(exc).__name__)
        services.attempt_authorization_lost(attempt_id=attempt.pk,
                                            cause="pas de réponse d'autorisation : annulation (reversal)")
    except Exception as exc:  # the outcome is unknown: reverse whatever the bank decided
        logger.error("gateway: authorization of %s failed with %s: reversing", attempt.trans_id, type(exc).__name__)
        services.attempt_authorization_lost(attempt_id=attempt.pk,
                                            cause=f"erreur de l'acquéreur ({type(exc).__name__}) : annulation")
    else:
        return _conclude(services.attempt_record_authorization(attempt_id=attempt.pk, result=result))
    return conclude(attempt_id=attempt.pk)


def outcome_of(attempt: Attempt) -> protocol.Outcome:
    at = timezone.localtime(attempt.transmitted_at or attempt.created_at)
    return protocol.Outcome(
        proc_return_code=attempt.proc_return_code or protocol.ERROR_CODE, err_msg=attempt.err_msg,
        auth_code=attempt.auth_code, trans_id=attempt.trans_id, host_ref_num=attempt.rrn,
        masked_pan=attempt.masked_pan, card_brand=attempt.brand, trx_date=at.strftime("%Y%m%d %H:%M:%S"),
        md_status=attempt.md_status, eci=attempt.eci, paid_amount=attempt.amount, paid_items=attempt.paid_refs,
        deferred_items=attempt.deferred_refs,
    )


# The callback's tries while the customer waits: pauses between them, and the time they may take together.
CALLBACK_INLINE_PAUSES = (0.5, 1.0)
CALLBACK_INLINE_BUDGET = 15.0


def send_callback(url: str, fields: dict[str, str], *, timeout: float | None = None) -> str:
    """POST the result to the merchant's callbackUrl once: its answer (POSTAUTH, APPROVED, FAILURE), or
    protocol.NOT_DELIVERED when nothing reached it (a URL that cannot be sent to, connection refused, name unknown,
    connect timeout, a 4xx refusal), or protocol.AMBIGUOUS when the request went out and no usable answer came
    back (read timeout, connection dropped, a 5xx, a reply that says nothing): then the merchant may have
    recorded the payment."""
    _outside_transaction()
    try:
        host = protocol.host_of_url(url)
    except ValueError:
        host = "(adresse invalide)"
    try:
        response = party_post(url, data=fields, timeout=timeout or settings.PARTY_HTTP_TIMEOUT)
    except (httpx.InvalidURL, httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
            httpx.UnsupportedProtocol) as exc:  # the request could not be built or its connection made
        logger.warning("gateway: callback to %s not delivered: %s", host, type(exc).__name__)
        return protocol.NOT_DELIVERED
    except httpx.HTTPError as exc:
        logger.warning("gateway: callback to %s sent, no answer: %s", host, type(exc).__name__)
        return protocol.AMBIGUOUS
    outcome = protocol.callback_outcome(response.status_code, response.text[:2000])
    if outcome in (protocol.NOT_DELIVERED, protocol.AMBIGUOUS):
        logger.warning("gateway: callback to %s answered HTTP %s without a usable answer", host,
                       response.status_code)
    return outcome


def deliver_callback(*, attempt_id: int, tries: int = 1) -> Attempt:
    """Send the callback, up to ``tries`` times in a row (short pauses, CALLBACK_INLINE_BUDGET in all), until
    the merchant answers or it is certain nothing reached it (services.attempt_record_callback decides); nothing
    when the merchant has answered already. The attempt as last recorded is returned. Each try is recorded as begun
    before it is sent (services.attempt_begin_callback). Every try sends the
    same fields and the same HASH: the merchant answers a callback sent again as it answered it the first time.
    Without an answer the authorization stands and the task worker tries again."""
    return _deliver_callback(Attempt.objects.select_related("session__merchant").get(pk=attempt_id), tries=tries)


def _deliver_callback(attempt: Attempt, *, tries: int) -> Attempt:
    """deliver_callback, on the attempt as just read or recorded (its session and merchant loaded along)."""
    if attempt.callback_answer:  # the merchant has answered: nothing more to send
        return attempt
    session = attempt.session
    fields = protocol.result_fields(session.request_fields, outcome_of(attempt),
                                    store_key=selectors.session_store_key(session), callback=True)
    url = protocol.field(session.request_fields, "callbackUrl")
    ends = time.monotonic() + CALLBACK_INLINE_BUDGET
    for n in range(tries):
        left = ends - time.monotonic()
        last = n == tries - 1 or left < 1 + CALLBACK_INLINE_PAUSES[min(n, len(CALLBACK_INLINE_PAUSES) - 1)]
        if services.attempt_begin_callback(attempt_id=attempt.pk) is None:
            # answered meanwhile (another sender): nothing to send
            return Attempt.objects.select_related("session__merchant").get(pk=attempt.pk)
        answer = send_callback(url, fields, timeout=min(settings.PARTY_HTTP_TIMEOUT, max(left, 1.0)))
        attempt = services.attempt_record_callback(attempt_id=attempt.pk, answer=answer, schedule_retry=last)
        if attempt.callback_answer or last:
            return attempt
        time.sleep(CALLBACK_INLINE_PAUSES[min(n, len(CALLBACK_INLINE_PAUSES) - 1)])
    return attempt  # pragma: no cover - the loop returns on its last try


def redeliver(*, attempt_id: int) -> Attempt:
    """The merchant asks for the callback once more (the order status query, ``action=redeliver``): one try now,
    recorded as any try, then the settlement its answer decides. Only while the merchant's answer is missing on
    an authorization that stands (waiting for a retry, or kept for reconciliation), and no other try is under
    way: otherwise nothing is sent, so that a replayed or repeated request sends nothing more."""
    attempt = Attempt.objects.get(pk=attempt_id)
    if (attempt.state != AttemptState.AUTHORIZED or attempt.callback_answer
            or services.callback_in_flight(attempt, now=timezone.now())):
        return attempt
    attempt = deliver_callback(attempt_id=attempt.pk)
    return settle(attempt_id=attempt.pk)


def order_status(*, merchant: Merchant, query: protocol.StatusQuery, store_key: str | None = None) -> dict[str, str]:
    """The signed answer to a merchant's status query, signed with ``store_key`` (the key that signed the query;
    the current one by default); with ``action=redeliver``, the callback is sent once more first (``redeliver``:
    only while the merchant's answer is missing). Called outside any transaction."""
    store_key = store_key or merchant.store_key
    session, attempt = selectors.order_of(merchant, query.oid)
    if query.action == "redeliver" and attempt is not None and attempt.state == AttemptState.AUTHORIZED \
            and not attempt.callback_answer:
        _outside_transaction()
        redeliver(attempt_id=attempt.pk)
        session, attempt = selectors.order_of(merchant, query.oid)
    status = selectors.order_status(session, attempt)
    callback_fields = None
    if attempt is not None and attempt.authorized_at is not None:
        callback_fields = protocol.result_fields(session.request_fields, outcome_of(attempt),
                                                 store_key=store_key, callback=True)
    captured = selectors.captured_amount(attempt, decided=True) if status == "CAPTURED" else Decimal("0.00")
    return protocol.status_answer(query, order_status=status, captured_amount=captured,
                                  callback_fields=callback_fields, store_key=store_key)


def conclude(*, attempt_id: int) -> BrowserStep:
    """Tell the merchant (once), settle as it answered, and send the browser back to it."""
    return _conclude(Attempt.objects.select_related("session__merchant").get(pk=attempt_id))


def _conclude(attempt: Attempt) -> BrowserStep:
    """conclude, on the attempt as just read or recorded (its session and merchant loaded along)."""
    attempt = _deliver_callback(attempt, tries=services.CALLBACK_INLINE_TRIES)
    return _merchant_return(_settle(attempt))


def _settlement_request(attempt: Attempt, operation: Operation) -> SettlementRequest:
    session = attempt.session
    return SettlementRequest(
        original_stan=attempt.stan, original_transmitted_at=attempt.transmitted_at,
        amount_minor=to_minor(operation.amount), currency=MAD_NUMERIC, merchant_id=session.merchant.client_id,
        order_id=session.oid, stan=operation.stan, transmitted_at=operation.transmitted_at, rrn=attempt.rrn,
        auth_code=attempt.auth_code,
    )


def settle(*, attempt_id: int) -> Attempt:
    """Send the capture or the void an attempt waits for (its PENDING operation row), under a new STAN and DE7
    recorded first (services.operation_begin_send); a refusal or a fault is retried by a task later."""
    return _settle(Attempt.objects.select_related("session__merchant").get(pk=attempt_id))


def _settle(attempt: Attempt) -> Attempt:
    """settle, on the attempt as just read or recorded (its session and merchant loaded along): the attempt as
    the settlement left it."""
    attempt_id = attempt.pk
    if attempt.state not in (AttemptState.CAPTURING, AttemptState.VOIDING):
        return attempt
    capture = attempt.state == AttemptState.CAPTURING
    word = "remise (capture)" if capture else "annulation (void)"
    pending = selectors.pending_settlement(attempt)
    if pending is None:  # a settlement recorded before the operation rows, or settled meanwhile
        return attempt
    operation = services.operation_begin_send(operation_id=pending.pk)
    if operation is None:
        return Attempt.objects.select_related("session__merchant").get(pk=attempt_id)
    _outside_transaction()
    acquirer = get_acquirer()
    request = _settlement_request(attempt, operation)
    code = ""
    try:
        result = acquirer.capture(request) if capture else acquirer.void(request)
    except AcquirerUnavailable:
        accepted, detail = False, f"{word} sans réponse"
    except Exception as exc:
        logger.error("gateway: %s of %s failed with %s", word, attempt.trans_id, type(exc).__name__)
        accepted, detail = False, f"{word} en erreur ({type(exc).__name__})"
    else:
        code = result.response_code
        accepted, detail = result.accepted, f"{word} : code {result.response_code} (STAN {operation.stan})"
    return services.attempt_record_settlement(attempt_id=attempt.pk, accepted=accepted, detail=detail,
                                              response_code=code)


def is_success(attempt: Attempt) -> bool:
    """The customer goes to okUrl: the authorization stands (captured, being captured, kept by the merchant, or
    waiting for the merchant's answer to the callback: the merchant's page then shows its receipt if it
    recorded the payment, else that the payment is not confirmed yet)."""
    return attempt.state in (AttemptState.CAPTURING, AttemptState.CAPTURED) or (
        attempt.state == AttemptState.AUTHORIZED and attempt.callback_answer == CallbackAnswer.APPROVED
    ) or services.callback_pending(attempt)


def merchant_return(*, attempt_id: int) -> BrowserStep:
    return _merchant_return(Attempt.objects.select_related("session__merchant").get(pk=attempt_id))


def _merchant_return(attempt: Attempt) -> BrowserStep:
    """merchant_return, on the attempt as just read or recorded (its session and merchant loaded along)."""
    session = attempt.session
    ok = is_success(attempt)
    fields = protocol.result_fields(session.request_fields, outcome_of(attempt),
                                    store_key=selectors.session_store_key(session), callback=False)
    url = protocol.field(session.request_fields, "okUrl" if ok else "failUrl")
    return BrowserStep(kind="merchant", action=url, fields=fields, session=session)


def _closed_fields(session: PaymentSession, *, callback: bool) -> dict[str, str]:
    """The result of a session closed without any card attempt (expired, cancelled), signed for the merchant."""
    items = protocol.items_of(session.items)
    err_msg = _fr("Paiement annulé par le client") if session.state == SessionState.CANCELLED else _fr(
        "Session de paiement expirée")
    outcome = protocol.Outcome(
        proc_return_code=protocol.ERROR_CODE, err_msg=err_msg, auth_code="", trans_id="", host_ref_num="",
        masked_pan="", card_brand="", trx_date=timezone.localtime(session.updated_at).strftime("%Y%m%d %H:%M:%S"),
        md_status="", eci="", paid_amount=protocol.payable(session.amount, items, session.deferred_refs),
        paid_items=services.paid_refs_of(session), deferred_items=session.deferred_refs,
    )
    return protocol.result_fields(session.request_fields, outcome, store_key=selectors.session_store_key(session),
                                  callback=callback)


def closed_return(*, session: PaymentSession) -> BrowserStep:
    """The way back to the merchant's failUrl from a session whose time ran out or that the customer cancelled."""
    return BrowserStep(kind="merchant", action=protocol.field(session.request_fields, "failUrl"),
                       fields=_closed_fields(session, callback=False), session=session)


def cancel(*, session_id: int) -> BrowserStep:
    """« Annuler »: the session ends cancelled (services.SessionBusy if a card is being paid or it ended), the
    merchant is told by the usual failure callback (its answer changes nothing here), and the browser goes
    back to failUrl with ProcReturnCode 99."""
    session = services.session_cancel(session_id=session_id)
    _outside_transaction()
    answer = send_callback(protocol.field(session.request_fields, "callbackUrl"),
                           _closed_fields(session, callback=True))
    services.session_note(session_id=session.pk, cause=f"réponse du marchand au rappel d'annulation : {answer}")
    return closed_return(session=session)


# --- operations a merchant asks for: capture, void, refund ------------------------------------------------


def capture(*, attempt_id: int, amount: Decimal | None, requested_by: str,
            api_request: ApiRequestRecord | None = None) -> Operation:
    """Capture an authorization the merchant kept (its callback answered APPROVED): the whole authorized amount
    (``amount`` None) or part of it, once (a partial capture releases the rest, as CMI's PostAuth). Recorded
    first (services.capture_open, committed; services.OperationRefused when not allowed, nothing sent), then sent
    as a 0220 outside any transaction; not accepted, it is sent again by the task worker until it is. Asked
    twice (at once or not), the capture is recorded and sent once: the second call gets the same row.
    ``api_request``: the XML API request's claim, linked to the row as it is recorded (services.ApiClaimLost when
    that claim was taken over meanwhile: nothing recorded, nothing sent)."""
    opened = services.capture_open(attempt_id=attempt_id, amount=amount, requested_by=requested_by,
                                   api_request=api_request)
    if opened.created:
        settle(attempt_id=attempt_id)
    return Operation.objects.get(pk=opened.operation.pk)


def void(*, attempt_id: int, requested_by: str, api_request: ApiRequestRecord | None = None) -> Operation:
    """Void an authorization the merchant kept and did not capture (a 0400 of the 0100, the hold released).
    Recorded first (services.void_open; OperationRefused after a capture: ``already_captured``), then sent,
    again by the task worker until acknowledged. Asked twice, the void is recorded and sent once. ``api_request``:
    as for capture."""
    opened = services.void_open(attempt_id=attempt_id, requested_by=requested_by, api_request=api_request)
    if opened.created:
        settle(attempt_id=attempt_id)
    return Operation.objects.get(pk=opened.operation.pk)


def refund(*, attempt_id: int, amount: Decimal, requested_by: str, expected_left: Decimal | None = None,
           api_request: ApiRequestRecord | None = None) -> Operation:
    """Refund ``amount`` of a captured attempt to the card (whole or part; several refunds up to what was
    captured): the refund is recorded first (services.refund_open, committed; services.RefundRefused when it is
    not allowed, nothing sent), then sent to the acquirer outside any transaction, then its answer recorded.
    No answer: its reversal is owed and the refund ends REVERSED once acknowledged; a crash after the send
    leaves it PENDING, and the sweeper reverses it (sweep_operations). Never a refund the gateway does not know.
    ``api_request``: as for capture."""
    operation = services.refund_open(attempt_id=attempt_id, amount=amount, requested_by=requested_by,
                                     expected_left=expected_left, api_request=api_request)
    return send_operation(operation_id=operation.pk)


def send_operation(*, operation_id: int) -> Operation:
    """Send a PENDING refund (its STAN and DE7 as recorded) and record the answer."""
    _outside_transaction()
    operation = Operation.objects.select_related("attempt__session__merchant").get(pk=operation_id)
    if operation.state != OperationState.PENDING:
        return operation
    attempt = operation.attempt
    session = attempt.session
    request = RefundRequest(
        rrn=attempt.rrn, original_stan=attempt.stan, original_transmitted_at=attempt.transmitted_at,
        amount_minor=to_minor(operation.amount), currency=operation.currency, merchant_id=session.merchant.client_id,
        order_id=session.oid, stan=operation.stan, transmitted_at=operation.transmitted_at,
        merchant_name=session.merchant.name)
    try:
        result = get_acquirer().refund(request)
    except AcquirerUnavailable as exc:
        logger.warning("gateway: no answer to the refund STAN %s of %s (%s): reversing", operation.stan,
                       attempt.trans_id, type(exc).__name__)
        return services.operation_reverse(operation_id=operation.pk,
                                          cause="pas de réponse au remboursement : annulation (reversal)")
    except Exception as exc:  # the outcome is unknown: reverse whatever the bank decided
        logger.error("gateway: refund STAN %s of %s failed with %s: reversing", operation.stan, attempt.trans_id,
                     type(exc).__name__)
        return services.operation_reverse(operation_id=operation.pk,
                                          cause=f"remboursement en erreur ({type(exc).__name__}) : annulation")
    return services.operation_record_answer(operation_id=operation.pk, response_code=result.response_code,
                                            rrn=result.rrn)


def sweep_operations(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Refunds left without an answer past services.operation_answer_grace (the process died after recording
    them) are reversed; those whose reversal the switch acknowledged end REVERSED."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    for operation_id in selectors.operations_unanswered(before=now - services.operation_answer_grace()):
        services.operation_reverse(operation_id=operation_id, now=now,
                                   cause="remboursement sans réponse enregistrée dans le délai : annulation (reversal)")
        counts["refunds reversed"] = counts.get("refunds reversed", 0) + 1
    for operation in selectors.operations_reversing():
        reversal = selectors.reversal_by_original(
            merchant_id=operation.attempt.session.merchant.client_id, original_mti="0200",
            original_stan=operation.stan, original_transmitted_at=operation.transmitted_at)
        if reversal is not None and reversal.state == PendingReversal.State.DONE:
            services.operation_reversed(operation_id=operation.pk, response_code=reversal.response_code, now=now)
            counts["refund reversals acknowledged"] = counts.get("refund reversals acknowledged", 0) + 1
    return counts


# --- the sweeper ---------------------------------------------------------------------------------------


def sweep_attempt(*, attempt_id: int, now: dt.datetime | None = None) -> str:
    """Take over an attempt past its deadline: fail an abandoned authentication, reverse an authorization
    whose answer never came or that was never captured, finish a callback, retry a capture or a void.
    Returns what was done (for the logs and the tests)."""
    now = now or timezone.now()
    attempt = Attempt.objects.get(pk=attempt_id)
    if attempt.deadline > now:
        return "not due"
    state = attempt.state
    if state in (AttemptState.AUTHENTICATING, AttemptState.CHALLENGE):
        moved = services.attempt_fail(
            attempt_id=attempt_id, cause="authentification 3-D Secure abandonnée (délai dépassé)",
            err_msg=_fr("Authentification 3-D Secure non aboutie dans le délai"), md_status=protocol.MD_STATUS["N"],
            now=now)
        if moved is None:
            return "moved meanwhile"
        conclude(attempt_id=attempt_id)
        return "failed"
    if state == AttemptState.AUTHORIZING:
        services.attempt_authorization_lost(attempt_id=attempt_id, now=now,
                                            cause="autorisation sans réponse dans le délai : annulation (reversal)")
        conclude(attempt_id=attempt_id)
        return "reversed"
    if not attempt.callback_answer:
        # The callback never completed (the process died), or came back without a usable answer: once more. For an
        # attempt kept for reconciliation, its hold ends: a last try, then the void if the merchant still says
        # nothing (services.attempt_hold_expired).
        unresolved = services.callback_unresolved(attempt)
        attempt = deliver_callback(attempt_id=attempt_id)
        if unresolved and not attempt.callback_answer:
            attempt = services.attempt_hold_expired(attempt_id=attempt_id, now=now)
            settle(attempt_id=attempt_id)
            return "unresolved hold voided" if attempt.callback_answer else "unresolved"
        settle(attempt_id=attempt_id)
        if attempt.callback_answer:
            return "concluded"
        return "unresolved" if services.callback_unresolved(attempt) else "callback retry later"
    if state == AttemptState.AUTHORIZED:
        services.attempt_hold_expired(attempt_id=attempt_id, now=now)
        settle(attempt_id=attempt_id)
        return "hold voided"
    if state in (AttemptState.CAPTURING, AttemptState.VOIDING):
        settled = settle(attempt_id=attempt_id)
        return "settled" if settled.state in (AttemptState.CAPTURED, AttemptState.VOIDED) else "retry later"
    return "nothing to do"


def watch_attempt(*, attempt_id: int, at: str | None = None, now: dt.datetime | None = None) -> str:
    """The watch task of an attempt, run at ``at`` (its deadline when the watch was set): the attempt taken over
    if due (sweep_attempt), then watched again at its deadline if that moved later and no other pending watch
    sees it in time. One watch per attempt at a time, whatever the number of moves of its deadline."""
    if at is not None:
        services.attempt_watch_begins(attempt_id=attempt_id, at=at)
    done = sweep_attempt(attempt_id=attempt_id, now=now)
    services.attempt_watch_again(attempt_id=attempt_id, now=now)
    return done


def sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Everything past its deadline: expired sessions closed, attempts taken over (see sweep_attempt), refunds
    without an answer reversed (sweep_operations), the XML API's stale address counts forgotten."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    for session_id in selectors.sessions_past_expiry(now=now):
        services.session_expire(session_id=session_id, now=now)
        counts["sessions expired"] = counts.get("sessions expired", 0) + 1
    for attempt_id in selectors.attempts_due(now=now):
        done = sweep_attempt(attempt_id=attempt_id, now=now)
        counts[done] = counts.get(done, 0) + 1
    for done, n in sweep_operations(now=now).items():
        counts[done] = counts.get(done, 0) + n
    if forgotten := services.api_locks_forget(now=now):
        counts["API address counts forgotten"] = forgotten
    return counts
