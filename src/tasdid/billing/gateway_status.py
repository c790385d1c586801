"""The biller's client of the gateway's order status query (``POST {GATEWAY_URL}/fim/status``): ask what became of
an order (``action=status``), or have its callback sent once more (``action=redeliver``). Requests and answers are
signed with the store key (ver3 hash); an answer is used only once its hash, client id, order id, echoed ``rnd``
and amounts check out against the biller's own order.
"""

import secrets
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qsl

import httpx
from django.conf import settings

from tasdid.core.http import party_post
from tasdid.core.money import MAD_NUMERIC, AmountError, parse_amount
from tasdid.core.signing import ver3_hash, ver3_verify_received

from .services.payments import GatewayMessage

STATUS_PATH = "/fim/status"
STATUS = "status"
REDELIVER = "redeliver"

# The gateway's word on an order (contract of /fim/status).
UNKNOWN = "UNKNOWN"
OPEN = "OPEN"
PROCESSING = "PROCESSING"
AUTHORIZED = "AUTHORIZED"
UNRESOLVED = "UNRESOLVED"  # authorized, the merchant's answer to the callback never came and its tries are spent
CAPTURED = "CAPTURED"
VOIDED = "VOIDED"
DECLINED = "DECLINED"
FAILED = "FAILED"
EXPIRED = "EXPIRED"
CANCELLED = "CANCELLED"
ORDER_STATUSES = frozenset({UNKNOWN, OPEN, PROCESSING, AUTHORIZED, UNRESOLVED, CAPTURED, VOIDED, DECLINED, FAILED,
                            EXPIRED, CANCELLED})
# Nothing was or will be captured for the order: the gateway's last word.
NOT_CAPTURED = frozenset({UNKNOWN, VOIDED, DECLINED, FAILED, EXPIRED, CANCELLED})
# Authorized, the merchant's answer missing: a redelivered callback can still settle it either way.
AWAITING_MERCHANT = frozenset({AUTHORIZED, UNRESOLVED})


class GatewayStatusError(Exception):
    """No usable answer: the gateway could not be reached, refused the query, or its answer cannot be trusted or
    does not match the order. ``reason`` names the check (for the report and the logs); nothing was changed."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class GatewayStatus:
    """A verified answer: the order's status, the amount captured, and every signed field (the callback's too,
    when an attempt was authorized) to record the payment from."""

    status: str
    captured_amount: Decimal
    message: GatewayMessage

    @property
    def trans_id(self) -> str:
        return self.message.get("TransId").strip()


def status_request(*, oid: str, action: str, client_id: str, store_key: str, rnd: str) -> dict[str, str]:
    """The signed query's form fields."""
    fields = {"clientid": client_id, "oid": oid, "rnd": rnd, "action": action, "hashAlgorithm": "ver3"}
    fields["HASH"] = ver3_hash(fields, store_key)
    return fields


def _parse_form(body: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(body, keep_blank_values=True, strict_parsing=bool(body), errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise GatewayStatusError("form") from exc
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name.lower() in {n.lower() for n in fields}:
            raise GatewayStatusError("field_twice")  # which of the two would the hash have covered?
        fields[name] = value
    return fields


def _decimal(message: GatewayMessage, name: str, *, allow_zero: bool = False) -> Decimal:
    try:
        return parse_amount(message.get(name).strip(), allow_zero=allow_zero)
    except AmountError as exc:
        raise GatewayStatusError(f"bad_{name.lower()}") from exc


def read_status_answer(fields: dict[str, str], *, client_id: str, store_key: str, oid: str, rnd: str,
                       order_amount: Decimal) -> GatewayStatus:
    """Check an answer (pure): its ver3 ``HASH`` over every other field (read as CMI's merchant kit reads them),
    our client id, the order asked about, the ``rnd`` we sent (an older answer replayed does not pass), a known
    status, and amounts that fit the order: the order's ``amount`` and currency when the gateway echoes them,
    nothing captured beyond it, and something captured exactly when the status is CAPTURED."""
    if any("\x00" in k or "\x00" in v for k, v in fields.items()):
        raise GatewayStatusError("junk")
    read = ver3_verify_received(fields, store_key, hash_field="HASH")
    if read is None:
        raise GatewayStatusError("bad_hash")
    message = GatewayMessage({k.lower(): v for k, v in read.items()})
    if message.get("clientid") != client_id:
        raise GatewayStatusError("client_id")
    if message.oid != oid:
        raise GatewayStatusError("oid")
    if message.get("rnd") != rnd:
        raise GatewayStatusError("rnd")
    status = message.get("OrderStatus").strip()
    if status not in ORDER_STATUSES:
        raise GatewayStatusError("order_status")
    captured = _decimal(message, "capturedAmount", allow_zero=True)
    if message.has("amount") and _decimal(message, "amount") != order_amount:
        raise GatewayStatusError("amount")
    if message.has("currency") and message.get("currency").strip() != MAD_NUMERIC:
        raise GatewayStatusError("currency")
    if captured > order_amount or (captured > 0) != (status == CAPTURED):
        raise GatewayStatusError("captured_amount")
    return GatewayStatus(status=status, captured_amount=captured, message=message)


def order_status(*, oid: str, order_amount: Decimal, action: str = STATUS) -> GatewayStatus:
    """Ask the gateway about an order (``action=status``), or to send its callback again first
    (``action=redeliver``). Never call it inside a database transaction: the gateway's redelivered callback comes
    back to the biller while this waits. GatewayStatusError when no trustworthy answer came."""
    rnd = secrets.token_hex(16)
    fields = status_request(oid=oid, action=action, client_id=settings.BILLER_CLIENT_ID,
                            store_key=settings.BILLER_STORE_KEY, rnd=rnd)
    # A redeliver waits for the gateway's own call back to us and its settlement: an exchange of its own inside.
    timeout = settings.PARTY_HTTP_TIMEOUT if action == STATUS else 2 * settings.PARTY_HTTP_TIMEOUT + 15
    try:
        response = party_post(settings.GATEWAY_URL + STATUS_PATH, data=fields, timeout=timeout)
    except httpx.HTTPError as exc:
        raise GatewayStatusError("unreachable") from exc
    if response.status_code != 200:
        raise GatewayStatusError(f"http_{response.status_code}")
    return read_status_answer(_parse_form(response.text), client_id=settings.BILLER_CLIENT_ID,
                              store_key=settings.BILLER_STORE_KEY, oid=oid, rnd=rnd, order_amount=order_amount)

