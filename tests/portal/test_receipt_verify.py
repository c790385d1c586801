"""Receipts that can be checked, in French, Arabic and English: the receipt page and its PDF carry the amount in
words, a QR code (inline SVG) of the verification link and the code to type; the public verification page says
genuine or not genuine, shows nothing personal, is rate-limited, and never fails on junk."""

import re
import subprocess
import unicodedata
from html import unescape

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import override

from tasdid.billing.models import ReceiptCheck
from tasdid.billing.receipts import grouped_code, qr_svg, verification_code
from tasdid.core import l10n
from tasdid.core.cards import find_card_numbers
from tests.billing.payments_fixtures import EMAIL, MASKED
from tests.billing.test_receipts import paid, receipt_link
from tests.support.qr import decode_svg

LANGS = ["fr", "ar", "en"]
TEXT = {
    "fr": {"title": "Reçu de paiement", "words": "deux cent quatre-vingt-cinq dirhams", "genuine": "Reçu authentique",
           "forged": "Reçu non authentique", "forged_detail": "Aucun reçu ne correspond à ce numéro",
           "too_many": "Trop de vérifications infructueuses depuis votre connexion. Réessayez dans 15 minutes.",
           "check": "Vérifier ce reçu", "qr": "Code QR de vérification du reçu", "amount": "285.00\u00a0DH",
           "card": "se terminant par 0002", "code_label": "Code de vérification :",
           "bad_number": "Un n° de reçu s'écrit comme R2026-00000042.", "at": "à"},
    "ar": {"title": "إيصال الدفع", "words": "مئتان و خمسة و ثمانون درهماً", "genuine": "إيصال صحيح",
           "forged": "إيصال غير صحيح", "forged_detail": "لا يوجد أي إيصال يطابق هذا الرقم",
           "too_many": "محاولات تحقق فاشلة كثيرة من اتصالكم. أعيدوا المحاولة بعد 15 دقيقة.",
           "check": "التحقق من هذا الإيصال", "qr": "رمز QR للتحقق من الإيصال", "amount": "285.00\u00a0درهم",
           "card": "تنتهي بـ 0002", "code_label": "رمز التحقق:",
           "bad_number": "يُكتب رقم الإيصال على شكل R2026-00000042.", "at": "على الساعة"},
    "en": {"title": "Payment receipt", "words": "two hundred and eighty-five dirhams", "genuine": "Genuine receipt",
           "forged": "Receipt not genuine", "forged_detail": "No receipt matches this number",
           "too_many": "Too many unsuccessful checks from your connection. Try again in 15 minutes.",
           "check": "Check this receipt", "qr": "Receipt verification QR code", "amount": "285.00\u00a0DH",
           "card": "ending in 0002", "code_label": "Verification code:",
           "bad_number": "A receipt number looks like R2026-00000042.", "at": "at"},
}
# What identifies the payer or their bills: never on the verification page.
NAME, PHONE, NATIONAL_PHONE = "Mme Amina Test", "+212661000001", "0661000001"


def html_of(response) -> str:
    return unescape(response.content.decode())


def svg_of(html: str) -> str:
    svgs = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    assert len(svgs) == 1
    return svgs[0]


def altered(text: str, at: int = -1) -> str:
    """``text`` with one character changed at ``at``: a digit for a digit, a letter for a letter."""
    ch = text[at]
    new = str((int(ch) + 1) % 10) if ch.isdigit() else ("B" if ch == "A" else "A")
    return text[:at] + new + (text[at + 1:] if at != -1 else "")


