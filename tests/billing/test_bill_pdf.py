"""The monthly bill as a PDF (tasdid.billing.documents), read back with poppler's pdftotext: every field of the
guide's sample bill in French, Arabic and English, and names or addresses that are long, right to left or both."""

import dataclasses
import datetime as dt
import re
import subprocess

import pytest
from django.contrib.auth.models import User

from tasdid.billing.demo import seed_demo
from tasdid.billing.documents import bill_html, bill_pdf
from tasdid.billing.models import Bill, Customer, Invoice, InvoiceLine, Payment, PaymentOrder
from tasdid.billing.selectors.bills import bill_document, bill_number, line_bill_id
from tasdid.core.i18n import COOKIE
from tests.support.staff import party_client, signed_in, staff_account

pytestmark = pytest.mark.django_db

ADDRESS = "12, rue Ibn Battouta\n20000 Casablanca\nMaroc"
# Direction marks pdftotext writes around runs (embeddings, isolates, marks): not text.
_BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# pdftotext writes the two letters of an Arabic ligature glyph (lam-alef, lam-yeh…) in reverse order.
_LIGATURES = {"لا": "ال", "لأ": "أل", "لإ": "إل", "لآ": "آل", "لى": "ىل"}


def pdf_lines(pdf: bytes, tmp_path, *, mode: str = "-layout") -> list[str]:
    path = tmp_path / "bill.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", mode, str(path), "-"], check=True, capture_output=True, text=True,
                          timeout=60).stdout
    return [_BIDI_CONTROLS.sub("", line) for line in text.splitlines()]


def as_read(text: str) -> str:
    """``text`` as pdftotext reads it back from the PDF (Arabic ligatures' letters swapped)."""
    for ligature, read in _LIGATURES.items():
        text = text.replace(ligature, read)
    return text


def page_count(pdf: bytes, tmp_path) -> int:
    path = tmp_path / "count.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True, timeout=60).stdout
    return int(re.search(r"^Pages:\s+(\d+)$", info, re.M).group(1))


