"""The card rails' ISO 8583:1987 profile (DESIGN.md §5): typed messages, their codec, and the TCP framing.

Where it lives: this is protocol knowledge shared by the gateway's acquirer client, the switch (the centre
monétique) and the issuer hosts, and the import contracts forbid the parties to import each other, so it is
in ``core``; the switch reaches it through ``tasdid.switch.iso8583``, which re-exports it. Pure: the standard
library and ``pyiso8583`` (its ``default_ascii`` spec), no Django.

The API, for a client, the switch or an issuer host::

    from tasdid.core import iso8583 as iso

    request = iso.AuthorizationRequest(pan=..., expiry_yymm="2812", amount_minor=28500, currency="504",
                                       stan="000001", transmitted_at=now, merchant_id="600000000", cvv="123")
    writer.write(iso.encode_frame(request))              # 2-byte big-endian length + the message
    message = await iso.read_message(reader)             # one framed message (None: the peer closed cleanly)
    answer = iso.respond(message, iso.rc.APPROVED, rrn=..., auth_code=...)   # the matching 0110
    iso.match_key(answer) == iso.match_key(request)      # (STAN, DE7): how responses find their request

- Messages are frozen dataclasses, one per message type: ``AuthorizationRequest`` 0100 /
  ``AuthorizationResponse`` 0110, ``FinancialRequest`` 0200 / ``FinancialResponse`` 0210 (processing code
  ``20xxxx``: a refund, credited to the card's account; ``00xxxx``: a purchase), ``CompletionRequest`` 0220 /
  ``CompletionResponse`` 0230 (capture), ``ReversalRequest`` 0400 / ``ReversalResponse`` 0410 (void, timeout;
  DE90 ``OriginalData``), ``NetworkRequest`` 0800 / ``NetworkResponse`` 0810 (sign-on ``001``, sign-off
  ``002``, echo ``301``). An empty string (or None for an amount) is a field that is absent.
- ``encode(message) -> bytes`` and ``decode(payload, now=...) -> message`` work on one message without its
  length prefix; ``encode_frame`` / ``decode_frame`` with it; ``frame(payload)`` adds the prefix;
  ``read_frame`` / ``read_message`` read one frame from an ``asyncio.StreamReader``, at most ``max_size``.
- DE7 (transmission date and time) is ``MMDDhhmmss`` in UTC, whole seconds: ``encode`` drops microseconds,
  ``decode`` takes the year that puts the time nearest to ``now`` (default: the clock).
- Everything wrong with bytes received raises ``MessageError``, and nothing else does: ``where`` names the
  element (``frame``, ``MTI``, ``bitmap``, ``DE4``, ``DE48.CV``...), ``reason`` says what is wrong (never a
  card number or a CVV). ``stream_lost`` True (a framing error): close the connection, the stream is out of
  step. Else answer: ``format_error_answer(error)`` is the response with code 30 when the request's type,
  STAN and DE7 could be read, None when there is nobody to answer (then log and drop, or close).
- ``encode`` refuses a message that breaks the profile with ``ValueError`` (a bug of the sender's): a sender
  passes a merchant's name through ``ascii_text`` (DE43 is 40 ASCII characters), and DE42 holds 15.
- DE48 is ``tag(2) + length(3) + value`` (``de48_encode`` / ``de48_decode``): ``CV`` CVV2, ``EC`` ECI,
  ``AV`` authentication value (CAVV), ``DS`` 3DS directory transaction id, ``TS`` 3DS transStatus, and ours,
  ``OI`` the merchant's order id. An unknown or repeated tag is a format error.

docs/iso8583.md describes every message and element; the tests hold it to the code.
"""

import asyncio
import dataclasses
import datetime as dt
import functools
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, ClassVar

import iso8583
from iso8583.specs import default_ascii

from . import response_codes as rc

__all__ = [
    "MAX_FRAME",
    "AuthorizationRequest",
    "AuthorizationResponse",
    "CompletionRequest",
    "CompletionResponse",
    "FinancialRequest",
    "FinancialResponse",
    "Message",
    "MessageError",
    "NetworkRequest",
    "NetworkResponse",
    "OriginalData",
    "ReversalRequest",
    "ReversalResponse",
    "ascii_text",
    "de7",
    "de48_decode",
    "de48_encode",
    "decode",
    "decode_frame",
    "encode",
    "encode_frame",
    "format_error_answer",
    "frame",
    "match_key",
    "rc",
    "read_frame",
    "read_message",
    "respond",
]

SPEC = default_ascii
LENGTH_PREFIX = 2  # bytes, big-endian
MAX_FRAME = 2048  # the longest message of the profile, a 0200 with every element at its longest, is 389 bytes

