"""Check the records of a bills file (plain dicts from the JSON stream) and turn them into typed records.

Two steps per customer. Its shape (fields, types, patterns, lengths) is checked at C speed by msgspec
against the structs below, which are the format's definition. Then what a type cannot say is checked in
Python: phone numbers, amounts and their sums (HT, VAT 20 %, TTC), periods, due dates, duplicates inside the
customer, which line an invoice is for. When msgspec refuses a customer, ``explain`` walks the same structs'
definitions over the raw record to say, in French, each field that is wrong.

Pure: no database. Every problem names its record and field (``errors.Problems``); a customer with any
problem is returned as None so that nothing of it is written. What needs the database (existing data,
duplicates across the file) is ``tasdid.billing.services.importing``'s.
"""

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, ClassVar

import msgspec
import msgspec.inspect as mi
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop as N_
from msgspec import UNSET, Meta, Struct, UnsetType

from tasdid.billing.codes import payment_code_digest
from tasdid.core import digits
from tasdid.core.money import CENT, ttc_of, vat_of, wire
from tasdid.core.phones import PhoneError, PhoneKind

from .errors import Problems, Where
from .phones import normalize_number

FORMAT = "tasdid-bills"
VERSION = 1

KIND_MOBILE = "mobile"
KIND_FIXED = "fixed"
KIND_INTERNET = "internet"

# Set by the streaming reader on an object that carried the same member name twice.
DUPLICATE_MEMBER = "\x00duplicate"

TOP_FIELDS = frozenset({"format", "version", "customers"})

MAX_NAME = 200
MAX_LABEL = 200
MAX_SECTION = 100
MAX_COUNT = 2_147_483_647  # PositiveIntegerField, on every database
ZERO = Decimal("0.00")


# --- the format: its shapes -----------------------------------------------------------------------------------
# ``description`` is what ``explain`` says a refused value should have been (French, translated when shown).

ClientNumber = Annotated[str, Meta(pattern=r"^\d{1,20}$", description=N_("un n° client (1 à 20 chiffres)"))]
Reference = Annotated[str, Meta(pattern=r"^\d{6,20}$",
                                description=N_("une référence de facture (6 à 20 chiffres)"))]
PaymentCode = Annotated[str, Meta(pattern=r"^\d{4,8}$", description=N_("un code de paiement (4 à 8 chiffres)"))]
PaymentIdentifier = Annotated[str, Meta(pattern=r"^(?:\s*\d){8}\s*$", description=N_(
    "un identifiant de paiement de 8 chiffres (« xx xxx xxx »)"))]
Month = Annotated[str, Meta(pattern=r"^\d{4}-\d{2}$", description=N_("un mois AAAA-MM"))]
Name = Annotated[str, Meta(pattern=r"\S", max_length=MAX_NAME, description=N_("un nom"))]
Label = Annotated[str, Meta(pattern=r"\S", max_length=MAX_LABEL, description=N_("un libellé"))]
OptionalLabel = Annotated[str, Meta(max_length=MAX_LABEL)]
Section = Annotated[str, Meta(max_length=MAX_SECTION)]
PhoneText = Annotated[str, Meta(pattern=r"\S", max_length=40, description=N_("un numéro de téléphone"))]
Count = Annotated[int, Meta(ge=0, le=MAX_COUNT)]
# Amounts are text, as on the merchant protocol ("155.00"): JSON numbers are floats to most producers.
Amount = Annotated[str, Meta(pattern=r"^\d{1,10}(?:\.\d{1,2})?$", description=N_(
    "un montant en DH écrit « 155.00 » (positif, deux décimales au plus)"))]


class ItemIn(Struct, forbid_unknown_fields=True):
    """A priced line of an invoice; ``free`` lines have no amount."""

    label: Label
    section: Section = ""
    period_start: dt.date | UnsetType = UNSET
    period_end: dt.date | UnsetType = UNSET
    amount_ht: Amount | UnsetType = UNSET
    free: bool = False


