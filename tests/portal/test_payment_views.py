"""The payment pages through Django's test client: start a payment, the callback, the browser's returns."""

import re
from html import unescape

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from tasdid.billing.models import Invoice, Payment, PaymentOrder
from tasdid.core.http import party_cookie_name, party_session
from tasdid.core.signing import ver3_verify
from tasdid.messaging.models import Email
from tasdid.portal.payment_views import FailureNotice, failure_notice
from tests import factories
from tests.billing.payments_fixtures import (
    EMAIL,
    gateway_message,
    line_with_two_invoices,
    new_order,
    receipt_link,
    sign,
)

pytestmark = pytest.mark.django_db


def identified_client(line, *, email: str = EMAIL, enforce_csrf: bool = True) -> tuple[Client, str]:
    """A browser whose session holds an identified line, and the CSRF token its forms carry."""
    client = Client(enforce_csrf_checks=enforce_csrf)
    session = party_session("biller")  # the biller's sessions record their party (tasdid.core.http)
    session.update({"tasdid.line_id": line.pk, "tasdid.email": email,
                    "tasdid.identified_at": timezone.now().isoformat()})
    session["_csrftoken"] = "a" * 32  # CSRF_USE_SESSIONS: the secret lives in the session
    session.save()
    # Each party's session cookie carries the party's name (tasdid.core.http.PartyMiddleware).
    client.cookies[party_cookie_name("biller")] = session.session_key
    return client, "a" * 32


def hidden_fields(html: str) -> dict[str, str]:
    return {unescape(n): unescape(v) for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">',
                                                            html)}


# --- POST /paiement -------------------------------------------------------------------------------------------

def test_pay_creates_the_order_and_autosubmits_the_signed_request_to_the_gateway():
    line, june, july = line_with_two_invoices()
    client, token = identified_client(line)

    response = client.post("/paiement", {"csrfmiddlewaretoken": token})

    assert response.status_code == 200
    order = PaymentOrder.objects.get()
    html = response.content.decode()
    assert f'action="{settings.GATEWAY_URL}/fim/est3Dgate"' in html
    assert "data-autosubmit" in html
    fields = hidden_fields(html)
    assert fields["oid"] == order.oid
    assert fields["amount"] == "285.00"
    assert fields["item1Ref"] == june.reference and fields["item2Ref"] == july.reference
    # The customer's name never goes to the gateway, nor into the page anyone with the line's number reaches.
    assert fields["BillToName"] == ""
    assert "Amina" not in html
    assert ver3_verify(fields, settings.BILLER_STORE_KEY)
    assert f"form-action 'self' {settings.GATEWAY_URL}" in response["Content-Security-Policy"]
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("lang", "label"), [
    ("fr", "Facture Mobile Juin 2017"), ("ar", "فاتورة الهاتف المحمول يونيو 2017"), ("en", "Mobile bill June 2017"),
])
def test_the_gateway_is_asked_for_the_customer_s_language(lang, label):
    """The language chosen on the biller's pages goes to the gateway in the signed request (CMI's lang), with the
    invoices' labels written in it."""
    line, _june, _july = line_with_two_invoices()
    client, token = identified_client(line)
    client.cookies["tasdid_lang"] = lang

    html = client.post("/paiement", {"csrfmiddlewaretoken": token}).content.decode()

    fields = hidden_fields(html)
    assert fields["lang"] == lang
    assert fields["item1Label"] == label
    assert ver3_verify(fields, settings.BILLER_STORE_KEY)
    assert f'<html lang="{lang}"' in html


def test_pay_without_csrf_token_is_refused_and_creates_nothing():
    line, *_ = line_with_two_invoices()
    client, _ = identified_client(line)

    response = client.post("/paiement", {})

    assert response.status_code == 403
    assert "Ce formulaire a expiré" in response.content.decode()
    assert PaymentOrder.objects.count() == 0


def test_pay_without_an_identified_line_goes_home_and_creates_nothing():
    line_with_two_invoices()
    client = Client()

    response = client.post("/paiement")

    assert (response.status_code, response["Location"]) == (302, "/")
    assert [str(m) for m in response.wsgi_request._messages] == [
        "Votre session a expiré. Identifiez de nouveau votre facture pour la payer."]
    assert PaymentOrder.objects.count() == 0


