"""The merchant protocol as pure functions (DESIGN.md §4): reading and checking a merchant's request, the
invoices it lists and which of them are deferred, the result fields sent back, and the merchant's answer."""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

from tasdid.core import response_codes as rc
from tasdid.core.money import MAD_NUMERIC, AmountError, parse_amount, wire
from tasdid.core.signing import ver3_hash, ver3_ordered

REQUIRED_FIELDS = (
    "clientid", "amount", "currency", "oid", "okUrl", "failUrl", "callbackUrl", "rnd", "storetype", "TranType",
    "hashAlgorithm", "hash",
)
URL_FIELDS = ("okUrl", "failUrl", "callbackUrl", "shopurl")
STORE_TYPE = "3D_PAY_HOSTING"
TRAN_TYPES = {"preauth": "PreAuth", "auth": "Auth"}
LANGS = ("fr", "ar", "en")
MAX_ITEMS = 99
MAX_FIELD_LENGTH = 2048
DEFAULT_SESSION_SECONDS = 15 * 60
MIN_SESSION_SECONDS, MAX_SESSION_SECONDS = 60, 60 * 60
# Fields the gateway adds to the callback and the browser's return; a posted field of the same name
# (any case) is not echoed, so that the merchant reads the gateway's value.
RESULT_FIELDS = (
    "ProcReturnCode", "Response", "ErrMsg", "AuthCode", "TransId", "HostRefNum", "MaskedPan", "EXTRA.CARDBRAND",
    "EXTRA.TRXDATE", "mdStatus", "eci", "callbackCall", "paidAmount", "paidItems", "deferredItems", "HASH",
)

# Protocol fields are ASCII: str.isdigit() and int() would take "²" or "٢" (and int("²") raises).
_NUMBER = re.compile(r"[0-9]{1,6}")
_ITEM_FIELD = re.compile(r"item([0-9]{1,6})(ref|label|amount)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_OID = re.compile(r"^[A-Za-z0-9._:/-]{1,64}$")
_HOST_ENTRY = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:[0-9]{1,5})?$")


class RequestError(ValueError):
    """A merchant request the gateway refuses; ``message`` is the French text shown to the customer."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Item:
    ref: str
    label: str
    amount: Decimal


@dataclass(frozen=True)
class MerchantRequest:
    """A checked merchant request (its hash already verified)."""

    fields: dict[str, str]  # as posted, without ``hash``: read them with ``field`` (and ``tran_type``)
    oid: str
    amount: Decimal
    lang: str
    session_seconds: int
    items: tuple[Item, ...]
    allow_defer: bool


# --- reading the posted form ----------------------------------------------------------------------------


def collect_fields(pairs: Iterable[tuple[str, Sequence[str]]]) -> dict[str, str]:
    """The posted fields as one value per name; a name posted twice (in any case), too long, or holding a NUL
    character is refused."""
    fields: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name, values in pairs:
        if len(values) != 1 or name.lower() in seen:
            raise RequestError(_("Le champ « %(name)s » est envoyé plusieurs fois.") % {"name": name[:40]})
        if len(values[0]) > MAX_FIELD_LENGTH or len(name) > 64:
            raise RequestError(_("Le champ « %(name)s » est trop long.") % {"name": name[:40]})
        if "\x00" in name or "\x00" in values[0]:  # no form sends one; PostgreSQL can store none
            raise RequestError(_("Le champ « %(name)s » contient un caractère nul.")
                               % {"name": name.replace("\x00", "")[:40]})
        seen[name.lower()] = name
        fields[name] = values[0]
    return fields


def field(fields: Mapping[str, str], name: str) -> str:
    """A field's value by case-insensitive name, without the whitespace around it ("" when absent): the value
    the request was checked with, for every reader of a request's fields (stored as posted, to be echoed)."""
    low = name.lower()
    return next((v for k, v in fields.items() if k.lower() == low), "").strip()


def raw(fields: Mapping[str, str], name: str) -> str:
    """A field's value by case-insensitive name exactly as posted ("" when absent)."""
    low = name.lower()
    return next((v for k, v in fields.items() if k.lower() == low), "")


def _unpadded(value: str) -> str:
    """An amount as posted: one with spaces (or any whitespace) around it is malformed like "12,50", since a
    merchant that hashes or stores the value as it sent it would not read the amount the customer paid."""
    return value if value == value.strip() else "?"


def tran_type(fields: Mapping[str, str]) -> str | None:
    """The request's ``TranType``, "PreAuth" or "Auth" (None when it is neither)."""
    return TRAN_TYPES.get(field(fields, "TranType").lower())


