"""The merchant XML API (``POST /fim/api``), as Nestpay's: a ``CC5Request`` read (``xmlapi``), its API user
authenticated (``services.api_authenticate``), then the capture (PostAuth), the void (Void), the refund (Credit)
or the status and history queries (Extra ORDERSTATUS / ORDERHISTORY) of one of the merchant's orders, answered by
a ``CC5Response``. Every answer is an XML document; nothing here raises for a merchant's mistake.

An operation is claimed by its idempotency key before it moves anything, linked to the operation it records, and
its answer kept: the same request again within services.API_REPLAY_WINDOW gets the same answer and moves nothing;
a claim left in flight by a process that died is answered from its operation, or taken over when it recorded none
(docs/merchant-protocol.md §9).
Called outside any transaction: the operations call the acquirer."""

import datetime as dt
import hashlib
import logging
import time
from decimal import Decimal

from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import flow, protocol, selectors, services, xmlapi
from .models import (
    ApiRequestRecord,
    Attempt,
    AttemptState,
    Merchant,
    MerchantApiUser,
    Operation,
    OperationKind,
    OperationState,
)
from .xmlapi import APPROVED, DECLINED, ApiRequest, ApiResponse

logger = logging.getLogger(__name__)
_fr = protocol.errmsg

# A duplicate that arrives while the first is being processed waits this long for its answer.
BUSY_WAIT_SECONDS = 30.0
BUSY_POLL_SECONDS = 0.05


@sensitive_variables()  # the body and the request hold the API user's password
def answer(body: bytes, content_type: str = "text/xml", *, address: str = "") -> bytes:
    """The ``CC5Response`` to a posted body (raw XML, or form-encoded with the XML in ``DATA``) from the client at
    ``address`` (core.http.client_ip: its wrong passwords are counted under it)."""
    try:
        request = xmlapi.parse(xmlapi.xml_of_body(body, content_type))
    except xmlapi.ApiError as exc:
        logger.info("gateway: XML API request refused: %s", exc.code)
        return xmlapi.serialize(xmlapi.error(exc.code, exc.message))
    try:
        user = services.api_authenticate(name=request.name, password=request.password, client_id=request.client_id,
                                         address=address)
    except services.ApiAuthRefused as exc:
        logger.warning("gateway: XML API authentication refused for %r (ClientId %r) from %s: %s", request.name[:64],
                       request.client_id, address, exc.code)
        return xmlapi.serialize(xmlapi.error(exc.code, exc.message, order_id=request.order_id))
    if request.query:
        return xmlapi.serialize(query(user.merchant, request))
    return operate(user, request)


def idempotency_key(request: ApiRequest) -> str:
    """What makes two requests the same operation: the merchant, the Type, the order, the amount as a number
    (``10.5`` and ``10.50`` are one), the currency and the merchant's own IDEMPOTENCY_KEY when it sends one."""
    total = xmlapi.amount_text(request.total) if request.total is not None else ""
    parts = (request.client_id, request.type, request.order_id, total, request.currency, request.idempotency_key)
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def operate(user: MerchantApiUser, request: ApiRequest) -> bytes:
    """Claim the request's key, then act (_act); a repeat gets the stored answer, or waits for the first one's.
    A claim left in flight more than twice BUSY_WAIT_SECONDS (its process died, or stopped on an unexpected error)
    is answered from the operation it recorded (_recovered), or taken over when it recorded none: never an
    operation asked twice."""
    key = idempotency_key(request)
    for _try in range(2):
        claim = services.api_request_claim(user=user, key=key, kind=request.type, order_id=request.order_id)
        if claim.answer:
            return claim.answer.encode("utf-8")
        record = claim.record
        if not claim.busy:
            return _act(user, request, record)
        if record is None:
            break
        stale_before = timezone.now() - dt.timedelta(seconds=2 * BUSY_WAIT_SECONDS)
        if record.created_at >= stale_before:  # the first one is being processed: wait for its answer
            stored = _wait_for(record.pk)
            if stored is not None:
                return stored.encode("utf-8")
            break
        if record.operation_id is not None:
            return _recovered(record, request)
        taken = services.api_request_take_over(record=record, stale_before=stale_before)
        if taken is not None:
            return _act(user, request, taken)
        # Another repeat took it over (or it moved on) meanwhile: claim again, and wait for that one's answer.
    return _busy(request)


