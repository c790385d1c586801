"""The clearing file: the switch's end-of-day list of the money it saw move, the contract between the switch
(which writes it, ``tasdid clearing``) and the gateway (which reads it, ``tasdid gateway-reconcile``).

Pure, streamed both ways: ``Writer`` takes detail lines in (merchant, bank) order and adds the totals lines;
``read`` yields the lines one at a time and checks every column and every total, raising ``ClearingFileError``
(a French message with the line number) at the first fault. docs/iso8583.md, "Clearing file", is the reference.
"""

import csv
import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

FORMAT = "TASDID-CLEARING"
VERSION = "1"
DELIMITER = ";"
ENCODING = "utf-8"

CAPTURE, REVERSAL, REFUND = "CAPTURE", "REVERSAL", "REFUND"
KINDS = (CAPTURE, REVERSAL, REFUND)

DETAIL_COLUMNS = ("type", "merchant_id", "bank", "kind", "stan", "transmitted_at", "original_mti", "original_stan",
                  "original_transmitted_at", "rrn", "order_id", "amount_minor", "currency", "response_code",
                  "answered_at")
# S (a merchant at a bank), M (a merchant, every bank), T (the file): counts and totals by kind.
TOTAL_COLUMNS = ("captures", "captures_minor", "reversals", "reversals_minor", "refunds", "refunds_minor")
SUBTOTAL_COLUMNS = ("type", "merchant_id", "bank", *TOTAL_COLUMNS)
MERCHANT_COLUMNS = ("type", "merchant_id", *TOTAL_COLUMNS)
TRAILER_COLUMNS = ("type", "lines", *TOTAL_COLUMNS)

_DIGITS = re.compile(r"[0-9]+")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def timestamp(value: dt.datetime | None) -> str:
    """UTC, whole seconds, ``YYYY-MM-DDTHH:MM:SSZ``; empty for None."""
    return "" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Detail:
    """One approved operation of the day."""

    merchant_id: str
    bank: str
    kind: str
    stan: str
    transmitted_at: dt.datetime
    original_mti: str
    original_stan: str
    original_transmitted_at: dt.datetime | None
    rrn: str
    order_id: str
    amount_minor: int
    currency: str
    response_code: str
    answered_at: dt.datetime


@dataclass
class Totals:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    amounts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    def add(self, kind: str, amount: int) -> None:
        self.counts[kind] += 1
        self.amounts[kind] += amount

    def columns(self) -> list[str]:
        return [str(v) for kind in KINDS for v in (self.counts[kind], self.amounts[kind])]

    @property
    def lines(self) -> int:
        return sum(self.counts.values())


class Writer:
    """Writes a clearing file to ``out`` (text, opened with ``newline=""``): ``detail`` for each line, grouped by
    merchant then bank (the caller's order), then ``close``, which writes the last totals and the trailer."""

    def __init__(self, out: IO[str], *, day: dt.date, generated_at: dt.datetime):
        self._csv = csv.writer(out, delimiter=DELIMITER, lineterminator="\n")
        self._csv.writerow(["H", FORMAT, VERSION, day.isoformat(), timestamp(generated_at)])
        self._group: tuple[str, str] | None = None
        self._bank = Totals()
        self._merchant = Totals()
        self.total = Totals()

    def detail(self, d: Detail) -> None:
        if self._group is not None and d.merchant_id != self._group[0]:
            self._end_bank()
            self._end_merchant()
        elif self._group is not None and d.bank != self._group[1]:
            self._end_bank()
        self._group = (d.merchant_id, d.bank)
        self._csv.writerow(["D", d.merchant_id, d.bank, d.kind, d.stan, timestamp(d.transmitted_at), d.original_mti,
                            d.original_stan, timestamp(d.original_transmitted_at), d.rrn, d.order_id,
                            str(d.amount_minor), d.currency, d.response_code, timestamp(d.answered_at)])
        for totals in (self._bank, self._merchant, self.total):
            totals.add(d.kind, d.amount_minor)

    def _end_bank(self) -> None:
        self._csv.writerow(["S", self._group[0], self._group[1], *self._bank.columns()])
        self._bank = Totals()

    def _end_merchant(self) -> None:
        self._csv.writerow(["M", self._group[0], *self._merchant.columns()])
        self._merchant = Totals()

    def close(self) -> Totals:
        if self._group is not None:
            self._end_bank()
            self._end_merchant()
        self._csv.writerow(["T", str(self.total.lines), *self.total.columns()])
        return self.total