def personal_fields(payment, invoices) -> list[str]:
    return [EMAIL, NAME, PHONE, NATIONAL_PHONE, payment.order.oid, payment.trans_id, payment.auth_code, MASKED,
            "400000", *(invoice.reference for invoice in invoices)]


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_receipt_page_in_each_language_with_words_qr_code_and_verification(lang):
    payment, _ = paid()
    code = verification_code(receipt_number=payment.receipt_number, trans_id=payment.trans_id)
    url = f"{settings.BILLER_URL}/verifier/{payment.receipt_number}/{code}"

    response = Client().get(receipt_link(payment) + f"?lang={lang}")

    assert response.status_code == 200
    html = html_of(response)
    assert f'<html lang="{lang}" dir="{"rtl" if lang == "ar" else "ltr"}">' in html
    text = TEXT[lang]
    for expected in [text["title"], text["words"], text["check"], text["code_label"], url, grouped_code(code),
                     payment.receipt_number, MASKED]:
        assert expected in html, expected
    with override(lang):
        assert date_format(payment.order.items.first().invoice.bill.month, "F Y").capitalize() in html
    # The QR code: one inline SVG element, named, whose modules decode to the verification link.
    svg = svg_of(html)
    assert svg.startswith('<svg role="img" ') and f"<title>{text['qr']}</title>" in svg
    assert decode_svg(svg) == url
    assert svg == qr_svg(url, title=text["qr"])  # what segno makes of the expected link, module for module
    assert "<img" not in html and "data:" not in html and "style=" not in html and "<script>" not in html
    assert "img-src 'self' data:" in response["Content-Security-Policy"]  # unchanged, and not needed
    assert not find_card_numbers(html)


def pdf_text(pdf: bytes, tmp_path, *, mode: str = "") -> str:
    path = tmp_path / "receipt.pdf"
    path.write_bytes(pdf)
    args = ["pdftotext", *([mode] if mode else []), str(path), "-"]
    text = subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout
    # poppler wraps right-to-left runs in bidi controls and sets Arabic vowel marks apart: drop both.
    text = re.sub("[\u200e\u200f\u202a-\u202e\u2066-\u2069]", "", text)
    return " ".join("".join(ch for ch in text if not unicodedata.combining(ch)).split())