# Processing codes (DE3): the first two digits are the transaction type.
PURCHASE = "000000"
REFUND = "200000"
TYPE_PURCHASE, TYPE_REFUND = "00", "20"

# Network management information codes (DE70).
SIGN_ON, SIGN_OFF, ECHO = "001", "002", "301"
NETWORK_CODES = (SIGN_ON, SIGN_OFF, ECHO)

MAD = "504"


class MessageError(ValueError):
    """Bytes received that are not a message of this profile. Never carries a card number or a CVV.

    ``where``: the element at fault (``frame``, ``MTI``, ``bitmap``, ``DE11``, ``DE48.CV``...); ``reason``: what
    is wrong with it; ``stream_lost``: the framing itself failed, so the connection must be closed. ``mti``,
    ``stan``, ``transmitted_at`` and ``merchant_id`` are what could be read of the message (None otherwise),
    enough for ``format_error_answer`` to answer 30.
    """

    def __init__(self, where: str, reason: str, *, stream_lost: bool = False, mti: str | None = None,
                 stan: str | None = None, transmitted_at: dt.datetime | None = None,
                 merchant_id: str | None = None):
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason
        self.stream_lost = stream_lost
        self.mti = mti
        self.stan = stan
        self.transmitted_at = transmitted_at
        self.merchant_id = merchant_id


class _Bad(Exception):
    """A value that does not fit its element (internal: becomes MessageError or ValueError)."""

    def __init__(self, where: str, reason: str):
        super().__init__(where, reason)
        self.where, self.reason = where, reason


# --- Element formats -----------------------------------------------------------------------------------------

_DIGITS = re.compile(r"[0-9]*")  # ASCII only: \d takes Arabic-Indic digits
_ALNUM = re.compile(r"[0-9A-Za-z]*")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


class _Format:
    """How one value travels: ``check`` (None or what is wrong), ``to_wire``, ``from_wire``."""

    def check(self, value: Any) -> str | None:
        raise NotImplementedError

    def to_wire(self, value: Any) -> str:
        return value

    def from_wire(self, text: str, now: dt.datetime) -> Any:
        return text


