"""The portal's pages through Django's test client: the three ways in, refusals next to their field, the
consult page of the identified line only, the session that holds it."""

import datetime as dt
import re
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import capfirst

from tasdid.billing.documents import bill_html
from tasdid.billing.models import IdentificationAttempt, Invoice, Payment, PaymentOrder
from tasdid.billing.selectors.bills import BillDocument, BillService
from tasdid.billing.services.fidelio import fidelio_code_request
from tasdid.portal.session import EMAIL_KEY, LINE_KEY
from tests import factories
from tests.support.sms import code_in, last_sms_text

COOKIE = "tasdid_biller_session"
MOBILE = "+212661000001"
FIXED = "+212522000001"


def session_of(client):
    """The biller's session as the server holds it (its cookie is ``tasdid_biller_session``, see PartyMiddleware)."""
    from django.contrib.sessions.backends.db import SessionStore

    cookie = client.cookies.get(COOKIE)
    return SessionStore(session_key=cookie.value if cookie else None)


def field_errors(html: str, field: str) -> list[str]:
    """The errors Django ties to a field (``aria-describedby`` -> ``id_<field>_error``)."""
    match = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    return re.findall(r"<li>(.*?)</li>", match.group(1)) if match else []


def fixed_post(**overrides):
    return {"number": "05 22 00 00 01", "payment_code": "4821", "email": "client@example.ma", "terms": "on",
            **overrides}


def unescape(html: str) -> str:
    return html.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")


@pytest.fixture
def fixed_customer():
    owner = factories.customer(name="Mme Khadija Bennani")
    line = factories.fixed_line(number=FIXED, payment_code="4821", owner=owner)
    return owner, line


def test_home_offers_the_three_categories(client):
    html = client.get("/").content.decode()
    assert re.search(r'<a class="card category" href="/mobile">Mobile<small>', html)
    assert re.search(r'<a class="card category" href="/fixe">Fixe<small>', html)
    assert re.search(r'<a class="card category" href="/internet">Internet<small>', html)


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "labels"), [
    ("/mobile", {"number": "Numéro de téléphone mobile", "fidelio_code": "Code fidelio",
                 "email": "Adresse email de notification", "email_confirmation": "Confirmation de l'adresse email"}),
    ("/fixe", {"number": "Numéro de téléphone fixe", "payment_code": "Code de paiement fixe",
               "email": "Adresse email de notification"}),
    ("/internet", {"payment_identifier": "Identifiant de paiement", "email": "Adresse email de notification"}),
])
def test_forms_have_the_guide_s_labels_bound_to_their_inputs(client, path, labels):
    response = client.get(path)
    html = unescape(response.content.decode())
    assert response["Cache-Control"] == "no-store"
    for name, label in labels.items():
        assert f'<label for="id_{name}">{label}</label>' in html
        assert re.search(rf'<input [^>]*name="{name}"[^>]*id="id_{name}"', html)
    assert ('<label for="id_terms">J\'accepte les <a href="/conditions" target="_blank" rel="noopener">'
            "conditions générales d'utilisation</a></label>") in html
    assert '<button type="submit" class="button primary">Consultez et payer en ligne</button>' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_mobile_form_says_how_to_get_a_code(client, db):
    html = client.get("/mobile").content.decode()
    assert ('<span class="help" id="id_fidelio_code_helptext">Pour obtenir votre code fidelio, envoyez « code » par '
            "SMS au 1111.</span>") in html
    assert 'aria-describedby="id_fidelio_code_helptext"' in html


def test_terms_page(client):
    response = client.get("/conditions")
    assert response.status_code == 200
    assert "<h1>Conditions générales d'utilisation</h1>" in response.content.decode()


@pytest.mark.django_db
def test_fixed_identification_rotates_the_session_and_shows_the_invoices(client, fixed_customer):
    _, line = fixed_customer
    client.get("/fixe")
    before = client.cookies[COOKIE].value
    response = client.post("/fixe", fixed_post(), REMOTE_ADDR="10.0.0.5")
    assert response.status_code == 302
    assert response["Location"] == "/factures"
    assert client.cookies[COOKIE].value != before
    assert session_of(client)[LINE_KEY] == line.pk
    assert session_of(client)[EMAIL_KEY] == "client@example.ma"
    assert list(IdentificationAttempt.objects.values_list("client_ip", "succeeded")) == [("10.0.0.5", True)]