class InvoiceIn(Struct, forbid_unknown_fields=True):
    reference: Reference
    line: PhoneText  # the number or payment identifier of one of the customer's lines
    amount_ht: Amount
    amount_vat: Amount
    amount_ttc: Amount
    lines: Annotated[list[ItemIn], Meta(min_length=1)]


class BillIn(Struct, forbid_unknown_fields=True):
    month: Month
    due_date: dt.date
    total_ht: Amount
    total_vat: Amount
    total_ttc: Amount
    invoices: Annotated[list[InvoiceIn], Meta(min_length=1)]
    loyalty_points: Count = 0
    loyalty_balance: Count = 0


class MobileLineIn(Struct, tag_field="kind", tag=KIND_MOBILE, forbid_unknown_fields=True):
    KIND: ClassVar[str] = KIND_MOBILE
    number: PhoneText
    label: OptionalLabel = ""


class FixedLineIn(Struct, tag_field="kind", tag=KIND_FIXED, forbid_unknown_fields=True):
    KIND: ClassVar[str] = KIND_FIXED
    number: PhoneText
    payment_code: PaymentCode
    label: OptionalLabel = ""


class InternetLineIn(Struct, tag_field="kind", tag=KIND_INTERNET, forbid_unknown_fields=True):
    KIND: ClassVar[str] = KIND_INTERNET
    payment_identifier: PaymentIdentifier
    label: OptionalLabel = ""


class CustomerIn(Struct, forbid_unknown_fields=True):
    client_number: ClientNumber
    name: Name
    lines: Annotated[list[MobileLineIn | FixedLineIn | InternetLineIn], Meta(min_length=1)]
    bills: list[BillIn] = []


# --- the records handed to the database side ------------------------------------------------------------------


@dataclass(slots=True)
class LineRecord:
    index: int
    written: str  # as the file writes it, for messages
    kind: str
    key: str  # E.164 number, or the payment identifier's digits
    payment_code_digest: str
    label: str
    parent: Where

    @property
    def where(self) -> Where:
        return Where(self.parent, "lines", self.index, self.written)

    @property
    def number(self) -> str | None:
        return None if self.kind == KIND_INTERNET else self.key

    @property
    def payment_identifier(self) -> str | None:
        return self.key if self.kind == KIND_INTERNET else None


@dataclass(slots=True)
class ItemRecord:
    position: int
    section: str
    label: str
    period_start: dt.date | None
    period_end: dt.date | None
    amount_ht: Decimal
    free: bool


@dataclass(slots=True)
class InvoiceRecord:
    index: int
    reference: str
    line: LineRecord
    amount_ht: Decimal
    amount_vat: Decimal
    amount_ttc: Decimal
    items: list[ItemRecord]
    where: Where


@dataclass(slots=True)
class BillRecord:
    index: int
    month: dt.date
    due_date: dt.date
    total_ht: Decimal
    total_vat: Decimal
    total_ttc: Decimal
    loyalty_points: int
    loyalty_balance: int
    invoices: list[InvoiceRecord]
    where: Where


@dataclass(slots=True)
class CustomerRecord:
    index: int
    client_number: str
    name: str
    lines: list[LineRecord]
    bills: list[BillRecord]
    where: Where
    invoice_count: int = 0


# --- checking ---------------------------------------------------------------------------------------------------


def check_header(header: dict, problems: Problems) -> None:
    """The members before ``customers``: the format's name and version."""
    for name in header.get(DUPLICATE_MEMBER, ()):
        problems.add(None, name, _("champ présent deux fois dans le même objet"))
    for name in sorted(header.keys() - TOP_FIELDS - {DUPLICATE_MEMBER}):
        problems.add(None, name, _("champ inconnu (champs permis : %(fields)s)") % {
            "fields": ", ".join(sorted(TOP_FIELDS))})
    if "format" not in header:
        problems.add(None, "format", _("champ obligatoire manquant avant « customers » (« %(format)s » attendu)")
                     % {"format": FORMAT})
    elif header["format"] != FORMAT:
        problems.add(None, "format", _("%(found)s trouvé, « %(format)s » attendu") % {
            "found": _shown(header["format"]), "format": FORMAT})
    if "version" not in header:
        problems.add(None, "version", _("champ obligatoire manquant avant « customers » (%(version)d attendu)")
                     % {"version": VERSION})
    elif type(header["version"]) is not int or header["version"] != VERSION:
        problems.add(None, "version", _("version %(found)s non prise en charge (version attendue : %(version)d)")
                     % {"found": header["version"] if type(header["version"]) is int else _shown(header["version"]),
                        "version": VERSION})