def words_outside_the_page(pdf: bytes, tmp_path) -> list[str]:
    """Words whose box leaves the printable area (A4, margins 16 mm on the sides): text that overflowed."""
    path = tmp_path / "bbox.pdf"
    path.write_bytes(pdf)
    xhtml = subprocess.run(["pdftotext", "-bbox", str(path), "-"], check=True, capture_output=True, text=True,
                           timeout=60).stdout
    width = float(re.search(r'<page width="([\d.]+)"', xhtml).group(1))
    margin = 16 / 25.4 * 72 - 1  # points, one of tolerance
    return [word for x_min, x_max, word in re.findall(
        r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">(.*?)</word>', xhtml)
        if float(x_min) < margin or float(x_max) > width - margin]


def on_one_line(lines: list[str], *parts: str) -> bool:
    return any(all(part in line for part in parts) for line in lines)


@pytest.fixture
def sample():
    """The guide's sample bill (demo data: client 100000001, June 2017), with an address."""
    seed_demo()
    Customer.objects.filter(client_number="100000001").update(address=ADDRESS)
    return Bill.objects.get(customer__client_number="100000001", month=dt.date(2017, 6, 1))


def test_the_document_holds_the_sample_bill_in_three_queries(sample, django_assert_num_queries):
    with django_assert_num_queries(3):
        bill = bill_document(bill_id=sample.pk)
    assert (bill.number, bill.month, bill.due_date, bill.client_number, bill.customer_name) == (
        "100000001-201706", dt.date(2017, 6, 1), dt.date(2017, 7, 19), "100000001", "Mme Khadija Alaoui")
    assert bill.customer_address == ["12, rue Ibn Battouta", "20000 Casablanca", "Maroc"]
    assert [(s.kind, s.display) for s in bill.services] == [("fixed", "05 22 00 00 01"), ("internet", "12 345 678")]
    assert [(i.reference, str(i.amount_ttc), len(i.items)) for i in bill.invoices] == [
        ("0000111995072017", "186.00", 2), ("0000111996072017", "99.00", 1)]
    assert (str(bill.total_ht), str(bill.total_vat), str(bill.total_ttc)) == ("237.50", "47.50", "285.00")
    assert (bill.loyalty_points, bill.loyalty_balance, bill.vat_percent) == (150, 196, 20)
    assert bill.filename == "facture-100000001-201706.pdf"
    assert bill_number(client_number="7", month=dt.date(2026, 1, 1)) == "7-202601"
    assert bill_document(bill_id=sample.pk + 1000) is None


def test_a_line_reaches_only_the_bills_it_is_on(sample):
    fixed, internet = sample.invoices.order_by("reference")
    other = Invoice.objects.exclude(bill=sample).first()
    assert line_bill_id(line_id=fixed.line_id, reference="0000111995072017") == sample.pk
    assert line_bill_id(line_id=internet.line_id, reference="0000111995072017") is None
    assert line_bill_id(line_id=fixed.line_id, reference=other.reference) is None
    assert line_bill_id(line_id=fixed.line_id, reference="nope") is None


# Each row: what must stand on one line of ``pdftotext -layout``, a label beside its value.
FIELDS = {
    "fr": [
        ("Tasdid Télécom",), ("Facture du mois de Juin 2017",),
        ("N° de facture", "100000001-201706"), ("Mme Khadija Alaoui",), ("N° Client", "100000001"),
        ("12, rue Ibn Battouta",), ("20000 Casablanca",), ("Maroc",),
        ("N° Téléphone", "05 22 00 00 01"), ("Identifiant de paiement", "12 345 678"),
        ("Code de paiement Fixe", "••••"), ("Date limite de paiement", "19/07/2017"),
        ("Montant Total de votre facture en DH TTC", "285.00"), ("dont Montant TVA DH (20%)", "47.50"),
        ("Réf Facture Fixe n° 0000111995072017", "Montant à payer TTC Téléphone", "186.00"),
        ("Réf Facture Internet n° 0000111996072017", "Montant à payer TTC Internet", "99.00"),
        ("Détail de votre facture",), ("Libellé", "Date début", "Date fin", "Montant DH HT"),
        ("Téléphone fixe 05 22 00 00 01",), ("Internet 12 345 678",),
        ("Abonnement Ligne mixte illimité TT", "01/07/2017", "31/07/2017", "155.00"),
        ("Options et services 5 H tout temps Mobile", "01/06/2017", "30/06/2017", "Gratuit"),
        ("Abonnement Menara ADSL illimité 4 Mb/s", "01/07/2017", "31/07/2017", "82.50"),
        ("Total HT", "237.50"), ("TVA (20%)", "47.50"), ("Total TTC", "285.00"),
        ("Points de fidélité convertibles", "150"), ("Solde total du compte points de fidélité", "196"),
        ("le code de paiement fixe n'est pas reproduit",), ("1/1",),
    ],
    "en": [
        ("Tasdid Télécom",), ("Bill for the month of June 2017",),
        ("Bill no.", "100000001-201706"), ("Mme Khadija Alaoui",), ("Customer no.", "100000001"),
        ("12, rue Ibn Battouta",), ("20000 Casablanca",), ("Maroc",),
        ("Phone no.", "05 22 00 00 01"), ("Internet payment", "12 345 678"),
        ("Fixed-line payment code", "••••"), ("Payment due date", "19/07/2017"),
        ("Total amount of your bill in DH incl. VAT", "285.00"), ("of which VAT in DH (20%)", "47.50"),
        ("Fixed-line invoice ref. no. 0000111995072017", "Amount due incl. VAT, phone", "186.00"),
        ("Internet invoice ref. no. 0000111996072017", "Amount due incl. VAT, internet", "99.00"),
        ("Details of your bill",), ("Description", "Start date", "End date", "Amount in DH"),
        ("Fixed line 05 22 00 00 01",), ("Internet 12 345 678",),
        ("Abonnement Ligne mixte illimité TT", "01/07/2017", "31/07/2017", "155.00"),
        ("Options et services 5 H tout temps Mobile", "01/06/2017", "30/06/2017", "Free"),
        ("Abonnement Menara ADSL illimité 4 Mb/s", "01/07/2017", "31/07/2017", "82.50"),
        ("Total excl. VAT", "237.50"), ("VAT (20%)", "47.50"), ("Total incl. VAT", "285.00"),
        ("Convertible loyalty points", "150"), ("Total balance of the loyalty points account", "196"),
        ("the fixed-line payment code is not reproduced",), ("1/1",),
    ],
    # Right to left: pdftotext writes each line's runs in the order they were drawn, values before labels.
    "ar": [
        ("Tasdid Télécom",), ("فاتورة شهر يونيو", "2017"),
        ("100000001-201706", "رقم الفاتورة"), ("Mme Khadija Alaoui",), ("100000001", "رقم الزبون"),
        ("12, rue Ibn Battouta",), ("20000 Casablanca",), ("Maroc",),
        ("05 22 00 00 01", "رقم الهاتف"), ("12 345 678", "معرف أداء الإنترنت"),
        ("••••", "رمز أداء الهاتف الثابت"), ("19/07/2017", "آخر أجل للأداء"),
        ("285.00", "المبلغ الإجمالي لفاتورتكم بالدرهم مع احتساب الرسوم"),
        ("47.50", "منها الضريبة على القيمة المضافة بالدرهم"),
        ("186.00", "المبلغ الواجب أداؤه", "مرجع فاتورة الهاتف الثابت رقم 0000111995072017"),
        ("99.00", "المبلغ الواجب أداؤه", "مرجع فاتورة الإنترنت رقم 0000111996072017"),
        ("تفاصيل فاتورتكم",), ("تاريخ النهاية", "تاريخ البداية", "البيان"),
        ("الهاتف الثابت 05 22 00 00 01",), ("الإنترنت 12 345 678",),
        ("155.00", "31/07/2017", "01/07/2017", "Abonnement Ligne mixte illimité TT"),
        ("مجاني", "30/06/2017", "01/06/2017", "Options et services 5 H tout temps Mobile"),
        ("82.50", "31/07/2017", "01/07/2017", "Abonnement Menara ADSL illimité 4 Mb/s"),
        ("237.50", "المجموع دون احتساب الرسوم"), ("47.50", "الضريبة على القيمة المضافة"),
        ("285.00", "المجموع مع احتساب الرسوم"),
        ("150", "نقاط الوفاء القابلة للتحويل"), ("196", "الرصيد الإجمالي لحساب نقاط الوفاء"),
        ("لا يظهر رمز أداء الهاتف الثابت",), ("1/1",),
    ],
}


@pytest.mark.parametrize("language", ["fr", "ar", "en"])
def test_every_field_of_the_sample_bill_is_printed_in_each_language(sample, tmp_path, language):
    pdf = bill_pdf(bill_document(bill_id=sample.pk), language=language)

    assert pdf.startswith(b"%PDF-")
    lines = pdf_lines(pdf, tmp_path)
    for parts in FIELDS[language]:
        assert on_one_line(lines, *(as_read(part) for part in parts)), (parts, "\n".join(lines))
    assert page_count(pdf, tmp_path) == 1
    assert words_outside_the_page(pdf, tmp_path) == []
    text = "\n".join(lines)
    assert "4821" not in text  # the payment code is kept only hashed, and never printed
    assert "(payée)" not in text and "paid" not in text


def test_the_html_says_its_language_and_direction(sample):
    bill = bill_document(bill_id=sample.pk)
    assert '<html lang="ar" dir="rtl">' in bill_html(bill, language="ar")
    assert '<html lang="en" dir="ltr">' in bill_html(bill, language="en")
    html = bill_html(bill, language="fr")
    assert '<html lang="fr" dir="ltr">' in html
    assert not re.search(r"(src|href)=|url\(|@import", html)  # nothing to fetch


def test_a_paid_invoice_is_marked_paid_and_a_bill_without_fixed_line_names_no_payment_code(tmp_path):
    seed_demo()
    invoice = Invoice.objects.get(reference="0000200001092026")  # a mobile line's own bill
    now = dt.datetime(2026, 10, 1, 10, 0, tzinfo=dt.UTC)
    order = PaymentOrder.objects.create(oid="ORDER-7", line=invoice.line, email="y@example.ma",
                                        amount=invoice.amount_ttc, state=PaymentOrder.State.PAID, created_at=now,
                                        updated_at=now)
    payment = Payment.objects.create(order=order, receipt_number="R2026-00000007", amount=invoice.amount_ttc,
                                     email=order.email, paid_at=now, trans_id="T-7", auth_code="123456",
                                     masked_pan="400000******0002", card_brand="VISA", merchant_name="Tasdid")
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.PAID, payment=payment, paid_at=now)

    lines = pdf_lines(bill_pdf(bill_document(bill_id=invoice.bill_id), language="fr"), tmp_path)

    assert on_one_line(lines, "N° Mobile", "06 61 00 00 01")
    assert on_one_line(lines, "Réf Facture Mobile n° 0000200001092026", "Montant à payer TTC Mobile", "149.00")
    assert on_one_line(lines, "(payée)")
    assert not on_one_line(lines, "Code de paiement Fixe")
    assert not on_one_line(lines, "n'est pas reproduit")


