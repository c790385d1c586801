"""The merchant XML API's messages, as Nestpay's XML API (the one CMI merchants call) has them: a ``CC5Request``
posted to ``/fim/api``, answered by a ``CC5Response``. A pure codec: bytes in, a checked request or an
``ApiError`` naming what is wrong; an answer in, UTF-8 bytes out. No Django here.

The XML is read by ``defusedxml``: a DOCTYPE, an entity declaration or an external reference is refused before
anything is expanded (no billion laughs, no file or URL read), the body is bounded (``MAX_BODY``), it must be
UTF-8 (an XML declaration naming another encoding is refused), and every value is bounded too.

The error texts (``ErrMsg``) are protocol text: French, as the other answers to merchants (protocol.errmsg)."""

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

MAX_BODY = 16 * 1024  # bytes, whether the XML comes raw or form-encoded as DATA=
MAX_VALUE = 128  # characters of any one value
MAX_ELEMENTS = 64  # elements in the whole request

# Type of a request that moves money; without Type, the request must carry a query in Extra.
POSTAUTH, VOID, CREDIT = "PostAuth", "Void", "Credit"
TYPES = {t.lower(): t for t in (POSTAUTH, VOID, CREDIT)}
ORDERSTATUS, ORDERHISTORY = "ORDERSTATUS", "ORDERHISTORY"
QUERIES = (ORDERSTATUS, ORDERHISTORY)
# An optional key of the merchant's own (in Extra) that tells two operations apart when all else is the same:
# two partial refunds of the same amount on the same order (docs/merchant-protocol.md §9, idempotency).
IDEMPOTENCY_KEY = "IDEMPOTENCY_KEY"
CURRENCY = "504"

APPROVED, DECLINED, ERROR = "Approved", "Declined", "Error"
ERROR_CODE = "99"