class _Text(_Format):
    def __init__(self, pattern: re.Pattern[str], min_len: int, max_len: int, what: str):
        self.pattern, self.min_len, self.max_len, self.what = pattern, min_len, max_len, what

    def check(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return "not text"
        if not self.min_len <= len(value) <= self.max_len:
            size = str(self.min_len) if self.min_len == self.max_len else f"{self.min_len} to {self.max_len}"
            return f"{len(value)} characters, expected {size}"
        if not self.pattern.fullmatch(value):
            return f"not {self.what}"
        return None


def _digits(min_len: int, max_len: int | None = None) -> _Text:
    return _Text(_DIGITS, min_len, max_len or min_len, "digits")


class _Padded(_Text):
    """A fixed-length text element (ans): the value, then spaces up to the element's length."""

    def __init__(self, min_len: int, length: int):
        super().__init__(_PRINTABLE, min_len, length, "printable ASCII")
        self.length = length

    def check(self, value: Any) -> str | None:
        if (problem := super().check(value)) is not None:
            return problem
        if value != value.rstrip(" "):
            return "ends with a space"
        return None

    def to_wire(self, value: str) -> str:
        return value.ljust(self.length)

    def from_wire(self, text: str, now: dt.datetime) -> str:
        return text.rstrip(" ")


class _Amount(_Format):
    """DE4: minor units (centimes), 12 digits."""

    def check(self, value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return "not an integer"
        if not 0 <= value < 10**12:
            return "out of range 0 to 999999999999"
        return None

    def to_wire(self, value: int) -> str:
        return f"{value:012d}"

    def from_wire(self, text: str, now: dt.datetime) -> int:
        if not (len(text) == 12 and _DIGITS.fullmatch(text)):
            raise ValueError("not 12 digits")
        return int(text)


class _Timestamp(_Format):
    """DE7: MMDDhhmmss, UTC, whole seconds; the year is the one nearest to ``now``."""

    def check(self, value: Any) -> str | None:
        if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
            return "not a timezone-aware datetime"
        return None

    def to_wire(self, value: dt.datetime) -> str:
        return de7(value)

    def from_wire(self, text: str, now: dt.datetime) -> dt.datetime:
        return _parse_de7(text, now)


@functools.lru_cache(maxsize=4096)  # many messages share a second; strftime is among the hot path's dearest calls
def de7(value: dt.datetime) -> str:
    """DE7 as sent: ``MMDDhhmmss`` in UTC (microseconds dropped)."""
    return value.astimezone(dt.UTC).strftime("%m%d%H%M%S")


def _parse_de7(text: str, now: dt.datetime) -> dt.datetime:
    if not (len(text) == 10 and _DIGITS.fullmatch(text)):
        raise ValueError("not 10 digits")
    month, day, hour, minute, second = (int(text[i:i + 2]) for i in range(0, 10, 2))
    now = now.astimezone(dt.UTC)
    candidates = []
    for year in (now.year - 1, now.year, now.year + 1):
        try:
            candidates.append(dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC))
        except ValueError:
            continue
    if not candidates:
        raise ValueError("not a date and time")
    return min(candidates, key=lambda c: abs(c - now))


@dataclass(frozen=True)
class OriginalData:
    """DE90: the original message's type, STAN and DE7, and the institutions (11 digits each, 0 when unknown)."""

    mti: str
    stan: str
    transmitted_at: dt.datetime
    acquirer_id: str = "00000000000"
    forwarder_id: str = "00000000000"


class _Original(_Format):
    """DE90 (n42): MTI(4) + STAN(6) + DE7(10) + acquirer(11) + forwarder(11)."""

    _MTI = _digits(4)
    _STAN = _digits(6)
    _INSTITUTION = _digits(11)

    def check(self, value: Any) -> str | None:
        if not isinstance(value, OriginalData):
            return "not OriginalData"
        if self._MTI.check(value.mti) or value.mti not in REQUESTS:
            return "original MTI is not a request of the profile"
        for name, fmt, v in (("STAN", self._STAN, value.stan), ("acquirer", self._INSTITUTION, value.acquirer_id),
                             ("forwarder", self._INSTITUTION, value.forwarder_id)):
            if (problem := fmt.check(v)) is not None:
                return f"original {name}: {problem}"
        return _Timestamp().check(value.transmitted_at)

    def to_wire(self, value: OriginalData) -> str:
        return value.mti + value.stan + de7(value.transmitted_at) + value.acquirer_id + value.forwarder_id

    def from_wire(self, text: str, now: dt.datetime) -> OriginalData:
        if not (len(text) == 42 and _DIGITS.fullmatch(text)):
            raise ValueError("not 42 digits")
        value = OriginalData(mti=text[:4], stan=text[4:10], transmitted_at=_parse_de7(text[10:20], now),
                             acquirer_id=text[20:31], forwarder_id=text[31:42])
        if (problem := self.check(value)) is not None:
            raise ValueError(problem)
        return value


class _Choice(_Format):
    def __init__(self, choices: tuple[str, ...]):
        self.choices = choices

    def check(self, value: Any) -> str | None:
        return None if value in self.choices else f"not one of {', '.join(self.choices)}"


PAN = _digits(12, 19)
STAN = _digits(6)
EXPIRY = _digits(4)  # YYMM; whether it is a valid month is the issuer's business (54), not the codec's
CURRENCY = _digits(3)
PROCESSING_CODE = _digits(6)
MERCHANT_ID = _Padded(1, 15)  # DE42
MERCHANT_NAME = _Padded(0, 40)  # DE43
RRN = _Text(_ALNUM, 12, 12, "letters and digits")  # DE37
AUTH_CODE = _Text(_ALNUM, 6, 6, "letters and digits")  # DE38
RESPONSE_CODE = _Text(re.compile(r"[0-9A-Z]*"), 2, 2, "digits and capital letters")  # DE39
NETWORK_CODE = _Choice(NETWORK_CODES)  # DE70
# DE48 tags
CVV = _digits(3, 4)
ECI = _digits(2)
AUTHENTICATION_VALUE = _Text(re.compile(r"[A-Za-z0-9+/=]*"), 1, 40, "base64")
DS_TRANS_ID = _Text(re.compile(r"[0-9A-Za-z-]*"), 1, 36, "a transaction id")
TRANS_STATUS = _Text(re.compile(r"[A-Z]*"), 1, 1, "a capital letter")
ORDER_ID = _Text(re.compile(r"[A-Za-z0-9._:/-]*"), 1, 64, "an order id")

def ascii_text(value: str, length: int = 40) -> str:
    """``value`` as a fixed ``ans`` element accepts it (DE43 by default): accents folded ("Télécom" → "Telecom"),
    other characters outside printable ASCII as "?", spaces collapsed, cut at ``length``."""
    folded = "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c))
    printable = "".join(c if " " <= c <= "~" else ("?" if not c.isspace() else " ") for c in folded)
    return " ".join(printable.split())[:length].rstrip(" ")


DE48_TAGS = {"CV": "CVV2", "EC": "ECI", "AV": "authentication value (CAVV)",
             "DS": "3DS directory server transaction id", "TS": "3DS transStatus", "OI": "merchant order id"}


def _de(number: str, fmt: _Format, *, secret: bool = False) -> dict:
    return {"de": number, "fmt": fmt, "secret": secret}


# --- DE48 ------------------------------------------------------------------------------------------------------

_TAG = re.compile(r"[A-Z0-9]{2}")


def de48_encode(tags: dict[str, str]) -> str:
    """``tag(2) + length(3) + value`` for each tag, in the given order; empty values are left out."""
    parts = []
    for tag, value in tags.items():
        if not value:
            continue
        if not _TAG.fullmatch(tag) or not _PRINTABLE.fullmatch(value) or len(value) > 999:
            raise ValueError(f"DE48 tag {tag!r}: not a tag of two capitals or digits with printable ASCII")
        parts.append(f"{tag}{len(value):03d}{value}")
    return "".join(parts)


def de48_decode(text: str) -> dict[str, str]:
    """The tags of a DE48 value, in order. Raises ValueError for a malformed or repeated tag."""
    tags: dict[str, str] = {}
    i = 0
    while i < len(text):
        head = text[i:i + 5]
        if len(head) < 5 or not _TAG.fullmatch(head[:2]) or not _DIGITS.fullmatch(head[2:]):
            raise ValueError(f"malformed tag header at {i}")
        tag, size = head[:2], int(head[2:])
        value = text[i + 5:i + 5 + size]
        if size == 0 or len(value) != size:
            raise ValueError(f"tag {tag}: length {size} does not fit")
        if tag in tags:
            raise ValueError(f"tag {tag} repeated")
        tags[tag] = value
        i += 5 + size
    return tags


# --- Messages --------------------------------------------------------------------------------------------------


def _mask(pan: str) -> str:
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:] if len(pan) >= 13 else "*" * len(pan)