# The longest name the model allows (Customer.name: 200 characters; PostgreSQL refuses more, SQLite would not).
LONG_NAME = ("Mme " + " ".join(["Khadija-Fatima-Zahra Alaoui El Idrissi Benjelloun"] * 4))[:200]
UNBROKEN_NAME = "M. " + "Abdelkrim" * 21  # one 189-letter word: must wrap inside its box
ARABIC_NAME = "السيدة خديجة العلوي الإدريسي"
MIXED_ADDRESS = "Résidence Al Amal, عمارة 12 شقة 3\nشارع محمد الخامس 45, Casablanca 20000\nالمغرب Maroc"


@pytest.mark.parametrize("name", [LONG_NAME, UNBROKEN_NAME, ARABIC_NAME], ids=["long", "unbroken", "arabic"])
@pytest.mark.parametrize("language", ["fr", "ar", "en"])
def test_long_and_right_to_left_names_and_addresses_wrap_inside_the_page(sample, tmp_path, name, language):
    Customer.objects.filter(pk=sample.customer_id).update(name=name, address=MIXED_ADDRESS + "\n" + LONG_NAME)

    pdf = bill_pdf(bill_document(bill_id=sample.pk), language=language)

    assert page_count(pdf, tmp_path) == 1
    assert words_outside_the_page(pdf, tmp_path) == []
    # Every word of the name and the address is there, as often as written: nothing is cut. (Read in drawing
    # order, where a word broken over two lines comes back whole once the line breaks are taken out.)
    squeezed = "".join("".join(pdf_lines(pdf, tmp_path, mode="-raw")).split())
    written = [name, *MIXED_ADDRESS.splitlines(), LONG_NAME]
    # Punctuation beside a number may stand on either side of it in a right-to-left line ("45," / ",45").
    words = [[as_read(word).strip(",") for word in line.split()] for line in written]
    for word in {word for line in words for word in line}:
        wanted = sum(line.count(word) for line in words)
        assert squeezed.count(word) >= wanted, (word, wanted, squeezed)
    # The rest of the bill is still there.
    lines = pdf_lines(pdf, tmp_path)
    assert on_one_line(lines, "0000111995072017", "186.00")
    assert on_one_line(lines, "0000111996072017", "99.00")


