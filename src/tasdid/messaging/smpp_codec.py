"""The pure part of the SMPP 3.4 channel: texts to and from short_message bytes, addresses to TON/NPI, delivery
receipts, and which submit_sm_resp statuses are worth a retry. No I/O (the session is tasdid.messaging.smpp)."""

import re
from dataclasses import dataclass

# command_status values of SMPP 3.4 (§5.1.3) that the channel tells apart.
ESME_ROK = 0x00
ESME_RSYSERR = 0x08
ESME_RINVDSTADR = 0x0B
ESME_RMSGQFUL = 0x14
ESME_RSUBMITFAIL = 0x45
ESME_RTHROTTLED = 0x58
ESME_RX_T_APPN = 0x64
ESME_RUNKNOWNERR = 0xFF

# A refusal that says "not now" rather than "never": the SMS goes back to the queue for a later try.
TRANSIENT_STATUSES = frozenset({ESME_RSYSERR, ESME_RMSGQFUL, ESME_RSUBMITFAIL, ESME_RTHROTTLED, ESME_RX_T_APPN,
                                ESME_RUNKNOWNERR})
STATUS_NAMES = {
    0x01: "ESME_RINVMSGLEN", 0x02: "ESME_RINVCMDLEN", 0x03: "ESME_RINVCMDID", 0x04: "ESME_RINVBNDSTS",
    0x08: "ESME_RSYSERR", 0x0A: "ESME_RINVSRCADR", 0x0B: "ESME_RINVDSTADR", 0x0C: "ESME_RINVMSGID",
    0x14: "ESME_RMSGQFUL", 0x45: "ESME_RSUBMITFAIL", 0x48: "ESME_RINVSRCTON", 0x49: "ESME_RINVSRCNPI",
    0x50: "ESME_RINVDSTTON", 0x51: "ESME_RINVDSTNPI", 0x58: "ESME_RTHROTTLED", 0x61: "ESME_RINVSCHED",
    0x62: "ESME_RINVEXPIRY", 0x64: "ESME_RX_T_APPN", 0x65: "ESME_RX_P_APPN", 0x66: "ESME_RX_R_APPN",
    0xFF: "ESME_RUNKNOWNERR",
}

# data_coding (§5.2.19)
DC_DEFAULT = 0x00  # the SMS centre's default alphabet; we send plain ASCII under it
DC_LATIN1 = 0x03
DC_UCS2 = 0x08

# ton / npi (§5.2.5, §5.2.6)
TON_UNKNOWN, TON_INTERNATIONAL, TON_NATIONAL, TON_ALPHANUMERIC = 0x00, 0x01, 0x02, 0x05
NPI_UNKNOWN, NPI_ISDN = 0x00, 0x01

SHORT_MESSAGE_MAX = 254  # bytes; a longer text goes in the message_payload TLV

# esm_class bits 2-5: the message type of a deliver_sm (§5.2.12)
ESM_TYPE_MASK = 0x3C
ESM_DELIVERY_RECEIPT = 0x04


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, f"0x{status:08X}")


def is_transient(status: int) -> bool:
    return status in TRANSIENT_STATUSES


def encode_text(text: str) -> tuple[int, bytes]:
    """(data_coding, bytes) for an SMS text: ASCII as the default alphabet, else Latin-1, else UCS-2 (Arabic)."""
    for coding, codec in ((DC_DEFAULT, "ascii"), (DC_LATIN1, "latin-1")):
        try:
            return coding, text.encode(codec)
        except UnicodeEncodeError:
            continue
    return DC_UCS2, text.encode("utf-16-be")


def decode_text(data_coding: int, data: bytes) -> str:
    """The text of a received short_message; undecodable bytes become U+FFFD rather than an error."""
    if data_coding == DC_UCS2:
        return data.decode("utf-16-be", errors="replace")
    if data_coding == DC_LATIN1:
        return data.decode("latin-1")
    # The default alphabet and anything else: GSM 03.38's letters, digits and basic signs are ASCII's.
    return data.decode("ascii", errors="replace") if data.isascii() else data.decode("latin-1")


@dataclass(frozen=True)
class Address:
    addr: str
    ton: int
    npi: int


def address(value: str) -> Address:
    """An outbox address as SMPP wants it: "+2126…" international without "+", digits as is, a name alphanumeric."""
    value = value.strip()
    if value.startswith("+") and value[1:].isdigit():
        return Address(value[1:], TON_INTERNATIONAL, NPI_ISDN)
    if value.isdigit():
        return Address(value, TON_UNKNOWN, NPI_ISDN)
    return Address(value[:11], TON_ALPHANUMERIC, NPI_UNKNOWN)


def received_address(addr: str, ton: int) -> str:
    """An address of a received deliver_sm in the outbox's form: international numbers get their "+"."""
    addr = addr.strip()
    if ton == TON_INTERNATIONAL and addr.isdigit() and len(addr) > 5:  # a short number stays as it is
        return f"+{addr}"
    return addr


# message_state TLV (§5.3.2.35) -> the receipt's stat word
MESSAGE_STATES = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD",
                  7: "UNKNOWN", 8: "REJECTD"}
FINAL_FAILURES = frozenset({"EXPIRED", "DELETED", "UNDELIV", "REJECTD"})
_RECEIPT_FIELD = re.compile(r"(?i)\b(id|stat|err):(\S*)")


@dataclass(frozen=True)
class Receipt:
    smsc_id: str
    stat: str  # DELIVRD, UNDELIV, EXPIRED, … upper case
    err: str = ""

    @property
    def delivered(self) -> bool:
        return self.stat == "DELIVRD"

    @property
    def failed(self) -> bool:
        return self.stat in FINAL_FAILURES


def parse_receipt(text: str, *, receipted_message_id: str | None = None,
                  message_state: int | None = None) -> Receipt | None:
    """A delivery receipt from its short_message ("id:… sub:… dlvrd:… submit date:… done date:… stat:… err:…
    text:…", SMPP 3.4 appendix B) and its TLVs, which win when present. None when it names no message."""
    fields: dict[str, str] = {}
    for match in _RECEIPT_FIELD.finditer(text.partition(" text:")[0]):
        fields.setdefault(match.group(1).lower(), match.group(2))
    smsc_id = (receipted_message_id or fields.get("id", "")).strip()
    stat = MESSAGE_STATES.get(message_state or 0) or fields.get("stat", "").upper()
    if not smsc_id or not stat:
        return None
    return Receipt(smsc_id=smsc_id, stat=stat, err=fields.get("err", ""))