def check_customer(raw, index: int, problems: Problems) -> CustomerRecord | None:
    """A customer with its lines and bills, checked; None when anything in it is wrong (all reported)."""
    try:
        typed = msgspec.convert(raw, CustomerIn)
    except msgspec.ValidationError as exc:
        before = len(problems.items)
        explain(raw, index, problems)
        if len(problems.items) == before:  # explain must name it; never let a refusal go unexplained
            problems.add(Where(None, "customers", index), "", _("format invalide (%(detail)s)") % {"detail": exc})
        return None
    return _customer(typed, index, problems)


def line_key(written: str) -> str | None:
    """The key an invoice uses to name one of its customer's lines: a number or a payment identifier."""
    squeezed = digits.normalize(written)
    if len(squeezed) == 8 and squeezed.isascii() and squeezed.isdigit():
        return squeezed
    try:
        return normalize_number(written)
    except PhoneError:
        return None


def _customer(c: CustomerIn, index: int, problems: Problems) -> CustomerRecord | None:
    client_number = digits.normalize(c.client_number)  # "０１２" and "012" are one customer
    where = Where(None, "customers", index, f"client {client_number}")
    before = len(problems.items)
    lines: dict[str, LineRecord] = {}
    refused: set[str] = set()  # lines already reported: their invoices are not reported again
    for i, line_in in enumerate(c.lines):
        line = _line(line_in, i, where, problems)
        if line is None:
            refused.add(getattr(line_in, "number", None) or getattr(line_in, "payment_identifier", ""))
            continue
        if line.key in lines:
            problems.add(line.where, "payment_identifier" if line.kind == KIND_INTERNET else "number",
                         _("ligne en double dans ce client (déjà en lines[%(index)d])") % {
                             "index": lines[line.key].index})
            continue
        lines[line.key] = line
    # Invoices name their line as the file wrote it, usually exactly as in "lines": look that up first.
    lookup: dict[str, LineRecord | None] = {**lines, **{line.written: line for line in lines.values()},
                                            **dict.fromkeys(refused)}
    bills: list[BillRecord] = []
    months: dict[dt.date, int] = {}
    invoice_count = 0
    for i, bill_in in enumerate(c.bills):
        bill = _bill(bill_in, i, where, lookup, problems)
        if bill is None:
            continue
        if bill.month in months:
            problems.add(bill.where, "month", _("mois en double dans ce client (déjà en bills[%(index)d])") % {
                "index": months[bill.month]})
            continue
        months[bill.month] = i
        bills.append(bill)
        invoice_count += len(bill.invoices)
    if len(problems.items) > before:
        return None
    return CustomerRecord(index=index, client_number=client_number, name=c.name.strip(), lines=list(lines.values()),
                          bills=bills, where=where, invoice_count=invoice_count)


def _line(line: MobileLineIn | FixedLineIn | InternetLineIn, index: int, parent: Where,
          problems: Problems) -> LineRecord | None:
    kind = line.KIND
    if kind == KIND_INTERNET:
        written = line.payment_identifier
        return LineRecord(index, written, kind, digits.normalize(written), "", line.label.strip(), parent)
    written = line.number
    try:
        key = normalize_number(written, PhoneKind.MOBILE if kind == KIND_MOBILE else PhoneKind.FIXED)
    except PhoneError as exc:
        if exc.code == "wrong_kind":
            message = (_("« %(value)s » n'est pas un numéro mobile (06 ou 07…)") if kind == KIND_MOBILE
                       else _("« %(value)s » n'est pas un numéro fixe (05…)"))
        else:
            message = _("« %(value)s » n'est pas un numéro de téléphone marocain valide")
        problems.add(Where(parent, "lines", index, written), "number", message % {"value": written})
        return None
    digest = payment_code_digest(key, digits.normalize(line.payment_code)) if kind == KIND_FIXED else ""
    return LineRecord(index, written, kind, key, digest, line.label.strip(), parent)