class _Message:
    MTI: ClassVar[str]

    def _check(self) -> tuple[str, str] | None:
        """Rules across elements: (element, what is wrong) or None."""
        return None

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.metadata.get("secret"):
                if value:
                    shown.append(f"{f.name}=<hidden>")
                continue
            if f.name == "pan":
                value = _mask(value)
            shown.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


def _processing_type(code: str, allowed: tuple[str, ...]) -> tuple[str, str] | None:
    if code[:2] not in allowed:
        return ("DE3", f"transaction type {code[:2]} is not one of {', '.join(allowed)}")
    return None


@dataclass(frozen=True, repr=False)
class AuthorizationRequest(_Message):
    """0100: place a hold for ``amount_minor`` on the card's account."""

    MTI: ClassVar[str] = "0100"
    pan: str = field(metadata=_de("2", PAN, secret=False))
    expiry_yymm: str = field(metadata=_de("14", EXPIRY))
    amount_minor: int = field(metadata=_de("4", _Amount()))
    currency: str = field(metadata=_de("49", CURRENCY))
    stan: str = field(metadata=_de("11", STAN))
    transmitted_at: dt.datetime = field(metadata=_de("7", _Timestamp()))
    merchant_id: str = field(metadata=_de("42", MERCHANT_ID))
    processing_code: str = field(default=PURCHASE, metadata=_de("3", PROCESSING_CODE))
    merchant_name: str = field(default="", metadata=_de("43", MERCHANT_NAME))
    order_id: str = field(default="", metadata=_de("48.OI", ORDER_ID))
    cvv: str = field(default="", metadata=_de("48.CV", CVV, secret=True))
    eci: str = field(default="", metadata=_de("48.EC", ECI))
    authentication_value: str = field(default="", metadata=_de("48.AV", AUTHENTICATION_VALUE, secret=True))
    ds_trans_id: str = field(default="", metadata=_de("48.DS", DS_TRANS_ID))
    trans_status: str = field(default="", metadata=_de("48.TS", TRANS_STATUS))

    def _check(self):
        return _processing_type(self.processing_code, (TYPE_PURCHASE,))


