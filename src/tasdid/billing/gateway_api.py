"""The biller's client of the gateway's merchant XML API (``POST {GATEWAY_URL}/fim/api``, Nestpay's ``CC5Request``):
the refund of an order's payment (``Type=Credit``), and the order's history, read to check what a refund's answer
says. The biller's API user (settings.BILLER_GATEWAY_API_USER / _PASSWORD) logs each request in.

A pure core builds the request and reads the answer (``credit_request``, ``read_credit_answer``); ``credit`` sends.
An answer is used only once it matches what was asked: the order, and for an approved refund its amount, checked
in the order's history (the ``Credit`` answer does not repeat it). The answer is read by ``defusedxml``: no DOCTYPE,
entity or external reference is expanded."""

from dataclasses import dataclass, field
from decimal import Decimal
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from django.conf import settings

from tasdid.core.money import MAD_NUMERIC, AmountError, parse_amount, wire

API_PATH = "/fim/api"
CREDIT = "Credit"
ORDERHISTORY = "ORDERHISTORY"
IDEMPOTENCY_KEY = "IDEMPOTENCY_KEY"
APPROVED, DECLINED, ERROR = "Approved", "Declined", "Error"
MAX_ANSWER = 64 * 1024  # bytes: a CC5Response is a few hundred
# The columns of each TRXn of an ORDERHISTORY answer, tab-separated (the gateway's contract).
HISTORY_COLUMNS = ("TYPE", "TRANS_STAT", "AMOUNT", "DATE", "AUTH_CODE", "HOST_REF_NUM", "PROC_RET_CD", "TRANS_ID")