# --- Reading --------------------------------------------------------------------------------------------------


class ClearingFileError(ValueError):
    """The file is not a clearing file this reader accepts: ``line`` (1-based, 0 for the file itself) and a
    French message."""

    def __init__(self, line: int, message: str):
        super().__init__(f"ligne {line} : {message}" if line else message)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Header:
    day: dt.date
    generated_at: dt.datetime


def _int(text: str, line: int, what: str) -> int:
    if not _DIGITS.fullmatch(text) or len(text) > 15:
        raise ClearingFileError(line, f"{what} : « {text[:20]} » n'est pas un nombre entier positif")
    return int(text)


def _time(text: str, line: int, what: str, *, optional: bool = False) -> dt.datetime | None:
    if optional and text == "":
        return None
    if not _TIME.fullmatch(text):
        raise ClearingFileError(line, f"{what} : « {text[:25]} » n'est pas une date AAAA-MM-JJTHH:MM:SSZ")
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise ClearingFileError(line, f"{what} : « {text} » n'est pas une date valide") from None


def _fixed_digits(text: str, size: int, line: int, what: str, *, optional: bool = False) -> str:
    if optional and text == "":
        return text
    if len(text) != size or not _DIGITS.fullmatch(text):
        raise ClearingFileError(line, f"{what} : « {text[:20]} » n'a pas {size} chiffres")
    return text


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, list[str]]]:
    for number, raw in enumerate(stream, start=1):
        try:
            text = raw.decode(ENCODING)
        except UnicodeDecodeError:
            raise ClearingFileError(number, "le fichier n'est pas en UTF-8") from None
        if not text.endswith("\n"):
            raise ClearingFileError(number, "ligne incomplète (fichier tronqué ?)")
        try:
            row = next(csv.reader([text[:-1]], delimiter=DELIMITER, strict=True))
        except (csv.Error, StopIteration):
            raise ClearingFileError(number, "ligne illisible (guillemets mal fermés ?)") from None
        yield number, row


def _columns(row: list[str], expected: tuple[str, ...], line: int) -> None:
    if len(row) != len(expected):
        raise ClearingFileError(line, f"ligne « {row[0]} » de {len(row)} colonnes, {len(expected)} attendues")


def _totals_check(row: list[str], start: int, totals: Totals, line: int, what: str) -> None:
    for i, (name, expected) in enumerate(zip(TOTAL_COLUMNS, totals.columns(), strict=True)):
        found = _int(row[start + i], line, name)
        if str(found) != expected:
            raise ClearingFileError(line, f"{what} : {name} vaut {found}, les lignes de détail donnent {expected}")


def read_header(stream: IO[bytes]) -> Header:
    """The header alone (the file's first line)."""
    for _number, row in _lines(stream):
        return _header(row)
    raise ClearingFileError(0, "le fichier est vide")


def _header(row: list[str]) -> Header:
    if len(row) != 5 or row[0] != "H" or row[1] != FORMAT:
        raise ClearingFileError(1, f"en-tête attendu « H;{FORMAT};{VERSION};AAAA-MM-JJ;… » : ce n'est pas un "
                                   "fichier de compensation")
    if row[2] != VERSION:
        raise ClearingFileError(1, f"version {row[2][:10]} du format, seule la version {VERSION} est lue")
    try:
        day = dt.date.fromisoformat(row[3]) if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", row[3]) else None
    except ValueError:
        day = None
    if day is None:
        raise ClearingFileError(1, f"date du fichier « {row[3][:20]} » invalide (AAAA-MM-JJ attendu)")
    return Header(day=day, generated_at=_time(row[4], 1, "date de production"))