def check_envelope(fields: Mapping[str, str]) -> str:
    """What can be checked before knowing the merchant: required fields and the hash algorithm.
    Returns the client id."""
    for name in REQUIRED_FIELDS:
        if not field(fields, name):
            raise RequestError(_("Le champ obligatoire « %(name)s » est absent de la demande de paiement.")
                               % {"name": name})
    if field(fields, "hashAlgorithm").lower() != "ver3":
        raise RequestError(_("L'algorithme de signature « hashAlgorithm » doit être « ver3 »."))
    return field(fields, "clientid")


# --- return hosts --------------------------------------------------------------------------------------


def normalize_host(entry: str) -> str:
    """A registered return host, "host" or "host:port", lower-case; ValueError if it is not one."""
    text = (entry or "").strip().lower()
    if not _HOST_ENTRY.match(text):
        raise ValueError(f"not a host or host:port: {entry!r}")
    if ":" in text and not text.endswith("]"):
        port = int(text.rsplit(":", 1)[1])
        if not 1 <= port <= 65535:
            raise ValueError(f"port out of range: {entry!r}")
    return text


def host_of_url(url: str) -> str:
    """host:port of a URL as the browser or httpx would reach it (default port written out)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}"


def url_allowed(url: str, return_hosts: Iterable[str]) -> bool:
    """True when ``url`` is an http(s) URL without credentials whose host:port is registered. A host
    registered without a port allows the default port of the URL's scheme only."""
    if not url or _CONTROL.search(url) or " " in url or len(url) > 1024:
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return False
    default = 443 if parts.scheme == "https" else 80
    return host_of_url(url) in {_with_port(entry, default) for entry in return_hosts}


def _with_port(entry: str, default: int) -> str:
    has_port = "]:" in entry if entry.startswith("[") else ":" in entry
    return entry if has_port else f"{entry}:{default}"


def request_lang(value: str) -> str:
    """The language of the customer's pages for a request's ``lang``: fr, ar or en; anything else is French."""
    lang = (value or "").strip().lower()
    return lang if lang in LANGS else "fr"


# --- the full request ----------------------------------------------------------------------------------


def parse_request(fields: Mapping[str, str], *, return_hosts: Sequence[str]) -> MerchantRequest:
    """Check a merchant request whose hash is verified; RequestError names what is wrong."""
    get = lambda name: field(fields, name)  # noqa: E731

    if get("storetype").upper() != STORE_TYPE:
        raise RequestError(_("Le type de magasin « storetype » doit être « 3D_PAY_HOSTING »."))
    if tran_type(fields) is None:
        raise RequestError(_("Le type de transaction « TranType » doit être « PreAuth » ou « Auth »."))
    if get("currency") != MAD_NUMERIC:
        raise RequestError(_("La devise « currency » doit être 504 (dirham marocain)."))
    try:
        amount = parse_amount(_unpadded(raw(fields, "amount")))
    except AmountError:
        raise RequestError(_("Le montant « amount » doit être un nombre positif avec au plus deux décimales "
                             "(par exemple 285.00).")) from None
    oid = get("oid")
    if not _OID.match(oid):
        raise RequestError(_("Le numéro de commande « oid » doit comporter de 1 à 64 lettres, chiffres ou "
                             "signes . _ : / -."))
    for name in URL_FIELDS:
        url = get(name)
        if (url or name != "shopurl") and not url_allowed(url, return_hosts):
            raise RequestError(_("L'adresse « %(name)s » n'est pas une adresse enregistrée pour ce marchand.")
                               % {"name": name})
    lang = request_lang(get("lang"))
    session_seconds = DEFAULT_SESSION_SECONDS
    if get("sessionTimeout"):
        if not _NUMBER.fullmatch(get("sessionTimeout")):
            raise RequestError(_("La durée « sessionTimeout » doit être un nombre de secondes."))
        session_seconds = int(get("sessionTimeout"))
        if not MIN_SESSION_SECONDS <= session_seconds <= MAX_SESSION_SECONDS:
            raise RequestError(_("La durée « sessionTimeout » doit être comprise entre %(min)s et %(max)s secondes.")
                               % {"min": MIN_SESSION_SECONDS, "max": MAX_SESSION_SECONDS})
    items, allow_defer = parse_items(fields, amount)
    return MerchantRequest(
        fields={k: v for k, v in fields.items() if k.lower() != "hash"}, oid=oid, amount=amount, lang=lang,
        session_seconds=session_seconds, items=items, allow_defer=allow_defer,
    )


