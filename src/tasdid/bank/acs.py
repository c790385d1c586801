"""The ACS's pure side: AReq checks, the authentication value (CAVV), ECI, and the messages it writes.

No database here; ``services`` reads and writes the records around these functions.
"""

import base64
import datetime as dt
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.views.decorators.debug import sensitive_variables

from tasdid.core import i18n, threeds
from tasdid.core.cards import digits_only
from tasdid.core.keys import secret_key
from tasdid.core.money import MAD_NUMERIC

SUPPORTED_VERSIONS = ("2.1.0", "2.2.0")

# EMV 3DS error codes (Erro messages) and transStatusReason / challengeCancel values the ACS uses.
ERR_MESSAGE_INVALID = "101"
ERR_REQUIRED_MISSING = "201"
ERR_FORMAT_INVALID = "203"
ERR_DUPLICATE = "204"
ERR_SIGNATURE = "302"
REASON_AUTH_FAILED = "01"
REASON_FREQUENCY_LIMIT = threeds.REASON_FREQUENCY_LIMIT
REASON_NOT_ENROLLED = "13"
REASON_TIMED_OUT = "14"
CANCEL_BY_CARDHOLDER = "01"
CANCEL_TIMED_OUT = "04"  # transaction timed out at the ACS (the code's time ran out)
CANCEL_NO_CREQ = "05"  # transaction timed out at the ACS: first CReq not received in time


_REQUIRED = (
    "messageVersion", "threeDSServerTransID", "acctNumber", "cardExpiryDate", "purchaseAmount",
    "purchaseCurrency", "purchaseExponent", "purchaseDate", "merchantName", "threeDSServerURL", "notificationURL",
    "dsTransID",  # the ACS answers the directory only, which names its transaction
)


class AReqError(ValueError):
    """An AReq the ACS cannot answer with an ARes: answered by an Erro message instead."""

    def __init__(self, code: str, description: str, detail: str = ""):
        super().__init__(description)
        self.code = code
        self.description = description
        self.detail = detail


@dataclass(frozen=True)
class AReq:
    message_version: str
    three_ds_server_trans_id: str
    pan: str
    expiry_yymm: str
    amount_minor: int
    currency: str
    purchase_date: dt.datetime
    merchant_name: str
    acquirer_merchant_id: str
    three_ds_server_url: str
    notification_url: str
    browser_language: str = "fr"  # the customer's pages' language: the challenge page and its SMS speak it
    ds_trans_id: str = ""  # the directory's transaction id: every AReq comes through the directory

    def __repr__(self) -> str:  # never the card number in a log or a traceback
        return f"AReq(threeDSServerTransID={self.three_ds_server_trans_id!r})"


def _http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and len(value) <= 500


@sensitive_variables()  # acctNumber
def parse_areq(message: dict[str, Any]) -> AReq:
    """Check an AReq's data elements; raise AReqError naming the first bad one."""
    missing = [name for name in _REQUIRED if not isinstance(message.get(name), str) or not message[name].strip()]
    if missing:
        raise AReqError(ERR_REQUIRED_MISSING, "Required data element missing", ",".join(missing))

    def bad(name: str) -> AReqError:
        return AReqError(ERR_FORMAT_INVALID, "Format or value of one or more data elements is invalid", name)

    if message["messageVersion"] not in SUPPORTED_VERSIONS:
        raise AReqError(ERR_FORMAT_INVALID, "Message version not supported", "messageVersion")
    try:
        trans_id = str(uuid.UUID(message["threeDSServerTransID"]))
    except ValueError:
        raise bad("threeDSServerTransID") from None
    pan = digits_only(message["acctNumber"])
    if not re.fullmatch(r"[0-9]{13,19}", pan):  # ASCII only, as every protocol field
        raise bad("acctNumber")
    expiry = message["cardExpiryDate"]
    if not re.fullmatch(r"[0-9]{2}(0[1-9]|1[0-2])", expiry):
        raise bad("cardExpiryDate")
    if not re.fullmatch(r"[0-9]{1,12}", message["purchaseAmount"]) or int(message["purchaseAmount"]) <= 0:
        raise bad("purchaseAmount")
    if message["purchaseCurrency"] != MAD_NUMERIC:
        raise bad("purchaseCurrency")
    if message["purchaseExponent"] != "2":
        raise bad("purchaseExponent")
    try:
        purchase_date = dt.datetime.strptime(message["purchaseDate"], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        raise bad("purchaseDate") from None
    for name in ("threeDSServerURL", "notificationURL"):
        if not _http_url(message[name]):
            raise bad(name)
    merchant_id = message.get("acquirerMerchantID", "")
    if not isinstance(merchant_id, str):
        raise bad("acquirerMerchantID")
    if message.get("deviceChannel", "02") != "02":
        raise bad("deviceChannel")
    if message.get("messageCategory", "01") != "01":
        raise bad("messageCategory")
    try:
        ds_trans_id = str(uuid.UUID(message["dsTransID"]))
    except ValueError:
        raise bad("dsTransID") from None
    language = message.get("browserLanguage", "")
    if not isinstance(language, str) or len(language) > 8:  # EMV 3DS: an IETF BCP 47 tag, 1 to 8 characters
        raise bad("browserLanguage")
    return AReq(
        message_version=message["messageVersion"],
        three_ds_server_trans_id=trans_id,
        pan=pan,
        expiry_yymm=expiry,
        amount_minor=int(message["purchaseAmount"]),
        currency=MAD_NUMERIC,
        purchase_date=purchase_date,
        merchant_name=message["merchantName"].strip()[:120],
        acquirer_merchant_id=merchant_id.strip()[:35],
        three_ds_server_url=message["threeDSServerURL"],
        notification_url=message["notificationURL"],
        browser_language=i18n.known(language) or "fr",  # "ar-MA" is Arabic; a language we do not speak, French
        ds_trans_id=ds_trans_id,
    )


def cavv(*, acs_trans_id: str, card_fingerprint: str, amount_minor: int) -> str:
    """The authentication value: an HMAC only this bank can compute (its own "cavv" key, which no other party
    holds), bound to the transaction, card and amount.

    20 bytes in standard base64 (28 characters), the size of a scheme CAVV.
    """
    message = "\x1f".join(("cavv", str(acs_trans_id), card_fingerprint, str(int(amount_minor)))).encode()
    digest = hmac.new(secret_key("cavv"), message, hashlib.sha256).digest()[:20]
    return base64.b64encode(digest).decode("ascii")


def cavv_matches(value: str, *, acs_trans_id: str, card_fingerprint: str, amount_minor: int) -> bool:
    expected = cavv(acs_trans_id=acs_trans_id, card_fingerprint=card_fingerprint, amount_minor=amount_minor)
    return hmac.compare_digest(expected.encode(), (value or "").encode())


def eci_for(brand: str, trans_status: str) -> str:
    if trans_status == threeds.AUTHENTICATED:
        return threeds.ECI_AUTHENTICATED.get(brand, "05")
    if trans_status == threeds.ATTEMPTED:
        return threeds.ECI_ATTEMPTED.get(brand, "06")
    return threeds.ECI_NONE.get(brand, "07")


def erro(*, code: str, description: str, detail: str = "", three_ds_server_trans_id: str = "") -> dict[str, str]:
    """An Erro message from the ACS/DS (component "A") refusing an AReq."""
    return threeds.erro(component="A", message_type="AReq", code=code, description=description, detail=detail,
                        three_ds_server_trans_id=three_ds_server_trans_id)
