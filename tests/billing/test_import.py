"""The bill import on a real database: a good file, each kind of bad record, re-import, existing data."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone

from tasdid.billing.codes import payment_code_matches
from tasdid.billing.importing.errors import BillImportFailed
from tasdid.billing.models import (
    Bill,
    Customer,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentOrder,
    ServiceLine,
)
from tasdid.billing.services import importing
from tasdid.billing.services.importing import import_bills
from tests import factories
from tests.billing.bills_files import EXAMPLE, document, guide_customer, mobile_customer, write

pytestmark = pytest.mark.django_db

GUIDE = "customers[0] (client 100000001)"
GUIDE_BILL = f"{GUIDE} › bills[0] (2017-06)"
FIXED_INVOICE = f"{GUIDE_BILL} › invoices[0] (0000111995072017)"
INTERNET_INVOICE = f"{GUIDE_BILL} › invoices[1] (0000111996072017)"
MOBILE = "customers[1] (client 100000002)"


def counts() -> tuple[int, int, int, int, int]:
    return (Customer.objects.count(), ServiceLine.objects.count(), Bill.objects.count(), Invoice.objects.count(),
            InvoiceLine.objects.count())


def refused(tmp_path, doc) -> list[str]:
    """Import ``doc`` expecting a refusal; the problems as they are shown."""
    with pytest.raises(BillImportFailed) as failure:
        import_bills(source=write(tmp_path / "bills.json", doc))
    return [str(p) for p in failure.value.problems]


def test_the_documented_example_imports_with_exact_records():
    summary = import_bills(source=EXAMPLE)

    assert counts() == (2, 3, 3, 4, 6)
    assert (summary.customers.created, summary.lines.created, summary.bills.created, summary.invoices.created,
            summary.invoice_lines_created) == (2, 3, 3, 4, 6)
    assert summary.invoices.present == 0
    khadija = Customer.objects.get(client_number="100000001")
    assert khadija.name == "Mme Khadija Alaoui"
    fixed = ServiceLine.objects.get(kind="fixed")
    assert (fixed.customer, fixed.number, fixed.payment_identifier, fixed.label) == (
        khadija, "+212522000001", None, "Ligne mixte illimité TT")
    assert payment_code_matches("+212522000001", "4821", fixed.payment_code_digest)
    assert "4821" not in fixed.payment_code_digest
    internet = ServiceLine.objects.get(kind="internet")
    assert (internet.customer, internet.number, internet.payment_identifier) == (khadija, None, "12345678")
    bill = Bill.objects.get(customer=khadija)
    assert (bill.month, bill.due_date, bill.total_ht, bill.total_vat, bill.total_ttc, bill.loyalty_points,
            bill.loyalty_balance) == (dt.date(2017, 6, 1), dt.date(2017, 7, 19), Decimal("237.50"),
                                      Decimal("47.50"), Decimal("285.00"), 150, 196)
    assert [(i.reference, i.line, i.amount_ht, i.amount_vat, i.amount_ttc, i.status, i.payment, i.paid_at)
            for i in bill.invoices.order_by("reference")] == [
        ("0000111995072017", fixed, Decimal("155.00"), Decimal("31.00"), Decimal("186.00"), "unpaid", None, None),
        ("0000111996072017", internet, Decimal("82.50"), Decimal("16.50"), Decimal("99.00"), "unpaid", None, None),
    ]
    assert [(x.position, x.section, x.label, x.period_start, x.period_end, x.amount_ht, x.free)
            for x in InvoiceLine.objects.filter(invoice__reference="0000111995072017")] == [
        (1, "Abonnement", "Ligne mixte illimité TT", dt.date(2017, 7, 1), dt.date(2017, 7, 31), Decimal("155.00"),
         False),
        (2, "Options et services", "5 H tout temps Mobile", dt.date(2017, 6, 1), dt.date(2017, 6, 30),
         Decimal("0.00"), True),
    ]
    youssef = Customer.objects.get(client_number="100000002")
    assert list(Invoice.objects.filter(line__number="+212661000001").order_by("bill__month").values_list(
        "reference", "amount_ttc", "bill__customer")) == [
        ("0000200001092026", Decimal("149.00"), youssef.pk), ("0000200001102026", Decimal("199.00"), youssef.pk)]


def test_importing_the_same_file_again_changes_nothing():
    import_bills(source=EXAMPLE)
    before = (list(Customer.objects.values_list("pk", "client_number", "name", "created_at")),
              list(ServiceLine.objects.values_list("pk", "number", "payment_identifier", "payment_code_digest")),
              list(Invoice.objects.values_list("pk", "reference", "amount_ttc", "status")),
              list(InvoiceLine.objects.values_list("pk", "invoice", "label", "amount_ht")))

    again = import_bills(source=EXAMPLE)

    assert counts() == (2, 3, 3, 4, 6)
    assert (again.customers.present, again.lines.present, again.bills.present, again.invoices.present) == (2, 3, 3, 4)
    assert (again.customers.created, again.lines.created, again.bills.created, again.invoices.created,
            again.invoice_lines_created) == (0, 0, 0, 0, 0)
    assert before == (list(Customer.objects.values_list("pk", "client_number", "name", "created_at")),
                      list(ServiceLine.objects.values_list("pk", "number", "payment_identifier",
                                                           "payment_code_digest")),
                      list(Invoice.objects.values_list("pk", "reference", "amount_ttc", "status")),
                      list(InvoiceLine.objects.values_list("pk", "invoice", "label", "amount_ht")))


def test_a_later_file_adds_bills_to_existing_customers(tmp_path):
    import_bills(source=write(tmp_path / "june.json", document(mobile_customer())))
    october = mobile_customer()
    october["bills"] = [{
        "month": "2026-10", "due_date": "2026-11-20", "total_ht": "165.83", "total_vat": "33.17", "total_ttc": "199.00",
        "invoices": [{"reference": "0000200001102026", "line": "0661000001", "amount_ht": "165.83",
                      "amount_vat": "33.17", "amount_ttc": "199.00",
                      "lines": [{"label": "Forfait Mobile 20 H", "amount_ht": "165.83"}]}]}]

    summary = import_bills(source=write(tmp_path / "october.json", document(october)))

    assert (summary.customers.present, summary.lines.present, summary.bills.created, summary.invoices.created) == (
        1, 1, 1, 1)
    assert list(Invoice.objects.order_by("reference").values_list("reference", "bill__month")) == [
        ("0000200001092026", dt.date(2026, 9, 1)), ("0000200001102026", dt.date(2026, 10, 1))]


# --- each kind of bad record: the exact message, and nothing written ------------------------------------------


def _set(path: list, value):
    def mutate(customer: dict) -> None:
        node = customer
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


def _delete(path: list):
    def mutate(customer: dict) -> None:
        node = customer
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return mutate


def _internet_amounts(ht: str, vat: str, ttc: str):
    def mutate(customer: dict) -> None:
        invoice = customer["bills"][0]["invoices"][1]
        invoice["lines"][0]["amount_ht"] = ht
        invoice.update(amount_ht=ht, amount_vat=vat, amount_ttc=ttc)
    return mutate


def _both(*mutations):
    def mutate(customer: dict) -> None:
        for mutation in mutations:
            mutation(customer)
    return mutate


INV0 = ["bills", 0, "invoices", 0]
INV1 = ["bills", 0, "invoices", 1]
BAD_RECORDS = {
    "ttc_not_ht_plus_vat": (
        _internet_amounts("82.00", "16.40", "99.00"),
        f"{INTERNET_INVOICE} › amount_ttc: 98.40 attendu (82.00 HT + TVA 20 %), 99.00 trouvé"),
    "vat_not_20_percent": (
        _internet_amounts("82.50", "16.00", "99.00"),
        f"{INTERNET_INVOICE} › amount_vat: 16.50 attendu (TVA 20 % de 82.50 HT, arrondie au centime), 16.00 trouvé"),
    "ht_not_sum_of_lines": (
        _set([*INV0, "amount_ht"], "150.00"),
        f"{FIXED_INVOICE} › amount_ht: 155.00 attendu (somme des lignes), 150.00 trouvé"),
    "bill_total_not_sum_of_invoices": (
        _set(["bills", 0, "total_ttc"], "284.00"),
        f"{GUIDE_BILL} › total_ttc: 285.00 attendu (somme des factures), 284.00 trouvé"),
    "amount_with_three_decimals": (
        _set([*INV0, "amount_vat"], "31.001"),
        f"{FIXED_INVOICE} › amount_vat: « 31.001 » n'est pas un montant en DH écrit « 155.00 » (positif, deux "
        "décimales au plus)"),
    "amount_as_json_number": (
        _set([*INV0, "amount_ht"], 155),
        f"{FIXED_INVOICE} › amount_ht: un montant en DH écrit « 155.00 » (positif, deux décimales au plus) attendu, "
        "un nombre trouvé"),
    "negative_amount": (
        _set(["bills", 0, "total_ht"], "-237.50"),
        f"{GUIDE_BILL} › total_ht: « -237.50 » n'est pas un montant en DH écrit « 155.00 » (positif, deux "
        "décimales au plus)"),
    "missing_field": (
        _delete(["bills", 0, "due_date"]),
        f"{GUIDE_BILL} › due_date: champ obligatoire manquant"),
    "unknown_field": (
        _set([*INV1, "amount_tc"], "99.00"),
        f"{INTERNET_INVOICE} › amount_tc: champ inconnu (champs permis : amount_ht, amount_ttc, amount_vat, line, "
        "lines, reference)"),
    "wrong_type_list": (
        _set(["bills"], {"month": "2017-06"}),
        f"{GUIDE} › bills: liste attendue, un objet trouvé"),
    "wrong_type_count": (
        _set(["bills", 0, "loyalty_points"], "150"),
        f"{GUIDE_BILL} › loyalty_points: nombre entier positif ou nul attendu, « 150 » trouvé"),
    "wrong_type_boolean": (
        _set([*INV0, "lines", 1, "free"], "oui"),
        f"{FIXED_INVOICE} › lines[1] › free: true ou false attendu, « oui » trouvé"),
    "empty_name": (
        _set(["name"], "  "),
        f"{GUIDE} › name: ne doit pas être vide"),
    "client_number_not_digits": (
        _set(["client_number"], "C-100000001"),
        "customers[0] (client C-100000001) › client_number: « C-100000001 » n'est pas un n° client (1 à 20 "
        "chiffres)"),
    "invalid_phone_number": (
        _both(_set(["lines", 0, "number"], "05 22 00"), _set([*INV0, "line"], "05 22 00")),
        f"{GUIDE} › lines[0] (05 22 00) › number: « 05 22 00 » n'est pas un numéro de téléphone marocain valide"),
    "mobile_number_on_a_fixed_line": (
        _both(_set(["lines", 0, "number"], "06 61 00 00 05"), _set([*INV0, "line"], "06 61 00 00 05")),
        f"{GUIDE} › lines[0] (06 61 00 00 05) › number: « 06 61 00 00 05 » n'est pas un numéro fixe (05…)"),
    "unknown_line_kind": (
        _set(["lines", 1, "kind"], "adsl"),
        f"{GUIDE} › lines[1] › kind: « adsl » trouvé, « mobile » ou « fixed » ou « internet » attendu"),
    "payment_code_missing": (
        _delete(["lines", 0, "payment_code"]),
        f"{GUIDE} › lines[0] (05 22 00 00 01) › payment_code: champ obligatoire manquant"),
    "payment_code_not_digits": (
        _set(["lines", 0, "payment_code"], "48a1"),
        f"{GUIDE} › lines[0] (05 22 00 00 01) › payment_code: « 48a1 » n'est pas un code de paiement (4 à 8 "
        "chiffres)"),
    "payment_identifier_not_8_digits": (
        _set(["lines", 1, "payment_identifier"], "12 345 67"),
        f"{GUIDE} › lines[1] (12 345 67) › payment_identifier: « 12 345 67 » n'est pas un identifiant de paiement "
        "de 8 chiffres (« xx xxx xxx »)"),
    "invoice_for_an_unknown_line": (
        _set([*INV1, "line"], "87 654 321"),
        f"{INTERNET_INVOICE} › line: « 87 654 321 » n'est pas une ligne de ce client (voir ses « lines »)"),
    "month_out_of_range": (
        _set(["bills", 0, "month"], "2017-13"),
        "customers[0] (client 100000001) › bills[0] (2017-13) › month: « 2017-13 » n'est pas un mois AAAA-MM"),
    "impossible_date": (
        _set(["bills", 0, "due_date"], "2017-02-30"),
        f"{GUIDE_BILL} › due_date: « 2017-02-30 » n'est pas une date AAAA-MM-JJ"),
    "due_date_before_the_month": (
        _set(["bills", 0, "due_date"], "2017-05-31"),
        f"{GUIDE_BILL} › due_date: 2017-05-31 est avant le mois facturé (2017-06)"),
    "period_ends_before_it_starts": (
        _set([*INV0, "lines", 0, "period_end"], "2017-06-30"),
        f"{FIXED_INVOICE} › lines[0] › period_end: 2017-06-30 est avant le début de la période (2017-07-01)"),
    "period_without_end": (
        _delete([*INV0, "lines", 0, "period_end"]),
        f"{FIXED_INVOICE} › lines[0] › period_end: obligatoire avec period_start (une période a un début et une "
        "fin)"),
    "free_line_with_an_amount": (
        _set([*INV0, "lines", 1, "amount_ht"], "10.00"),
        f"{FIXED_INVOICE} › lines[1] › amount_ht: une ligne gratuite (« free »: true) n'a pas de montant"),
    "line_without_amount": (
        _delete([*INV1, "lines", 0, "amount_ht"]),
        f"{INTERNET_INVOICE} › lines[0] › amount_ht: champ obligatoire manquant (ou « free »: true pour une ligne "
        "gratuite)"),
    "invoice_with_no_lines": (
        _set([*INV1, "lines"], []),
        f"{INTERNET_INVOICE} › lines: la liste ne doit pas être vide"),
    "record_not_an_object": (
        _set(["bills", 0, "invoices", 1], "0000111996072017"),
        f"{GUIDE_BILL} › invoices[1]: objet attendu, un texte trouvé"),
    "same_line_twice_in_a_customer": (
        lambda customer: customer["lines"].append({"kind": "fixed", "number": "0522000001", "payment_code": "4821"}),
        f"{GUIDE} › lines[2] (0522000001) › number: ligne en double dans ce client (déjà en lines[0])"),
    "two_invoices_for_one_line_in_a_bill": (
        _set([*INV1, "line"], "05 22 00 00 01"),
        f"{INTERNET_INVOICE} › line: cette ligne a déjà sa facture sur ce mois (invoices[0])"),
    "same_reference_twice_in_a_bill": (
        _set([*INV1, "reference"], "0000111995072017"),
        f"{GUIDE_BILL} › invoices[1] (0000111995072017) › reference: référence en double (déjà en invoices[0])"),
    "reference_not_digits": (
        _set([*INV1, "reference"], "FAC-2017-06"),
        f"{GUIDE_BILL} › invoices[1] (FAC-2017-06) › reference: « FAC-2017-06 » n'est pas une référence de facture "
        "(6 à 20 chiffres)"),
    "label_too_long": (
        _set([*INV0, "lines", 0, "label"], "x" * 201),
        f"{FIXED_INVOICE} › lines[0] › label: 200 caractères au plus, 201 trouvés"),
}


@pytest.mark.parametrize("mutation", BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_each_kind_of_bad_record_is_named_and_nothing_is_written(tmp_path, mutation):
    mutate, message = mutation
    bad = guide_customer()
    mutate(bad)

    problems = refused(tmp_path, document(bad, mobile_customer()))

    assert problems == [message]
    assert counts() == (0, 0, 0, 0, 0)


def test_a_good_record_before_a_bad_one_is_not_written_either(tmp_path):
    bad = mobile_customer()
    bad["bills"][0]["total_ttc"] = "150.00"
    assert refused(tmp_path, document(guide_customer(), bad)) == [
        f"{MOBILE} › bills[0] (2026-09) › total_ttc: 149.00 attendu (somme des factures), 150.00 trouvé"]
    assert counts() == (0, 0, 0, 0, 0)


def test_several_problems_are_collected_then_the_import_stops_at_twenty(tmp_path):
    customers = []
    for i in range(25):
        customer = mobile_customer()
        customer["client_number"] = f"2000000{i:02d}"
        customer["lines"][0]["number"] = f"06 61 00 01 {i:02d}"
        customer["bills"][0]["invoices"][0]["line"] = f"06 61 00 01 {i:02d}"
        customer["bills"][0]["invoices"][0]["reference"] = f"00002000{i:02d}092026"
        customer["bills"][0]["invoices"][0]["amount_ttc"] = "150.00"
        customers.append(customer)

    with pytest.raises(BillImportFailed) as failure:
        import_bills(source=write(tmp_path / "bills.json", document(*customers)))

    assert failure.value.truncated
    assert len(failure.value.problems) == 20
    assert str(failure.value.problems[19]) == (
        "customers[19] (client 200000019) › bills[0] (2026-09) › invoices[0] (0000200019092026) › amount_ttc: "
        "149.00 attendu (124.17 HT + TVA 20 %), 150.00 trouvé")
    assert failure.value.headline() == "Import refusé, rien n'a été importé : arrêt après 20 erreurs."
    assert counts() == (0, 0, 0, 0, 0)


# --- duplicates inside the file, in one batch or across batches -----------------------------------------------


@pytest.fixture(params=["one_batch", "across_batches"])
def batching(request, monkeypatch):
    if request.param == "across_batches":
        monkeypatch.setattr(importing, "BATCH_INVOICES", 1)
    return request.param


def test_a_client_twice_in_the_file_is_refused(tmp_path, batching):
    again = mobile_customer()
    again["lines"][0]["number"] = "06 61 00 00 02"
    again["bills"] = []
    assert refused(tmp_path, document(mobile_customer(), guide_customer(), again)) == [
        "customers[2] (client 100000002) › client_number: client en double dans le fichier"]
    assert counts() == (0, 0, 0, 0, 0)


def test_a_line_in_two_customers_is_refused(tmp_path, batching):
    other = mobile_customer()
    other["client_number"] = "100000003"
    other["bills"] = []
    assert refused(tmp_path, document(mobile_customer(), guide_customer(), other)) == [
        "customers[2] (client 100000003) › lines[0] (06 61 00 00 01) › number: ligne en double dans le fichier"]
    assert counts() == (0, 0, 0, 0, 0)


def test_an_invoice_reference_twice_in_the_file_is_refused(tmp_path, batching):
    other = mobile_customer()
    other["client_number"] = "100000003"
    other["lines"][0]["number"] = "06 61 00 00 03"
    other["bills"][0]["invoices"][0]["line"] = "06 61 00 00 03"
    other["bills"][0]["invoices"][0]["reference"] = "0000111995072017"
    assert refused(tmp_path, document(guide_customer(), mobile_customer(), other)) == [
        "customers[2] (client 100000003) › bills[0] (2026-09) › invoices[0] (0000111995072017) › reference: "
        "référence de facture en double dans le fichier"]
    assert counts() == (0, 0, 0, 0, 0)


def test_a_member_written_twice_is_refused(tmp_path):
    text = json.dumps(document(mobile_customer())).replace('"name": "M. Youssef Benali"',
                                                           '"name": "M. Youssef Benali", "name": "M. Y. Benali"')
    assert refused(tmp_path, text) == ["customers[0] (client 100000002) › name: champ présent deux fois dans le même "
                                       "objet"]
    assert counts() == (0, 0, 0, 0, 0)


# --- existing data: never overwritten, never completed ---------------------------------------------------------


def test_an_existing_customer_with_another_name_is_a_conflict(tmp_path):
    factories.customer(client_number="100000001", name="Mme K. Alaoui")
    assert refused(tmp_path, document(guide_customer())) == [
        f"{GUIDE} › name: « Mme Khadija Alaoui » dans le fichier, « Mme K. Alaoui » déjà enregistré (l'import ne "
        "modifie jamais un enregistrement existant)"]
    assert counts() == (1, 0, 0, 0, 0)
    assert Customer.objects.get().name == "Mme K. Alaoui"


def test_a_line_of_another_customer_is_a_conflict(tmp_path):
    factories.mobile_line(number="+212661000001", owner=factories.customer(client_number="900000001"))
    assert refused(tmp_path, document(mobile_customer())) == [
        "customers[0] (client 100000002) › lines[0] (06 61 00 00 01) › number: ligne déjà enregistrée pour le "
        "client 900000001"]
    assert counts() == (1, 1, 0, 0, 0)


def test_another_payment_code_is_a_conflict_and_the_stored_one_stays(tmp_path):
    owner = factories.customer(client_number="100000001", name="Mme Khadija Alaoui")
    line = factories.fixed_line(number="+212522000001", payment_code="1111", owner=owner)
    assert refused(tmp_path, document(guide_customer())) == [
        f"{GUIDE} › lines[0] (05 22 00 00 01) › payment_code: différent du code de paiement déjà enregistré pour "
        "cette ligne (l'import ne le modifie jamais)",
        f"{GUIDE} › lines[0] (05 22 00 00 01) › label: « Ligne mixte illimité TT » dans le fichier, « » déjà "
        "enregistré (l'import ne modifie jamais un enregistrement existant)"]
    line.refresh_from_db()
    assert payment_code_matches("+212522000001", "1111", line.payment_code_digest)
    assert counts() == (1, 1, 0, 0, 0)


def test_an_existing_bill_that_differs_is_a_conflict(tmp_path):
    import_bills(source=write(tmp_path / "first.json", document(guide_customer())))
    changed = guide_customer()
    changed["bills"][0]["due_date"] = "2017-07-20"
    changed["bills"][0]["loyalty_balance"] = 200

    assert refused(tmp_path, document(changed)) == [
        f"{GUIDE_BILL} › due_date: 2017-07-20 dans le fichier, 2017-07-19 déjà enregistré (l'import ne modifie "
        "jamais un enregistrement existant)",
        f"{GUIDE_BILL} › loyalty_balance: 200 dans le fichier, 196 déjà enregistré (l'import ne modifie jamais un "
        "enregistrement existant)"]
    assert Bill.objects.get().due_date == dt.date(2017, 7, 19)


def test_an_existing_bill_is_never_completed(tmp_path):
    first = mobile_customer()
    import_bills(source=write(tmp_path / "first.json", document(first)))
    more = mobile_customer()
    invoice = more["bills"][0]["invoices"][0]
    invoice["reference"] = "0000200009092026"
    assert refused(tmp_path, document(more)) == [
        "customers[0] (client 100000002) › bills[0] (2026-09) › invoices[0] (0000200009092026) › reference: facture "
        "absente de la facture mensuelle 09/2026 déjà enregistrée (l'import ne complète jamais une facture "
        "mensuelle existante)"]
    assert list(Invoice.objects.values_list("reference", flat=True)) == ["0000200001092026"]


def test_a_reference_already_on_another_bill_is_a_conflict(tmp_path):
    other = factories.mobile_line(number="+212661000099", owner=factories.customer(client_number="900000001"))
    factories.invoice(line=other, reference="0000111996072017", month=dt.date(2017, 5, 1))
    assert refused(tmp_path, document(guide_customer())) == [
        f"{INTERNET_INVOICE} › reference: référence déjà enregistrée sur une autre facture mensuelle (client "
        "900000001, 05/2017)"]
    assert counts() == (1, 1, 1, 1, 1)


def _pay(invoice: Invoice) -> Payment:
    now = timezone.now()
    order = PaymentOrder.objects.create(oid="ORDER-1", line=invoice.line, email="k@example.ma",
                                        amount=invoice.amount_ttc, state=PaymentOrder.State.PAID, created_at=now,
                                        updated_at=now)
    payment = Payment.objects.create(order=order, receipt_number="R-1", amount=invoice.amount_ttc, email=order.email,
                                     paid_at=now, trans_id="T-1", auth_code="123456", masked_pan="400000******0002",
                                     card_brand="VISA", merchant_name="Tasdid")
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.PAID, payment=payment, paid_at=now)
    return payment


def test_a_paid_invoice_is_left_alone(tmp_path):
    import_bills(source=write(tmp_path / "first.json", document(guide_customer())))
    paid = Invoice.objects.get(reference="0000111995072017")
    payment = _pay(paid)

    again = import_bills(source=write(tmp_path / "again.json", document(guide_customer())))
    assert again.invoices.present == 2

    changed = guide_customer()
    changed["bills"][0]["invoices"][0]["lines"][0]["label"] = "Ligne mixte 20 H"
    assert refused(tmp_path, document(changed)) == [
        f"{FIXED_INVOICE} › lines[0] › label: « Ligne mixte 20 H » dans le fichier, « Ligne mixte illimité TT » déjà "
        "enregistré (l'import ne modifie jamais un enregistrement existant)"]
    paid.refresh_from_db()
    assert (paid.status, paid.payment, paid.amount_ttc) == ("paid", payment, Decimal("186.00"))
    assert InvoiceLine.objects.get(invoice=paid, position=1).label == "Ligne mixte illimité TT"


# --- the file itself ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "message"), [
    (b'{"format": "tasdid-bills", "version": 1,\n "customers": [\n  {"client_number": "1",}\n]}',
     "JSON mal formé ligne 3, colonne 25 (octet 81) : nom de champ invalide (texte entre guillemets attendu)"),
    (b"", "JSON mal formé ligne 1, colonne 1 (octet 0) : fin du fichier inattendue (accolade, crochet ou guillemet "
          "non fermé ?)"),
    (b"[]", "le document doit être un objet JSON { … } contenant « customers »"),
    (b'{"format": "tasdid-bills", "version": 1}', "customers : champ obligatoire manquant (la liste des clients)"),
    (b'{"format": "tasdid-bills", "version": 1, "customers": {}}', "customers : liste attendue"),
])
def test_a_file_that_is_not_a_bills_document_is_refused(tmp_path, content, message):
    assert refused(tmp_path, content) == [message]
    assert counts() == (0, 0, 0, 0, 0)


def test_the_header_is_checked(tmp_path):
    doc = {"format": "tasdid-factures", "version": 2, "source": "SI", "customers": [guide_customer()]}
    assert refused(tmp_path, doc) == [
        "source: champ inconnu (champs permis : customers, format, version)",
        "format: « tasdid-factures » trouvé, « tasdid-bills » attendu",
        "version: version 2 non prise en charge (version attendue : 1)"]
    assert refused(tmp_path, {"customers": []}) == [
        "format: champ obligatoire manquant avant « customers » (« tasdid-bills » attendu)",
        "version: champ obligatoire manquant avant « customers » (1 attendu)"]


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(BillImportFailed) as failure:
        import_bills(source=tmp_path / "absent.json")
    assert [str(p) for p in failure.value.problems] == [f"fichier introuvable : {tmp_path / 'absent.json'}"]


def test_an_empty_customers_list_imports_nothing(tmp_path):
    summary = import_bills(source=write(tmp_path / "bills.json", document()))
    assert (summary.customers.created, summary.invoices.created) == (0, 0)
    assert counts() == (0, 0, 0, 0, 0)


# --- nothing but format, version and customers, wherever a member stands --------------------------------------


def _with_tail(doc: dict, tail: str) -> str:
    """``doc`` as JSON text with ``tail`` written after its customers list, before the closing brace."""
    text = json.dumps(doc, indent=1)
    assert text.endswith("]\n}")
    return text[:-2] + tail + "\n}"


ALLOWED = "(champs permis : customers, format, version)"


@pytest.mark.parametrize(("tail", "message"), [
    (', "source": "SI"', f"source: champ inconnu {ALLOWED}"),
    (', "notes": {"a": [1, "]", {"b": "}"}]}', f"notes: champ inconnu {ALLOWED}"),
    (',\n  "rows": [[]] , "x": 1', f"rows: champ inconnu {ALLOWED}"),
    (', "customers": []', "customers: champ présent deux fois dans le même objet"),
    (', "version": 1', "version: champ attendu avant « customers »"),
])
def test_a_member_after_the_customers_is_refused_and_nothing_imported(tmp_path, tail, message):
    doc = document(guide_customer(), mobile_customer())
    doc["customers"][1]["name"] = 'M. "Youssef" ] Benali }'  # brackets and quotes inside the last customer
    assert refused(tmp_path, _with_tail(doc, tail)) == [message]
    assert counts() == (0, 0, 0, 0, 0)


def test_a_member_after_an_empty_customers_list_is_refused(tmp_path):
    assert refused(tmp_path, _with_tail(document(), ', "source": "SI"')) == [f"source: champ inconnu {ALLOWED}"]


def test_after_many_customers_a_member_at_the_end_is_still_seen(tmp_path):
    """The customers list spans many of the reader's chunks: the member after it is found all the same."""
    customers = []
    for n in range(4000):
        customer = mobile_customer()
        customer["client_number"] = str(300000000 + n)
        customer["lines"][0]["number"] = f"06{n:08d}"
        customer["bills"] = []
        customers.append(customer)
    text = _with_tail(document(*customers), ', "extra": true')
    assert len(text.encode()) > 2 * 256 * 1024
    assert refused(tmp_path, text) == [f"extra: champ inconnu {ALLOWED}"]
    assert counts() == (0, 0, 0, 0, 0)
    import_bills(source=write(tmp_path / "good.json", document(*customers)))
    assert Customer.objects.count() == 4000
