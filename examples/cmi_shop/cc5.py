"""A client of the CMI (Nestpay) merchant XML API, as a shop calls it from its server: a ``CC5Request`` POSTed to
``<gateway>/fim/api``, answered by a ``CC5Response``. Standard library only.

    api = Cc5Client("http://127.0.0.1:8001", name="boutique-api", password="...", client_id="600000002")
    api.postauth("ORDER-1", "200.00")          # capture 200.00 of a kept authorization (PreAuth answered APPROVED)
    api.credit("ORDER-1", "50.00", key="r1")   # refund 50.00 to the card; key: the refund's id in your system
    api.order_status("ORDER-1").extra["REFUNDABLE_AMT"]
    api.order_history("ORDER-1").transactions

The answer is read by a small parser over the standard library's expat that refuses any DOCTYPE, entity
declaration or external reference before anything is expanded or fetched (what ``defusedxml`` does), keeps two
levels (the ``CC5Response`` and its ``Extra``) and bounds the body's size: an answer is data from the network."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element, SubElement, tostring
from xml.parsers import expat

MAX_ANSWER = 64 * 1024  # bytes; a CC5Response is a few hundred
HISTORY_COLUMNS = ("TYPE", "TRANS_STAT", "AMOUNT", "DATE", "AUTH_CODE", "HOST_REF_NUM", "PROC_RET_CD", "TRANS_ID")


class Cc5Error(Exception):
    """The answer could not be read (not XML, a DOCTYPE or an entity, too large, not a CC5Response)."""


@dataclass(frozen=True)
class Cc5Response:
    fields: dict[str, str]  # OrderId, GroupId, Response, ProcReturnCode, AuthCode, HostRefNum, TransId, ErrMsg
    extra: dict[str, str]
    raw: bytes = field(repr=False, default=b"")

    @property
    def response(self) -> str:  # "Approved", "Declined" or "Error"
        return self.fields.get("Response", "")

    @property
    def approved(self) -> bool:
        return self.response == "Approved" and self.fields.get("ProcReturnCode") == "00"

    @property
    def proc_return_code(self) -> str:
        return self.fields.get("ProcReturnCode", "")

    @property
    def trans_id(self) -> str:
        return self.fields.get("TransId", "")

    @property
    def err_msg(self) -> str:
        return self.fields.get("ErrMsg", "")

    @property
    def error_code(self) -> str:
        return self.extra.get("ERRORCODE", "")

    @property
    def transactions(self) -> list[dict[str, str]]:
        """ORDERHISTORY: TRX1, TRX2, … oldest first, each a dict of HISTORY_COLUMNS."""
        count = int(self.extra.get("TRXCOUNT") or 0)
        return [dict(zip(HISTORY_COLUMNS, self.extra.get(f"TRX{n}", "").split("\t"), strict=False))
                for n in range(1, count + 1)]


def _forbidden(*_args):
    raise Cc5Error("DOCTYPE, entity or external reference in the answer: refused")


def parse_response(data: bytes) -> Cc5Response:
    """The CC5Response's elements and its Extra's, as text; anything unexpected raises Cc5Error."""
    if len(data) > MAX_ANSWER:
        raise Cc5Error(f"answer over {MAX_ANSWER} bytes")
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _forbidden
    parser.EntityDeclHandler = _forbidden
    parser.UnparsedEntityDeclHandler = _forbidden
    parser.ExternalEntityRefHandler = _forbidden
    path: list[str] = []
    fields: dict[str, str] = {}
    extra: dict[str, str] = {}
    text: list[str] = []

    def start(name, attributes):
        if (not path and name != "CC5Response") or len(path) > 2 or (len(path) == 2 and path[1] != "Extra"):
            raise Cc5Error(f"unexpected element <{name}>")
        path.append(name)
        text.clear()

    def end(name):
        value = "".join(text).strip()
        if len(path) == 2 and name != "Extra":
            fields[name] = value
        elif len(path) == 3:
            extra[name] = value
        path.pop()
        text.clear()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text.append
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise Cc5Error(f"not XML: {exc}") from None
    return Cc5Response(fields=fields, extra=extra, raw=data)


def build_request(*, name: str, password: str, client_id: str, order_id: str, type_: str = "",
                  total: str = "", query: str = "", key: str = "") -> bytes:
    root = Element("CC5Request")
    for tag, value in (("Name", name), ("Password", password), ("ClientId", client_id), ("Type", type_),
                       ("OrderId", order_id), ("Total", total), ("Currency", "504")):
        if value:
            SubElement(root, tag).text = value
    if query or key:
        extra = SubElement(root, "Extra")
        if query:
            SubElement(extra, query).text = "QUERY"
        if key:
            SubElement(extra, "IDEMPOTENCY_KEY").text = key
    return tostring(root, encoding="utf-8", xml_declaration=True)


class Cc5Client:
    def __init__(self, gateway: str, *, name: str, password: str, client_id: str, timeout: float = 60.0):
        if urlsplit(gateway).scheme not in ("http", "https"):
            raise ValueError(f"the gateway's address must be http(s): {gateway!r}")
        self.url = gateway.rstrip("/") + "/fim/api"
        self.name, self.password, self.client_id, self.timeout = name, password, client_id, timeout

    def call(self, order_id: str, *, type_: str = "", total: str = "", query: str = "", key: str = "") -> Cc5Response:
        body = build_request(name=self.name, password=self.password, client_id=self.client_id, order_id=order_id,
                             type_=type_, total=total, query=query, key=key)
        request = urllib.request.Request(self.url, data=body, method="POST",  # noqa: S310 - http(s), checked
                                         headers={"Content-Type": "text/xml; charset=utf-8"})
        with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310 - http(s), checked
            return parse_response(answer.read(MAX_ANSWER + 1))

    def postauth(self, order_id: str, total: str = "") -> Cc5Response:
        """Capture a kept authorization: all of it (no total) or part of it, once."""
        return self.call(order_id, type_="PostAuth", total=total)

    def void(self, order_id: str) -> Cc5Response:
        return self.call(order_id, type_="Void")

    def credit(self, order_id: str, total: str, *, key: str) -> Cc5Response:
        """Refund ``total`` of a captured payment. ``key``: the refund's own id, so that two refunds of the same
        amount are two refunds, and the same one sent again (after a timeout) is answered again, not paid twice."""
        return self.call(order_id, type_="Credit", total=total, key=key)

    def order_status(self, order_id: str) -> Cc5Response:
        return self.call(order_id, query="ORDERSTATUS")

    def order_history(self, order_id: str) -> Cc5Response:
        return self.call(order_id, query="ORDERHISTORY")