def test_pay_with_nothing_to_pay_goes_back_to_the_consult_page_with_a_message():
    line = factories.mobile_line()
    client, token = identified_client(line, enforce_csrf=False)

    response = client.post("/paiement", {"csrfmiddlewaretoken": token})

    assert (response.status_code, response["Location"]) == (302, "/factures")
    assert [str(m) for m in response.wsgi_request._messages] == ["Vous n'avez aucune facture à payer."]
    assert PaymentOrder.objects.count() == 0


def test_pay_is_post_only():
    line, *_ = line_with_two_invoices()
    client, _ = identified_client(line)
    assert client.get("/paiement").status_code == 405
    assert PaymentOrder.objects.count() == 0


# --- POST /paiement/callback ----------------------------------------------------------------------------------

def test_callback_needs_no_csrf_token_and_answers_in_plain_text():
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    client = Client(enforce_csrf_checks=True)

    response = client.post("/paiement/callback", gateway_message(order))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content == b"ACTION=POSTAUTH"
    assert Payment.objects.count() == 1


def test_callback_with_a_bad_hash_answers_failure_and_changes_nothing():
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    fields = {**gateway_message(order), "amount": "1.00"}
    events = order.events.count()

    response = Client(enforce_csrf_checks=True).post("/paiement/callback", fields)

    assert (response.status_code, response.content) == (200, b"FAILURE")
    assert Payment.objects.count() == 0
    assert Invoice.objects.filter(status="paid").count() == 0
    order.refresh_from_db()
    assert order.state == "created" and order.events.count() == events
    assert Email.objects.count() == 0


@pytest.mark.parametrize("content_type, body", [
    ("application/x-www-form-urlencoded", b""),
    ("application/x-www-form-urlencoded", b"oid=%FF%FE&HASH=%C3%28&amount=\xff\xfe"),
    ("application/x-www-form-urlencoded", b"%%%&&&===;;oid"),
    ("application/x-www-form-urlencoded; charset=no-such-charset", b"oid=abc&HASH=x"),
    ("application/x-www-form-urlencoded", b"oid=abc&HASH=" + b"A" * 100_000),
    ("application/x-www-form-urlencoded", b"oid=a%00b&HASH=x"),
    ("multipart/form-data; boundary=zzz", b"--zzz\r\nnot really multipart"),
    ("text/plain", b"ACTION=POSTAUTH"),
    ("application/json", b'{"oid": "x"}'),
])
def test_callback_and_returns_never_fail_on_junk(content_type, body):
    line, *_ = line_with_two_invoices()
    order = new_order(line)

    response = Client().generic("POST", "/paiement/callback", body, content_type=content_type)
    ok = Client().generic("POST", "/paiement/ok", body, content_type=content_type)
    failed = Client().generic("POST", "/paiement/echec", body, content_type=content_type)

    assert response.status_code in {200, 400}
    if response.status_code == 200:
        assert response.content == b"FAILURE"
    assert (ok.status_code, failed.status_code) == (400, 400)
    assert Payment.objects.count() == 0
    order.refresh_from_db()
    assert order.state == "created"


def test_callback_is_post_only():
    assert Client().get("/paiement/callback").status_code == 405


# --- POST /paiement/ok and /paiement/echec --------------------------------------------------------------------

def test_ok_return_of_a_paid_order_goes_to_its_receipt_without_a_session():
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    Client().post("/paiement/callback", gateway_message(order))
    payment = Payment.objects.get()

    response = Client(enforce_csrf_checks=True).post("/paiement/ok", gateway_message(order, callback=False))

    assert response.status_code == 303
    assert response["Location"] == receipt_link(payment)


def test_ok_return_before_the_callback_says_the_payment_is_not_confirmed_yet():
    line, *_ = line_with_two_invoices()
    order = new_order(line)

    response = Client(enforce_csrf_checks=True).post("/paiement/ok", gateway_message(order, callback=False))

    assert response.status_code == 200
    html = unescape(response.content.decode())
    assert "Votre paiement n'est pas encore confirmé" in html
    assert "sinon, l'autorisation sur votre carte sera annulée et aucun montant ne sera débité" in html
    assert 'href="/factures"' in html
    order.refresh_from_db()
    assert order.state == "created"