@pytest.mark.django_db
def test_wrong_payment_code_is_shown_next_to_its_field_and_the_code_is_not_kept(client, fixed_customer):
    response = client.post("/fixe", fixed_post(payment_code="9999"))
    html = response.content.decode()
    assert response.status_code == 200
    assert field_errors(html, "payment_code") == [
        "Code de paiement incorrect. Vérifiez le code imprimé sur votre facture."]
    assert field_errors(html, "number") == []
    assert 'aria-invalid="true" aria-describedby="id_payment_code_helptext id_payment_code_error"' in html
    assert "9999" not in html
    assert 'value="05 22 00 00 01"' in html and 'value="client@example.ma"' in html
    assert 'name="terms" required id="id_terms" checked' in html
    assert LINE_KEY not in session_of(client)


@pytest.mark.django_db
def test_unknown_number_is_shown_next_to_the_number(client, fixed_customer):
    html = client.post("/fixe", fixed_post(number="0522000099")).content.decode()
    assert field_errors(html, "number") == ["Aucune ligne fixe ne correspond à ce numéro."]


@pytest.mark.django_db
def test_unknown_internet_identifier(client):
    html = client.post("/internet", {"payment_identifier": "11 111 111", "email": "a@example.ma",
                                     "terms": "on"}).content.decode()
    assert field_errors(html, "payment_identifier") == [
        "Aucune ligne internet ne correspond à cet identifiant de paiement."]
    assert 'value="11 111 111"' in html


@pytest.mark.django_db
def test_locked_line_says_until_when_in_french(client, fixed_customer):
    at = dt.datetime(2025, 6, 12, 10, 0, tzinfo=dt.UTC)  # 11:00 in Casablanca
    with time_machine.travel(at, tick=False):
        for _ in range(4):
            client.post("/fixe", fixed_post(payment_code="0000"))
        html = client.post("/fixe", fixed_post(payment_code="0000")).content.decode()
        assert field_errors(html, "number") == [
            "Trop de codes erronés : cette ligne est bloquée jusqu&#x27;à 11:30. Réessayez ensuite."]
        html = client.post("/fixe", fixed_post()).content.decode()
        assert field_errors(html, "number") == [
            "Trop de codes erronés : cette ligne est bloquée jusqu&#x27;à 11:30. Réessayez ensuite."]
        assert LINE_KEY not in session_of(client)
    with time_machine.travel(at + dt.timedelta(minutes=30), tick=False):
        assert client.post("/fixe", fixed_post())["Location"] == "/factures"


@pytest.mark.django_db
def test_too_many_failures_from_one_address(client, fixed_customer):
    for i in range(20):
        client.post("/internet", {"payment_identifier": f"9{i:07d}", "email": "a@example.ma", "terms": "on"},
                    REMOTE_ADDR="10.9.9.9")
    response = client.post("/fixe", fixed_post(), REMOTE_ADDR="10.9.9.9")
    html = response.content.decode()
    assert response.status_code == 200
    # At the top of the form, in the list of its errors (no field to link to).
    summary = re.search(r'<div class="error-summary" id="error-summary" role="alert".*?</div>', html, re.S).group(0)
    assert ("<li>Trop de tentatives depuis votre connexion. Réessayez dans quelques minutes.</li>") in summary
    assert LINE_KEY not in session_of(client)
    assert client.post("/fixe", fixed_post(), REMOTE_ADDR="10.9.9.10")["Location"] == "/factures"


@pytest.mark.django_db
def test_mobile_identification_with_a_code_received_by_sms(client, run_tasks):
    line = factories.mobile_line(number=MOBILE)
    factories.invoice(line=line, amount_ht="100.00", reference="0000000000000001")
    fidelio_code_request(number=MOBILE)
    run_tasks()
    code = code_in(last_sms_text(MOBILE))
    data = {"number": "0661000001", "fidelio_code": code, "email": "a@example.ma",
            "email_confirmation": "a@example.ma", "terms": "on"}
    assert client.post("/mobile", data)["Location"] == "/factures"
    assert "0000000000000001" in client.get("/factures").content.decode()
    # Used once: the same code does not open another session.
    other = client.__class__()
    html = other.post("/mobile", data).content.decode()
    assert field_errors(html, "fidelio_code") == [
        "Code fidelio incorrect ou expiré. Envoyez « code » au 1111 pour en recevoir un nouveau."]