def _month(text: str) -> dt.date | None:
    try:
        return dt.date(int(text[:4]), int(text[5:7]), 1)
    except ValueError:
        return None


def _bill(b: BillIn, index: int, parent: Where, lines: dict[str, LineRecord | None],
          problems: Problems) -> BillRecord | None:
    where = Where(parent, "bills", index, b.month)
    before = len(problems.items)
    month = _month(b.month)
    if month is None:
        problems.add(where, "month", _("« %(value)s » n'est pas un mois AAAA-MM") % {"value": b.month})
    elif b.due_date < month:
        problems.add(where, "due_date", _("%(due)s est avant le mois facturé (%(month)s)") % {
            "due": b.due_date.isoformat(), "month": b.month})
    invoices: list[InvoiceRecord] = []
    billed: dict[str, int] = {}
    references: dict[str, int] = {}
    complete = True
    for i, invoice_in in enumerate(b.invoices):
        invoice = _invoice(invoice_in, i, where, lines, problems)
        if invoice is None:
            complete = False
            continue
        if invoice.reference in references:
            problems.add(invoice.where, "reference", _("référence en double (déjà en invoices[%(index)d])") % {
                "index": references[invoice.reference]})
            continue
        if invoice.line.key in billed:
            problems.add(invoice.where, "line", _("cette ligne a déjà sa facture sur ce mois (invoices[%(index)d])")
                         % {"index": billed[invoice.line.key]})
            continue
        references[invoice.reference] = i
        billed[invoice.line.key] = i
        invoices.append(invoice)
    if len(problems.items) > before or not complete:
        return None
    ht = vat = ttc = ZERO
    for invoice in invoices:
        ht += invoice.amount_ht
        vat += invoice.amount_vat
        ttc += invoice.amount_ttc
    totals = Decimal(b.total_ht), Decimal(b.total_vat), Decimal(b.total_ttc)
    for name, found, wanted in zip(("total_ht", "total_vat", "total_ttc"), totals, (ht, vat, ttc), strict=True):
        if found != wanted:
            problems.add(where, name, _("%(expected)s attendu (somme des factures), %(found)s trouvé") % {
                "expected": wire(wanted), "found": wire(found)})
    if len(problems.items) > before:
        return None
    return BillRecord(index=index, month=month, due_date=b.due_date, total_ht=ht, total_vat=vat, total_ttc=ttc,
                      loyalty_points=b.loyalty_points, loyalty_balance=b.loyalty_balance, invoices=invoices,
                      where=where)


def _invoice(v: InvoiceIn, index: int, parent: Where, lines: dict[str, LineRecord | None],
             problems: Problems) -> InvoiceRecord | None:
    where = Where(parent, "invoices", index, v.reference)
    before = len(problems.items)
    line = lines.get(v.line) or lines.get(line_key(v.line) or "")
    if line is None and v.line in lines:
        return None  # its line was refused, and said so
    if line is None:
        problems.add(where, "line", _("« %(value)s » n'est pas une ligne de ce client (voir ses « lines »)") % {
            "value": v.line})
    items: list[ItemRecord] = []
    for i, item_in in enumerate(v.lines):
        item = _item(item_in, i, where, problems)
        if item is not None:
            items.append(item)
    if len(problems.items) > before:
        return None
    wanted_ht = ZERO
    for item in items:
        wanted_ht += item.amount_ht
    amount_ht = Decimal(v.amount_ht)
    if amount_ht != wanted_ht:
        problems.add(where, "amount_ht", _("%(expected)s attendu (somme des lignes), %(found)s trouvé") % {
            "expected": wire(wanted_ht), "found": wire(amount_ht)})
        return None
    if not amount_ht:
        problems.add(where, "amount_ht", _("une facture à payer ne peut pas être gratuite"))
        return None
    wanted_vat = vat_of(amount_ht)
    amount_vat, amount_ttc = Decimal(v.amount_vat), Decimal(v.amount_ttc)
    if amount_vat != wanted_vat:
        problems.add(where, "amount_vat", _("%(expected)s attendu (TVA 20 %% de %(ht)s HT, arrondie au centime), "
                                            "%(found)s trouvé") % {
            "expected": wire(wanted_vat), "ht": wire(amount_ht), "found": wire(amount_vat)})
    wanted_ttc = ttc_of(amount_ht)
    if amount_ttc != wanted_ttc:
        problems.add(where, "amount_ttc", _("%(expected)s attendu (%(ht)s HT + TVA 20 %%), %(found)s trouvé") % {
            "expected": wire(wanted_ttc), "ht": wire(amount_ht), "found": wire(amount_ttc)})
    if len(problems.items) > before:
        return None
    return InvoiceRecord(index=index, reference=digits.normalize(v.reference), line=line,
                         amount_ht=amount_ht.quantize(CENT), amount_vat=wanted_vat, amount_ttc=wanted_ttc,
                         items=items, where=where)