def read(stream: IO[bytes]) -> Iterator[Header | Detail]:
    """The header, then each detail line, checked; the totals lines are checked against the details and not
    yielded. Raises ClearingFileError at the first fault, including a missing trailer (a truncated file): a
    caller that must not act on a bad file consumes the whole iterator before acting."""
    lines = _lines(stream)
    first = next(lines, None)
    if first is None:
        raise ClearingFileError(0, "le fichier est vide")
    yield _header(first[1])
    bank, merchant, total = Totals(), Totals(), Totals()
    group: tuple[str, str] | None = None
    closed_bank = False  # the current (merchant, bank) had its S line; the merchant's M is due or a new bank
    seen_groups: set[tuple[str, str]] = set()
    for number, row in lines:
        kind = row[0] if row else ""
        if kind == "D":
            _columns(row, DETAIL_COLUMNS, number)
            merchant_id, bank_name = row[1], row[2]
            if group is not None and (merchant_id, bank_name) != group and not closed_bank:
                raise ClearingFileError(number, "ligne S manquante avant ce changement de commerçant ou de banque")
            if group is not None and merchant_id != group[0] and closed_bank and merchant.lines:
                raise ClearingFileError(number, "ligne M manquante avant ce changement de commerçant")
            if (merchant_id, bank_name) != group:
                if (merchant_id, bank_name) in seen_groups:
                    raise ClearingFileError(number, "lignes d'un même commerçant et d'une même banque non groupées")
                seen_groups.add((merchant_id, bank_name))
                group, closed_bank = (merchant_id, bank_name), False
            if not merchant_id:
                raise ClearingFileError(number, "commerçant vide")
            if row[3] not in KINDS:
                raise ClearingFileError(number, f"type d'opération « {row[3][:20]} » inconnu "
                                                f"({', '.join(KINDS)} attendus)")
            detail = Detail(
                merchant_id=merchant_id, bank=bank_name, kind=row[3], stan=_fixed_digits(row[4], 6, number, "STAN"),
                transmitted_at=_time(row[5], number, "DE7"),
                original_mti=_fixed_digits(row[6], 4, number, "type de l'original", optional=True),
                original_stan=_fixed_digits(row[7], 6, number, "STAN de l'original", optional=True),
                original_transmitted_at=_time(row[8], number, "DE7 de l'original", optional=True),
                rrn=row[9], order_id=row[10], amount_minor=_int(row[11], number, "montant"),
                currency=_fixed_digits(row[12], 3, number, "devise"), response_code=row[13],
                answered_at=_time(row[14], number, "date de la réponse"))
            for totals in (bank, merchant, total):
                totals.add(detail.kind, detail.amount_minor)
            yield detail
        elif kind == "S":
            _columns(row, SUBTOTAL_COLUMNS, number)
            if group is None or closed_bank or (row[1], row[2]) != group:
                raise ClearingFileError(number, "ligne S sans les lignes de détail de ce commerçant et de cette banque")
            _totals_check(row, 3, bank, number, f"total de {row[1]} chez « {row[2]} »")
            bank, closed_bank = Totals(), True
        elif kind == "M":
            _columns(row, MERCHANT_COLUMNS, number)
            if group is None or not closed_bank or row[1] != group[0] or not merchant.lines:
                raise ClearingFileError(number, "ligne M hors de sa place (après la dernière ligne S du commerçant)")
            _totals_check(row, 2, merchant, number, f"total du commerçant {row[1]}")
            merchant = Totals()
        elif kind == "T":
            _columns(row, TRAILER_COLUMNS, number)
            if group is not None and (not closed_bank or merchant.lines):
                raise ClearingFileError(number, "lignes S ou M manquantes avant la ligne T")
            if _int(row[1], number, "lines") != total.lines:
                raise ClearingFileError(number, f"la ligne T annonce {row[1]} lignes de détail, le fichier en a "
                                                f"{total.lines} (fichier tronqué ?)")
            _totals_check(row, 2, total, number, "total du fichier")
            extra = next(lines, None)
            if extra is not None:
                raise ClearingFileError(extra[0], "des lignes suivent la ligne T")
            return
        else:
            raise ClearingFileError(number, f"type de ligne « {kind[:10]} » inconnu (H, D, S, M ou T attendus)")
    raise ClearingFileError(0, "ligne T (totaux du fichier) absente : fichier tronqué")


def write_all(out: IO[str], details: Iterable[Detail], *, day: dt.date, generated_at: dt.datetime) -> Totals:
    writer = Writer(out, day=day, generated_at=generated_at)
    for d in details:
        writer.detail(d)
    return writer.close()
