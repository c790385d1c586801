"""The 3-D Secure Directory Server (DESIGN.md §6): the 3DS Server's AReq routed by BIN to the issuer's ACS and
its ARes relayed back; the ACS's RReq relayed to the 3DS Server and its RRes back.

Each link has its own key (``core.keys.link_key``): what comes from the gateway is verified with the
gateway <-> switch key, what goes to the bank is signed again with the switch <-> bank key, and back. The
directory names itself as the ACS's threeDSServerURL, so the RReq comes through it too.
"""

import logging
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from tasdid.core import threeds
from tasdid.core.cards import digits_only, mask
from tasdid.core.http import party_post

from .models import DirectoryTransaction, Route
from .routing import route_for

logger = logging.getLogger(__name__)

TO_SERVER = threeds.LINK_SERVER_DIRECTORY
TO_ACS = threeds.LINK_DIRECTORY_ACS

# EMV 3DS error codes the directory answers with, and the transStatusReason of a card in no range.
ERR_MESSAGE_INVALID = "101"
ERR_FORMAT_INVALID = "203"
ERR_TRANSACTION_NOT_FOUND = "301"
ERR_SIGNATURE = "302"
ERR_TIMED_OUT = "402"
ERR_CONNECTION = "405"
REASON_NO_CARD_RECORD = threeds.REASON_NO_CARD_RECORD


@dataclass(frozen=True)
class Answer:
    """A message for the sender and its HTTP status."""

    message: dict[str, Any]
    status: int = 200


@dataclass(frozen=True)
class AcsRoute:
    bin_prefix: str
    bank_name: str
    acs_url: str


def acs_routes() -> list[AcsRoute]:
    """The active routes with their ACS (the default ACS where a route names none)."""
    return [AcsRoute(r.bin_prefix, r.bank_name, r.acs_url or settings.SWITCH_ACS_URL)
            for r in Route.objects.filter(active=True)]


def _erro(*, message_type: str, code: str, description: str, detail: str = "", trans_id: str = "") -> dict:
    return threeds.erro(component="D", message_type=message_type, code=code, description=description,
                        detail=detail[:200], three_ds_server_trans_id=trans_id)