def test_staff_download_a_bill_from_the_admin_in_each_language(sample, tmp_path):
    staff_account("staff", parties=["biller"])
    staff = signed_in("biller", "staff")
    url = f"/admin/billing/bill/{sample.pk}/pdf/"

    page = staff.get(f"/admin/billing/bill/{sample.pk}/change/").content.decode()
    for code, name in (("fr", "Français"), ("ar", "العربية"), ("en", "English")):
        assert f'<a href="{url}?language={code}" download lang="{code}">{name}</a>' in page
    assert f'<a href="{url}" download>PDF</a>' in staff.get("/admin/billing/bill/").content.decode()

    response = staff.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="facture-100000001-201706.pdf"'
    assert on_one_line(pdf_lines(response.content, tmp_path), "Facture du mois de Juin 2017")
    response = staff.get(url, {"language": "ar"})
    assert on_one_line(pdf_lines(response.content, tmp_path), as_read("فاتورة شهر يونيو"), "2017")
    assert COOKIE not in response.cookies  # the admin's own language is left alone
    assert staff.get(f"/admin/billing/bill/{sample.pk + 1000}/pdf/").status_code == 404


def test_the_admin_download_is_for_the_biller_s_staff_only(sample):
    url = f"/admin/billing/bill/{sample.pk}/pdf/"
    for client in (party_client("biller"), _other_party_staff()):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
        assert not response.content.startswith(b"%PDF")


def _other_party_staff():
    staff_account("gw", parties=["gateway"])
    client = party_client("biller")
    client.force_login(User.objects.get(username="gw"))
    return client