def parse_items(fields: Mapping[str, str], amount: Decimal) -> tuple[tuple[Item, ...], bool]:
    """The bill extension (``itemCount``, ``item<N>Ref|Label|Amount``, ``allowDefer``), checked against
    ``amount``. Without ``itemCount`` there are no items (and nothing to defer)."""
    raw_low = {k.lower(): v for k, v in fields.items()}
    low = {k: v.strip() for k, v in raw_low.items()}
    indexes = {int(m.group(1)) for k in low if (m := _ITEM_FIELD.fullmatch(k))}
    raw_count = low.get("itemcount", "")
    if not raw_count:
        if indexes:
            raise RequestError(_("Extension facture incohérente : des factures sont listées sans « itemCount »."))
        return (), False
    if not _NUMBER.fullmatch(raw_count) or not 1 <= int(raw_count) <= MAX_ITEMS:
        raise RequestError(_("Extension facture incohérente : « itemCount » doit être un nombre de 1 à %(max)s.")
                           % {"max": MAX_ITEMS})
    count = int(raw_count)
    if indexes - set(range(1, count + 1)):
        raise RequestError(_("Extension facture incohérente : il y a plus de factures que « itemCount »."))
    items: list[Item] = []
    for i in range(1, count + 1):
        ref = low.get(f"item{i}ref", "")
        if not ref:
            raise RequestError(_("Extension facture incohérente : « item%(i)sRef » est absent.") % {"i": i})
        if len(ref) > 64 or "," in ref or _CONTROL.search(ref):
            raise RequestError(_("Extension facture incohérente : la référence « item%(i)sRef » est invalide.")
                               % {"i": i})
        try:
            item_amount = parse_amount(_unpadded(raw_low.get(f"item{i}amount", "")))
        except AmountError:
            raise RequestError(_("Extension facture incohérente : le montant « item%(i)sAmount » est invalide.")
                               % {"i": i}) from None
        label = low.get(f"item{i}label", "")[:200]
        if any(item.ref == ref for item in items):
            raise RequestError(_("Extension facture incohérente : la référence %(ref)s figure deux fois.")
                               % {"ref": ref})
        items.append(Item(ref=ref, label=label, amount=item_amount))
    if sum((item.amount for item in items), Decimal("0")) != amount:
        raise RequestError(_("Extension facture incohérente : la somme des factures n'est pas égale au montant."))
    allow_defer = low.get("allowdefer", "").lower() == "true"
    return tuple(items), allow_defer


# --- the invoices kept and deferred --------------------------------------------------------------------


class DeferError(ValueError):
    """A defer or restore the page refuses; ``message`` is shown to the customer."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def items_of(raw: Iterable[Mapping[str, str]]) -> tuple[Item, ...]:
    return tuple(Item(ref=i["ref"], label=i.get("label", ""), amount=Decimal(i["amount"])) for i in raw)


def kept_items(items: Sequence[Item], deferred: Iterable[str]) -> list[Item]:
    deferred = set(deferred)
    return [item for item in items if item.ref not in deferred]


def payable(amount: Decimal, items: Sequence[Item], deferred: Iterable[str]) -> Decimal:
    """What the customer pays now: the invoices kept, or the whole amount without the bill extension."""
    if not items:
        return amount
    return sum((item.amount for item in kept_items(items, deferred)), Decimal("0.00"))


def defer(items: Sequence[Item], deferred: Sequence[str], ref: str, *, allowed: bool) -> list[str]:
    """The deferred refs after deferring ``ref``; at least one invoice is always kept."""
    if not allowed:
        raise DeferError(_("Ce marchand ne permet pas de reporter une facture."))
    if ref not in {item.ref for item in items}:
        raise DeferError(_("Cette facture ne fait pas partie de la commande."))
    if ref in deferred:
        return list(deferred)
    if len(kept_items(items, deferred)) <= 1:
        raise DeferError(_("Vous devez payer au moins une facture : la dernière ne peut pas être reportée."))
    return [item.ref for item in items if item.ref in {*deferred, ref}]


def restore(items: Sequence[Item], deferred: Sequence[str], ref: str) -> list[str]:
    if ref not in {item.ref for item in items}:
        raise DeferError(_("Cette facture ne fait pas partie de la commande."))
    return [r for r in deferred if r != ref]


# --- results -------------------------------------------------------------------------------------------

# mdStatus by 3-D Secure transStatus (docs/architecture.md): 1 authenticated, 4 attempted, 2 not enrolled,
# 0 failed; 7 when the authentication could not run at all (a system error, as CMI reports it).
MD_STATUS = {"Y": "1", "A": "4", "U": "2", "N": "0", "R": "0"}
MD_STATUS_ERROR = "7"
# The merchant protocol's code for a payment that ended without the bank's answer (CMI's ProcReturnCode 99).
ERROR_CODE = rc.GATEWAY_ERROR


def response_word(code: str) -> str:
    """CMI's ``Response``: a fault (the bank, the network or the gateway: nothing decided) is "Error"."""
    outcome = rc.outcome(code)
    if outcome is rc.Outcome.APPROVED:
        return "Approved"
    return "Error" if outcome in (rc.Outcome.RETRY, rc.Outcome.ERROR) else "Declined"