def _uuid(value: Any) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def _http_url(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 500:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.username


@sensitive_variables()  # the AReq carries the card number
def relay_areq(message: dict[str, Any]) -> Answer:
    """Route a verified AReq to its ACS and relay the answer: the ACS's ARes or Erro; an ARes N (reason 08)
    for a card in no BIN range; an Erro (HTTP 502) when the ACS cannot be reached or answers nothing usable."""
    trans_id = _uuid(message.get("threeDSServerTransID"))
    pan = digits_only(str(message.get("acctNumber", "")))
    if trans_id is None or not 13 <= len(pan) <= 19 or not _http_url(message.get("threeDSServerURL")):
        return Answer(_erro(message_type="AReq", code=ERR_FORMAT_INVALID, description="Invalid data element",
                            trans_id=trans_id or ""), 400)
    route = route_for(pan, acs_routes())
    if route is None:
        logger.info("3DS directory: no BIN range for card %s", mask(pan))
        return Answer({"messageType": "ARes", "messageVersion": str(message.get("messageVersion", "")),
                       "threeDSServerTransID": trans_id, "dsTransID": str(uuid.uuid4()),
                       "transStatus": threeds.NOT_AUTHENTICATED, "transStatusReason": REASON_NO_CARD_RECORD})
    record = DirectoryTransaction.objects.filter(three_ds_server_trans_id=trans_id).first()
    if record is None:  # a re-sent AReq keeps its dsTransID, so that the ACS answers it the same
        record = DirectoryTransaction.objects.create(
            ds_trans_id=uuid.uuid4(), three_ds_server_trans_id=trans_id,
            three_ds_server_url=message["threeDSServerURL"], acs_url=route.acs_url, bank_name=route.bank_name,
            masked_pan=mask(pan), created_at=timezone.now())
    forwarded = {**message, "dsTransID": str(record.ds_trans_id), "threeDSServerURL": settings.SWITCH_URL + "/3ds/rreq"}
    body, signature = threeds.sign_body(forwarded, link=TO_ACS)
    try:
        response = party_post(record.acs_url, content=body, timeout=settings.PARTY_HTTP_TIMEOUT,
                              headers={"Content-Type": "application/json", threeds.SIGNATURE_HEADER: signature})
    except httpx.TimeoutException:
        return _acs_fault(record, ERR_TIMED_OUT, "ACS timed out", trans_id)
    except httpx.HTTPError as exc:
        return _acs_fault(record, ERR_CONNECTION, f"ACS unreachable: {type(exc).__name__}", trans_id)
    signature = response.headers.get(threeds.SIGNATURE_HEADER)
    if response.status_code == 400:
        try:
            return Answer(threeds.verify_body(response.content, signature, message_type="Erro", link=TO_ACS), 400)
        except threeds.MessageError as exc:
            return _acs_fault(record, ERR_CONNECTION, f"unusable ACS error: {exc}", trans_id)
    if response.status_code != 200:
        return _acs_fault(record, ERR_CONNECTION, f"ACS answered HTTP {response.status_code}", trans_id)
    try:
        ares = threeds.verify_body(response.content, signature, message_type="ARes", link=TO_ACS)
    except threeds.MessageError as exc:
        return _acs_fault(record, ERR_CONNECTION, f"unusable ARes: {exc}", trans_id)
    if ares.get("threeDSServerTransID") != trans_id or ares.get("dsTransID") != str(record.ds_trans_id):
        return _acs_fault(record, ERR_CONNECTION, "ARes for another transaction", trans_id)
    record.acs_trans_id = _uuid(ares.get("acsTransID"))
    record.trans_status = str(ares.get("transStatus", ""))[:1]
    record.save(update_fields=["acs_trans_id", "trans_status"])
    return Answer(ares)


def _acs_fault(record: DirectoryTransaction, code: str, detail: str, trans_id: str) -> Answer:
    logger.warning("3DS directory: ACS of %s at %s: %s", record.bank_name, record.acs_url, detail)
    return Answer(_erro(message_type="AReq", code=code, description="ACS not available", detail=detail,
                        trans_id=trans_id), 502)


def relay_rreq(message: dict[str, Any]) -> Answer:
    """Relay a verified RReq from an ACS to the 3DS Server that sent the AReq, and its RRes (or Erro) back."""
    trans_id = str(message.get("threeDSServerTransID", ""))
    ds_trans_id = _uuid(message.get("dsTransID"))
    record = (DirectoryTransaction.objects.filter(ds_trans_id=ds_trans_id).first() if ds_trans_id else None)
    if (record is None or str(record.three_ds_server_trans_id) != trans_id
            or str(record.acs_trans_id) != str(message.get("acsTransID", ""))):
        return Answer(_erro(message_type="RReq", code=ERR_TRANSACTION_NOT_FOUND, description="Transaction not found",
                            trans_id=trans_id), 404)
    body, signature = threeds.sign_body(message, link=TO_SERVER)
    try:
        response = party_post(record.three_ds_server_url, content=body, timeout=settings.PARTY_HTTP_TIMEOUT,
                              headers={"Content-Type": "application/json", threeds.SIGNATURE_HEADER: signature})
    except httpx.HTTPError as exc:
        logger.warning("3DS directory: RReq %s not delivered: %s", record.ds_trans_id, type(exc).__name__)
        return Answer(_erro(message_type="RReq", code=ERR_CONNECTION, description="3DS Server not available",
                            detail=type(exc).__name__, trans_id=trans_id), 502)
    expected = "RRes" if response.status_code == 200 else "Erro"
    try:
        answer = threeds.verify_body(response.content, response.headers.get(threeds.SIGNATURE_HEADER),
                                     message_type=expected, link=TO_SERVER)
    except threeds.MessageError as exc:
        return Answer(_erro(message_type="RReq", code=ERR_CONNECTION, description="3DS Server not available",
                            detail=f"unusable answer (HTTP {response.status_code}): {exc}", trans_id=trans_id), 502)
    if expected == "RRes":
        record.rreq_status = str(message.get("transStatus", ""))[:1]
        record.save(update_fields=["rreq_status"])
    return Answer(answer, response.status_code if expected == "Erro" else 200)
