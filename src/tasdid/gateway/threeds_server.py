"""The gateway as 3DS Server (docs/architecture.md, "3-D Secure 2"): the AReq to the directory and its ARes,
the CReq carried by the browser, the RRes answering the ACS's RReq."""

import datetime as dt
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from tasdid.core import threeds
from tasdid.core.acquiring import CardData
from tasdid.core.http import party_post
from tasdid.core.money import MAD_NUMERIC, to_minor

from .models import Attempt, Merchant

ARES_STATUSES = frozenset({"Y", "A", "N", "U", "R", "C"})


class DirectoryError(Exception):
    """The directory could not be reached or answered something unusable: a fault, not a refusal."""


@sensitive_variables()  # acctNumber
def build_areq(*, attempt: Attempt, merchant: Merchant, card: CardData, now: dt.datetime,
               lang: str = "fr") -> dict[str, str]:
    """The AReq; ``browserLanguage`` is the payment page's language, so that the bank's challenge page and its
    SMS speak the customer's language."""
    return {
        "messageType": "AReq",
        "messageVersion": threeds.MESSAGE_VERSION,
        "threeDSServerTransID": attempt.threeds_server_trans_id,
        "acctNumber": card.pan,
        "cardExpiryDate": card.expiry_yymm,
        "purchaseAmount": str(to_minor(attempt.amount)),
        "purchaseCurrency": MAD_NUMERIC,
        "purchaseExponent": "2",
        "purchaseDate": now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S"),
        "merchantName": merchant.name,
        "acquirerMerchantID": merchant.client_id,
        "threeDSServerURL": settings.GATEWAY_URL + "/3ds/rreq",
        "notificationURL": settings.GATEWAY_URL + "/3ds/notification",
        "deviceChannel": "02",
        "messageCategory": "01",
        "browserLanguage": lang,
    }


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@sensitive_variables()  # the AReq and its body carry the card number
def send_areq(areq: dict[str, str]) -> dict[str, Any]:
    """POST the signed AReq to the directory and return its verified ARes; DirectoryError otherwise."""
    body, signature = threeds.sign_body(areq, link=threeds.LINK_SERVER_DIRECTORY)
    try:
        response = party_post(settings.GATEWAY_3DS_DIRECTORY_URL, content=body,
                              headers={"Content-Type": "application/json", threeds.SIGNATURE_HEADER: signature},
                              timeout=settings.PARTY_HTTP_TIMEOUT)
    except httpx.HTTPError as exc:
        raise DirectoryError(f"directory unreachable: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise DirectoryError(f"directory answered HTTP {response.status_code}")
    try:
        ares = threeds.verify_body(response.content, response.headers.get(threeds.SIGNATURE_HEADER),
                                   message_type="ARes", link=threeds.LINK_SERVER_DIRECTORY)
    except threeds.MessageError as exc:
        raise DirectoryError(f"unusable ARes: {exc}") from exc
    if ares.get("threeDSServerTransID") != areq["threeDSServerTransID"]:
        raise DirectoryError("ARes for another transaction")
    status = ares.get("transStatus")
    if status not in ARES_STATUSES:
        raise DirectoryError(f"ARes with transStatus {status!r}")
    if status == threeds.CHALLENGE:
        acs_url = str(ares.get("acsURL", ""))
        parts = urlsplit(acs_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or not _is_uuid(
                ares.get("acsTransID")):
            raise DirectoryError("challenge without a usable acsURL or acsTransID")
    return ares


def build_creq(*, attempt: Attempt) -> str:
    return threeds.encode_browser_message({
        "messageType": "CReq",
        "messageVersion": threeds.MESSAGE_VERSION,
        "threeDSServerTransID": attempt.threeds_server_trans_id,
        "acsTransID": attempt.acs_trans_id,
        "challengeWindowSize": "05",
    })


def build_rres(rreq: dict[str, Any]) -> dict[str, str]:
    return {
        "messageType": "RRes",
        "messageVersion": threeds.MESSAGE_VERSION,
        "threeDSServerTransID": str(rreq.get("threeDSServerTransID", "")),
        "acsTransID": str(rreq.get("acsTransID", "")),
        "dsTransID": str(rreq.get("dsTransID", "")),
        "resultsStatus": "01",
    }


def build_error(*, code: str, description: str, rreq: dict[str, Any] | None = None) -> dict[str, str]:
    """An EMV 3DS "Erro" message answering an RReq the 3DS Server cannot accept."""
    return threeds.erro(component="S", message_type="RReq", code=code, description=description,
                        three_ds_server_trans_id=str((rreq or {}).get("threeDSServerTransID", "")))