def test_a_bill_longer_than_a_page_goes_on_over_numbered_pages_with_its_headings(sample, tmp_path):
    invoice = sample.invoices.get(reference="0000111995072017")
    InvoiceLine.objects.bulk_create(
        InvoiceLine(invoice=invoice, position=10 + n, section="Consommations", label=f"Appel n° {n:03d}",
                    period_start=dt.date(2017, 6, 1), period_end=dt.date(2017, 6, 30), amount_ht="0.00", free=True)
        for n in range(90))

    pdf = bill_pdf(bill_document(bill_id=sample.pk), language="fr")

    pages = page_count(pdf, tmp_path)
    assert pages >= 2
    lines = pdf_lines(pdf, tmp_path)
    for n in range(90):
        assert on_one_line(lines, f"Consommations Appel n° {n:03d}", "01/06/2017", "30/06/2017", "Gratuit")
    assert sum(on_one_line([line], "Libellé", "Date début", "Date fin") for line in lines) == pages
    assert on_one_line(lines, f"1/{pages}") and on_one_line(lines, f"{pages}/{pages}")
    assert on_one_line(lines, "Total TTC", "285.00")
    assert words_outside_the_page(pdf, tmp_path) == []


@pytest.mark.parametrize("language", ["fr", "ar"])
def test_long_and_right_to_left_labels_wrap_inside_their_column(sample, tmp_path, language):
    unbroken, arabic = "Forfait" + "Illimité" * 24, "اشتراك الألياف البصرية 100 ميغابت في الثانية"
    first, second = InvoiceLine.objects.filter(invoice__bill=sample).order_by("invoice__reference", "position")[:2]
    InvoiceLine.objects.filter(pk=first.pk).update(section="S" * 100, label=unbroken)
    InvoiceLine.objects.filter(pk=second.pk).update(label=arabic)

    pdf = bill_pdf(bill_document(bill_id=sample.pk), language=language)

    assert page_count(pdf, tmp_path) == 1
    assert words_outside_the_page(pdf, tmp_path) == []
    squeezed = "".join("".join(pdf_lines(pdf, tmp_path, mode="-raw")).split())
    assert "S" * 100 + unbroken in squeezed
    for word in as_read(arabic).split():
        assert word in squeezed
    lines = pdf_lines(pdf, tmp_path)
    assert on_one_line(lines, "01/06/2017", "30/06/2017")  # the dates keep their columns
    assert on_one_line(lines, "0000111995072017", "186.00")


def test_with_arabic_digits_the_arabic_bill_prints_eastern_digits_and_moroccan_month_names(sample, tmp_path, settings):
    """settings.ARABIC_DIGITS = "arabic": amounts, dates, rates and points in Eastern Arabic digits on the Arabic
    bill, the month as Morocco names it (« يوليوز », not Django's « يوليو »); numbers and references unchanged, as the
    customer types them. The French bill keeps Western digits."""
    settings.ARABIC_DIGITS = "arabic"
    bill = dataclasses.replace(bill_document(bill_id=sample.pk), month=dt.date(2017, 7, 1))

    lines = pdf_lines(bill_pdf(bill, language="ar"), tmp_path)

    text = "\n".join(lines)
    for parts in [("فاتورة شهر يوليوز ٢٠١٧",), ("١٩/٠٧/٢٠١٧", "آخر أجل للأداء"),
                  ("٢٨٥٫٠٠", "المبلغ الإجمالي لفاتورتكم بالدرهم مع احتساب الرسوم"),
                  ("٤٧٫٥٠", "منها الضريبة", "%٢٠"), ("١٨٦٫٠٠", "0000111995072017"),
                  ("١٥٥٫٠٠", "٣١/٠٧/٢٠١٧", "٠١/٠٧/٢٠١٧"), ("٢٣٧٫٥٠",), ("١٥٠", "نقاط الوفاء"), ("١٩٦",),
                  ("100000001-201706",), ("05 22 00 00 01",), ("12 345 678",)]:
        assert on_one_line(lines, *(as_read(part) for part in parts)), (parts, text)
    assert "يوليو " not in text and "285.00" not in text and "19/07/2017" not in text

    french = "\n".join(pdf_lines(bill_pdf(bill, language="fr"), tmp_path))
    assert "Facture du mois de Juillet 2017" in french and "285.00" in french and "19/07/2017" in french
    assert not re.search("[٠-٩]", french)