@pytest.mark.django_db
def test_consult_page_shows_only_the_identified_line_s_unpaid_invoices(client, fixed_customer):
    owner, line = fixed_customer
    today = timezone.localdate()
    june = factories.bill(owner=owner, month=dt.date(2017, 6, 1), due_date=dt.date(2017, 7, 19))
    factories.invoice(line=line, amount_ht="155.00", reference="0000111995072017", on_bill=june)
    current = factories.bill(owner=owner, month=today.replace(day=1), due_date=today)
    factories.invoice(line=line, amount_ht="82.50", reference="0000222995072099", on_bill=current)
    # The same customer's internet line, another customer's fixed line, and a paid invoice: none of them shows.
    own_internet = factories.internet_line(identifier="12345678", owner=owner)
    factories.invoice(line=own_internet, amount_ht="82.50", reference="0000111996072017", on_bill=june)
    stranger = factories.fixed_line(number="+212522000002", payment_code="1111")
    factories.invoice(line=stranger, amount_ht="10.00", reference="0000333333333333")
    paid = factories.invoice(line=line, amount_ht="10.00", reference="0000444444444444",
                             month=dt.date(2017, 5, 1))
    _mark_paid(paid)

    client.post("/fixe", fixed_post())
    response = client.get("/factures")
    html = response.content.decode()
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    rows = re.findall(r"<tr>\s*<td class=\"mono\">(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*"
                      r"<td class=\"amount\">(.*?)</td>", html, re.S)
    this_month = capfirst(date_format(today, "F Y"))  # e.g. "Juin 2025": due today is not late yet
    assert rows == [
        ("0000111995072017", '<a href="/factures/0000111995072017/pdf?lang=fr" download>Facture du mois de '
                             'Juin 2017 (PDF)</a>', '19/07/2017 <span class="badge">En retard</span>', "186.00"),
        ("0000222995072099", f'<a href="/factures/0000222995072099/pdf?lang=fr" download>Facture du mois de '
                             f'{this_month} (PDF)</a>', f"{today:%d/%m/%Y}", "99.00"),
    ]
    assert '<td class="amount total">285.00\u00a0DH</td>' in html
    assert 'Ligne fixe : <strong dir="ltr">05 22 00 00 01</strong>' in html
    for absent in ("0000111996072017", "0000333333333333", "0000444444444444", "Khadija", "Bennani",
                   owner.client_number, "12 345 678"):
        assert absent not in html
    assert re.search(r'<form method="post" action="/paiement" data-submit-once>\s*<input type="hidden" '
                     r'name="csrfmiddlewaretoken" value="[^"]+">\s*<button type="submit" class="button primary">'
                     r"Payer en ligne</button>", html)


def _mark_paid(invoice: Invoice) -> None:
    now = timezone.now()
    order = PaymentOrder.objects.create(oid=f"T-{invoice.pk}", line=invoice.line, email="a@example.ma",
                                        amount=invoice.amount_ttc, state=PaymentOrder.State.PAID, created_at=now,
                                        updated_at=now)
    payment = Payment.objects.create(order=order, receipt_number=f"R-{invoice.pk}", amount=invoice.amount_ttc,
                                     email="a@example.ma", paid_at=now, trans_id=f"TX-{invoice.pk}", auth_code="A1",
                                     masked_pan="400000******0002", card_brand="VISA", merchant_name="Tasdid")
    invoice.status, invoice.paid_at, invoice.payment = Invoice.Status.PAID, now, payment
    invoice.save(update_fields=["status", "paid_at", "payment"])


@pytest.mark.django_db
def test_a_line_with_nothing_to_pay_says_so(client, fixed_customer):
    client.post("/fixe", fixed_post())
    html = client.get("/factures").content.decode()
    assert '<p class="alert info">Aucune facture à payer pour cette ligne.</p>' in html
    assert "Payer en ligne" not in html


@pytest.mark.django_db
def test_consult_page_queries_do_not_grow_with_the_invoices(client, fixed_customer, django_assert_num_queries):
    _, line = fixed_customer
    client.post("/fixe", fixed_post())
    factories.invoice(line=line, reference="0000000000000101", month=dt.date(2017, 1, 1))
    client.get("/factures")  # the first visit stores the pay form's CSRF token in the session
    # The session, the line, the invoices with their bills.
    with django_assert_num_queries(3):
        assert client.get("/factures").content.decode().count('<td class="mono">') == 1
    for month in range(2, 7):
        factories.invoice(line=line, reference=f"00000000000001{month:02d}", month=dt.date(2017, month, 1))
    with django_assert_num_queries(3):
        assert client.get("/factures").content.decode().count('<td class="mono">') == 6


@pytest.mark.django_db
def test_consult_page_needs_an_identification_in_this_session(client, fixed_customer):
    assert client.get("/factures")["Location"] == "/"
    client.post("/fixe", fixed_post())
    assert client.get("/factures").status_code == 200
    stranger = client.__class__()
    stranger.get("/")
    assert stranger.get("/factures")["Location"] == "/"


