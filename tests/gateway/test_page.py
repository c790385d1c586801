"""The hosted payment page: invoices kept and deferred, the card form's errors, the session's binding to
its browser and its expiry. Nothing here reaches the card rails."""

import datetime as dt
import html
import json
import re
from decimal import Decimal

import pytest
from django.contrib.sessions.models import Session
from django.core import serializers
from django.test import Client
from django.utils import timezone

from tasdid.core.cards import find_card_numbers
from tasdid.core.signing import ver3_verify
from tasdid.gateway.models import Attempt, Event, PaymentSession, SessionState
from tasdid.gateway.templatetags.gateway_tags import dh

from .conftest import MASTERCARD, STORE_KEY, VISA, card_post, merchant_fields, open_session, signed

pytestmark = pytest.mark.django_db

FIXE, INTERNET = "0000111995072017", "0000111996072017"


def text(response) -> str:
    return html.unescape(response.content.decode())


def plain(response) -> str:
    """The page's text with tags removed and spaces (also non-breaking ones) collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text(response)))


@pytest.fixture
def token(merchant, client) -> str:
    return open_session(client, signed(merchant_fields()))


def trash_buttons(response) -> list[str]:
    return re.findall(r'name="action" value="defer"><input type="hidden" name="ref" value="([^"]+)"',
                      response.content.decode())


def test_the_page_shows_merchant_order_invoices_and_card_form(client, token):
    response = client.get(f"/paiement/{token}")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    page = plain(response)
    assert "Boutique Test" in page and "ORDER-0001" in page
    assert f"{FIXE} Facture Fixe juin 2017 186.00 DH" in page
    assert f"{INTERNET} Facture Internet juin 2017 99.00 DH" in page
    assert "Total à payer 285.00 DH" in page
    assert "Montant à payer : 285.00 DH" in page
    assert trash_buttons(response) == [FIXE, INTERNET]
    for label in ("Type de carte", "Numéro de carte", "Date d'expiration", "Code de vérification (CVV)",
                  "J'accepte les conditions générales d'utilisation", "Valider pour payer"):
        assert label in page
    assert re.search(r'<option value="CMI">CMI</option>\s*<option value="MASTERCARD">MasterCard</option>\s*'
                     r'<option value="VISA">Visa</option>', response.content.decode())


def test_no_trash_without_allow_defer(merchant, client):
    token = open_session(client, signed(merchant_fields(allow_defer=False)))
    response = client.get(f"/paiement/{token}")
    assert trash_buttons(response) == []
    response = client.post(f"/paiement/{token}", {"action": "defer", "ref": FIXE}, follow=True)
    assert "Ce marchand ne permet pas de reporter une facture." in text(response)
    assert PaymentSession.objects.get().deferred_refs == []


def test_without_the_bill_extension_the_order_is_one_line(merchant, client):
    token = open_session(client, signed(merchant_fields(items=[], amount="42.50")))
    page = plain(client.get(f"/paiement/{token}"))
    assert "Commande ORDER-0001 42.50 DH" in page
    assert "Total à payer 42.50 DH" in page


def test_defer_and_restore_without_javascript(client, token):
    response = client.post(f"/paiement/{token}", {"action": "defer", "ref": INTERNET})
    assert response.status_code == 303 and response["Location"] == f"/paiement/{token}"
    assert PaymentSession.objects.get().deferred_refs == [INTERNET]
    page = client.get(f"/paiement/{token}")
    assert trash_buttons(page) == []  # the last invoice kept has no trash
    assert "Total à payer 186.00 DH" in plain(page)
    assert "Montant à payer : 186.00 DH" in plain(page)
    assert f"Factures reportées {INTERNET} — 99.00 DH Payer aussi la facture {INTERNET}" in plain(page)
    assert f'name="selection" value="{FIXE}"' in page.content.decode()

    response = client.post(f"/paiement/{token}", {"action": "restore", "ref": INTERNET})
    assert response.status_code == 303
    assert PaymentSession.objects.get().deferred_refs == []
    assert "Total à payer 285.00 DH" in plain(client.get(f"/paiement/{token}"))
    causes = list(Event.objects.order_by("pk").values_list("cause", flat=True))
    assert causes[-2:] == [f"facture {INTERNET} reportée", f"facture {INTERNET} rétablie"]


def test_the_last_invoice_cannot_be_deferred(client, token):
    client.post(f"/paiement/{token}", {"action": "defer", "ref": INTERNET})
    response = client.post(f"/paiement/{token}", {"action": "defer", "ref": FIXE}, follow=True)
    assert "Vous devez payer au moins une facture : la dernière ne peut pas être reportée." in text(response)
    assert PaymentSession.objects.get().deferred_refs == [INTERNET]
    assert "Total à payer 186.00 DH" in plain(response)


def test_an_unknown_invoice_cannot_be_deferred(client, token):
    response = client.post(f"/paiement/{token}", {"action": "defer", "ref": "0000000000000000"}, follow=True)
    assert "Cette facture ne fait pas partie de la commande." in text(response)
    assert PaymentSession.objects.get().deferred_refs == []


def test_the_fragment_for_the_page_script(client, token):
    response = client.post(f"/paiement/{token}", {"action": "defer", "ref": FIXE},
                           headers={"X-Tasdid-Fragment": "invoices"})
    assert response.status_code == 200
    body = response.content.decode()
    assert not body.lstrip().startswith("<!doctype")
    assert 'data-total="99.00\u00a0DH"' in body and f'data-selection="{INTERNET}"' in body
    refused = client.post(f"/paiement/{token}", {"action": "defer", "ref": INTERNET},
                          headers={"X-Tasdid-Fragment": "invoices"})
    assert refused.status_code == 400
    assert "la dernière ne peut pas être reportée" in text(refused)
    assert PaymentSession.objects.get().deferred_refs == [FIXE]


def test_invoice_buttons_need_the_csrf_token(merchant):
    browser = Client(enforce_csrf_checks=True, **{"tasdid.party": "gateway"})
    token = open_session(browser, signed(merchant_fields()))  # the merchant endpoint needs none
    response = browser.post(f"/paiement/{token}", {"action": "defer", "ref": FIXE})
    assert response.status_code == 403
    assert "Ce formulaire a expiré" in text(response)
    assert PaymentSession.objects.get().deferred_refs == []
    page = browser.get(f"/paiement/{token}")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    assert browser.post(f"/paiement/{token}", {"action": "defer", "ref": FIXE,
                                               "csrfmiddlewaretoken": csrf}).status_code == 303
    assert PaymentSession.objects.get().deferred_refs == [FIXE]


def test_the_page_belongs_to_the_browser_that_opened_it(client, token):
    stranger = Client(**{"tasdid.party": "gateway"})
    response = stranger.get(f"/paiement/{token}")
    assert response.status_code == 404
    assert "Page de paiement introuvable" in text(response)
    assert "Boutique Test" not in text(response)
    assert stranger.post(f"/paiement/{token}", {"action": "defer", "ref": FIXE}).status_code == 404
    assert PaymentSession.objects.get().deferred_refs == []


def test_card_errors_next_to_their_fields_without_echoing_number_or_cvv(client, token, rails, counterparty):
    client.post(f"/paiement/{token}", {"action": "defer", "ref": INTERNET})
    bad_number = "4111111111111112"
    response = client.post(f"/paiement/{token}", card_post(number=bad_number, card_type="VISA", cvv="98",
                                                           month="1", year=str(timezone.localdate().year - 1),
                                                           terms=False, selection=FIXE))
    assert response.status_code == 200
    body = text(response)
    assert bad_number not in body and "98" not in re.findall(r'value="(\d+)"', body)
    error = r'<li><span class="visually-hidden">Erreur : </span>{}</li>'
    assert re.search(r'id="id_card_number_error"><ul class="errorlist">'
                     + error.format("Ce numéro de carte n'est pas valide : vérifiez-le."), body)
    assert 'Numéro saisi : <bdi class="mono">411111******1112</bdi>' in body
    assert re.search(r'<ul class="errorlist" id="id_cvv_error">'
                     + error.format("Le code de vérification doit comporter 3 chiffres."), body)
    # each field says it is wrong and where its error is; the summary at the top links to the fields
    assert re.search(r'<input type="text" name="cvv"[^>]* aria-invalid="true" '
                     r'aria-describedby="id_cvv_helptext id_cvv_error" id="id_cvv">', body)
    summary = re.search(r'<div class="alert error error-summary" id="error-summary".*?</div>', body, re.S).group(0)
    assert re.findall(r'<a href="#(\w+)">', summary) == ["id_card_number", "id_expiry_month", "id_cvv", "id_terms"]
    assert "Le paiement n'a pas été envoyé : corrigez les 4 champs signalés ci-dessous." in summary
    assert "La date d'expiration est dépassée" in body
    assert "Vous devez accepter les conditions générales d'utilisation." in body
    # what is not secret stays selected; the deferred invoice stays deferred
    assert '<option value="VISA" selected>Visa</option>' in body
    assert '<option value="1" selected>01</option>' in body
    assert "Total à payer 186.00 DH" in plain(response)
    # nothing started, nothing called
    assert Attempt.objects.count() == 0
    assert PaymentSession.objects.get().state == SessionState.OPEN
    assert rails.authorizations == [] and counterparty.state.areqs == []


def test_a_number_of_another_card_type(client, token, rails, counterparty):
    response = client.post(f"/paiement/{token}", card_post(number=MASTERCARD, card_type="VISA"))
    body = text(response)
    assert "Ce numéro ne correspond pas au type de carte choisi (Visa)." in body
    assert MASTERCARD not in body and 'Numéro saisi : <bdi class="mono">555555******4444</bdi>' in body
    assert Attempt.objects.count() == 0


def test_a_changed_selection_is_caught_before_paying(client, token, rails, counterparty):
    client.post(f"/paiement/{token}", {"action": "defer", "ref": INTERNET})  # in another tab
    response = client.post(f"/paiement/{token}", card_post(selection=f"{FIXE},{INTERNET}"))
    assert "La liste des factures a changé entre-temps" in text(response)
    assert Attempt.objects.count() == 0
    assert PaymentSession.objects.get().state == SessionState.OPEN
    assert rails.authorizations == []


def test_the_card_form_stores_no_card_data(client, token):
    client.post(f"/paiement/{token}", card_post(number=VISA, cvv="987", month="13"))
    dump = "".join(serializers.serialize("json", model.objects.all())
                   for model in (PaymentSession, Attempt, Event, Session))
    decoded = [s.get_decoded() for s in Session.objects.all()]
    assert find_card_numbers(dump + json.dumps(decoded)) == []
    # The CVV as a value, not as three digits that a random session token may happen to contain.
    assert "987" not in leaf_strings(decoded)
    assert not any(re.search(r"cv[vc]|card|pan", key, re.IGNORECASE) for key in keys(decoded))


def leaf_strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in leaf_strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in leaf_strings(v)]
    return [str(value)]


def keys(value) -> list[str]:
    if isinstance(value, dict):
        return [*value, *(k for v in value.values() for k in keys(v))]
    if isinstance(value, (list, tuple)):
        return [k for v in value for k in keys(v)]
    return []


def test_an_unknown_action_is_a_bad_request(client, token):
    response = client.post(f"/paiement/{token}", {"action": "refund"})
    assert response.status_code == 400
    assert "Valider pour payer" in text(response)


def test_junk_posts_never_crash_the_page(client, token):
    for junk in ({}, {"action": "pay"}, {"action": "pay", "expiry_month": "x" * 500, "expiry_year": "-1",
                                         "card_number": "٤١١١١١١١١١١١١١١١", "cvv": "١٢٣", "card_type": "\x00"},
                 {"action": "defer"}, {"action": "restore", "ref": "x" * 10000}):
        assert client.post(f"/paiement/{token}", junk).status_code in (200, 303, 400)
    assert PaymentSession.objects.get().state == SessionState.OPEN
    assert Attempt.objects.count() == 0


def test_an_expired_session_offers_the_way_back_to_the_merchant(client, token):
    PaymentSession.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = client.get(f"/paiement/{token}")
    assert response.status_code == 200
    assert "Session de paiement expirée" in text(response)
    assert PaymentSession.objects.get().state == SessionState.EXPIRED
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', text(response)))
    assert re.search(r'<form method="post" action="https://shop.example.ma/shop/fail"', text(response))
    assert form["ProcReturnCode"] == "99" and form["ErrMsg"] == "Session de paiement expirée"
    assert form["oid"] == "ORDER-0001" and "callbackCall" not in form
    assert ver3_verify(form, STORE_KEY, hash_field="HASH")
    assert "form-action 'self' https://shop.example.ma" in response["Content-Security-Policy"]
    # and nothing can be done on it any more
    assert client.post(f"/paiement/{token}", {"action": "defer", "ref": FIXE}).status_code == 409
    assert PaymentSession.objects.get().deferred_refs == []


@pytest.mark.parametrize(("lang", "opens_from"), [
    ("fr", "La page de paiement s'ouvre depuis le site de votre facturier"),
    ("ar", "تُفتح صفحة الدفع من موقع الجهة المُصدِرة لفواتيرك"),
    ("en", "The payment page opens from your biller's site"),
])
def test_the_gateway_s_address_says_where_the_payment_page_opens_from(client, lang, opens_from):
    response = client.get(f"/?lang={lang}")
    assert response.status_code == 200
    assert opens_from in html.unescape(text(response))
    assert 'href="/conditions' in response.content.decode()


def test_the_terms_page(client):
    response = client.get("/conditions")
    assert response.status_code == 200
    assert "Conditions générales d'utilisation" in text(response)


@pytest.mark.parametrize(("amount", "text"), [
    ("186", "186.00\u00a0DH"), (Decimal("99.5"), "99.50\u00a0DH"), ("1234567.89", "1234567.89\u00a0DH"),
])
def test_amounts_are_written_as_the_guide_and_the_biller_write_them(amount, text):
    assert dh(amount) == text