def plain(text: str) -> str:
    return "".join(ch for ch in text if not unicodedata.combining(ch))


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_receipt_pdf_in_each_language(lang, tmp_path):
    payment, _ = paid()
    code = verification_code(receipt_number=payment.receipt_number, trans_id=payment.trans_id)
    url = f"{settings.BILLER_URL}/verifier/{payment.receipt_number}/{code}"
    client = Client()
    client.get(receipt_link(payment) + f"?lang={lang}")  # the language chosen on the page goes with the PDF

    response = client.get(receipt_link(payment) + "/pdf")

    assert response.status_code == 200 and response["Content-Language"] == lang
    text = pdf_text(response.content, tmp_path)
    for expected in [TEXT[lang]["title"], payment.receipt_number, MASKED, url, grouped_code(code)]:
        assert plain(expected) in text, expected
    words = plain(TEXT[lang]["words"])
    if lang == "ar":
        # Read in the order of the page (pdftotext -raw): an Arabic line's words from left to right, the last
        # word first; a vowel mark set apart by poppler puts the line's words out of order otherwise.
        assert " ".join(reversed(words.split())) in pdf_text(response.content, tmp_path, mode="-raw")
    else:
        assert words in text
    assert not find_card_numbers(text)


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_verification_link_of_a_genuine_receipt_shows_public_facts_only(lang):
    payment, invoices = paid()
    code = verification_code(receipt_number=payment.receipt_number, trans_id=payment.trans_id)

    response = Client().get(f"/verifier/{payment.receipt_number}/{code}?lang={lang}")

    assert response.status_code == 200
    html = html_of(response)
    text = TEXT[lang]
    assert f'<html lang="{lang}" dir="{"rtl" if lang == "ar" else "ltr"}">' in html
    local = timezone.localtime(payment.paid_at)
    day = l10n.long_date(local, lang)  # the month as the page's language names it (Moroccan in Arabic)
    for expected in [text["genuine"], payment.receipt_number, f"{day} {text['at']} {local:%H:%M}", text["amount"],
                     settings.BILLER_NAME, text["card"]]:
        assert expected in html, expected
    assert text["forged"] not in html
    for personal in personal_fields(payment, invoices):
        assert personal not in html, personal
    assert response["Cache-Control"] == "no-store" and response["Referrer-Policy"] == "no-referrer"
    assert response["X-Robots-Tag"] == "noindex, nofollow"


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_altered_or_junk_verification_links_say_not_genuine_never_fail(lang):
    payment, invoices = paid()
    number = payment.receipt_number
    code = verification_code(receipt_number=number, trans_id=payment.trans_id)
    client = Client()
    links = [
        f"/verifier/{altered(number)}/{code}",  # one digit of the number changed
        f"/verifier/{altered(number, 3)}/{code}",  # a digit of the year
        f"/verifier/{number}/{altered(code)}",  # one character of the code changed
        f"/verifier/{number}/{altered(code, 0)}",
        f"/verifier/{number}/{code[:-1]}",  # truncated
        f"/verifier/{number[:-1]}/{code}",
        f"/verifier/{number}/{code}{code}",
        f"/verifier/R%00%FF/{code}",  # junk
        f"/verifier/{'R' * 5000}/{'x' * 5000}",
        f"/verifier/{number}/%D9%A1%D9%A2%D9%A3",
    ]
    for link in links:
        response = client.get(f"{link}?lang={lang}")
        # 200: the page answered the question (is this receipt genuine? no), as it does for a genuine one; a 404
        # would say the page is missing, and browsers or mail scanners may show their own page instead.
        assert response.status_code == 200, link
        html = html_of(response)
        assert TEXT[lang]["forged"] in html and TEXT[lang]["forged_detail"] in html, link
        assert TEXT[lang]["genuine"] not in html, link
        assert settings.BILLER_NAME + " " not in html.split("<main", 1)[1].split("</main>")[0], link
        for personal in personal_fields(payment, invoices):
            assert personal not in html, (link, personal)
    assert ReceiptCheck.objects.filter(genuine=True).count() == 0
    assert ReceiptCheck.objects.filter(genuine=False).count() == len(links) == settings.RECEIPT_CHECK_IP_LIMIT
    # A path that is no verification link at all (more parts) is not found.
    assert client.get("/verifier/../../etc/passwd/x").status_code == 404
    # The genuine link answers from another address; this one has had its wrong checks.
    assert TEXT[lang]["genuine"] in html_of(Client(REMOTE_ADDR="192.0.2.1").get(f"/verifier/{number}/{code}"
                                                                                 f"?lang={lang}"))
    assert TEXT[lang]["too_many"] in html_of(client.get(f"/verifier/{number}/{code}?lang={lang}"))


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_verification_form_in_each_language(lang):
    payment, invoices = paid()
    number = payment.receipt_number
    code = verification_code(receipt_number=number, trans_id=payment.trans_id)
    client = Client(enforce_csrf_checks=True)
    page = client.get(f"/verifier?lang={lang}")
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)

    def post(receipt_number: str, typed_code: str, **extra):
        return client.post("/verifier", {"receipt_number": receipt_number, "code": typed_code,
                                         "csrfmiddlewaretoken": token, **extra})

    genuine = post(f" {number.lower()} ", grouped_code(code).lower())
    assert genuine.status_code == 200
    html = html_of(genuine)
    assert TEXT[lang]["genuine"] in html and TEXT[lang]["card"] in html
    for personal in personal_fields(payment, invoices):
        assert personal not in html, personal

    forged = html_of(post(number, altered(code)))
    assert TEXT[lang]["forged"] in forged and TEXT[lang]["genuine"] not in forged

    # A number not shaped like one is told at its field; nothing is checked, nothing counted.
    checks_before = ReceiptCheck.objects.count()
    shape = html_of(post("12345", code))
    assert TEXT[lang]["bad_number"] in shape and TEXT[lang]["forged"] not in shape
    assert ReceiptCheck.objects.count() == checks_before
    # Junk in either box: an error at the field, in the page's language, never a failure.
    for junk_number, junk_code in [("R\x00" * 10, code), (number, "\x00" * 10), ("x" * 100_000, "é" * 100_000),
                                   ("", ""), ("<script>", "' OR 1=1 --")]:
        response = post(junk_number, junk_code)
        assert response.status_code == 200, (junk_number[:20], junk_code[:20])
        html = html_of(response)
        assert 'class="errorlist"' in html and TEXT[lang]["forged"] not in html
        assert "<script>" not in response.content.decode()  # what was typed comes back escaped
    assert ReceiptCheck.objects.count() == checks_before
    # Without the CSRF token: refused, nothing checked.
    assert client.post("/verifier", {"receipt_number": number, "code": code}).status_code == 403
    assert ReceiptCheck.objects.count() == checks_before