@dataclass(frozen=True, repr=False)
class FinancialRequest(_Message):
    """0200: a purchase (processing code ``00xxxx``: the card's data, debited at once) or a refund (``20xxxx``:
    a credit to the card's account, found by its number or, as the gateway keeps no card number, by the
    original authorization: DE37 RRN and DE90)."""

    MTI: ClassVar[str] = "0200"
    processing_code: str = field(metadata=_de("3", PROCESSING_CODE))
    amount_minor: int = field(metadata=_de("4", _Amount()))
    currency: str = field(metadata=_de("49", CURRENCY))
    stan: str = field(metadata=_de("11", STAN))
    transmitted_at: dt.datetime = field(metadata=_de("7", _Timestamp()))
    merchant_id: str = field(metadata=_de("42", MERCHANT_ID))
    pan: str = field(default="", metadata=_de("2", PAN))
    expiry_yymm: str = field(default="", metadata=_de("14", EXPIRY))
    rrn: str = field(default="", metadata=_de("37", RRN))
    original: OriginalData | None = field(default=None, metadata=_de("90", _Original()))
    merchant_name: str = field(default="", metadata=_de("43", MERCHANT_NAME))
    order_id: str = field(default="", metadata=_de("48.OI", ORDER_ID))
    cvv: str = field(default="", metadata=_de("48.CV", CVV, secret=True))
    eci: str = field(default="", metadata=_de("48.EC", ECI))
    authentication_value: str = field(default="", metadata=_de("48.AV", AUTHENTICATION_VALUE, secret=True))
    ds_trans_id: str = field(default="", metadata=_de("48.DS", DS_TRANS_ID))
    trans_status: str = field(default="", metadata=_de("48.TS", TRANS_STATUS))

    @property
    def is_refund(self) -> bool:
        return self.processing_code[:2] == TYPE_REFUND

    def _check(self):
        if (problem := _processing_type(self.processing_code, (TYPE_PURCHASE, TYPE_REFUND))) is not None:
            return problem
        if not self.is_refund and not (self.pan and self.expiry_yymm):
            return ("DE2", "a purchase carries the card number and its expiry (DE2, DE14)")
        if self.is_refund and not self.pan and not (self.rrn and self.original):
            return ("DE2", "a refund carries the card number (DE2) or the original's RRN and data (DE37, DE90)")
        return None


@dataclass(frozen=True, repr=False)
class CompletionRequest(_Message):
    """0220: capture ``amount_minor`` (up to the hold) of the authorization named by DE37 and DE90."""

    MTI: ClassVar[str] = "0220"
    amount_minor: int = field(metadata=_de("4", _Amount()))
    currency: str = field(metadata=_de("49", CURRENCY))
    stan: str = field(metadata=_de("11", STAN))
    transmitted_at: dt.datetime = field(metadata=_de("7", _Timestamp()))
    merchant_id: str = field(metadata=_de("42", MERCHANT_ID))
    rrn: str = field(metadata=_de("37", RRN))
    original: OriginalData = field(metadata=_de("90", _Original()))
    processing_code: str = field(default=PURCHASE, metadata=_de("3", PROCESSING_CODE))
    auth_code: str = field(default="", metadata=_de("38", AUTH_CODE))
    order_id: str = field(default="", metadata=_de("48.OI", ORDER_ID))

    def _check(self):
        return _processing_type(self.processing_code, (TYPE_PURCHASE,))


@dataclass(frozen=True, repr=False)
class ReversalRequest(_Message):
    """0400: undo the original (DE90) — a void, or a reversal after a timeout, when DE37 may be unknown."""

    MTI: ClassVar[str] = "0400"
    amount_minor: int = field(metadata=_de("4", _Amount()))
    currency: str = field(metadata=_de("49", CURRENCY))
    stan: str = field(metadata=_de("11", STAN))
    transmitted_at: dt.datetime = field(metadata=_de("7", _Timestamp()))
    merchant_id: str = field(metadata=_de("42", MERCHANT_ID))
    original: OriginalData = field(metadata=_de("90", _Original()))
    processing_code: str = field(default=PURCHASE, metadata=_de("3", PROCESSING_CODE))
    rrn: str = field(default="", metadata=_de("37", RRN))
    auth_code: str = field(default="", metadata=_de("38", AUTH_CODE))
    order_id: str = field(default="", metadata=_de("48.OI", ORDER_ID))

    def _check(self):
        return _processing_type(self.processing_code, (TYPE_PURCHASE, TYPE_REFUND))


@dataclass(frozen=True, repr=False)
class NetworkRequest(_Message):
    """0800: sign-on (``001``), sign-off (``002``) or echo test (``301``)."""

    MTI: ClassVar[str] = "0800"
    stan: str = field(metadata=_de("11", STAN))
    transmitted_at: dt.datetime = field(metadata=_de("7", _Timestamp()))
    network_code: str = field(metadata=_de("70", NETWORK_CODE))