@pytest.mark.django_db
def test_identification_expires_with_the_session(client, fixed_customer, settings):
    start = dt.datetime(2025, 6, 12, 10, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        client.post("/fixe", fixed_post())
    with time_machine.travel(start + dt.timedelta(seconds=settings.SESSION_COOKIE_AGE - 1), tick=False):
        assert client.get("/factures").status_code == 200
    with time_machine.travel(start + dt.timedelta(seconds=settings.SESSION_COOKIE_AGE + 1), tick=False):
        assert client.get("/factures")["Location"] == "/"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/mobile", "/fixe", "/internet"])
@pytest.mark.parametrize("data", [
    {},
    {"number": "x" * 100_000, "fidelio_code": "\x00", "email": "é@é", "terms": "yes"},
    {"number": ["0661000001", "0522000001"], "payment_identifier": "٠٠٠", "email": "a@example.ma" * 50},
    {"number": "<script>alert(1)</script>", "payment_code": "' OR 1=1 --", "payment_identifier": "-1"},
])
def test_junk_input_gets_errors_not_a_crash(client, path, data):
    response = client.post(path, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "Ce champ est obligatoire." in html or "valide" in html
    assert LINE_KEY not in session_of(client)


@pytest.mark.django_db
def test_forms_need_their_csrf_token(fixed_customer):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    response = csrf_client.post("/fixe", fixed_post())
    assert response.status_code == 403
    assert LINE_KEY not in session_of(csrf_client)
    assert IdentificationAttempt.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("lang", "digits", "month", "due", "total"), [
    ("fr", "arabic", "Juillet 2017", "19/08/2017", "186.00\u00a0DH"),
    ("en", "arabic", "July 2017", "19/08/2017", "186.00\u00a0DH"),
    ("ar", "western", "يوليوز 2017", "19/08/2017", "186.00\u00a0درهم"),
    ("ar", "arabic", "يوليوز ٢٠١٧", "١٩/٠٨/٢٠١٧", "١٨٦٫٠٠\u00a0درهم"),
])
def test_consult_page_writes_months_dates_and_amounts_in_the_page_s_language(client, settings, fixed_customer,
                                                                            lang, digits, month, due, total):
    """TASDID_ARABIC_DIGITS changes Arabic pages only; month names are Moroccan Arabic; identifiers keep 0-9."""
    settings.ARABIC_DIGITS = digits
    _owner, line = fixed_customer
    july = factories.bill(owner=line.customer, month=dt.date(2017, 7, 1), due_date=dt.date(2017, 8, 19))
    factories.invoice(line=line, amount_ht="155.00", reference="0000111995072017", on_bill=july)
    client.post(f"/fixe?lang={lang}", fixed_post())
    html = client.get("/factures", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    rows = re.findall(r"<tr>\s*<td class=\"mono\">(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", html, re.S)
    assert rows[0][0] == "0000111995072017"
    # the month names the bill's PDF, in the page's language (the link keeps the language)
    bill = {"fr": "Facture du mois de {}", "en": "Bill for the month of {}", "ar": "فاتورة شهر {}"}[lang]
    assert rows[0][1] == (f'<a href="/factures/0000111995072017/pdf?lang={lang}" download>'
                          f'{bill.format(month)} (PDF)</a>')
    assert rows[0][2].startswith(due)
    assert f'<td class="amount total">{total}</td>' in html
    assert '<strong dir="ltr">05 22 00 00 01</strong>' in html


@pytest.mark.django_db
@pytest.mark.parametrize(("lang", "fixed", "internet"), [
    ("fr", "« Code de paiement Fixe »", "« Identifiant de paiement Internet »"),
    ("ar", "« رمز أداء الهاتف الثابت »", "« معرف أداء الإنترنت »"),
    ("en", "“Fixed-line payment code”", "“Internet payment identifier”"),
])
def test_the_hints_quote_the_label_as_the_bill_in_that_language_prints_it(client, lang, fixed, internet):
    """The bill downloaded in Arabic or English prints its labels translated: the hints quote those, not French."""
    assert fixed in client.get(f"/fixe?lang={lang}").content.decode()
    assert internet in client.get(f"/internet?lang={lang}").content.decode()
    printed = bill_html(_bill_with_both_labels(), language=lang)
    assert fixed.strip("«»“” ") in printed and internet.strip("«»“” ") in printed


def _bill_with_both_labels() -> BillDocument:
    return BillDocument(
        number="100000001-201706", month=dt.date(2017, 6, 1), due_date=dt.date(2017, 7, 19),
        biller_name="Tasdid Télécom", client_number="100000001", customer_name="Mme Test", customer_address=[],
        services=[BillService("fixed", "05 22 00 00 01"), BillService("internet", "12 345 678")],
        has_fixed_line=True, invoices=[], total_ht=Decimal("0.00"), total_vat=Decimal("0.00"),
        total_ttc=Decimal("0.00"), vat_percent=20, loyalty_points=0, loyalty_balance=0,
    )