_TOP_LEVEL = ("Name", "Password", "ClientId", "Type", "OrderId", "Total", "Currency")
_AMOUNT = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?")
_OID = re.compile(r"[A-Za-z0-9._:/-]{1,64}")
_CLIENT_ID = re.compile(r"[!-~]{1,32}")
_IDEMPOTENCY = re.compile(r"[!-~]{1,64}")
_EXTRA_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,31}")
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class ApiError(Exception):
    """A request refused before anything is read or moved: ``code`` for programs (sent as Extra/ERRORCODE),
    ``message`` (French) for people."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ApiRequest:
    name: str
    password: str
    client_id: str
    type: str  # POSTAUTH, VOID, CREDIT, or "" for a query
    order_id: str
    total: Decimal | None  # None when not given (PostAuth: the whole authorization)
    currency: str
    query: str = ""  # ORDERSTATUS or ORDERHISTORY when Type is absent
    idempotency_key: str = ""

    def __repr__(self) -> str:  # never the password, in a log or an error report
        return (f"ApiRequest(name={self.name!r}, client_id={self.client_id!r}, type={self.type!r}, "
                f"order_id={self.order_id!r}, total={self.total!r}, query={self.query!r})")


@dataclass(frozen=True)
class ApiResponse:
    response: str  # APPROVED, DECLINED or ERROR
    proc_return_code: str
    order_id: str = ""
    group_id: str = ""
    auth_code: str = ""
    host_ref_num: str = ""
    trans_id: str = ""
    err_msg: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def error(code: str, message: str, *, order_id: str = "") -> ApiResponse:
    return ApiResponse(response=ERROR, proc_return_code=ERROR_CODE, order_id=order_id, group_id=order_id,
                       err_msg=message, extra={"ERRORCODE": code})


# --- reading -------------------------------------------------------------------------------------------------


def xml_of_body(body: bytes, content_type: str) -> bytes:
    """The XML of a request as posted: the body itself (``text/xml``, ``application/xml``, or any other type), or
    its ``DATA`` field when it is form-encoded (Nestpay's clients post both)."""
    if len(body) > MAX_BODY:
        raise ApiError("TOO_LARGE", f"Demande trop volumineuse : au plus {MAX_BODY} octets.")
    if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return body
    try:
        text = body.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, encoding="utf-8", errors="strict",
                          max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        raise ApiError("BAD_FORM", "Formulaire illisible : la demande XML doit être envoyée dans le champ DATA "
                                   "(codage application/x-www-form-urlencoded, UTF-8).") from None
    data = [v for k, v in pairs if k.upper() == "DATA"]
    if len(data) != 1:
        raise ApiError("BAD_FORM", "Le formulaire doit porter la demande XML dans un seul champ DATA.")
    return data[0].encode("utf-8")


def parse(body: bytes) -> ApiRequest:
    """A ``CC5Request`` checked, or ApiError. The password is only read here, never checked (the caller does)."""
    if len(body) > MAX_BODY:
        raise ApiError("TOO_LARGE", f"Demande trop volumineuse : au plus {MAX_BODY} octets.")
    if not body.strip():
        raise ApiError("EMPTY", "Demande vide : envoyez un document CC5Request.")
    declared = _DECLARED_ENCODING.match(body)
    if declared and declared.group(1).decode("ascii").lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise ApiError("NOT_UTF8", "La demande doit être codée en UTF-8.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError("NOT_UTF8", "La demande doit être codée en UTF-8.") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if _CONTROL.search(text) or "\x00" in text:
        raise ApiError("BAD_XML", "La demande contient un caractère de contrôle interdit.")
    try:
        root = fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise ApiError("FORBIDDEN_XML", "Document refusé : les DOCTYPE, entités et références externes ne sont "
                                        "pas acceptés.") from None
    except (ParseError, ValueError):
        raise ApiError("BAD_XML", "Document XML mal formé.") from None
    if root.tag != "CC5Request":
        raise ApiError("NOT_CC5REQUEST", "L'élément racine doit être CC5Request.")
    if sum(1 for _e in root.iter()) > MAX_ELEMENTS:
        raise ApiError("TOO_LARGE", f"Demande trop volumineuse : au plus {MAX_ELEMENTS} éléments.")
    if root.attrib:
        raise ApiError("BAD_XML", "CC5Request ne porte pas d'attribut.")
    values: dict[str, str] = {}
    extra: dict[str, str] = {}
    for child in root:
        if not isinstance(child.tag, str):
            continue  # a comment or a processing instruction
        if child.tag == "Extra":
            if "Extra" in values:
                raise ApiError("DUPLICATE", "L'élément « Extra » figure deux fois.")
            values["Extra"] = ""
            for item in child:
                if not isinstance(item.tag, str):
                    continue
                name = item.tag.upper()
                if not _EXTRA_NAME.fullmatch(name):
                    raise ApiError("BAD_ELEMENT", "Nom d'élément invalide dans « Extra ».")
                if name in extra:
                    raise ApiError("DUPLICATE", f"L'élément « Extra/{name} » figure deux fois.")
                extra[name] = _leaf(item, f"Extra/{name}")
            if (child.text or "").strip():
                raise ApiError("BAD_XML", "L'élément « Extra » ne contient que des éléments.")
            continue
        name = next((n for n in _TOP_LEVEL if n.lower() == child.tag.lower()), child.tag)
        if name in values:
            raise ApiError("DUPLICATE", f"L'élément « {name[:32]} » figure deux fois.")
        values[name] = _leaf(child, name[:32])
    return _checked(values, extra)


def _leaf(element: Element, name: str) -> str:
    if len(element) or element.attrib:
        raise ApiError("BAD_ELEMENT", f"L'élément « {name} » doit contenir une valeur simple.")
    value = (element.text or "").strip()
    if len(value) > MAX_VALUE:
        raise ApiError("TOO_LONG", f"La valeur de « {name} » dépasse {MAX_VALUE} caractères.")
    return value


def _required(values: dict[str, str], name: str) -> str:
    value = values.get(name, "")
    if not value:
        raise ApiError("MISSING", f"L'élément obligatoire « {name} » est absent ou vide.")
    return value


def _checked(values: dict[str, str], extra: dict[str, str]) -> ApiRequest:
    name, password = _required(values, "Name"), _required(values, "Password")
    client_id = _required(values, "ClientId")
    if not _CLIENT_ID.fullmatch(client_id):
        raise ApiError("BAD_CLIENTID", "L'identifiant marchand « ClientId » est invalide.")
    order_id = _required(values, "OrderId")
    if not _OID.fullmatch(order_id):
        raise ApiError("BAD_ORDERID", "Le numéro de commande « OrderId » est invalide (1 à 64 caractères : "
                                      "lettres, chiffres, . _ : / -).")
    raw_type = values.get("Type", "")
    type_ = TYPES.get(raw_type.lower()) if raw_type else ""
    if type_ is None:
        raise ApiError("BAD_TYPE", "Type d'opération inconnu : PostAuth, Void ou Credit.")
    queries = [q for q in QUERIES if q in extra]
    for q in queries:
        if extra[q].upper() != "QUERY":
            raise ApiError("BAD_QUERY", f"« Extra/{q} » doit valoir QUERY.")
    if type_ and queries:
        raise ApiError("BAD_QUERY", "Une demande porte soit un Type, soit une interrogation (Extra), pas les deux.")
    if not type_ and not queries:
        raise ApiError("MISSING", "L'élément obligatoire « Type » est absent : PostAuth, Void ou Credit (ou une "
                                  "interrogation Extra/ORDERSTATUS ou Extra/ORDERHISTORY).")
    if len(queries) > 1:
        raise ApiError("BAD_QUERY", "Une seule interrogation par demande : ORDERSTATUS ou ORDERHISTORY.")
    total = None
    raw_total = values.get("Total", "")
    if raw_total:
        if not _AMOUNT.fullmatch(raw_total):
            raise ApiError("BAD_TOTAL", "Le montant « Total » doit être un nombre positif à deux décimales au plus "
                                        "(par exemple 125.50).")
        total = Decimal(raw_total).quantize(Decimal("0.01"))
        if total <= 0:
            raise ApiError("BAD_TOTAL", "Le montant « Total » doit être positif.")
    elif type_ == CREDIT:
        raise ApiError("MISSING", "L'élément obligatoire « Total » est absent : le montant à rembourser.")
    currency = values.get("Currency", "") or CURRENCY
    if currency != CURRENCY:
        raise ApiError("BAD_CURRENCY", "La devise « Currency » doit être 504 (dirham marocain).")
    key = extra.get(IDEMPOTENCY_KEY, "")
    if key and not _IDEMPOTENCY.fullmatch(key):
        raise ApiError("BAD_IDEMPOTENCY_KEY", "« Extra/IDEMPOTENCY_KEY » : 1 à 64 caractères imprimables, "
                                              "sans espace.")
    return ApiRequest(name=name, password=password, client_id=client_id, type=type_, order_id=order_id,
                      total=total, currency=currency, query=queries[0] if queries else "", idempotency_key=key)


def amount_text(amount: Decimal) -> str:
    try:
        return f"{Decimal(amount).quantize(Decimal('0.01')):f}"
    except InvalidOperation:  # pragma: no cover - amounts come from the database
        return str(amount)


# --- writing -------------------------------------------------------------------------------------------------


def _clean(value: str) -> str:
    """What XML 1.0 can carry of a value (control characters dropped)."""
    return _CONTROL.sub("", str(value)).replace("\x00", "")


def serialize(answer: ApiResponse) -> bytes:
    """The ``CC5Response`` document, UTF-8, with its declaration; every element present (empty when unknown), as
    Nestpay answers."""
    root = Element("CC5Response")
    for tag, value in (("OrderId", answer.order_id), ("GroupId", answer.group_id), ("Response", answer.response),
                       ("AuthCode", answer.auth_code), ("HostRefNum", answer.host_ref_num),
                       ("ProcReturnCode", answer.proc_return_code), ("TransId", answer.trans_id),
                       ("ErrMsg", answer.err_msg)):
        SubElement(root, tag).text = _clean(value)
    extra = SubElement(root, "Extra")
    for tag, value in answer.extra.items():
        SubElement(extra, tag).text = _clean(value)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode").encode("utf-8")


def read_response(body: bytes) -> ApiResponse:
    """A ``CC5Response`` read back (the tests', and a Python merchant's, side)."""
    root = fromstring(body.decode("utf-8"), forbid_dtd=True, forbid_entities=True, forbid_external=True)
    if root.tag != "CC5Response":
        raise ApiError("NOT_CC5RESPONSE", "L'élément racine doit être CC5Response.")

    def text(tag: str) -> str:
        element = root.find(tag)
        return (element.text or "") if element is not None else ""

    extra_element = root.find("Extra")
    extra = {e.tag: e.text or "" for e in extra_element} if extra_element is not None else {}
    return ApiResponse(response=text("Response"), proc_return_code=text("ProcReturnCode"), order_id=text("OrderId"),
                       group_id=text("GroupId"), auth_code=text("AuthCode"), host_ref_num=text("HostRefNum"),
                       trans_id=text("TransId"), err_msg=text("ErrMsg"), extra=extra)


def build_request(*, name: str, password: str, client_id: str, order_id: str, type_: str = "",
                  total: str | None = None, currency: str | None = "504", query: str = "",
                  idempotency_key: str = "") -> bytes:
    """A ``CC5Request`` as a merchant writes it (the tests', the fuzzer's and the docs' examples' side)."""
    root = Element("CC5Request")
    for tag, value in (("Name", name), ("Password", password), ("ClientId", client_id), ("Type", type_),
                       ("OrderId", order_id), ("Total", total), ("Currency", currency if type_ else None)):
        if value:
            SubElement(root, tag).text = value
    if query or idempotency_key:
        extra = SubElement(root, "Extra")
        if query:
            SubElement(extra, query).text = "QUERY"
        if idempotency_key:
            SubElement(extra, IDEMPOTENCY_KEY).text = idempotency_key
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode").encode("utf-8")