def _item(it: ItemIn, index: int, parent: Where, problems: Problems) -> ItemRecord | None:
    start, end, amount = it.period_start, it.period_end, it.amount_ht
    problem = None
    if (start is UNSET) != (end is UNSET):
        missing, other = ("period_end", "period_start") if end is UNSET else ("period_start", "period_end")
        problem = missing, _("obligatoire avec %(other)s (une période a un début et une fin)") % {"other": other}
    elif start is not UNSET and end < start:
        problem = "period_end", _("%(end)s est avant le début de la période (%(start)s)") % {
            "end": end.isoformat(), "start": start.isoformat()}
    if it.free:
        if amount is not UNSET:
            problem = problem or ("amount_ht", _("une ligne gratuite (« free »: true) n'a pas de montant"))
        amount = ZERO
    elif amount is UNSET:
        problem = problem or ("amount_ht", _("champ obligatoire manquant (ou « free »: true pour une ligne gratuite)"))
    else:
        amount = Decimal(amount)
        if not amount:
            problem = problem or ("amount_ht", _("0.00 : écrivez « free »: true pour une ligne gratuite"))
    if problem is not None:
        problems.add(Where(parent, "lines", index), *problem)
        return None
    return ItemRecord(position=index + 1, section=it.section.strip(), label=it.label.strip(),
                      period_start=None if start is UNSET else start, period_end=None if end is UNSET else end,
                      amount_ht=amount, free=it.free)


# --- explaining a refused shape, in French ----------------------------------------------------------------------


