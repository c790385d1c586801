"""POST /fim/est3Dgate: a merchant's request opens a payment session, or is refused with a French page and
starts nothing."""

import datetime as dt
import html

import pytest
from django.contrib.sessions.models import Session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasdid.core.signing import ver3_hash
from tasdid.gateway.models import Event, PaymentSession, SessionState

from .conftest import STORE_KEY, make_merchant, merchant_fields, open_session, signed

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return html.unescape(response.content.decode())


def refused(response, message: str) -> None:
    assert response.status_code == 400, response.status_code
    page = text(response)
    assert "Demande de paiement refusée" in page
    assert message in page, page[page.find("refusal"):][:400]
    assert PaymentSession.objects.count() == 0
    assert Event.objects.count() == 0
    assert Session.objects.count() == 0  # not even a browser session was started


def test_a_valid_request_opens_a_session_bound_to_this_browser(merchant, client):
    fields = signed(merchant_fields(**{"X-Shop-Ref": "panier 17"}))
    response = client.post("/fim/est3Dgate", fields)
    assert response.status_code == 303
    session = PaymentSession.objects.get()
    assert response["Location"] == f"/paiement/{session.token}"
    assert len(session.token) >= 40
    assert session.state == SessionState.OPEN
    assert session.merchant == merchant
    assert session.oid == "ORDER-0001"
    assert str(session.amount) == "285.00"
    assert session.items == [
        {"ref": "0000111995072017", "label": "Facture Fixe juin 2017", "amount": "186.00"},
        {"ref": "0000111996072017", "label": "Facture Internet juin 2017", "amount": "99.00"},
    ]
    assert session.allow_defer is True and session.deferred_refs == []
    assert session.request_fields == {k: v for k, v in fields.items() if k != "hash"}
    assert session.request_fields["X-Shop-Ref"] == "panier 17"  # unknown fields kept, to be echoed back
    assert session.expires_at - session.created_at == dt.timedelta(seconds=900)
    assert [(e.from_state, e.to_state) for e in session.events.all()] == [("", "open")]
    assert client.get(response["Location"]).status_code == 200
    assert client.get(f"/paiement/{session.token}x").status_code == 404


def test_default_session_time_is_fifteen_minutes(merchant, client):
    open_session(client, signed(merchant_fields(sessionTimeout=None)))
    session = PaymentSession.objects.get()
    assert session.expires_at - session.created_at == dt.timedelta(minutes=15)


def test_field_names_are_matched_case_insensitively(merchant, client):
    fields = {k.upper(): v for k, v in merchant_fields().items()}
    fields["HASH"] = ver3_hash(fields, STORE_KEY)
    open_session(client, fields)
    assert PaymentSession.objects.get().oid == "ORDER-0001"


def test_bad_hash(merchant, client):
    fields = signed(merchant_fields())
    fields["amount"] = "1.00"
    fields["itemCount"] = "1"
    refused(client.post("/fim/est3Dgate", fields), "La signature « hash » de la demande de paiement est invalide.")


def test_an_extra_field_added_after_signing_breaks_the_hash(merchant, client):
    fields = {**signed(merchant_fields()), "extra": "added"}
    refused(client.post("/fim/est3Dgate", fields), "La signature « hash » de la demande de paiement est invalide.")


def test_hash_signed_with_another_key(merchant, client):
    refused(client.post("/fim/est3Dgate", signed(merchant_fields(), store_key="ANOTHER-KEY-0000")),
            "La signature « hash » de la demande de paiement est invalide.")


def test_unknown_client_id(merchant, client):
    refused(client.post("/fim/est3Dgate", signed(merchant_fields(clientid="999"))),
            "Marchand inconnu ou inactif : l'identifiant « clientid » n'est pas reconnu")


def test_inactive_merchant(db, client):
    make_merchant(active=False)
    refused(client.post("/fim/est3Dgate", signed(merchant_fields())), "Marchand inconnu ou inactif")


@pytest.mark.parametrize("name", ["clientid", "amount", "currency", "oid", "okUrl", "failUrl", "callbackUrl", "rnd",
                                  "storetype", "TranType", "hashAlgorithm"])
def test_missing_required_field_is_named(merchant, client, name):
    fields = merchant_fields()
    fields.pop(name)
    refused(client.post("/fim/est3Dgate", signed(fields)),
            f"Le champ obligatoire « {name} » est absent de la demande de paiement.")


def test_missing_hash(merchant, client):
    refused(client.post("/fim/est3Dgate", merchant_fields()),
            "Le champ obligatoire « hash » est absent de la demande de paiement.")