@pytest.mark.parametrize("path", ["/paiement/ok", "/paiement/echec"])
def test_a_return_with_a_bad_hash_shows_an_error_and_changes_nothing(path):
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    fields = {**gateway_message(order, code="51", callback=False), "ProcReturnCode": "00"}

    response = Client().post(path, fields)

    assert response.status_code == 400
    assert "Réponse de paiement invalide" in response.content.decode()
    order.refresh_from_db()
    assert (order.state, order.events.count()) == ("created", 1)


@pytest.mark.parametrize("path", ["/paiement/ok", "/paiement/echec"])
def test_a_return_by_get_goes_back_to_the_consult_page(path):
    response = Client().get(path)
    assert (response.status_code, response["Location"]) == (302, "/factures")


BILLER_HEADER = "Paiement en ligne de vos factures"


def alert_text(html: str) -> str:
    """The failure page's reason as a person reads it."""
    return re.sub(r"<[^>]+>", "", re.search(r'<p class="alert error">(.*?)</p>', html, re.S).group(1))
RETRY = "Aucun montant n'a été débité et vos factures restent à payer."


@pytest.mark.parametrize("code, md_status, err_msg, reason", [
    ("51", "1", "Provision insuffisante", "Provision insuffisante (code 51)"),
    ("54", "1", "Carte expirée", "Carte expirée (code 54)"),
    ("41", "1", "Carte perdue", "Carte déclarée perdue ou volée (code 41)"),
    ("43", "2", "Carte volée", "Carte déclarée perdue ou volée (code 43)"),
    ("N7", "1", "", "Code de vérification incorrect (code N7)"),
    ("05", "4", "", "Transaction refusée par votre banque (code 05)"),
    ("99", "0", "Authentification 3-D Secure échouée",
     "Authentification 3-D Secure échouée : le code de vérification n'a pas été validé"),
    ("99", "1", "", "Le paiement n'a pas pu aboutir"),
    ("91", "1", "", "Le paiement n'a pas pu aboutir (code 91)"),
    # The gateway's own words when they say more than a generic reason; code 99 is not shown.
    ("99", "", "Session de paiement expirée", "Session de paiement expirée"),
    ("91", "1", "Votre banque ne répond pas, veuillez réessayer plus tard",
     "Votre banque ne répond pas, veuillez réessayer plus tard (code 91)"),
])
def test_fail_return_says_why_keeps_the_invoices_unpaid_and_offers_to_try_again(code, md_status, err_msg, reason):
    line, *_ = line_with_two_invoices()
    order = new_order(line)

    response = Client(enforce_csrf_checks=True).post(
        "/paiement/echec", gateway_message(order, code=code, md_status=md_status, err_msg=err_msg, callback=False))

    assert response.status_code == 200
    html = unescape(response.content.decode())
    assert alert_text(html) == reason
    assert "code 99" not in html
    assert f"<p>{RETRY} Vous pouvez réessayer, avec la même carte ou une autre.</p>" in html
    assert re.search(r'<a class="button primary" href="/factures">Réessayer</a>', html)
    assert BILLER_HEADER in html and settings.BILLER_NAME in html  # the biller's own header, as on its other pages
    order.refresh_from_db()
    assert (order.state, order.failure_code) == ("failed", code)
    assert Invoice.objects.filter(status="paid").count() == 0
    assert Email.objects.count() == 0


def test_a_payment_cancelled_on_the_payment_page_says_so():
    line, *_ = line_with_two_invoices()
    order = new_order(line)

    response = Client().post("/paiement/echec", gateway_message(
        order, code="99", md_status="", err_msg="Paiement annulé par le client", callback=False))

    html = unescape(response.content.decode())
    assert '<p class="alert error">Vous avez annulé le paiement. Vos factures restent à payer.</p>' in html
    assert "Aucun montant n'a été débité. Vous pouvez payer quand vous le souhaitez." in html
    order.refresh_from_db()
    assert (order.state, order.failure_code, order.failure_message) == ("failed", "99", "Paiement annulé par le client")


def test_the_gateway_message_is_shown_escaped():
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    response = Client().post("/paiement/echec", gateway_message(
        order, code="99", err_msg="<script>alert(1)</script>\x07 Refus", callback=False))
    html = response.content.decode()
    assert "<script>alert" not in html
    shown = re.search(r'<p class="alert error">(.*?)</p>', html).group(1)
    assert shown == "&lt;script&gt;alert(1)&lt;/script&gt; Refus"