@dataclass(frozen=True, repr=False)
class _Response(_Message):
    """The answer to a financial request: its STAN and DE7 (the match key), the response code, and the echo
    of its processing code, amount, currency and merchant; RRN and authorization code when there are some."""

    stan: str = field(metadata=_de("11", STAN))
    transmitted_at: dt.datetime = field(metadata=_de("7", _Timestamp()))
    response_code: str = field(metadata=_de("39", RESPONSE_CODE))
    merchant_id: str = field(default="", metadata=_de("42", MERCHANT_ID))
    processing_code: str = field(default="", metadata=_de("3", PROCESSING_CODE))
    amount_minor: int | None = field(default=None, metadata=_de("4", _Amount()))
    currency: str = field(default="", metadata=_de("49", CURRENCY))
    rrn: str = field(default="", metadata=_de("37", RRN))
    auth_code: str = field(default="", metadata=_de("38", AUTH_CODE))

    @property
    def approved(self) -> bool:
        return rc.is_approved(self.response_code)


@dataclass(frozen=True, repr=False)
class AuthorizationResponse(_Response):
    MTI: ClassVar[str] = "0110"


@dataclass(frozen=True, repr=False)
class FinancialResponse(_Response):
    MTI: ClassVar[str] = "0210"


@dataclass(frozen=True, repr=False)
class CompletionResponse(_Response):
    MTI: ClassVar[str] = "0230"


@dataclass(frozen=True, repr=False)
class ReversalResponse(_Response):
    MTI: ClassVar[str] = "0410"


@dataclass(frozen=True, repr=False)
class NetworkResponse(_Message):
    MTI: ClassVar[str] = "0810"
    stan: str = field(metadata=_de("11", STAN))
    transmitted_at: dt.datetime = field(metadata=_de("7", _Timestamp()))
    response_code: str = field(metadata=_de("39", RESPONSE_CODE))
    network_code: str = field(metadata=_de("70", NETWORK_CODE))

    @property
    def approved(self) -> bool:
        return rc.is_approved(self.response_code)


Message = (AuthorizationRequest | AuthorizationResponse | FinancialRequest | FinancialResponse | CompletionRequest
           | CompletionResponse | ReversalRequest | ReversalResponse | NetworkRequest | NetworkResponse)

MESSAGES: dict[str, type] = {cls.MTI: cls for cls in (
    AuthorizationRequest, AuthorizationResponse, FinancialRequest, FinancialResponse, CompletionRequest,
    CompletionResponse, ReversalRequest, ReversalResponse, NetworkRequest, NetworkResponse)}
REQUESTS = ("0100", "0200", "0220", "0400", "0800")
RESPONSE_MTI = {"0100": "0110", "0200": "0210", "0220": "0230", "0400": "0410", "0800": "0810"}


@functools.cache
def _elements(cls: type) -> tuple[tuple[dataclasses.Field, str, _Format], ...]:
    """A message class's fields with their element numbers and formats (read once per class: the hot path)."""
    return tuple((f, f.metadata["de"], f.metadata["fmt"]) for f in dataclasses.fields(cls))


@functools.cache
def _known(cls: type) -> frozenset[str]:
    """The elements a message class may carry, DE48 included when it has tags."""
    numbers = {number for _f, number, _fmt in _elements(cls)}
    return frozenset({"t", "p", "1", *numbers, *(("48",) if any(n.startswith("48.") for n in numbers) else ())})


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING


def _absent(value: Any) -> bool:
    return value is None or value == ""


# --- Codec -----------------------------------------------------------------------------------------------------


def _to_fields(message: Message) -> dict[str, str]:
    cls = type(message)
    if cls not in MESSAGES.values():
        raise ValueError(f"not a message of the profile: {cls.__name__}")
    fields: dict[str, str] = {"t": cls.MTI}
    de48: dict[str, str] = {}
    for f, number, fmt in _elements(cls):
        value = getattr(message, f.name)
        if _absent(value):
            if _required(f):
                raise ValueError(f"{cls.MTI} DE{number}: {f.name} is required")
            continue
        if (problem := fmt.check(value)) is not None:
            raise ValueError(f"{cls.MTI} DE{number} ({f.name}): {problem}")
        if number.startswith("48."):
            de48[number[3:]] = fmt.to_wire(value)
        else:
            fields[number] = fmt.to_wire(value)
    if de48:
        fields["48"] = de48_encode(dict(sorted(de48.items())))
    if (problem := message._check()) is not None:
        raise ValueError(f"{cls.MTI} {problem[0]}: {problem[1]}")
    return fields


def encode(message: Message) -> bytes:
    """The message's bytes (MTI, bitmap(s), elements), without the length prefix."""
    fields = _to_fields(message)
    try:
        raw, _encoded = iso8583.encode(fields, SPEC)
    except iso8583.EncodeError as exc:  # an element too long for the spec: a bug of the sender's
        raise ValueError(f"{fields['t']} DE{exc.field}: {exc.msg}") from None
    return bytes(raw)


def _read(fields: dict[str, str], number: str, fmt: _Format, now: dt.datetime) -> Any:
    text = fields.get(number)
    if text is None:
        return None
    try:
        return fmt.from_wire(text, now)
    except ValueError:
        return None