def _busy(request: ApiRequest) -> bytes:
    return xmlapi.serialize(xmlapi.error("BUSY", _fr(
        "La même demande est en cours de traitement : interrogez l'état de la commande (ORDERSTATUS) avant de "
        "la renvoyer."), order_id=request.order_id))


def _act(user: MerchantApiUser, request: ApiRequest, record: ApiRequestRecord) -> bytes:
    """Process a claimed request and store its answer. The operation it records is linked to the claim as it is
    recorded (flow.capture / void / refund ``api_request``), so that an unexpected error after it (a refund
    approved, then a read failing) leaves a claim a repeat answers from that operation, never processed again
    (docs/merchant-protocol.md §9)."""
    try:
        response, keep = _dispatch(user, request, record)
    except services.ApiClaimLost:  # this process stalled past the cutoff and a repeat took the request over
        return _busy(request)
    text = xmlapi.serialize(response)
    services.api_request_answered(record=record, answer=text.decode("utf-8"), keep=keep)
    return text


def _recovered(record: ApiRequestRecord, request: ApiRequest) -> bytes:
    """The answer to a request whose claim was left in flight after recording its operation: what the process
    would have answered, from the operation as it stands. A capture or a void recorded is approved (the gateway
    sends it until accepted, as when answered at once); a refund by its outcome, BUSY while it awaits its answer or
    its reversal, NO_ANSWER once reversed (the claim then released: the same request may be sent again). Stored as
    the request's answer; when another repeat stored one first, that one."""
    operation = Operation.objects.get(pk=record.operation_id)
    if operation.kind == OperationKind.REFUND:
        if operation.state in (OperationState.PENDING, OperationState.REVERSING):
            return _busy(request)
        response, keep = _refunded(operation, request)
    else:
        response, keep = _settled(operation, request), True
    text = xmlapi.serialize(response)
    if services.api_request_answered(record=record, answer=text.decode("utf-8"), keep=keep) or not keep:
        return text
    stored = selectors.api_request_answer(record.pk)
    return stored.encode("utf-8") if stored is not None else _busy(request)


def _wait_for(record_id: int) -> str | None:
    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    while time.monotonic() < deadline:
        stored = selectors.api_request_answer(record_id)
        if stored is not None:
            return stored
        time.sleep(BUSY_POLL_SECONDS)
    return None


def _unknown_order(request: ApiRequest) -> ApiResponse:
    return xmlapi.error("ORDER_UNKNOWN", _fr("Commande introuvable pour ce marchand."), order_id=request.order_id)


def _dispatch(user: MerchantApiUser, request: ApiRequest, record: ApiRequestRecord) -> tuple[ApiResponse, bool]:
    """The operation's answer, and whether to keep it for the request's repeats (the state moved, or the bank
    answered); a refusal before anything moved is not kept. The operation recorded is linked to ``record``."""
    _session, attempt = selectors.order_of(user.merchant, request.order_id)
    if attempt is None:
        return _unknown_order(request), False
    requested_by = f"api:{user.name}"
    try:
        if request.type == xmlapi.POSTAUTH:
            return _settled(flow.capture(attempt_id=attempt.pk, amount=request.total, requested_by=requested_by,
                                         api_request=record), request), True
        if request.type == xmlapi.VOID:
            return _settled(flow.void(attempt_id=attempt.pk, requested_by=requested_by, api_request=record),
                            request), True
        operation = flow.refund(attempt_id=attempt.pk, amount=request.total, requested_by=requested_by,
                                api_request=record)
    except services.RefundRefused as exc:
        return xmlapi.error("REFUND_REFUSED", _refund_refusal(exc), order_id=request.order_id), False
    except services.OperationRefused as exc:
        return xmlapi.error(exc.code.upper(), exc.message, order_id=request.order_id), False
    return _refunded(operation, request)


def _refund_refusal(exc: services.RefundRefused) -> str:
    if not exc.refundable or exc.refundable <= 0:
        return _fr("Remboursement refusé : rien à rembourser sur cette commande (paiement non remis, ou déjà "
                   "remboursé en entier).")
    return _fr(f"Remboursement refusé : le montant doit être positif et au plus {exc.refundable} DH, ce qui reste "
               f"à rembourser sur cette commande.")


