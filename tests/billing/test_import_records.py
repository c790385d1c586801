"""The import's pure parts: fast phone numbers agree with phonenumbers, every refused shape is explained."""

import copy
import io
from decimal import Decimal

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasdid.billing.importing.errors import Problems
from tasdid.billing.importing.phones import normalize_number
from tasdid.billing.importing.reader import BillsFile, FileProblem
from tasdid.billing.importing.records import CustomerIn, check_customer, explain
from tasdid.core.phones import PhoneError, PhoneKind, parse_number
from tests.billing.bills_files import guide_customer, mobile_customer

_prefixes = st.sampled_from(["0", "+212", "00212", "+212 ", "212", "0 ", "+33"])
_separators = st.sampled_from(["", " ", ".", "-"])


@st.composite
def _phone_texts(draw) -> str:
    digits = draw(st.text("0123456789", min_size=8, max_size=10))
    separator = draw(_separators)
    body = separator.join(digits[i:i + 2] for i in range(0, len(digits), 2))
    return draw(_prefixes) + body


def _outcome(function, text, kind):
    try:
        return function(text, kind)
    except PhoneError as exc:
        return ("error", exc.code)


@settings(max_examples=600, deadline=None)
@given(text=_phone_texts(), kind=st.sampled_from([PhoneKind.MOBILE, PhoneKind.FIXED, None]))
def test_fast_phone_numbers_agree_with_phonenumbers(text, kind):
    assert _outcome(normalize_number, text, kind) == _outcome(parse_number, text, kind)


def test_fast_phone_numbers_on_the_guides_spellings():
    assert normalize_number("05 22 00 00 01", PhoneKind.FIXED) == "+212522000001"
    assert normalize_number("0661000001", PhoneKind.MOBILE) == "+212661000001"
    assert normalize_number("+212 7 00 00 00 02", PhoneKind.MOBILE) == "+212700000002"
    with pytest.raises(PhoneError) as wrong:
        normalize_number("05 22 00 00 01", PhoneKind.MOBILE)
    assert wrong.value.code == "wrong_kind"


# Values a producer might put anywhere by mistake.
_junk = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**12), st.text(max_size=30),
                  st.just(Decimal("12.345")), st.builds(list), st.builds(dict), st.builds(lambda: [{}]),
                  st.just("2017-13"), st.just("2017-02-30"), st.just(""), st.just("x" * 250))