def _error(where: str, reason: str, fields: dict[str, str], now: dt.datetime, **extra: Any) -> MessageError:
    """A MessageError with whatever of the message's key could be read (checked, never a card number)."""
    mti = fields.get("t")
    stan = fields.get("11")
    merchant = fields.get("42")
    return MessageError(
        where, reason, mti=mti if mti in MESSAGES else None,
        stan=stan if stan is not None and STAN.check(stan) is None else None,
        transmitted_at=_read(fields, "7", _Timestamp(), now),
        merchant_id=merchant.rstrip(" ") if merchant is not None and MERCHANT_ID.check(merchant.rstrip(" ")) is None
        else None, **extra)


def decode(payload: bytes, *, now: dt.datetime | None = None) -> Message:
    """One message from its bytes (without the length prefix). Raises MessageError, and only that."""
    now = now or dt.datetime.now(dt.UTC)
    if not isinstance(payload, bytes | bytearray):
        raise MessageError("frame", "not bytes")
    payload = bytes(payload)
    mti_text = payload[:4].decode("ascii", errors="replace")
    if len(payload) < 4 or mti_text not in MESSAGES:
        raise MessageError("MTI", "not a message type of the profile" if len(payload) >= 4 else "too short")
    try:
        decoded, _encoded = iso8583.decode(payload, SPEC)
    except iso8583.DecodeError as exc:
        partial = dict(exc.doc_dec)  # keep what was read for the answer; the exception's bytes go nowhere
        where = {"p": "bitmap", "1": "bitmap", "t": "MTI", "h": "header"}.get(exc.field, f"DE{exc.field}")
        if exc.msg.startswith("Extra data"):  # after the last element the bitmap announces
            where = "message"
        raise _error(where, exc.msg, partial, now) from None
    except KeyError:  # pyiso8583 followed a bit 65 (a third bitmap) to elements its spec does not have
        raise MessageError("bitmap", "announces an element beyond 128") from None
    cls = MESSAGES[decoded["t"]]
    # Only the canonical form: what pyiso8583 tolerates (lower-case bitmaps, a secondary bitmap with nothing in
    # it, lengths such as "+9" or " 9") is not what a sender of this profile writes. Checked on the bytes it read
    # (what encoding the message again and comparing would find, without the encoding).
    if (problem := _not_canonical(_encoded)) is not None:
        raise _error(*problem, decoded, now)
    try:
        return _from_fields(cls, decoded, now)
    except _Bad as bad:
        raise _error(bad.where, bad.reason, decoded, now) from None


_BITMAP = re.compile(rb"[0-9A-F]{16}")
_NO_ELEMENT = b"0" * 16


def _not_canonical(encoded: dict[str, dict[str, bytes]]) -> tuple[str, str] | None:
    """(where, reason) when the bytes pyiso8583 decoded are not those the profile's encoder writes: bitmaps of
    16 upper-case hexadecimal digits, a secondary bitmap only when an element beyond 64 follows, every length
    prefix in ASCII digits (its width and value pyiso8583 has checked)."""
    for key in ("p", "1"):
        if key in encoded and not _BITMAP.fullmatch(encoded[key]["data"]):
            return "bitmap", "not in canonical form"
    if "1" in encoded and encoded["1"]["data"] == _NO_ELEMENT:
        return "bitmap", "not in canonical form"
    for part in encoded.values():
        if part["len"] and not part["len"].isdigit():
            return "length", "an element length is not canonical"
    return None


def _from_fields(cls: type, fields: dict[str, str], now: dt.datetime) -> Message:
    known = _known(cls)
    for key in fields:
        if key not in known:
            raise _Bad(f"DE{key}", f"not an element of {cls.MTI}")
    de48: dict[str, str] = {}
    if "48" in fields:
        try:
            de48 = de48_decode(fields["48"])
        except ValueError as exc:
            raise _Bad("DE48", str(exc)) from None
        if not de48:
            raise _Bad("DE48", "empty")
        for tag in de48:
            if f"48.{tag}" not in known:
                raise _Bad(f"DE48.{tag}", f"not a tag of {cls.MTI}")
    values: dict[str, Any] = {}
    for f, number, fmt in _elements(cls):
        text = de48.get(number[3:]) if number.startswith("48.") else fields.get(number)
        where = f"DE{number}"
        if text is None:
            if _required(f):
                raise _Bad(where, "missing")
            continue
        try:
            value = fmt.from_wire(text, now)
        except ValueError as exc:
            raise _Bad(where, str(exc)) from None
        if _absent(value):
            raise _Bad(where, "empty")
        if (problem := fmt.check(value)) is not None:
            raise _Bad(where, problem)
        values[f.name] = value
    message = cls(**values)
    if (problem := message._check()) is not None:
        raise _Bad(*problem)
    return message