def _settled(operation: Operation, request: ApiRequest) -> ApiResponse:
    """A capture or a void recorded (flow.capture, flow.void): approved (the gateway sends it to the acquirer until
    it is accepted)."""
    attempt = Attempt.objects.get(pk=operation.attempt_id)
    return ApiResponse(response=APPROVED, proc_return_code="00", order_id=request.order_id,
                       group_id=request.order_id, auth_code=attempt.auth_code, host_ref_num=attempt.rrn,
                       trans_id=attempt.trans_id, extra={"TRXDATE": _date(attempt.settled_at or attempt.updated_at),
                                                         "TRANS_STAT": _TRANS_STAT[attempt.state],
                                                         "REFUNDABLE_AMT": xmlapi.amount_text(
                                                             selectors.refundable_amount(attempt))})


def refund_trans_id(operation: Operation) -> str:
    return f"RF{operation.pk:010d}"


def _refunded(operation: Operation, request: ApiRequest) -> tuple[ApiResponse, bool]:
    base = {"order_id": request.order_id, "group_id": request.order_id, "trans_id": refund_trans_id(operation)}
    extra = {"TRXDATE": _date(operation.created_at), "REFUNDABLE_AMT": xmlapi.amount_text(
        selectors.refundable_amount(Attempt.objects.get(pk=operation.attempt_id)))}
    if operation.state == OperationState.APPROVED:
        return ApiResponse(response=APPROVED, proc_return_code="00", host_ref_num=operation.rrn, extra=extra,
                           **base), True
    if operation.state == OperationState.REFUSED:
        return ApiResponse(response=DECLINED, proc_return_code=operation.response_code,
                           err_msg=protocol.err_msg_for(operation.response_code), extra=extra, **base), True
    # No answer from the bank: the refund is being reversed; the same request may be sent again.
    return ApiResponse(response=xmlapi.ERROR, proc_return_code=xmlapi.ERROR_CODE, err_msg=_fr(
        "Pas de réponse de la banque : le remboursement est annulé. Vous pouvez le demander à nouveau."),
        extra={**extra, "ERRORCODE": "NO_ANSWER"}, **base), False


# --- Queries: ORDERSTATUS and ORDERHISTORY --------------------------------------------------------------------

# Nestpay's TRANS_STAT of an order, from the order status the gateway tells (selectors.order_status).
_STATUS_TRANS_STAT = {"AUTHORIZED": "A", "UNRESOLVED": "A", "CAPTURED": "C", "VOIDED": "V", "DECLINED": "D",
                      "FAILED": "E", "PROCESSING": "PN", "OPEN": "PN", "EXPIRED": "E", "CANCELLED": "E"}
_TRANS_STAT = {AttemptState.CAPTURING: "C", AttemptState.CAPTURED: "C", AttemptState.VOIDING: "V",
               AttemptState.VOIDED: "V", AttemptState.AUTHORIZED: "A"}


def _date(at) -> str:
    return timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S") if at else ""


def query(merchant: Merchant, request: ApiRequest) -> ApiResponse:
    session, attempt = selectors.order_of(merchant, request.order_id)
    if session is None:
        return _unknown_order(request)
    status = selectors.order_status(session, attempt)
    extra = (history(attempt) if request.query == xmlapi.ORDERHISTORY
             else order_extra(session.amount, status, attempt))
    base = ApiResponse(response=APPROVED, proc_return_code="00", order_id=request.order_id,
                       group_id=request.order_id, extra=extra)
    if attempt is None:
        return base
    return ApiResponse(**{**base.__dict__, "auth_code": attempt.auth_code, "host_ref_num": attempt.rrn,
                          "trans_id": attempt.trans_id})