@pytest.mark.parametrize(("override", "message"), [
    ({"okUrl": "https://evil.example.com/ok"},
     "L'adresse « okUrl » n'est pas une adresse enregistrée pour ce marchand."),
    ({"failUrl": "http://shop.example.ma:8080/fail"}, "L'adresse « failUrl » n'est pas une adresse enregistrée"),
    ({"callbackUrl": "http://127.0.0.1:9/cb"}, "L'adresse « callbackUrl » n'est pas une adresse enregistrée"),
    ({"shopurl": "https://evil.example.com/"}, "L'adresse « shopurl » n'est pas une adresse enregistrée"),
    ({"currency": "840"}, "La devise « currency » doit être 504 (dirham marocain)."),
    ({"amount": "abc", "itemCount": None, "allowDefer": None}, "Le montant « amount » doit être un nombre positif"),
    ({"amount": "0", "itemCount": None, "allowDefer": None}, "Le montant « amount » doit être un nombre positif"),
    ({"amount": "-1.00", "itemCount": None, "allowDefer": None}, "Le montant « amount » doit être un nombre positif"),
    ({"storetype": "3D_PAY"}, "Le type de magasin « storetype » doit être « 3D_PAY_HOSTING »."),
    ({"TranType": "Refund"}, "Le type de transaction « TranType » doit être « PreAuth » ou « Auth »."),
    ({"hashAlgorithm": "ver2"}, "L'algorithme de signature « hashAlgorithm » doit être « ver3 »."),
    ({"itemCount": "3"}, "Extension facture incohérente : « item3Ref » est absent."),
    ({"itemCount": "1"}, "Extension facture incohérente : il y a plus de factures que « itemCount »."),
    ({"item1Amount": "186.5O"}, "Extension facture incohérente : le montant « item1Amount » est invalide."),
    ({"item2Amount": "100.00"}, "Extension facture incohérente : la somme des factures n'est pas égale au montant."),
    # digits other than ASCII in protocol fields: refused, never read by int() ("²" made a 500)
    ({"itemCount": "²"}, "Extension facture incohérente : « itemCount » doit être un nombre de 1 à 99."),
    ({"itemCount": "٢"}, "Extension facture incohérente : « itemCount » doit être un nombre de 1 à 99."),
    ({"sessionTimeout": "²"}, "La durée « sessionTimeout » doit être un nombre de secondes."),
    ({"sessionTimeout": "٩٠٠"}, "La durée « sessionTimeout » doit être un nombre de secondes."),
    ({"amount": "٢٨٥.00"}, "Le montant « amount » doit être un nombre positif"),
    ({"item1Amount": "١٨٦.00"}, "Extension facture incohérente : le montant « item1Amount » est invalide."),
    ({"item2Ref": "0000111995072017"},
     "Extension facture incohérente : la référence 0000111995072017 figure deux fois."),
])
def test_refusals(merchant, client, override, message):
    refused(client.post("/fim/est3Dgate", signed(merchant_fields(**override))), message)


def test_a_field_posted_twice_is_refused(merchant, client):
    fields = signed(merchant_fields())
    body = "&".join(f"{k}={v}" for k, v in [*fields.items(), ("oid", "OTHER")])
    response = client.post("/fim/est3Dgate", body, content_type="application/x-www-form-urlencoded")
    refused(response, "Le champ « oid » est envoyé plusieurs fois.")


def test_get_is_not_a_request(merchant, client):
    response = client.get("/fim/est3Dgate")
    assert response.status_code == 405
    assert "Cette adresse reçoit les demandes de paiement" in text(response)


def test_the_same_order_posted_again_continues_its_open_session(merchant, client):
    token = open_session(client, signed(merchant_fields()))
    again = open_session(client, signed(merchant_fields(rnd="1700000999")))  # a new random, same order
    assert again == token
    assert PaymentSession.objects.count() == 1
    assert client.get(f"/paiement/{token}").status_code == 200


@pytest.mark.parametrize(("lang", "refusal"), [
    ("fr", "Cette commande est déjà en cours de paiement dans un autre navigateur."),
    ("ar", "هذا الطلب قيد الدفع بالفعل في متصفح آخر."),
    ("en", "This order is already being paid in another browser."),
])
def test_a_request_replayed_from_another_browser_leaves_the_session_to_the_first(merchant, client, lang, refusal):
    # docs/gateway.md: only the browser that posted the request sees the session; a signed request copied into
    # another browser (replayed, or a link passed on) gets a refusal in the request's language, nothing moves
    token = open_session(client, signed(merchant_fields(lang=lang)))
    session = PaymentSession.objects.get()
    other = type(client)(**{"tasdid.party": "gateway"})
    for fields in (signed(merchant_fields(lang=lang)), signed(merchant_fields(lang=lang, rnd="1700000999"))):
        response = other.post("/fim/est3Dgate", fields)
        assert response.status_code == 409
        assert refusal in text(response)
        assert f'<html lang="{lang}"' in response.content.decode()
    assert other.get(f"/paiement/{token}").status_code == 404
    assert client.get(f"/paiement/{token}").status_code == 200
    again = PaymentSession.objects.get()
    assert (again.browser_digest, again.state, again.lang) == (session.browser_digest, SessionState.OPEN, lang)
    assert list(Event.objects.filter(session=again).values_list("from_state", "to_state", "cause")) == [
        ("", "open", "demande du marchand 600000099"),
        ("open", "open", "demande du marchand rejouée depuis un autre navigateur : refusée"),
        ("open", "open", "demande du marchand rejouée depuis un autre navigateur : refusée"),
    ]
    # the customer's browser carries on
    assert open_session(client, signed(merchant_fields(lang=lang))) == token