class GatewayApiError(Exception):
    """No usable answer: the gateway could not be reached, its answer cannot be read, or does not match what was
    asked. ``reason`` names the check (for the refund's record and the logs). Whether the refund moved money is
    not known: the same request, with the same key, may be sent again."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ApiAnswer:
    """A ``CC5Response`` as read: ``response`` Approved, Declined or Error."""

    response: str
    proc_return_code: str
    order_id: str
    trans_id: str = ""
    host_ref_num: str = ""
    auth_code: str = ""
    err_msg: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def approved(self) -> bool:
        return self.response == APPROVED

    @property
    def error_code(self) -> str:
        return self.extra.get("ERRORCODE", "")


def _document(root: Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode").encode("utf-8")


def _login(root: Element, *, name: str, password: str, client_id: str) -> None:
    for tag, value in (("Name", name), ("Password", password), ("ClientId", client_id)):
        SubElement(root, tag).text = value


def credit_request(*, name: str, password: str, client_id: str, order_id: str, amount: Decimal,
                   idempotency_key: str) -> bytes:
    """The ``CC5Request`` of a refund of ``amount`` on ``order_id``; ``idempotency_key`` tells it apart from any
    other refund of the same amount on the same order, and makes its repeats one refund."""
    root = Element("CC5Request")
    _login(root, name=name, password=password, client_id=client_id)
    for tag, value in (("Type", CREDIT), ("OrderId", order_id), ("Total", wire(amount)), ("Currency", MAD_NUMERIC)):
        SubElement(root, tag).text = value
    SubElement(SubElement(root, "Extra"), IDEMPOTENCY_KEY).text = idempotency_key
    return _document(root)


def history_request(*, name: str, password: str, client_id: str, order_id: str) -> bytes:
    root = Element("CC5Request")
    _login(root, name=name, password=password, client_id=client_id)
    SubElement(root, "OrderId").text = order_id
    SubElement(SubElement(root, "Extra"), ORDERHISTORY).text = "QUERY"
    return _document(root)


def read_answer(body: bytes) -> ApiAnswer:
    """A ``CC5Response`` read (pure), or GatewayApiError."""
    if len(body) > MAX_ANSWER:
        raise GatewayApiError("answer_too_large")
    try:
        root = fromstring(body.decode("utf-8"), forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, UnicodeDecodeError, ValueError) as exc:
        raise GatewayApiError("answer_unreadable") from exc
    if root.tag != "CC5Response":
        raise GatewayApiError("answer_not_cc5response")

    def text(tag: str) -> str:
        element = root.find(tag)
        return (element.text or "").strip() if element is not None else ""

    extra_element = root.find("Extra")
    extra = {e.tag: (e.text or "").strip() for e in extra_element} if extra_element is not None else {}
    answer = ApiAnswer(response=text("Response"), proc_return_code=text("ProcReturnCode"), order_id=text("OrderId"),
                       trans_id=text("TransId"), host_ref_num=text("HostRefNum"), auth_code=text("AuthCode"),
                       err_msg=text("ErrMsg"), extra=extra)
    if answer.response not in (APPROVED, DECLINED, ERROR):
        raise GatewayApiError("answer_response")
    return answer


def read_credit_answer(body: bytes, *, order_id: str) -> ApiAnswer:
    """The answer to a refund of ``order_id`` (pure): about that order (an answer naming no order is a refusal
    before the order was read: a login or a request refused), an approved one with its transaction id."""
    answer = read_answer(body)
    if answer.order_id != order_id and (answer.approved or answer.order_id):
        raise GatewayApiError("answer_order_id")
    if answer.approved and not answer.trans_id:
        raise GatewayApiError("answer_trans_id")
    return answer


def history_rows(answer: ApiAnswer) -> list[dict[str, str]]:
    """The transactions of an ORDERHISTORY answer, oldest first (pure); GatewayApiError when they do not read."""
    try:
        count = int(answer.extra.get("TRXCOUNT", ""))
    except ValueError:
        raise GatewayApiError("history_unreadable") from None
    rows = []
    for n in range(1, count + 1):
        cells = answer.extra.get(f"TRX{n}", "").split("\t")
        if len(cells) != len(HISTORY_COLUMNS):
            raise GatewayApiError("history_unreadable")
        rows.append(dict(zip(HISTORY_COLUMNS, cells, strict=True)))
    return rows


def check_credit_in_history(answer: ApiAnswer, *, order_id: str, trans_id: str, amount: Decimal) -> None:
    """An approved refund ``trans_id`` of ``amount`` on ``order_id`` stands in the order's history (pure);
    GatewayApiError naming what differs otherwise."""
    if not answer.approved or answer.order_id != order_id:
        raise GatewayApiError("history_order_id")
    rows = [r for r in history_rows(answer) if r["TYPE"] == CREDIT and r["TRANS_ID"] == trans_id]
    if len(rows) != 1:
        raise GatewayApiError("history_no_refund")
    try:
        shown = parse_amount(rows[0]["AMOUNT"])
    except AmountError:
        raise GatewayApiError("history_amount") from None
    if shown != amount:
        raise GatewayApiError("amount")
    if rows[0]["TRANS_STAT"] != "C":
        raise GatewayApiError("history_not_done")


def timeout() -> float:
    """A refund waits for the gateway, which waits for the card rails: twice a party's time and a margin, as a
    redelivered callback waits (gateway_status.order_status)."""
    return 2 * settings.PARTY_HTTP_TIMEOUT + 15


def _post(body: bytes) -> bytes:
    try:
        response = httpx.post(settings.GATEWAY_URL + API_PATH, content=body, timeout=timeout(),
                              headers={"Content-Type": "text/xml; charset=utf-8"})
    except httpx.HTTPError as exc:
        raise GatewayApiError("unreachable") from exc
    if response.status_code != 200:
        raise GatewayApiError(f"http_{response.status_code}")
    return response.content


def _credentials() -> dict[str, str]:
    return {"name": settings.BILLER_GATEWAY_API_USER, "password": settings.BILLER_GATEWAY_API_PASSWORD,
            "client_id": settings.BILLER_CLIENT_ID}


def credit(*, order_id: str, amount: Decimal, idempotency_key: str) -> ApiAnswer:
    """Ask the gateway to refund ``amount`` of the order's payment; never inside a database transaction. An
    approved answer is checked against the order's history (its amount). GatewayApiError when no trustworthy
    answer came: whether money moved is then unknown, and the same call may be made again."""
    answer = read_credit_answer(_post(credit_request(order_id=order_id, amount=amount,
                                                     idempotency_key=idempotency_key, **_credentials())),
                                order_id=order_id)
    if answer.approved:
        history = read_answer(_post(history_request(order_id=order_id, **_credentials())))
        check_credit_in_history(history, order_id=order_id, trans_id=answer.trans_id, amount=amount)
    return answer