@pytest.mark.django_db
@pytest.mark.parametrize("lang", LANGS)
def test_verification_form_is_rate_limited_so_codes_cannot_be_guessed(lang):
    payment, _ = paid()
    number = payment.receipt_number
    code = verification_code(receipt_number=number, trans_id=payment.trans_id)
    client = Client(REMOTE_ADDR="192.0.2.7")
    guesses = [f"{n:010d}" for n in range(settings.RECEIPT_CHECK_IP_LIMIT)]
    for guess in guesses:
        assert TEXT[lang]["forged"] in html_of(client.post(f"/verifier?lang={lang}",
                                                           {"receipt_number": number, "code": guess}))

    # The right code now: not answered (nothing looked up), from this address only.
    limited = client.post(f"/verifier?lang={lang}", {"receipt_number": number, "code": code})
    assert limited.status_code == 429 and limited["Retry-After"] == "900"
    html = html_of(limited)
    assert TEXT[lang]["too_many"] in html
    assert TEXT[lang]["genuine"] not in html and TEXT[lang]["forged"] not in html
    assert client.get(f"/verifier/{number}/{code}?lang={lang}").status_code == 429
    other = Client(REMOTE_ADDR="192.0.2.8").post(f"/verifier?lang={lang}", {"receipt_number": number, "code": code})
    assert TEXT[lang]["genuine"] in html_of(other)
    assert list(ReceiptCheck.objects.filter(client_ip="192.0.2.7").values_list("genuine", "limited")) == \
        [(False, False)] * len(guesses) + [(False, True)] * 2


@pytest.mark.django_db
def test_with_arabic_digits_receipt_and_verification_pages_write_eastern_digits_and_moroccan_months(settings):
    """settings.ARABIC_DIGITS = "arabic": the Arabic receipt page and verification page write amounts, dates and
    times in Eastern Arabic digits and the months as Morocco names them (« يوليوز », « دجنبر »…, not Django's
    « يوليو », « ديسمبر »); references, numbers and codes unchanged. The French pages are unchanged."""
    settings.ARABIC_DIGITS = "arabic"
    payment, invoices = paid()  # June and July 2017
    local = timezone.localtime(payment.paid_at)
    eastern = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
    day, clock = f"{local:%d/%m/%Y}".translate(eastern), f"{local:%H:%M}".translate(eastern)

    html = html_of(Client().get(receipt_link(payment) + "?lang=ar"))

    for expected in ["يونيو ٢٠١٧", "يوليوز ٢٠١٧", "١٨٦٫٠٠", "٩٩٫٠٠", "٢٨٥٫٠٠\u00a0درهم", f"{day} على الساعة {clock}",
                     payment.receipt_number, MASKED, *(invoice.reference for invoice in invoices)]:
        assert expected in html, expected
    assert "يوليو " not in html and "285.00" not in html and "186.00" not in html

    code = verification_code(receipt_number=payment.receipt_number, trans_id=payment.trans_id)
    html = html_of(Client().get(f"/verifier/{payment.receipt_number}/{code}?lang=ar"))

    month = ("يناير", "فبراير", "مارس", "أبريل", "ماي", "يونيو", "يوليوز", "غشت", "شتنبر", "أكتوبر", "نونبر",
             "دجنبر")[local.month - 1]
    long_day = f"{local.day} {month} {local.year}".translate(eastern)
    for expected in [f"{long_day} على الساعة {clock}", "٢٨٥٫٠٠\u00a0درهم", "تنتهي بـ 0002"]:
        assert expected in html, expected
    assert "285.00" not in html

    french = html_of(Client().get(receipt_link(payment) + "?lang=fr"))
    assert "Juillet 2017" in french and "285.00\u00a0DH" in french and not re.search("[٠-٩]", french)