def test_the_same_order_with_other_fields_is_refused_while_open(merchant, client):
    token = open_session(client, signed(merchant_fields()))
    events = Event.objects.count()
    other = type(client)(**{"tasdid.party": "gateway"})
    response = other.post("/fim/est3Dgate", signed(merchant_fields(items=[("0000111995072017", "x", "186.00")])))
    assert response.status_code == 400
    assert "Cette commande est déjà en cours de paiement avec d'autres données." in text(response)
    assert PaymentSession.objects.count() == 1
    assert str(PaymentSession.objects.get().amount) == "285.00"
    assert Event.objects.count() == events
    # the session still belongs to the browser that opened it, not to the one refused
    assert client.get(f"/paiement/{token}").status_code == 200
    assert other.get(f"/paiement/{token}").status_code == 404


@pytest.mark.parametrize(("state", "title"), [
    (SessionState.SUCCEEDED, "Cette commande a déjà été traitée"),
    (SessionState.FAILED, "Cette commande a déjà été traitée"),
    (SessionState.PROCESSING, "Paiement en cours"),
    (SessionState.CANCELLED, "Vous avez annulé le paiement de cette commande"),
])
def test_an_order_already_processed_gets_no_second_session(merchant, client, state, title):
    token = open_session(client, signed(merchant_fields()))
    PaymentSession.objects.update(state=state)
    events = Event.objects.count()
    other = type(client)(**{"tasdid.party": "gateway"})
    for browser in (client, other):
        response = browser.post("/fim/est3Dgate", signed(merchant_fields()))
        assert response.status_code == 409
        assert title in text(response)
    assert PaymentSession.objects.count() == 1
    assert PaymentSession.objects.get().state == state
    assert Event.objects.count() == events
    # the session still opens for the browser that started it (its status page), not for the other one
    page = client.get(f"/paiement/{token}")
    assert page.status_code == 200 and title in text(page)
    assert other.get(f"/paiement/{token}").status_code == 404


def test_an_expired_order_gets_no_second_session(merchant, client):
    open_session(client, signed(merchant_fields()))
    PaymentSession.objects.update(expires_at=PaymentSession.objects.get().created_at)
    response = client.post("/fim/est3Dgate", signed(merchant_fields()))
    assert response.status_code == 409
    assert "Session de paiement expirée" in text(response)
    session = PaymentSession.objects.get()
    assert session.state == SessionState.EXPIRED
    assert [e.to_state for e in session.events.order_by("pk")] == ["open", "expired"]


def test_two_merchants_may_use_the_same_order_id(merchant, client):
    make_merchant(client_id="600000100", store_key="OTHER-STORE-KEY", name="Autre boutique")
    open_session(client, signed(merchant_fields()))
    open_session(client, signed(merchant_fields(clientid="600000100"), store_key="OTHER-STORE-KEY"))
    assert PaymentSession.objects.count() == 2


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["clientid", "amount", "oid", "okUrl", "hash", "itemCount", "item1Ref",
                                        "item1Amount", "currency", "TranType", "x"]),
                       st.text(max_size=40), max_size=8),
       st.booleans())
def test_junk_never_crashes_the_endpoint(merchant, client, junk, with_valid_base):
    fields = {**merchant_fields(), **junk} if with_valid_base else junk
    response = client.post("/fim/est3Dgate", fields)
    assert response.status_code == 400
    assert "Demande de paiement refusée" in text(response)
    assert PaymentSession.objects.count() == 0


def test_a_refused_request_leaves_an_audit_line(merchant, client, caplog):
    caplog.set_level("INFO", logger="tasdid.gateway.views")
    response = client.post("/fim/est3Dgate", signed(merchant_fields(sessionTimeout="30")))
    assert response.status_code == 400
    assert PaymentSession.objects.count() == 0
    (line,) = [r.getMessage() for r in caplog.records if "payment request refused" in r.getMessage()]
    assert line == ("gateway: payment request refused (clientid '600000099', oid 'ORDER-0001'): La durée "
                    "« sessionTimeout » doit être comprise entre 60 et 3600 secondes.")