# --- Framing ---------------------------------------------------------------------------------------------------


def frame(payload: bytes) -> bytes:
    """The payload with its 2-byte big-endian length in front."""
    if not 0 < len(payload) < 2 ** (8 * LENGTH_PREFIX):
        raise ValueError(f"a frame holds 1 to 65535 bytes, not {len(payload)}")
    return len(payload).to_bytes(LENGTH_PREFIX, "big") + payload


def encode_frame(message: Message) -> bytes:
    return frame(encode(message))


def _check_length(length: int, max_size: int) -> None:
    if length == 0:
        raise MessageError("frame", "length 0", stream_lost=True)
    if length > max_size:
        raise MessageError("frame", f"length {length} over the limit of {max_size}", stream_lost=True)


def decode_frame(data: bytes, *, max_size: int = MAX_FRAME, now: dt.datetime | None = None) -> Message:
    """Exactly one framed message (length prefix + message)."""
    if len(data) < LENGTH_PREFIX:
        raise MessageError("frame", "truncated length prefix", stream_lost=True)
    length = int.from_bytes(data[:LENGTH_PREFIX], "big")
    _check_length(length, max_size)
    body = data[LENGTH_PREFIX:]
    if len(body) != length:
        raise MessageError("frame", f"length prefix says {length} bytes, {len(body)} follow", stream_lost=True)
    return decode(body, now=now)


async def read_frame(reader: asyncio.StreamReader, *, max_size: int = MAX_FRAME) -> bytes | None:
    """The next message's bytes (without the prefix); None when the peer closed between two messages.

    Raises MessageError (``stream_lost``) for a length of 0 or over ``max_size``, or a connection that ends
    inside a frame; the caller then closes the connection. A connection that fails (``ConnectionError``,
    ``OSError``) is no message error: that passes through as it is.
    """
    try:
        head = await reader.readexactly(LENGTH_PREFIX)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise MessageError("frame", "connection closed inside the length prefix", stream_lost=True) from None
    length = int.from_bytes(head, "big")
    _check_length(length, max_size)
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise MessageError("frame", f"connection closed after {len(exc.partial)} of {length} bytes",
                           stream_lost=True) from None


async def read_message(reader: asyncio.StreamReader, *, max_size: int = MAX_FRAME,
                       now: dt.datetime | None = None) -> Message | None:
    """The next message, decoded; None when the peer closed between two messages. Raises MessageError."""
    payload = await read_frame(reader, max_size=max_size)
    return None if payload is None else decode(payload, now=now)


# --- Answers ---------------------------------------------------------------------------------------------------


def match_key(message: Message) -> tuple[str, str]:
    """How a response finds its request (DESIGN.md §5): STAN (DE11) and DE7 as sent."""
    return (message.stan, de7(message.transmitted_at))


def respond(request: Message, response_code: str, *, rrn: str | None = None, auth_code: str = "") -> Message:
    """The response to ``request`` with ``response_code``: same STAN and DE7, the request's processing code,
    amount, currency and merchant echoed; ``rrn`` defaults to the request's (0220, 0400, a refund)."""
    if isinstance(request, NetworkRequest):
        return NetworkResponse(stan=request.stan, transmitted_at=request.transmitted_at,
                               response_code=response_code, network_code=request.network_code)
    if request.MTI not in REQUESTS:
        raise ValueError(f"{request.MTI} is not a request")
    cls = MESSAGES[RESPONSE_MTI[request.MTI]]
    return cls(stan=request.stan, transmitted_at=request.transmitted_at, response_code=response_code,
               merchant_id=request.merchant_id, processing_code=request.processing_code,
               amount_minor=request.amount_minor, currency=request.currency,
               rrn=getattr(request, "rrn", "") if rrn is None else rrn, auth_code=auth_code)


def format_error_answer(error: MessageError) -> Message | None:
    """The 30 (format error) answer to a request that could not be decoded, when its type, STAN and DE7 were
    read (a financial request); None when there is nobody to answer: a response, a network message, or a
    framing error."""
    if error.stream_lost or error.mti not in ("0100", "0200", "0220", "0400"):
        return None
    if error.stan is None or error.transmitted_at is None:
        return None
    cls = MESSAGES[RESPONSE_MTI[error.mti]]
    return cls(stan=error.stan, transmitted_at=error.transmitted_at, response_code=rc.FORMAT_ERROR,
               merchant_id=error.merchant_id or "")