def _slots(node, path=()):
    """Every (container, key) of a nested document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield node, key
            yield from _slots(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield node, i
            yield from _slots(value, (*path, i))


@st.composite
def _mutated_customers(draw) -> dict:
    customer = draw(st.sampled_from([guide_customer, mobile_customer]))()
    for _ in range(draw(st.integers(1, 3))):
        slots = list(_slots(customer))
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(container, dict):
            del container[key]
        elif action == "add" and isinstance(container, dict):
            container[draw(st.sampled_from(["extra", "amount", "kind", "free"]))] = draw(_junk)
        else:
            container[key] = draw(_junk)
    return customer


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_mutated_customers())
def test_every_refused_shape_is_explained_in_french(raw):
    problems = Problems(limit=1000)
    try:
        msgspec.convert(copy.deepcopy(raw), CustomerIn)
    except msgspec.ValidationError:
        explain(raw, 0, problems)
        assert problems.items, raw
        record = check_customer(raw, 0, Problems(limit=1000))
        assert record is None
    else:
        assert check_customer(raw, 0, problems) is not None or problems.items


def test_a_good_customer_becomes_typed_records():
    problems = Problems()
    record = check_customer(guide_customer(), 0, problems)
    assert problems.items == []
    assert (record.client_number, record.name, record.invoice_count) == ("100000001", "Mme Khadija Alaoui", 2)
    fixed, internet = record.lines
    assert (fixed.kind, fixed.key, fixed.number, fixed.payment_identifier) == (
        "fixed", "+212522000001", "+212522000001", None)
    assert (internet.kind, internet.key, internet.payment_identifier) == ("internet", "12345678", "12345678")
    bill = record.bills[0]
    assert (str(bill.month), str(bill.due_date), bill.total_ht, bill.total_vat, bill.total_ttc) == (
        "2017-06-01", "2017-07-19", Decimal("237.50"), Decimal("47.50"), Decimal("285.00"))
    first = bill.invoices[0]
    assert first.line is fixed
    assert [(i.position, i.section, i.amount_ht, i.free) for i in first.items] == [
        (1, "Abonnement", Decimal("155.00"), False), (2, "Options et services", Decimal("0.00"), True)]


def test_reader_keeps_member_names_written_twice():
    doc = b'{"format": "tasdid-bills", "version": 1, "customers": [{"name": "a", "name": "b"}]}'
    (customer,) = list(BillsFile(io.BytesIO(doc)).customers())
    problems = Problems()
    explain(customer, 0, problems)
    assert "customers[0] › name: champ présent deux fois dans le même objet" in [str(p) for p in problems.items]


@pytest.mark.parametrize(("doc", "message"), [
    (b'{"format": "tasdid-bills",\n  "version": 1, "customers": [{"a": 1,, }]}',
     "JSON mal formé ligne 2, colonne 39 (octet 65) : nom de champ invalide (texte entre guillemets attendu)"),
    (b'{"customers": [', "JSON mal formé ligne 1, colonne 16 (octet 15) : fin du fichier inattendue "
                         "(accolade, crochet ou guillemet non fermé ?)"),
    ("{\"é\": 1,\n  \"ça\" x".encode(), "JSON mal formé ligne 2, colonne 8 (octet 18) : caractère inattendu"),
    (b'{"customers": ["\xff"]}', "JSON mal formé ligne 1, colonne 17 (octet 16) : octets invalides en UTF-8"),
    (b'{"customers": []} []', "JSON mal formé ligne 1, colonne 19 (octet 18) : contenu après la fin du document"),
])
def test_malformed_json_is_located(doc, message):
    bills = BillsFile(io.BytesIO(doc))
    with pytest.raises(FileProblem) as refused:
        bills.header()
        list(bills.customers())
    assert str(refused.value) == message


FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _in_other_digits(customer: dict) -> dict:
    """The guide's customer with its identifiers in full-width and Arabic-Indic digits and other separators."""
    fixed, internet = customer["lines"]
    customer["client_number"] = customer["client_number"].translate(FULL_WIDTH)
    fixed["number"] = "٠٥.٢٢.٠٠.٠٠.٠١"
    fixed["payment_code"] = fixed["payment_code"].translate(ARABIC_INDIC)
    internet["payment_identifier"] = "۱۲ ۳۴۵ ۶۷۸"
    named = ("０５－２２－００－００－０１", "12-345-678")  # how the invoices name their lines
    for invoice, line in zip(customer["bills"][0]["invoices"], named, strict=True):
        invoice["reference"] = invoice["reference"].translate(FULL_WIDTH)
        invoice["line"] = line
    return customer


def test_identifiers_in_other_digits_are_checked_into_their_ascii_form():
    problems = Problems()
    record = check_customer(_in_other_digits(guide_customer()), 0, problems)
    assert problems.items == [] and record is not None
    assert record.client_number == "100000001"
    assert [line.key for line in record.lines] == ["+212522000001", "12345678"]
    invoices = record.bills[0].invoices
    assert [(i.reference, i.line.key) for i in invoices] == [("0000111995072017", "+212522000001"),
                                                            ("0000111996072017", "12345678")]


@pytest.mark.django_db
def test_a_customer_written_in_full_width_digits_is_the_same_customer_as_in_ascii(tmp_path):
    from tasdid.billing.codes import payment_code_matches
    from tasdid.billing.models import Customer, Invoice, ServiceLine
    from tasdid.billing.services.importing import import_bills
    from tests.billing.bills_files import document, write

    first = import_bills(source=write(tmp_path / "wide.json", document(_in_other_digits(guide_customer()))))
    again = import_bills(source=write(tmp_path / "ascii.json", document(guide_customer())))

    assert (first.customers.created, first.lines.created, first.invoices.created) == (1, 2, 2)
    assert (again.customers.created, again.lines.created, again.invoices.created) == (0, 0, 0)
    assert (again.customers.present, again.lines.present, again.invoices.present) == (1, 2, 2)
    assert list(Customer.objects.values_list("client_number", flat=True)) == ["100000001"]
    assert sorted(Invoice.objects.values_list("reference", flat=True)) == ["0000111995072017", "0000111996072017"]
    fixed = ServiceLine.objects.get(number="+212522000001")
    assert payment_code_matches(fixed.number, "4821", fixed.payment_code_digest)
    assert ServiceLine.objects.filter(payment_identifier="12345678").count() == 1
