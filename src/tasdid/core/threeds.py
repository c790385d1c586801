"""EMV 3-D Secure 2.2 message shapes shared by the 3DS Server (gateway) and the ACS (bank), and their signatures.

Server-to-server messages (AReq/ARes, RReq/RRes) are JSON bodies signed with HMAC-SHA256 under the key of their
link (``core.keys.link_key``: gateway <-> switch, switch <-> bank), the signature in the ``X-Tasdid-Signature``
header; each hop verifies with its link's key and signs again with the next one's.

Browser-carried messages (CReq, CRes) are base64url JSON under no key, as in EMV 3DS's browser flow: the 3DS
Server and the ACS share no key, so nothing the browser carries can be trusted for more than naming a
transaction. The ACS opens a challenge for a CReq only for an ACS transaction it created from an AReq that came
through the directory, once, in time; the 3DS Server takes the result from the RReq (signed per link, through
the directory), never from the CRes, which only says the browser is back.
"""

import base64
import json
import uuid
from collections.abc import Mapping
from typing import Any

from .keys import link_key
from .signing import hmac_sign, hmac_verify

MESSAGE_VERSION = "2.2.0"
SIGNATURE_HEADER = "X-Tasdid-Signature"
# The largest message either side reads (a JSON body, or a creq/cres as posted): ours are far below 2 KB.
# Bigger is refused before parsing, and JSON nested too deep for the parser is refused too (a RecursionError).
MAX_MESSAGE_BYTES = 16 * 1024

# transStatus values (EMV 3DS 2.2 table A.1)
AUTHENTICATED = "Y"
NOT_AUTHENTICATED = "N"
UNABLE = "U"
ATTEMPTED = "A"
CHALLENGE = "C"
REJECTED = "R"
# transStatusReason (EMV 3DS 2.2 table A.5) the parties act on
REASON_FREQUENCY_LIMIT = "04"  # exceeds authentication frequency limit
REASON_NO_CARD_RECORD = "08"  # no card record: the directory knows no BIN range for the card

# ECI values by scheme for a full authentication / an attempt / none.
ECI_AUTHENTICATED = {"VISA": "05", "MASTERCARD": "02", "CMI": "05"}
ECI_ATTEMPTED = {"VISA": "06", "MASTERCARD": "01", "CMI": "06"}
ECI_NONE = {"VISA": "07", "MASTERCARD": "00", "CMI": "07"}  # no authentication (not enrolled, unavailable)


class MessageError(ValueError):
    """A 3DS message that is malformed, of the wrong type or badly signed."""


class SignatureError(MessageError):
    """A 3DS message whose signature is missing or not the sender's."""


def erro(*, component: str, message_type: str, code: str, description: str, detail: str = "",
         three_ds_server_trans_id: str = "") -> dict[str, str]:
    """An EMV 3DS "Erro" message: ``component`` ("S" 3DS Server, "A" ACS/DS) refuses a ``message_type``."""
    message = {
        "messageType": "Erro",
        "messageVersion": MESSAGE_VERSION,
        "errorCode": code,
        "errorComponent": component,
        "errorDescription": description,
        "errorDetail": detail,
        "errorMessageType": message_type,
    }
    if three_ds_server_trans_id:
        message["threeDSServerTransID"] = three_ds_server_trans_id
    return message


Link = tuple[str, str]  # the two parties of a message link, e.g. ("gateway", "switch")
LINK_SERVER_DIRECTORY: Link = ("gateway", "switch")  # 3DS Server <-> Directory Server
LINK_DIRECTORY_ACS: Link = ("switch", "bank")  # Directory Server <-> ACS


def sign_body(payload: Mapping[str, Any], *, link: Link) -> tuple[bytes, str]:
    """The JSON body and its signature header value, under the key of ``link``."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return body, hmac_sign(payload, link_key(*link))


def _signature_matches(payload: Mapping[str, Any], signature: str, key: bytes) -> bool:
    try:
        return hmac_verify(payload, signature, key)
    except (RecursionError, ValueError, TypeError):
        return False  # nested deeper than the canonical JSON can be written: not a message of ours


def verify_body(body: bytes, signature: str | None, *, message_type: str, link: Link) -> dict[str, Any]:
    if len(body) > MAX_MESSAGE_BYTES:
        raise MessageError("message too large")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MessageError("body is not JSON") from exc
    if not isinstance(payload, dict) or payload.get("messageType") != message_type:
        raise MessageError(f"expected a {message_type} message")
    if not _signature_matches(payload, signature or "", link_key(*link)):
        raise SignatureError("bad signature")
    return payload


# The data elements a browser-carried message must have (EMV 3DS 2.2, browser flow); others are ignored.
BROWSER_FIELDS = {
    "CReq": ("messageVersion", "threeDSServerTransID", "acsTransID", "challengeWindowSize"),
    "CRes": ("messageVersion", "threeDSServerTransID", "acsTransID", "transStatus", "challengeCompletionInd"),
}
CHALLENGE_WINDOW_SIZES = ("01", "02", "03", "04", "05")


def encode_browser_message(payload: Mapping[str, Any]) -> str:
    """base64url JSON without padding, as EMV 3DS writes a creq/cres: no signature, no key."""
    return base64.urlsafe_b64encode(json.dumps(dict(payload), separators=(",", ":")).encode()).rstrip(b"=").decode()


def decode_browser_message(text: str, *, message_type: str) -> dict[str, Any]:
    """A CReq or CRes as the browser posted it: its data elements checked for shape (each present, a string, the
    transaction ids UUIDs). Names transactions only; the receiver decides what it is worth from its own records."""
    text = text or ""
    if len(text) > MAX_MESSAGE_BYTES:
        raise MessageError("message too large")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MessageError("not a base64url JSON message") from exc
    if not isinstance(payload, dict):
        raise MessageError("not a JSON object")
    if payload.get("messageType") != message_type:
        raise MessageError(f"expected a {message_type} message")
    for name in BROWSER_FIELDS.get(message_type, ()):
        if not isinstance(payload.get(name), str) or not payload[name] or len(payload[name]) > 64:
            raise MessageError(f"{name} missing or invalid")
    for name in ("threeDSServerTransID", "acsTransID") if message_type in BROWSER_FIELDS else ():
        try:
            payload[name] = str(uuid.UUID(payload[name]))
        except (ValueError, AttributeError, TypeError) as exc:
            raise MessageError(f"{name} is not a UUID") from exc
    if message_type == "CReq" and payload["challengeWindowSize"] not in CHALLENGE_WINDOW_SIZES:
        raise MessageError("challengeWindowSize invalid")
    return payload