def errmsg(text: str) -> str:
    """An ``ErrMsg`` is protocol text: French, whatever language the customer's pages speak. The merchant stores
    it and matches some of it (« Paiement annulé par le client »); its own pages tell the customer in their
    language. Hence never ``gettext`` here, even when a view has activated Arabic or English."""
    return text


def err_msg_for(code: str) -> str:
    """The message for an ISO 8583 response code, as the merchant shows it to the customer (``errmsg``)."""
    messages = {
        rc.APPROVED: "",
        rc.INSUFFICIENT_FUNDS: errmsg("Provision insuffisante"),
        rc.EXPIRED_CARD: errmsg("Carte expirée"),
        rc.LOST_CARD: errmsg("Carte perdue"),
        rc.STOLEN_CARD: errmsg("Carte volée"),
        rc.CVV_MISMATCH: errmsg("Code de vérification (CVV) incorrect"),
        rc.INVALID_CARD_NUMBER: errmsg("Numéro de carte invalide"),
        rc.INVALID_AMOUNT: errmsg("Montant invalide"),
        rc.INCORRECT_PIN: errmsg("Code confidentiel incorrect"),
        rc.NOT_PERMITTED: errmsg("Transaction non permise pour cette carte"),
        rc.EXCEEDS_AMOUNT_LIMIT: errmsg("Montant limite de la carte dépassé"),
        rc.RESTRICTED_CARD: errmsg("Carte soumise à restriction"),
        rc.ISSUER_UNAVAILABLE: errmsg("Votre banque ne répond pas, veuillez réessayer plus tard"),
        rc.SYSTEM_MALFUNCTION: errmsg("Erreur technique, veuillez réessayer plus tard"),
        rc.GATEWAY_ERROR: errmsg("Erreur technique, veuillez réessayer plus tard"),
    }
    return messages.get(code, errmsg("Transaction refusée par votre banque"))


@dataclass(frozen=True)
class Outcome:
    """What the gateway tells the merchant about an attempt."""

    proc_return_code: str
    err_msg: str
    auth_code: str
    trans_id: str
    host_ref_num: str
    masked_pan: str
    card_brand: str
    trx_date: str  # "YYYYMMDD HH:MM:SS"
    md_status: str
    eci: str
    paid_amount: Decimal
    paid_items: Sequence[str]
    deferred_items: Sequence[str]


def result_fields(request_fields: Mapping[str, str], outcome: Outcome, *, store_key: str,
                  callback: bool) -> dict[str, str]:
    """Every request field but ``hash`` echoed, the result fields, and ``HASH`` (ver3) over all of them; in ver3
    hash order, ``HASH`` last (DESIGN.md §4): some merchants hash the fields in the order they arrive."""
    ours = {name.lower() for name in RESULT_FIELDS}
    fields = {k: v for k, v in request_fields.items() if k.lower() not in ours and k.lower() != "hash"}
    fields.update({
        "ProcReturnCode": outcome.proc_return_code,
        "Response": response_word(outcome.proc_return_code),
        "ErrMsg": outcome.err_msg,
        "AuthCode": outcome.auth_code,
        "TransId": outcome.trans_id,
        "HostRefNum": outcome.host_ref_num,
        "MaskedPan": outcome.masked_pan,
        "EXTRA.CARDBRAND": outcome.card_brand,
        "EXTRA.TRXDATE": outcome.trx_date,
        "mdStatus": outcome.md_status,
        "eci": outcome.eci,
        "paidAmount": wire(outcome.paid_amount),
        "paidItems": ",".join(outcome.paid_items),
        "deferredItems": ",".join(outcome.deferred_items),
    })
    if callback:
        fields["callbackCall"] = "true"
    fields["HASH"] = ver3_hash(fields, store_key)
    return ver3_ordered(fields)