def order_extra(amount: Decimal, status: str, attempt: Attempt | None) -> dict[str, str]:
    """The ORDERSTATUS answer's Extra: Nestpay's names, and the gateway's order status (``ORDERSTATUS``, the
    statuses of /fim/status) and refund figures."""
    extra = {"ORDERSTATUS": status, "ORD_ID": "", "CHARGE_TYPE_CD": "S", "TRANS_STAT": _STATUS_TRANS_STAT[status],
             "ORIG_TRANS_AMT": xmlapi.amount_text(amount), "CAPTURE_AMT": "0.00", "REFUND_AMT": "0.00",
             "REFUNDABLE_AMT": "0.00", "AUTH_CODE": "", "HOST_REF_NUM": "", "PROC_RET_CD": "", "TRANS_ID": "",
             "PAN": "", "AUTH_DTTM": "", "CAPTURE_DTTM": "", "VOID_DTTM": ""}
    if attempt is None:
        return extra
    refunded = sum((op.amount for op in selectors.refunds_of(attempt) if op.state == OperationState.APPROVED),
                   Decimal("0.00"))
    extra.update({
        "ORD_ID": attempt.session.oid, "ORIG_TRANS_AMT": xmlapi.amount_text(attempt.amount),
        "CAPTURE_AMT": xmlapi.amount_text(selectors.captured_amount(attempt, decided=True) if status == "CAPTURED"
                                          else Decimal("0.00")),
        "REFUND_AMT": xmlapi.amount_text(refunded),
        "REFUNDABLE_AMT": xmlapi.amount_text(selectors.refundable_amount(attempt)),
        "AUTH_CODE": attempt.auth_code, "HOST_REF_NUM": attempt.rrn, "PROC_RET_CD": attempt.proc_return_code,
        "TRANS_ID": attempt.trans_id, "PAN": attempt.masked_pan, "AUTH_DTTM": _date(attempt.authorized_at),
        "CAPTURE_DTTM": _date(attempt.settled_at) if attempt.state == AttemptState.CAPTURED else "",
        "VOID_DTTM": _date(attempt.settled_at) if attempt.state == AttemptState.VOIDED else "",
    })
    return extra


# The columns of each TRXn of the ORDERHISTORY answer, tab-separated (docs/merchant-protocol.md §9).
HISTORY_COLUMNS = ("TYPE", "TRANS_STAT", "AMOUNT", "DATE", "AUTH_CODE", "HOST_REF_NUM", "PROC_RET_CD", "TRANS_ID")
_OPERATION_STAT = {OperationState.APPROVED: "C", OperationState.REFUSED: "D", OperationState.PENDING: "PN",
                   OperationState.REVERSING: "PN", OperationState.REVERSED: "V"}


def history(attempt: Attempt | None) -> dict[str, str]:
    """The ORDERHISTORY answer's Extra: TRXCOUNT, then one TRXn per transaction, oldest first: the authorization,
    its capture or void, each refund."""
    rows: list[tuple[str, ...]] = []
    if attempt is not None and attempt.transmitted_at is not None:
        tran_type = protocol.tran_type(attempt.session.request_fields) or "PreAuth"
        approved = attempt.response_code == "00"
        rows.append((tran_type, "A" if approved else "D", xmlapi.amount_text(attempt.amount),
                     _date(attempt.authorized_at or attempt.transmitted_at), attempt.auth_code, attempt.rrn,
                     attempt.response_code, attempt.trans_id))
        if attempt.state in (AttemptState.CAPTURING, AttemptState.CAPTURED):
            rows.append(("PostAuth", "C" if attempt.state == AttemptState.CAPTURED else "PN",
                         xmlapi.amount_text(selectors.captured_amount(attempt, decided=True)),
                         _date(attempt.settled_at or attempt.updated_at),
                         attempt.auth_code, attempt.rrn, "00" if attempt.state == AttemptState.CAPTURED else "",
                         attempt.trans_id))
        elif approved and attempt.state in (AttemptState.VOIDING, AttemptState.VOIDED):
            rows.append(("Void", "V" if attempt.state == AttemptState.VOIDED else "PN",
                         xmlapi.amount_text(attempt.amount), _date(attempt.settled_at or attempt.updated_at),
                         attempt.auth_code, attempt.rrn, "00" if attempt.state == AttemptState.VOIDED else "",
                         attempt.trans_id))
        for operation in selectors.refunds_of(attempt):
            rows.append(("Credit", _OPERATION_STAT[operation.state], xmlapi.amount_text(operation.amount),
                         _date(operation.created_at), "", operation.rrn, operation.response_code,
                         refund_trans_id(operation)))
    extra = {"TRXCOUNT": str(len(rows))}
    for n, row in enumerate(rows, start=1):
        extra[f"TRX{n}"] = "\t".join(row)
    return extra