def _type_name(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return _("un booléen")
    if isinstance(value, int | Decimal | float):
        return _("un nombre")
    if isinstance(value, str):
        return _("un texte")
    if isinstance(value, list):
        return _("une liste")
    if isinstance(value, dict):
        return _("un objet")
    return type(value).__name__


def _shown(value) -> str:
    if isinstance(value, str):
        return f"« {value} »"
    return _type_name(value)


def _record_label(cls, raw: dict) -> str | None:
    """How a record is named in a path: ``customers[3] (client 100000123)``, ``bills[0] (2017-06)``…"""
    key = {CustomerIn: "client_number", BillIn: "month", InvoiceIn: "reference", MobileLineIn: "number",
           FixedLineIn: "number", InternetLineIn: "payment_identifier"}.get(cls)
    value = raw.get(key) if key else None
    if not isinstance(value, str):
        return None
    return f"client {value}" if cls is CustomerIn else value


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CUSTOMER_INFO = mi.type_info(CustomerIn)


def explain(raw, index: int, problems: Problems) -> None:
    """Report, field by field, why ``raw`` does not fit CustomerIn (msgspec said it does not)."""
    where = Where(None, "customers", index, _record_label(CustomerIn, raw) if isinstance(raw, dict) else None)
    _explain_struct(raw, _CUSTOMER_INFO, where, problems)


def _explain_struct(raw, info: mi.StructType, where: Where, problems: Problems) -> None:
    if not isinstance(raw, dict):
        problems.add(where, "", _("objet attendu, %(found)s trouvé") % {"found": _type_name(raw)})
        return
    for name in raw.get(DUPLICATE_MEMBER, ()):
        problems.add(where, name, _("champ présent deux fois dans le même objet"))
    allowed = {f.encode_name for f in info.fields} | ({info.tag_field} if info.tag_field else set())
    for name in sorted(k for k in raw if k not in allowed and k != DUPLICATE_MEMBER):
        problems.add(where, name, _("champ inconnu (champs permis : %(fields)s)") % {
            "fields": ", ".join(sorted(allowed))})
    for f in info.fields:
        if f.encode_name not in raw:
            if f.required:
                problems.add(where, f.encode_name, _("champ obligatoire manquant"))
            continue
        _explain_value(raw[f.encode_name], f.type, where, f.encode_name, problems)


def _explain_value(value, kind, where: Where, name: str, problems: Problems) -> None:
    description = None
    if isinstance(kind, mi.Metadata):
        description = (kind.extra_json_schema or {}).get("description")
        kind = kind.type

    def refuse(message: str, **params) -> None:
        problems.add(where, name, message % params)

    if isinstance(kind, mi.ListType):
        if not isinstance(value, list):
            refuse(_("liste attendue, %(found)s trouvé"), found=_type_name(value))
        elif kind.min_length and len(value) < kind.min_length:
            refuse(_("la liste ne doit pas être vide"))
        else:
            for i, item in enumerate(value):
                _explain_item(item, kind.item_type, Where(where, name, i), problems)
    elif isinstance(kind, mi.StrType):
        if not isinstance(value, str):
            refuse(_("%(what)s attendu, %(found)s trouvé"), what=_(description) if description else _("un texte"),
                   found=_type_name(value))
        elif kind.max_length is not None and len(value) > kind.max_length:
            refuse(_("%(max)d caractères au plus, %(found)d trouvés"), max=kind.max_length, found=len(value))
        elif kind.pattern and not re.search(kind.pattern, value):
            if kind.pattern == r"\S":
                refuse(_("ne doit pas être vide"))
            else:
                refuse(_("« %(value)s » n'est pas %(what)s"), value=value, what=_(description or "valide"))
    elif isinstance(kind, mi.DateType):
        if not isinstance(value, str):
            refuse(_("date AAAA-MM-JJ attendue, %(found)s trouvé"), found=_type_name(value))
        else:
            try:
                ok = _DATE.fullmatch(value) is not None and dt.date.fromisoformat(value) is not None
            except ValueError:
                ok = False
            if not ok:
                refuse(_("« %(value)s » n'est pas une date AAAA-MM-JJ"), value=value)
    elif isinstance(kind, mi.IntType):
        if type(value) is not int or (kind.ge is not None and value < kind.ge) or (kind.le is not None
                                                                                   and value > kind.le):
            refuse(_("nombre entier positif ou nul attendu, %(found)s trouvé"),
                   found=value if type(value) is int else _shown(value))
    elif isinstance(kind, mi.BoolType) and not isinstance(value, bool):
        refuse(_("true ou false attendu, %(found)s trouvé"), found=_shown(value))


def _explain_item(value, kind, where: Where, problems: Problems) -> None:
    """An element of a list of records: one struct, or one of a tagged union of structs."""
    choices = kind.types if isinstance(kind, mi.UnionType) else (kind,)
    if not isinstance(value, dict):
        problems.add(where, "", _("objet attendu, %(found)s trouvé") % {"found": _type_name(value)})
        return
    info = choices[0]
    if info.tag_field:
        tags = {choice.tag: choice for choice in choices}
        tag = value.get(info.tag_field)
        if not isinstance(tag, str) or tag not in tags:
            problems.add(where, info.tag_field, _("%(found)s trouvé, %(tags)s attendu") % {
                "found": _shown(value[info.tag_field]) if info.tag_field in value else _("rien"),
                "tags": _(" ou ").join(f"« {tag} »" for tag in tags)})
            return
        info = tags[tag]
    where.label = _record_label(info.cls, value)
    _explain_struct(value, info, where, problems)