# What one try of the callback came to when it is not one of the merchant's answers.
NOT_DELIVERED = "NOT_DELIVERED"  # nothing reached the merchant's application: it cannot have acted on it
AMBIGUOUS = "AMBIGUOUS"  # sent, then no usable answer: the merchant may have recorded the payment
# 4xx statuses a server answers without having processed the request, but which say "try again".
_RETRY_STATUSES = frozenset({408, 425, 429})


def parse_callback_answer(text: str | None) -> str:
    """The merchant's answer to a callback, read case-insensitively by substring: ``POSTAUTH`` (capture),
    ``APPROVED`` (acknowledged, no capture) or ``FAILURE`` (void); "" when the text holds none of them.
    A FAILURE anywhere wins: when in doubt, nothing is captured."""
    upper = (text or "").upper()
    if "FAILURE" in upper:
        return "FAILURE"
    if "ACTION=POSTAUTH" in upper:
        return "POSTAUTH"
    if "APPROVED" in upper:
        return "APPROVED"
    return ""


def callback_outcome(status_code: int, text: str | None) -> str:
    """What an HTTP reply to the callback says: the merchant's answer (200 with POSTAUTH, APPROVED or FAILURE);
    NOT_DELIVERED for a 4xx refusal (the request was not processed: no such page, method, size…); AMBIGUOUS
    for anything else (a 5xx, a 408/425/429, a 200 that says nothing): the merchant may have recorded the
    payment before failing to answer, so its authorization must not be voided on that reply."""
    if status_code == 200:
        return parse_callback_answer(text) or AMBIGUOUS
    if 400 <= status_code < 500 and status_code not in _RETRY_STATUSES:
        return NOT_DELIVERED
    return AMBIGUOUS


# --- the order status query (server to server) ---------------------------------------------------------

STATUS_ACTIONS = ("status", "redeliver")
ORDER_STATUSES = ("UNKNOWN", "OPEN", "PROCESSING", "AUTHORIZED", "UNRESOLVED", "CAPTURED", "VOIDED", "DECLINED",
                  "FAILED", "EXPIRED", "CANCELLED")
# The query's random: long enough that a merchant never repeats one, printable ASCII without spaces.
_STATUS_RND = re.compile(r"[!-~]{20,128}")
# Fields of the status answer that the gateway sets: any echoed field of the same name (any case) gives way.
STATUS_FIELDS = ("clientid", "oid", "rnd", "OrderStatus", "capturedAmount")


@dataclass(frozen=True)
class StatusQuery:
    """A checked order status query (its HASH already verified with the merchant's store key)."""

    client_id: str
    oid: str
    rnd: str
    action: str


def parse_status_query(fields: Mapping[str, str]) -> StatusQuery:
    """Check a status query whose HASH is verified; RequestError names what is wrong."""
    if field(fields, "hashAlgorithm").lower() != "ver3":
        raise RequestError(_("L'algorithme de signature « hashAlgorithm » doit être « ver3 »."))
    oid = field(fields, "oid")
    if not _OID.match(oid):
        raise RequestError(_("Le numéro de commande « oid » doit comporter de 1 à 64 lettres, chiffres ou "
                             "signes . _ : / -."))
    rnd = field(fields, "rnd")
    if not _STATUS_RND.fullmatch(rnd):
        raise RequestError(_("Le champ « rnd » doit comporter de 20 à 128 caractères imprimables."))
    action = field(fields, "action").lower()
    if action not in STATUS_ACTIONS:
        raise RequestError(_("Le champ « action » doit être « status » ou « redeliver »."))
    return StatusQuery(client_id=field(fields, "clientid"), oid=oid, rnd=rnd, action=action)


def status_answer(query: StatusQuery, *, order_status: str, captured_amount: Decimal,
                  callback_fields: Mapping[str, str] | None, store_key: str) -> dict[str, str]:
    """The answer to a status query: the callback's fields when there are (so that the merchant can record the
    payment from the answer alone), the order's status and captured amount, the query's ``rnd`` echoed, and
    ``HASH`` (ver3, store key) over all of them."""
    ours = {name.lower() for name in STATUS_FIELDS}
    fields = {k: v for k, v in (callback_fields or {}).items() if k.lower() not in ours and k.lower() != "hash"}
    fields.update({"clientid": query.client_id, "oid": query.oid, "rnd": query.rnd, "OrderStatus": order_status,
                   "capturedAmount": wire(captured_amount)})
    fields["HASH"] = ver3_hash(fields, store_key)
    return ver3_ordered(fields)