def test_fail_return_when_an_invoice_was_paid_meanwhile_by_another_order_says_so():
    """Two tabs: the second paid the June invoice first; the biller refused to settle the first order's
    payment of both (FAILURE), and the gateway brought the customer back to failUrl with code 99."""
    line, june, july = line_with_two_invoices()
    first, second = new_order(line), new_order(line)
    assert Client().post("/paiement/callback", gateway_message(second, paid=[june.reference],
                                                               trans_id="26101SECOND01")).content == b"ACTION=POSTAUTH"
    assert Client().post("/paiement/callback", gateway_message(first, trans_id="26101FIRST001")).content == \
        b"FAILURE"

    response = Client().post("/paiement/echec", gateway_message(
        first, code="99", trans_id="26101FIRST001", callback=False,
        err_msg="Le commerçant n'a pas validé le paiement : il a été annulé et votre carte n'est pas débitée"))

    html = unescape(response.content.decode())
    assert ('<p class="alert error">Une des factures a déjà été réglée entre-temps ; aucun montant n\'a été '
            'débité.</p>') in html
    assert "Consultez de nouveau vos factures : celles qui restent à payer y figurent." in html
    assert "code 99" not in html and "vos factures restent à payer" not in html
    first.refresh_from_db()
    assert first.state == "failed"
    assert [i.reference for i in Invoice.objects.filter(status="unpaid")] == [july.reference]


@pytest.mark.parametrize("path", ["/paiement/ok", "/paiement/echec"])
def test_the_other_payment_pages_have_the_biller_header(path):
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    fields = gateway_message(order, code="00" if path.endswith("ok") else "51", callback=False)
    not_confirmed_or_failed = Client().post(path, fields).content.decode()
    invalid = Client().post(path, {**fields, "amount": "1.00"}).content.decode()
    for html in (not_confirmed_or_failed, invalid):
        assert BILLER_HEADER in html and '<a href="/conditions">' in html


def test_fail_return_after_the_callback_recorded_the_decline_changes_nothing_more():
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    Client().post("/paiement/callback", gateway_message(order, code="51"))
    events = order.events.count()

    response = Client().post("/paiement/echec", gateway_message(order, code="51", callback=False))

    assert "Provision insuffisante" in response.content.decode()
    assert order.events.count() == events


def test_fail_return_of_an_order_settled_after_all_goes_to_the_receipt():
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    Client().post("/paiement/callback", gateway_message(order))

    response = Client().post("/paiement/echec", gateway_message(order, code="05", callback=False))

    assert response.status_code == 303
    assert response["Location"] == receipt_link(Payment.objects.get())
    order.refresh_from_db()
    assert order.state == "paid"


def test_a_return_for_an_unknown_order_is_refused():
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    events = order.events.count()
    response = Client().post("/paiement/echec", sign({**gateway_message(order, code="51"), "oid": "TSDNOPE"}))
    assert response.status_code == 400
    order.refresh_from_db()
    assert order.state == "created" and order.events.count() == events
    assert (Payment.objects.count(), Email.objects.count()) == (0, 0)


def test_failure_notice_puts_what_only_the_biller_knows_first_then_3ds_then_the_bank():
    assert failure_notice(code="05", md_status="0", err_msg="", paid_elsewhere=False).reason.startswith(
        "Authentification 3-D Secure échouée")
    assert failure_notice(code="", md_status="", err_msg="", paid_elsewhere=False) == FailureNotice(
        reason="Le paiement n'a pas pu aboutir",
        detail=f"{RETRY} Vous pouvez réessayer, avec la même carte ou une autre.")
    assert failure_notice(code="51", md_status="0", err_msg="Provision insuffisante", paid_elsewhere=True).reason == \
        "Une des factures a déjà été réglée entre-temps ; aucun montant n'a été débité."
    # Cancelled is the gateway's exact message with code 99 only.
    assert failure_notice(code="05", md_status="", err_msg="Paiement annulé par le client",
                          paid_elsewhere=False).reason == "Transaction refusée par votre banque"
    assert failure_notice(code="99", md_status="", err_msg=" paiement annulé par le client ",
                          paid_elsewhere=False).reason == "Vous avez annulé le paiement. Vos factures restent à payer."
    assert len(failure_notice(code="99", md_status="", err_msg="x" * 500, paid_elsewhere=False).reason) == 200
