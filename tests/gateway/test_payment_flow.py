"""A card submit through 3-D Secure, the authorization, the callback and the capture or void, with a local
fake acquirer and a local fake directory/merchant server on 127.0.0.1 (the real ones are other parties)."""

import base64
import copy
import datetime as dt
import html
import re
import threading
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tasdid.core import threeds
from tasdid.core.acquiring import AuthorizationResult, SettlementResult
from tasdid.core.signing import ver3_verify
from tasdid.gateway import flow, services
from tasdid.gateway.models import Attempt, AttemptState, Event, Merchant, PaymentSession, SessionState
from tests.support.pci import card_data_findings

from . import fakes
from .conftest import (
    MASTERCARD,
    STORE_KEY,
    VISA,
    card_post,
    form_of,
    gateway_client,
    later,
    make_merchant,
    merchant_fields,
    open_session,
    signed,
)

pytestmark = pytest.mark.django_db(transaction=True)

FIXE, INTERNET = "0000111995072017", "0000111996072017"

LINK = threeds.LINK_SERVER_DIRECTORY  # these tests stand in for the directory


@pytest.fixture
def shop(counterparty, rails):
    """The merchant registered with the fake server's host; a browser with an open payment session."""
    make_merchant(hosts=["shop.example.ma", counterparty.host])
    browser = gateway_client()
    token = open_session(browser, signed(merchant_fields(base=counterparty.url)))
    return browser, token


def pay(browser, token, **card):
    return browser.post(f"/paiement/{token}", card_post(selection=card.pop("selection", f"{FIXE},{INTERNET}"),
                                                        **card))


def states() -> list[str]:
    """The attempt's moves, in order (messages recorded without a move left out)."""
    return [e.to_state for e in Event.objects.filter(subject="attempt").order_by("pk") if e.from_state != e.to_state]


def counterparty_ds_trans_id(counterparty) -> str:
    return counterparty.state.ares[-1]["dsTransID"]


def attempt() -> Attempt:
    return Attempt.objects.get()


def assert_no_card_data_at_rest():
    assert card_data_findings(extra_secrets=(VISA,)) == []


# --- without a challenge -------------------------------------------------------------------------------


def test_a_card_not_enrolled_is_authorized_captured_and_the_customer_returns_to_ok_url(shop, counterparty, rails):
    browser, token = shop
    response = pay(browser, token)
    action, fields = form_of(response)
    assert action == counterparty.url + "/shop/ok"
    # one AReq, signed, for the amount and card
    (areq,) = counterparty.state.areqs
    assert areq["acctNumber"] == VISA and areq["purchaseAmount"] == "28500" and areq["purchaseCurrency"] == "504"
    assert areq["threeDSServerURL"].endswith("/3ds/rreq") and areq["notificationURL"].endswith("/3ds/notification")
    # one authorization without authentication, outside any transaction
    (auth,) = rails.authorizations
    assert auth.card.pan == VISA and auth.amount_minor == 28500 and auth.authentication is None
    assert auth.merchant_id == "600000099" and auth.order_id == "ORDER-0001" and auth.stan == "000001"
    # the callback: every field echoed but hash, the results, signed
    (callback,) = counterparty.state.callbacks
    assert "hash" not in callback
    assert callback["BillToName"] == "Mme Test Client" and callback["encoding"] == "UTF-8"
    assert {k: callback[k] for k in ("ProcReturnCode", "Response", "ErrMsg", "AuthCode", "HostRefNum", "MaskedPan",
                                     "EXTRA.CARDBRAND", "mdStatus", "eci", "callbackCall", "paidAmount",
                                     "paidItems", "deferredItems", "amount")} == {
        "ProcReturnCode": "00", "Response": "Approved", "ErrMsg": "", "AuthCode": "A1B2C3",
        "HostRefNum": "123456789012", "MaskedPan": "411111******1111", "EXTRA.CARDBRAND": "VISA", "mdStatus": "2",
        "eci": "07", "callbackCall": "true", "paidAmount": "285.00", "paidItems": f"{FIXE},{INTERNET}",
        "deferredItems": "", "amount": "285.00"}
    assert re.fullmatch(r"\d{8} \d\d:\d\d:\d\d", callback["EXTRA.TRXDATE"])
    assert callback["TransId"] == attempt().trans_id
    assert ver3_verify(callback, STORE_KEY, hash_field="HASH")
    # captured, with the authorization's references
    (capture,) = rails.captures
    assert (capture.original_stan, capture.rrn, capture.auth_code, capture.amount_minor) == (
        "000001", "123456789012", "A1B2C3", 28500)
    assert rails.voids == []
    assert rails.in_transaction == [False, False]
    # the browser's return: the same fields, no callbackCall, its own HASH
    assert fields["ProcReturnCode"] == "00" and "callbackCall" not in fields
    assert {k: v for k, v in fields.items() if k != "HASH"} == {
        k: v for k, v in callback.items() if k not in ("HASH", "callbackCall")}
    assert ver3_verify(fields, STORE_KEY, hash_field="HASH")
    # the records
    a = attempt()
    assert a.state == AttemptState.CAPTURED and a.callback_answer == "POSTAUTH"
    assert a.masked_pan == "411111******1111" and a.amount == Decimal("285.00")
    assert PaymentSession.objects.get().state == SessionState.SUCCEEDED
    assert states() == ["authenticating", "authorizing", "authorized", "capturing", "captured"]
    assert list(Event.objects.filter(subject="session").order_by("pk").values_list("to_state", flat=True)) == [
        "open", "processing", "succeeded"]
    assert_no_card_data_at_rest()


def test_deferred_invoices_are_not_paid(shop, counterparty, rails):
    browser, token = shop
    browser.post(f"/paiement/{token}", {"action": "defer", "ref": FIXE})
    _action, fields = form_of(pay(browser, token, selection=INTERNET))
    assert rails.authorizations[0].amount_minor == 9900
    assert rails.captures[0].amount_minor == 9900
    callback = counterparty.state.callbacks[0]
    assert (callback["amount"], callback["paidAmount"], callback["paidItems"], callback["deferredItems"]) == (
        "285.00", "99.00", INTERNET, FIXE)
    assert (fields["paidAmount"], fields["paidItems"], fields["deferredItems"]) == ("99.00", INTERNET, FIXE)


def test_mastercard_not_enrolled_has_eci_00(shop, counterparty, rails):
    browser, token = shop
    pay(browser, token, number=MASTERCARD, card_type="MASTERCARD")
    assert counterparty.state.callbacks[0]["eci"] == "00"
    assert counterparty.state.callbacks[0]["EXTRA.CARDBRAND"] == "MASTERCARD"


@pytest.mark.parametrize(("status", "eci", "md_status"), [("Y", "05", "1"), ("A", "06", "4")])
def test_frictionless_authentication_travels_into_the_authorization(shop, counterparty, rails, status, eci,
                                                                     md_status):
    counterparty.state.ares_by_pan[VISA] = status
    browser, token = shop
    action, fields = form_of(pay(browser, token))
    assert action.endswith("/shop/ok")
    auth = rails.authorizations[0].authentication
    assert (auth.eci, auth.authentication_value, auth.trans_status) == (eci, "AAABBEg0VhI0VniQEjRWAAAAAAA=", status)
    assert auth.ds_trans_id == attempt().ds_trans_id == counterparty_ds_trans_id(counterparty)
    assert (fields["mdStatus"], fields["eci"]) == (md_status, eci)


def test_a_refused_authentication_authorizes_nothing(shop, counterparty, rails):
    counterparty.state.ares_by_pan[VISA] = "N"
    browser, token = shop
    action, fields = form_of(pay(browser, token))
    assert action.endswith("/shop/fail")
    assert rails.authorizations == []
    assert (fields["ProcReturnCode"], fields["Response"], fields["mdStatus"], fields["ErrMsg"]) == (
        "99", "Error", "0", "Authentification 3-D Secure échouée")
    assert counterparty.state.callbacks[0]["ProcReturnCode"] == "99"
    assert attempt().state == AttemptState.FAILED
    assert PaymentSession.objects.get().state == SessionState.FAILED


def test_a_card_refused_for_too_many_failed_challenges_is_told_so(shop, counterparty, rails):
    counterparty.state.ares_by_pan[VISA] = "R"  # with transStatusReason 04: exceeds the frequency limit
    browser, token = shop
    action, fields = form_of(pay(browser, token))
    assert action.endswith("/shop/fail")
    assert rails.authorizations == []
    assert (fields["ProcReturnCode"], fields["mdStatus"], fields["ErrMsg"]) == (
        "99", "0", "Authentification 3-D Secure refusée par votre banque : trop de tentatives ont échoué pour cette "
        "carte. Réessayez plus tard.")
    assert attempt().state == AttemptState.FAILED and attempt().trans_status == "R"


@pytest.mark.parametrize("fault", ["500", "badsig", "closed"])
def test_an_unusable_directory_fails_the_attempt_cleanly(shop, counterparty, rails, settings, fault):
    if fault == "closed":
        settings.GATEWAY_3DS_DIRECTORY_URL = "http://127.0.0.1:9/3ds/areq"
    else:
        counterparty.state.ares_by_pan[VISA] = fault
    browser, token = shop
    action, fields = form_of(pay(browser, token))
    assert action.endswith("/shop/fail")
    assert fields["ErrMsg"] == "Le service d'authentification 3-D Secure est indisponible, veuillez réessayer plus tard"
    assert (fields["ProcReturnCode"], fields["mdStatus"]) == ("99", "7")
    assert rails.authorizations == []
    assert attempt().state == AttemptState.FAILED


# --- with a challenge ----------------------------------------------------------------------------------


def challenge(shop, counterparty):
    counterparty.state.ares_by_pan[VISA] = "C"
    counterparty.state.acs_url = "https://acs.bank.example.ma/acs/challenge"
    browser, token = shop
    response = pay(browser, token)
    action, fields = form_of(response)
    assert action == "https://acs.bank.example.ma/acs/challenge"
    assert "form-action 'self' https://acs.bank.example.ma" in response["Content-Security-Policy"]
    assert set(fields) == {"creq", "threeDSSessionData"}
    return browser, fields


def rreq_for(a: Attempt, status: str, **extra) -> dict:
    message = {"messageType": "RReq", "messageVersion": "2.2.0", "threeDSServerTransID": a.threeds_server_trans_id,
               "acsTransID": a.acs_trans_id, "dsTransID": a.ds_trans_id, "transStatus": status,
               "transStatusReason": "" if status == "Y" else "01", "interactionCounter": "01"}
    if status == "Y":
        message.update(eci="05", authenticationValue="kBMI2z0gAAAAAAAAAAAAAAAAAAAA")
    message.update(extra)
    return message


def post_rreq(client, message, *, signature: str | None = None):
    body, sig = threeds.sign_body(message, link=LINK)
    return client.post("/3ds/rreq", body, content_type="application/json",
                       headers={threeds.SIGNATURE_HEADER: signature if signature is not None else sig})


def cres_for(a: Attempt, status: str = "Y") -> str:
    return threeds.encode_browser_message({
        "messageType": "CRes", "messageVersion": "2.2.0", "threeDSServerTransID": a.threeds_server_trans_id,
        "acsTransID": a.acs_trans_id, "transStatus": status, "challengeCompletionInd": "Y"})


def test_a_challenge_authorizes_on_the_rreq_result(shop, counterparty, rails):
    _browser, fields = challenge(shop, counterparty)
    a = attempt()
    assert a.state == AttemptState.CHALLENGE
    creq = threeds.decode_browser_message(fields["creq"], message_type="CReq")
    assert creq == {"messageType": "CReq", "messageVersion": "2.2.0", "threeDSServerTransID": a.threeds_server_trans_id,
                    "acsTransID": a.acs_trans_id, "challengeWindowSize": "05"}
    assert VISA not in fields["threeDSSessionData"] and len(fields["threeDSSessionData"]) <= 1024
    assert rails.authorizations == []
    assert_no_card_data_at_rest()  # the card survives only sealed, in the browser

    bank = gateway_client()  # the ACS, server to server
    response = post_rreq(bank, rreq_for(a, "Y"))
    assert response.status_code == 200
    rres = threeds.verify_body(response.content, response[threeds.SIGNATURE_HEADER], message_type="RRes", link=LINK)
    assert rres["resultsStatus"] == "01" and rres["threeDSServerTransID"] == a.threeds_server_trans_id
    # a re-sent RReq, even saying otherwise, changes nothing
    again = post_rreq(bank, rreq_for(a, "N"))
    assert again.status_code == 200
    assert threeds.verify_body(again.content, again[threeds.SIGNATURE_HEADER], message_type="RRes",
                               link=LINK)["resultsStatus"] == "01"
    a.refresh_from_db()
    assert (a.rreq_trans_status, a.rreq_eci, a.rreq_authentication_value) == ("Y", "05", "kBMI2z0gAAAAAAAAAAAAAAAAAAAA")
    assert Event.objects.filter(cause__startswith="RReq reçu").count() == 1

    # the browser comes back; its cres says N but the RReq is what counts
    acs = gateway_client()  # posted from the bank's page: no gateway cookie needed
    response = acs.post("/3ds/notification", {"cres": cres_for(a, "N"),
                                              "threeDSSessionData": fields["threeDSSessionData"]})
    action, result = form_of(response)
    assert action.endswith("/shop/ok")
    (auth,) = rails.authorizations
    assert auth.card.pan == VISA and auth.card.cvv == "123"
    assert (auth.authentication.eci, auth.authentication.authentication_value, auth.authentication.trans_status,
            auth.authentication.ds_trans_id) == ("05", "kBMI2z0gAAAAAAAAAAAAAAAAAAAA", "Y", a.ds_trans_id)
    assert (result["mdStatus"], result["eci"], result["ProcReturnCode"]) == ("1", "05", "00")
    assert attempt().state == AttemptState.CAPTURED
    assert states() == ["authenticating", "challenge", "authorizing", "authorized", "capturing", "captured"]

    # the back button / a replayed cres: nothing happens twice
    replay = acs.post("/3ds/notification", {"cres": cres_for(a), "threeDSSessionData": fields["threeDSSessionData"]})
    assert replay.status_code == 409
    assert "Cette commande a déjà été traitée" in html.unescape(replay.content.decode())
    assert len(rails.authorizations) == 1 and len(rails.captures) == 1 and len(counterparty.state.callbacks) == 1
    assert_no_card_data_at_rest()


def test_a_forged_cres_changes_nothing_the_rreq_decides(shop, counterparty, rails):
    """The CRes comes under no key (EMV 3DS's browser flow): one posted before the RReq, whatever it says, moves
    nothing; one naming another ACS transaction is refused; once the RReq (N) came, a CRes saying Y fails."""
    _browser, fields = challenge(shop, counterparty)
    a = attempt()
    early = gateway_client().post("/3ds/notification", {"cres": cres_for(a, "Y"),
                                                         "threeDSSessionData": fields["threeDSSessionData"]})
    assert early.status_code == 409 and "/shop/" not in early.content.decode()  # "being paid", no way out
    a.refresh_from_db()
    assert a.state == AttemptState.CHALLENGE and a.rreq_received_at is None
    assert rails.authorizations == [] and counterparty.state.callbacks == []

    other = threeds.encode_browser_message({
        "messageType": "CRes", "messageVersion": "2.2.0", "threeDSServerTransID": a.threeds_server_trans_id,
        "acsTransID": "00000000-0000-4000-8000-000000000000", "transStatus": "Y", "challengeCompletionInd": "Y"})
    refused = gateway_client().post("/3ds/notification", {"cres": other,
                                                           "threeDSSessionData": fields["threeDSSessionData"]})
    assert refused.status_code == 400 and attempt().state == AttemptState.CHALLENGE

    assert post_rreq(gateway_client(), rreq_for(a, "N")).status_code == 200
    action, result = form_of(gateway_client().post("/3ds/notification", {
        "cres": cres_for(a, "Y"), "threeDSSessionData": fields["threeDSSessionData"]}))
    assert action.endswith("/shop/fail")
    assert (result["mdStatus"], result["ErrMsg"], result["ProcReturnCode"]) == (
        "0", "Authentification 3-D Secure échouée", "99")
    assert rails.authorizations == []
    assert Event.objects.filter(cause="3-D Secure : RReq N").count() == 1


def test_a_failed_challenge_fails(shop, counterparty, rails):
    _browser, fields = challenge(shop, counterparty)
    a = attempt()
    assert post_rreq(gateway_client(), rreq_for(a, "N")).status_code == 200
    action, result = form_of(gateway_client().post("/3ds/notification", {
        "cres": cres_for(a, "Y"), "threeDSSessionData": fields["threeDSSessionData"]}))
    assert action.endswith("/shop/fail") and result["mdStatus"] == "0"
    assert rails.authorizations == []


def test_rreq_refusals_record_nothing(shop, counterparty, rails):
    _browser, _fields = challenge(shop, counterparty)
    a = attempt()
    bank = gateway_client()
    forged = post_rreq(bank, rreq_for(a, "Y"), signature="forged")
    assert forged.status_code == 400
    assert threeds.verify_body(forged.content, forged[threeds.SIGNATURE_HEADER], message_type="Erro",
                               link=LINK)["errorCode"] == "203"
    assert post_rreq(bank, rreq_for(a, "Y", threeDSServerTransID="00000000-0000-4000-8000-000000000000")
                     ).status_code == 404
    assert post_rreq(bank, rreq_for(a, "Y", acsTransID="00000000-0000-4000-8000-000000000000")).status_code == 404
    assert post_rreq(bank, rreq_for(a, "Z")).status_code == 400
    assert bank.post("/3ds/rreq", b"not json", content_type="application/json").status_code == 400
    assert bank.get("/3ds/rreq").status_code == 405
    a.refresh_from_db()
    assert a.rreq_received_at is None and a.state == AttemptState.CHALLENGE


DEEP = "[" * 10_000  # JSON nested deeper than the parser's recursion allows, under the 16 KB cap
HUGE = "[" * 200_000


@pytest.mark.parametrize("body", [DEEP, HUGE, '{"messageType": "RReq", "a": ' + DEEP + "}"])
def test_an_rreq_nested_too_deep_or_too_large_gets_a_signed_400_not_a_500(db, body):
    response = gateway_client().post("/3ds/rreq", body.encode(), content_type="application/json",
                                     headers={threeds.SIGNATURE_HEADER: "x"})
    assert response.status_code == 400
    erro = threeds.verify_body(response.content, response[threeds.SIGNATURE_HEADER], message_type="Erro", link=LINK)
    assert erro["errorCode"] == "203"


@pytest.mark.parametrize("raw", [DEEP, HUGE, '{"messageType": "CRes", "sig": ' + DEEP + "}"])
def test_a_cres_nested_too_deep_or_too_large_gets_a_french_400_not_a_500(shop, counterparty, rails, raw):
    _browser, fields = challenge(shop, counterparty)
    cres = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    response = gateway_client().post("/3ds/notification", {"cres": cres,
                                                           "threeDSSessionData": fields["threeDSSessionData"]})
    assert response.status_code == 400
    assert "Le retour de l'authentification 3-D Secure est invalide" in html.unescape(response.content.decode())
    assert attempt().state == AttemptState.CHALLENGE and rails.authorizations == []


def test_notification_refuses_what_is_not_ours(shop, counterparty, rails):
    _browser, fields = challenge(shop, counterparty)
    a = attempt()
    other = gateway_client()
    for data in ({"cres": "junk", "threeDSSessionData": fields["threeDSSessionData"]},
                 {"cres": cres_for(a)[:-3] + "abc", "threeDSSessionData": fields["threeDSSessionData"]},
                 {}):
        response = other.post("/3ds/notification", data)
        assert response.status_code == 400
        assert "Le retour de l'authentification 3-D Secure est invalide" in html.unescape(response.content.decode())
    assert other.get("/3ds/notification").status_code == 405
    assert attempt().state == AttemptState.CHALLENGE


def test_damaged_session_data_fails_the_attempt(shop, counterparty, rails):
    _browser, fields = challenge(shop, counterparty)
    a = attempt()
    post_rreq(gateway_client(), rreq_for(a, "Y"))
    action, result = form_of(gateway_client().post("/3ds/notification", {
        "cres": cres_for(a), "threeDSSessionData": fields["threeDSSessionData"][:-8] + "AAAAAAAA"}))
    assert action.endswith("/shop/fail")
    assert result["ErrMsg"] == "Authentification 3-D Secure non aboutie dans le délai"
    assert rails.authorizations == []


# --- the merchant's answer -----------------------------------------------------------------------------


def assert_voided_at_the_merchants_word(counterparty, rails, action, fields, *, answer: str, tries: int,
                                        received: int | None = None):
    assert action.endswith("/shop/fail")
    assert len(counterparty.state.callbacks) == (tries if received is None else received)
    (void,) = rails.voids
    assert (void.original_stan, void.rrn, void.auth_code, void.amount_minor) == ("000001", "123456789012", "A1B2C3",
                                                                                28500)
    assert rails.captures == []
    assert (fields["ProcReturnCode"], fields["Response"]) == ("99", "Error")
    assert fields["ErrMsg"].startswith("Le commerçant n'a pas validé le paiement")
    a = attempt()
    assert (a.state, a.callback_answer, a.callback_tries) == (AttemptState.VOIDED, answer, tries)
    assert PaymentSession.objects.get().state == SessionState.FAILED


def test_a_merchant_answering_failure_gets_the_authorization_voided(shop, counterparty, rails):
    counterparty.state.callback_answer = "FAILURE"
    browser, token = shop
    action, fields = form_of(pay(browser, token))
    assert_voided_at_the_merchants_word(counterparty, rails, action, fields, answer="FAILURE", tries=1)


@pytest.mark.parametrize("fault", ["connection refused", "HTTP 404"])
def test_a_callback_that_reaches_no_merchant_voids_the_authorization_at_once(counterparty, rails, closed_port, fault):
    """Nothing reached the merchant's application (refused, or turned away before any processing): it cannot
    have recorded the payment, so the authorization is voided without waiting."""
    make_merchant(hosts=[counterparty.host, f"127.0.0.1:{closed_port}"])
    if fault == "connection refused":
        overrides = {"callbackUrl": f"http://127.0.0.1:{closed_port}/shop/callback"}
    else:
        counterparty.state.callback_answer = "404"
        overrides = {}
    browser = gateway_client()
    token = open_session(browser, signed(merchant_fields(base=counterparty.url, **overrides)))
    action, fields = form_of(pay(browser, token))
    assert_voided_at_the_merchants_word(counterparty, rails, action, fields, answer="UNREACHABLE", tries=1,
                                        received=0 if fault == "connection refused" else 1)


AMBIGUOUS = ["timeout", "500", "nonsense", "drop"]


@pytest.fixture
def slow_merchant(settings, counterparty):
    settings.PARTY_HTTP_TIMEOUT = 0.5
    counterparty.slow_seconds = 1.5


@pytest.mark.parametrize("fault", AMBIGUOUS)
def test_a_callback_without_a_usable_answer_keeps_the_authorization_and_is_sent_again(
        shop, counterparty, rails, slow_merchant, run_tasks, fault):
    """The request went out, no usable answer came back: the merchant may have recorded the payment. The
    authorization stands, the browser goes to okUrl (the merchant's page says if it recorded the payment), and
    the same callback is sent again until the merchant answers."""
    counterparty.state.callback_answer = fault
    browser, token = shop
    action, fields = form_of(pay(browser, token))

    # Three tries while the customer waits, the same fields and HASH each time; nothing settled.
    assert len(counterparty.state.callbacks) == 3
    assert counterparty.state.callbacks[0] == counterparty.state.callbacks[1] == counterparty.state.callbacks[2]
    assert ver3_verify(counterparty.state.callbacks[0], STORE_KEY, hash_field="HASH")
    assert rails.captures == [] and rails.voids == []
    a = attempt()
    assert (a.state, a.callback_answer, a.callback_tries) == (AttemptState.AUTHORIZED, "", 3)
    assert PaymentSession.objects.get().state == SessionState.PROCESSING
    assert action.endswith("/shop/ok")
    assert (fields["ProcReturnCode"], fields["Response"], fields["AuthCode"]) == ("00", "Approved", "A1B2C3")
    # The payment page, opened again, says the merchant has not confirmed yet and leads back to okUrl.
    page = browser.get(f"/paiement/{token}")
    assert "le site marchand ne l'a pas encore confirmé" in html.unescape(page.content.decode())
    assert f'action="{counterparty.url}/shop/ok"' in page.content.decode()
    # The task worker tries again at the deadline; the merchant answers at last: captured.
    watches = pending_watches(a)  # at or before the deadline: it watches again at the deadline if need be
    assert watches and watches[0].run_after <= a.deadline
    counterparty.state.callback_answer = "ACTION=POSTAUTH"
    make_due(a)
    run_tasks()
    a.refresh_from_db()
    assert (a.state, a.callback_answer, a.callback_tries) == (AttemptState.CAPTURED, "POSTAUTH", 4)
    assert len(counterparty.state.callbacks) == 4 and counterparty.state.callbacks[3] == counterparty.state.callbacks[0]
    assert len(rails.captures) == 1 and rails.voids == []
    assert PaymentSession.objects.get().state == SessionState.SUCCEEDED
    assert states() == ["authenticating", "authorizing", "authorized", "capturing", "captured"]
    assert Event.objects.filter(cause__startswith="rappel n° ").count() == 3


@pytest.mark.parametrize("answer", ["ACTION=POSTAUTH", "FAILURE", "APPROVED"])
def test_the_first_usable_answer_to_a_callback_sent_again_decides(shop, counterparty, rails, slow_merchant, answer):
    counterparty.state.callback_script = ["drop", "500"]
    counterparty.state.callback_answer = answer
    browser, token = shop
    action, fields = form_of(pay(browser, token))
    assert len(counterparty.state.callbacks) == 3
    a = attempt()
    assert a.callback_tries == 3
    if answer == "FAILURE":
        assert_voided_at_the_merchants_word(counterparty, rails, action, fields, answer="FAILURE", tries=3)
    else:
        assert action.endswith("/shop/ok")
        assert a.state == (AttemptState.CAPTURED if answer == "ACTION=POSTAUTH" else AttemptState.AUTHORIZED)
        assert PaymentSession.objects.get().state == SessionState.SUCCEEDED


def test_a_refused_connection_after_an_ambiguous_try_is_still_ambiguous(shop, counterparty, rails, slow_merchant):
    """The first try may have reached the merchant: a later try that cannot connect proves nothing."""
    counterparty.state.callback_script = ["drop", "404", "404"]
    browser, token = shop
    action, _fields = form_of(pay(browser, token))
    assert action.endswith("/shop/ok")
    a = attempt()
    assert (a.state, a.callback_answer, a.callback_tries) == (AttemptState.AUTHORIZED, "", 3)
    assert rails.voids == []


def spend_every_callback_try(browser, token, caplog) -> Attempt:
    """Pay; the merchant never gives a usable answer: 3 tries inline, 7 by the sweeper. The last one keeps the
    attempt apart for reconciliation (not voided), with one ERROR."""
    form_of(pay(browser, token))
    done = [flow.sweep(now=later(hours=1)) for _ in range(6)]
    assert done == [{"callback retry later": 1}] * 6
    a = attempt()
    assert (a.state, a.callback_tries, a.callback_tries_begun, a.unresolved_at) == (AttemptState.AUTHORIZED, 9, 9,
                                                                                      None)
    with caplog.at_level("ERROR", logger="tasdid.gateway.services"):
        assert flow.sweep(now=later(hours=1)) == {"unresolved": 1}
    a.refresh_from_db()
    assert (a.state, a.callback_answer, a.callback_tries, a.callback_tries_begun) == (AttemptState.AUTHORIZED, "",
                                                                                      10, 10)
    assert services.callback_unresolved(a) and services.callback_pending(a)
    assert a.deadline == a.authorized_at + services.AUTHORIZATION_HOLD
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage() == (
        f"gateway: callback of {a.trans_id} unanswered after 10 tries: kept for reconciliation with merchant "
        f"600000099, which may have recorded order ORDER-0001 as paid; the authorization is held until "
        f"{a.deadline.isoformat()}")
    return a


def test_a_callback_never_answered_is_kept_for_reconciliation_after_its_last_try_not_voided(
        shop, counterparty, rails, slow_merchant, caplog):
    """Issue 6: once the tries are spent, the merchant may still have recorded the payment: nothing is voided
    while the hold lasts; the sweeper leaves it alone, and the ERROR is logged once."""
    counterparty.state.callback_answer = "500"
    browser, token = shop
    a = spend_every_callback_try(browser, token, caplog)
    assert len(counterparty.state.callbacks) == 10 and rails.voids == [] and rails.captures == []
    assert PaymentSession.objects.get().state == SessionState.PROCESSING
    caplog.clear()
    with caplog.at_level("ERROR", logger="tasdid.gateway.services"):
        assert flow.sweep(now=later(hours=12)) == {}
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []
    assert len(counterparty.state.callbacks) == 10 and rails.voids == []
    assert Event.objects.filter(attempt=a, cause__contains="essais épuisés, à rapprocher").count() == 1
    assert states() == ["authenticating", "authorizing", "authorized"]


def test_at_the_end_of_its_hold_an_unresolved_authorization_gets_a_last_try_then_is_voided_and_logged(
        shop, counterparty, rails, slow_merchant, caplog):
    counterparty.state.callback_answer = "500"
    browser, token = shop
    a = spend_every_callback_try(browser, token, caplog)
    caplog.clear()
    with caplog.at_level("ERROR", logger="tasdid.gateway.services"):
        assert flow.sweep(now=later(days=1, minutes=1)) == {"unresolved hold voided": 1}
    a.refresh_from_db()
    assert (a.state, a.callback_answer, a.callback_tries) == (AttemptState.VOIDED, "UNREACHABLE", 11)
    assert len(counterparty.state.callbacks) == 11 and len(rails.voids) == 1 and rails.captures == []
    assert PaymentSession.objects.get().state == SessionState.FAILED
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage() == (
        f"gateway: {a.trans_id} still unanswered at the end of its hold: the authorization is voided; merchant "
        "600000099 must reopen order ORDER-0001 if it recorded it as paid")
    assert Event.objects.filter(attempt=a, to_state="voiding").get().cause == (
        "fin de la réservation sans réponse du marchand : annulation, à rapprocher")
    assert flow.sweep(now=later(days=2)) == {}


def test_at_the_end_of_its_hold_an_unresolved_authorization_answered_at_last_is_captured(
        shop, counterparty, rails, slow_merchant, caplog):
    counterparty.state.callback_answer = "500"
    browser, token = shop
    a = spend_every_callback_try(browser, token, caplog)
    counterparty.state.callback_answer = "ACTION=POSTAUTH"
    assert flow.sweep(now=later(days=1, minutes=1)) == {"concluded": 1}
    a.refresh_from_db()
    assert (a.state, a.callback_answer) == (AttemptState.CAPTURED, "POSTAUTH")
    assert len(rails.captures) == 1 and rails.voids == []
    assert PaymentSession.objects.get().state == SessionState.SUCCEEDED
    assert Event.objects.filter(attempt=a, to_state="capturing").get().cause == (
        "réponse du marchand : POSTAUTH (rapprochée)")


def test_the_callback_is_tried_again_on_a_growing_schedule_of_about_half_an_hour(shop, counterparty, rails,
                                                                                slow_merchant):
    from tasdid.gateway import services
    assert services.CALLBACK_MAX_TRIES == 10
    delays = [services.callback_retry_delay(n).total_seconds() for n in range(3, 10)]
    assert delays == [15, 30, 60, 120, 240, 480, 900] and sum(delays) == 1845
    counterparty.state.callback_answer = "500"
    browser, token = shop
    form_of(pay(browser, token))
    a = attempt()
    noted = Event.objects.filter(attempt=a, cause__startswith="rappel n° 3").get()
    assert a.deadline == noted.at + dt.timedelta(seconds=15)
    assert noted.cause == "rappel n° 3 sans réponse claire du marchand (AMBIGUOUS) : nouvel essai dans 15 s"


def test_approved_keeps_the_authorization_without_capture_until_its_hold_ends(shop, counterparty, rails):
    counterparty.state.callback_answer = "APPROVED"
    browser, token = shop
    action, fields = form_of(pay(browser, token))
    assert action.endswith("/shop/ok") and fields["ProcReturnCode"] == "00"
    assert rails.captures == [] and rails.voids == []
    assert attempt().state == AttemptState.AUTHORIZED
    assert flow.sweep(now=later(hours=23)) == {}
    assert flow.sweep(now=later(hours=25)) == {"hold voided": 1}
    assert len(rails.voids) == 1 and attempt().state == AttemptState.VOIDED


def test_auth_tran_type_is_captured_on_approved(counterparty, rails):
    make_merchant(hosts=[counterparty.host])
    browser = gateway_client()
    token = open_session(browser, signed(merchant_fields(base=counterparty.url, TranType="Auth")))
    counterparty.state.callback_answer = "APPROVED"
    pay(browser, token)
    assert len(rails.captures) == 1 and attempt().state == AttemptState.CAPTURED


@pytest.mark.parametrize("tran_type", [" Auth", "auth\t", " AUTH "])
def test_auth_tran_type_with_surrounding_whitespace_is_captured_on_approved(counterparty, rails, tran_type):
    """The TranType the request was accepted with is the one that decides the capture."""
    make_merchant(hosts=[counterparty.host])
    browser = gateway_client()
    token = open_session(browser, signed(merchant_fields(base=counterparty.url, TranType=tran_type)))
    counterparty.state.callback_answer = "APPROVED"
    action, fields = form_of(pay(browser, token))
    assert action == counterparty.url + "/shop/ok" and fields["ProcReturnCode"] == "00"
    assert len(rails.captures) == 1 and rails.voids == [] and attempt().state == AttemptState.CAPTURED
    assert PaymentSession.objects.get().state == SessionState.SUCCEEDED


@pytest.mark.parametrize("pad", [" {}", "{}\t", "\t{} ", "{}\n"])
@pytest.mark.parametrize("approved", [True, False])
def test_return_and_callback_urls_with_surrounding_whitespace_work_end_to_end(counterparty, rails, pad, approved):
    """Each URL is used as it was checked: stripped of the whitespace around it."""
    make_merchant(hosts=[counterparty.host])
    urls = {name: counterparty.url + path for name, path in
            (("okUrl", "/shop/ok"), ("failUrl", "/shop/fail"), ("callbackUrl", "/shop/callback"))}
    browser = gateway_client()
    token = open_session(browser, signed(merchant_fields(
        base=counterparty.url, **{name: pad.format(url) for name, url in urls.items()})))
    if not approved:
        rails.authorize_answer = AuthorizationResult("51")
    action, fields = form_of(pay(browser, token))
    (callback,) = counterparty.state.callbacks
    assert callback["ProcReturnCode"] == fields["ProcReturnCode"] == ("00" if approved else "51")
    assert ver3_verify(fields, STORE_KEY, hash_field="HASH")
    if approved:
        assert action == urls["okUrl"]
        assert len(rails.captures) == 1 and rails.voids == [] and attempt().state == AttemptState.CAPTURED
        assert attempt().callback_answer == "POSTAUTH"
    else:
        assert action == urls["failUrl"]
        assert rails.captures == [] and attempt().state == AttemptState.DECLINED


def test_cancel_uses_the_callback_and_fail_urls_stripped(counterparty, rails):
    make_merchant(hosts=[counterparty.host])
    browser = gateway_client()
    token = open_session(browser, signed(merchant_fields(
        base=counterparty.url, callbackUrl=f" {counterparty.url}/shop/callback\t",
        failUrl=f"\t{counterparty.url}/shop/fail ")))
    action, fields = form_of(cancel(browser, token))
    assert action == counterparty.url + "/shop/fail" and fields["ProcReturnCode"] == "99"
    (callback,) = counterparty.state.callbacks
    assert callback["callbackCall"] == "true" and callback["ProcReturnCode"] == "99"
    assert PaymentSession.objects.get().state == SessionState.CANCELLED


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/shop/callback\t", "http://[::1/shop/callback"])
def test_a_callback_url_httpx_cannot_build_is_not_delivered(settings, url):
    settings.PARTY_HTTP_TIMEOUT = 1
    assert flow.send_callback(url, {"a": "b"}) == "NOT_DELIVERED"


@pytest.mark.parametrize(("code", "message"), [
    ("51", "Provision insuffisante"), ("54", "Carte expirée"), ("41", "Carte perdue"), ("43", "Carte volée"),
    ("N7", "Code de vérification (CVV) incorrect"), ("05", "Transaction refusée par votre banque"),
])
def test_a_declined_authorization_is_told_to_the_merchant_then_fail_url(shop, counterparty, rails, code, message):
    rails.authorize_answer = AuthorizationResult(code)
    counterparty.state.callback_answer = "APPROVED"
    browser, token = shop
    action, fields = form_of(pay(browser, token))
    assert action.endswith("/shop/fail")
    callback = counterparty.state.callbacks[0]
    assert (callback["ProcReturnCode"], callback["Response"], callback["ErrMsg"], callback["AuthCode"]) == (
        code, "Declined", message, "")
    assert (fields["ProcReturnCode"], fields["ErrMsg"]) == (code, message)
    assert rails.captures == [] and rails.voids == []
    assert attempt().state == AttemptState.DECLINED
    assert PaymentSession.objects.get().state == SessionState.FAILED


def test_an_authorization_without_answer_is_reversed(shop, counterparty, rails):
    rails.authorize_answer = fakes.UNAVAILABLE
    browser, token = shop
    action, fields = form_of(pay(browser, token))
    assert action.endswith("/shop/fail")
    assert (fields["ProcReturnCode"], fields["Response"]) == ("91", "Error")
    (void,) = rails.voids
    assert void.original_stan == "000001" and void.rrn == ""
    assert attempt().state == AttemptState.VOIDED
    assert rails.captures == []


# --- capture retries and the sweeper -------------------------------------------------------------------


def pending_watches(a: Attempt) -> list[DBTaskResult]:
    """The attempt's watch tasks not run yet."""
    return [task for task in DBTaskResult.objects.filter(task_path="tasdid.gateway.tasks.watch_attempt",
                                                         status="READY").order_by("run_after")
            if task.args_kwargs["kwargs"]["attempt_id"] == a.pk]


def make_due(a: Attempt) -> None:
    """Pretend the attempt's deadline has come (the watch task's too)."""
    past = timezone.now() - timezone.timedelta(seconds=1)
    Attempt.objects.filter(pk=a.pk).update(deadline=past)
    DBTaskResult.objects.filter(task_path="tasdid.gateway.tasks.watch_attempt", status="READY").update(run_after=past)


def test_a_failed_capture_is_retried_by_the_task_until_done(shop, counterparty, rails, run_tasks):
    rails.capture_answers = [fakes.UNAVAILABLE, SettlementResult("96"), SettlementResult("00")]
    browser, token = shop
    action, _fields = form_of(pay(browser, token))
    assert action.endswith("/shop/ok")  # the merchant asked for the capture: the customer has paid
    a = attempt()
    assert a.state == AttemptState.CAPTURING and a.settle_tries == 1
    watches = pending_watches(a)
    assert watches and watches[0].run_after <= a.deadline

    make_due(a)
    run_tasks()
    a.refresh_from_db()
    assert a.state == AttemptState.CAPTURING and a.settle_tries == 2
    make_due(a)
    run_tasks()
    a.refresh_from_db()
    assert a.state == AttemptState.CAPTURED and a.settle_tries == 3
    assert len(rails.captures) == 3
    assert len({c.stan for c in rails.captures}) == 3  # a new STAN per message
    assert {c.original_stan for c in rails.captures} == {"000001"}
    assert rails.voids == []
    assert len(counterparty.state.callbacks) == 1


def test_the_sweeper_fails_an_abandoned_challenge(shop, counterparty, rails):
    counterparty.state.ares_by_pan[VISA] = "C"
    browser, token = shop
    pay(browser, token)
    assert flow.sweep(now=later(minutes=5)) == {}
    assert flow.sweep(now=later(minutes=12)) == {"failed": 1}
    a = attempt()
    assert a.state == AttemptState.FAILED
    assert counterparty.state.callbacks[-1]["ErrMsg"] == "Authentification 3-D Secure non aboutie dans le délai"
    assert rails.authorizations == []
    assert PaymentSession.objects.get().state == SessionState.FAILED
    # the page says so, and leads back to failUrl
    response = browser.get(f"/paiement/{token}")
    assert "Cette commande a déjà été traitée" in html.unescape(response.content.decode())
    assert f'action="{counterparty.url}/shop/fail"' in response.content.decode()
    # the customer coming back late changes nothing
    post_rreq(gateway_client(), rreq_for(a, "Y"))
    a.refresh_from_db()
    assert a.rreq_received_at is None


def test_the_sweeper_reverses_an_authorization_left_without_answer(shop, counterparty, rails):
    from tasdid.gateway import services
    session = PaymentSession.objects.get()
    a = services.attempt_start(session_id=session.pk, brand="VISA", masked_pan="411111******1111",
                               pan_fingerprint="x")
    services.attempt_begin_authorization(attempt_id=a.pk, from_state=AttemptState.AUTHENTICATING,
                                         trans_status="U", eci="07", md_status="2", stan="000042")
    # ... and the process died before the acquirer answered
    assert flow.sweep(now=later(minutes=5)) == {"reversed": 1}
    a.refresh_from_db()
    assert a.state == AttemptState.VOIDED
    assert rails.voids[0].original_stan == "000042" and rails.voids[0].rrn == ""
    assert counterparty.state.callbacks[0]["ProcReturnCode"] == "91"
    assert PaymentSession.objects.get().state == SessionState.FAILED


def test_an_approval_arriving_after_its_reversal_was_acknowledged_is_voided_again_with_its_rrn(shop, counterparty,
                                                                                           rails):
    """The acquirer's answer came after the sweeper had reversed the authorization by STAN and time and the
    bank had acknowledged that reversal (it did not know the authorization yet): the approval's hold would stay."""
    from tasdid.gateway import services
    session = PaymentSession.objects.get()
    a = services.attempt_start(session_id=session.pk, brand="VISA", masked_pan="411111******1111",
                               pan_fingerprint="x")
    services.attempt_begin_authorization(attempt_id=a.pk, from_state=AttemptState.AUTHENTICATING,
                                         trans_status="U", eci="07", md_status="2", stan="000042")
    assert flow.sweep(now=later(minutes=5)) == {"reversed": 1}
    assert attempt().state == AttemptState.VOIDED and [v.rrn for v in rails.voids] == [""]

    late = services.attempt_record_authorization(attempt_id=a.pk, result=AuthorizationResult("00", "XYZ123",
                                                                                             "987654321098"))
    assert (late.state, late.rrn, late.auth_code) == (AttemptState.VOIDING, "987654321098", "XYZ123")
    assert flow.sweep(now=later(minutes=6)) == {"settled": 1}
    a.refresh_from_db()
    assert a.state == AttemptState.VOIDED
    assert [(v.original_stan, v.rrn, v.auth_code) for v in rails.voids] == [
        ("000042", "", ""), ("000042", "987654321098", "XYZ123")]
    assert states() == ["authenticating", "authorizing", "voiding", "voided", "voiding", "voided"]
    assert rails.captures == []
    # the merchant was told once (the failure); the session stays failed
    assert [c["ProcReturnCode"] for c in counterparty.state.callbacks] == ["91"]
    assert PaymentSession.objects.get().state == SessionState.FAILED
    # a decline arriving late only notes it
    services.attempt_record_authorization(attempt_id=a.pk, result=AuthorizationResult("05"))
    assert attempt().state == AttemptState.VOIDED and len(rails.voids) == 2


def test_the_sweeper_finishes_a_callback_that_never_completed(shop, counterparty, rails):
    from tasdid.gateway import services
    session = PaymentSession.objects.get()
    a = services.attempt_start(session_id=session.pk, brand="VISA", masked_pan="411111******1111",
                               pan_fingerprint="x")
    services.attempt_begin_authorization(attempt_id=a.pk, from_state=AttemptState.AUTHENTICATING,
                                         trans_status="U", eci="07", md_status="2", stan="000042")
    services.attempt_record_authorization(attempt_id=a.pk, result=AuthorizationResult("00", "XYZ123", "999"))
    # ... the process died before the callback: the merchant may have marked the invoices paid; ask again
    assert flow.sweep(now=later(minutes=5)) == {"concluded": 1}
    a.refresh_from_db()
    assert a.state == AttemptState.CAPTURED
    assert counterparty.state.callbacks[0]["AuthCode"] == "XYZ123"


def test_the_sweeper_closes_expired_sessions_and_the_command_reports(shop, counterparty, rails):
    PaymentSession.objects.update(expires_at=timezone.now())
    out = StringIO()
    call_command("gateway_sweep", stdout=out)
    assert out.getvalue() == "sessions expired: 1\n"
    assert PaymentSession.objects.get().state == SessionState.EXPIRED
    out = StringIO()
    call_command("gateway_sweep", stdout=out)
    assert out.getvalue() == "Rien à traiter.\n"


# --- « Annuler » -------------------------------------------------------------------------------------


def cancel(browser, token):
    return browser.post(f"/paiement/{token}", {"action": "cancel"})


def test_cancel_ends_the_session_tells_the_merchant_and_returns_to_fail_url(shop, counterparty, rails):
    browser, token = shop
    page = browser.get(f"/paiement/{token}")
    assert re.search(r'<form method="post" action="/paiement/[^"]+" class="cancel-form" data-submit-once>'
                     r'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]+">\s*'
                     r'<input type="hidden" name="action" value="cancel">\s*'
                     r'<button type="submit" class="button cancel-button">Annuler</button>', page.content.decode())
    response = cancel(browser, token)
    action, fields = form_of(response)
    assert action == counterparty.url + "/shop/fail"
    assert "Paiement annulé. Retour au site marchand en cours…" in html.unescape(response.content.decode())
    assert (fields["ProcReturnCode"], fields["Response"], fields["ErrMsg"], fields["TransId"], fields["AuthCode"]) \
        == ("99", "Error", "Paiement annulé par le client", "", "")
    assert (fields["oid"], fields["paidAmount"], fields["paidItems"]) == ("ORDER-0001", "285.00",
                                                                          f"{FIXE},{INTERNET}")
    assert "callbackCall" not in fields and ver3_verify(fields, STORE_KEY, hash_field="HASH")
    # The merchant got the usual failure callback, signed.
    (callback,) = counterparty.state.callbacks
    assert (callback["ProcReturnCode"], callback["ErrMsg"], callback["callbackCall"]) == (
        "99", "Paiement annulé par le client", "true")
    assert ver3_verify(callback, STORE_KEY, hash_field="HASH")
    # Nothing was paid, and the session is over.
    session = PaymentSession.objects.get()
    assert session.state == SessionState.CANCELLED
    assert [(e.from_state, e.to_state, e.cause) for e in Event.objects.filter(subject="session").order_by("pk")
            if e.from_state != e.to_state][-1] == ("open", "cancelled", "paiement annulé par le client")
    assert Event.objects.filter(cause="réponse du marchand au rappel d'annulation : POSTAUTH").count() == 1
    assert Attempt.objects.count() == 0 and rails.authorizations == [] and counterparty.state.areqs == []
    # The page says so and leads back to failUrl; a card or a second cancel does nothing.
    again = browser.get(f"/paiement/{token}")
    assert "Vous avez annulé le paiement de cette commande" in html.unescape(again.content.decode())
    assert f'action="{counterparty.url}/shop/fail"' in again.content.decode()
    assert pay(browser, token).status_code == 409 and cancel(browser, token).status_code == 409
    assert Attempt.objects.count() == 0 and len(counterparty.state.callbacks) == 1


def test_cancel_needs_the_csrf_token(shop, counterparty):
    browser, token = shop
    strict = gateway_client()
    strict.cookies = copy.deepcopy(browser.cookies)
    strict.handler.enforce_csrf_checks = True
    assert cancel(strict, token).status_code == 403
    assert PaymentSession.objects.get().state == SessionState.OPEN and counterparty.state.callbacks == []


def test_cancel_while_a_card_is_being_paid_changes_nothing(shop, counterparty, rails):
    counterparty.state.ares_by_pan[VISA] = "C"
    browser, token = shop
    pay(browser, token)
    response = cancel(browser, token)
    assert response.status_code == 409
    assert "L'authentification 3-D Secure de ce paiement est en cours" in html.unescape(response.content.decode())
    assert PaymentSession.objects.get().state == SessionState.PROCESSING
    assert attempt().state == AttemptState.CHALLENGE and counterparty.state.callbacks == []


def test_cancel_returns_to_fail_url_even_when_the_merchant_cannot_be_reached(counterparty, rails, closed_port):
    make_merchant(hosts=[counterparty.host, f"127.0.0.1:{closed_port}"])
    browser = gateway_client()
    token = open_session(browser, signed(merchant_fields(
        base=counterparty.url, callbackUrl=f"http://127.0.0.1:{closed_port}/shop/callback")))
    action, fields = form_of(cancel(browser, token))
    assert action == counterparty.url + "/shop/fail" and fields["ErrMsg"] == "Paiement annulé par le client"
    assert PaymentSession.objects.get().state == SessionState.CANCELLED
    assert Event.objects.filter(cause="réponse du marchand au rappel d'annulation : NOT_DELIVERED").count() == 1


# --- one order, one authorization ----------------------------------------------------------------------


def test_a_second_submit_after_the_first_makes_no_second_authorization(shop, counterparty, rails):
    browser, token = shop
    form_of(pay(browser, token))
    again = pay(browser, token)
    assert again.status_code == 409
    assert "Cette commande a déjà été traitée" in html.unescape(again.content.decode())
    assert len(rails.authorizations) == 1 and Attempt.objects.count() == 1


def test_two_submits_racing_make_exactly_one_authorization(shop, counterparty, rails):
    browser, token = shop
    rails.authorize_delay = 0.3
    second = gateway_client()
    second.cookies = copy.deepcopy(browser.cookies)  # the same browser: a double click or a second tab
    barrier = threading.Barrier(2)
    responses = {}

    def submit(name, client):
        try:
            barrier.wait(timeout=10)
            responses[name] = pay(client, token)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(n, c)) for n, c in (("a", browser), ("b", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(rails.authorizations) == 1
    assert Attempt.objects.count() == 1
    assert sorted(r.status_code for r in responses.values()) == [200, 409]
    loser = next(r for r in responses.values() if r.status_code == 409)
    body = html.unescape(loser.content.decode())
    assert "Paiement en cours" in body or "Cette commande a déjà été traitée" in body
    winner = next(r for r in responses.values() if r.status_code == 200)
    assert form_of(winner)[0].endswith("/shop/ok")
    assert len(rails.captures) == 1 and len(counterparty.state.callbacks) == 1


@pytest.mark.skipif(not connection.features.has_select_for_update_of, reason="no row locks on this database")
def test_locking_a_session_or_an_attempt_leaves_the_merchant_and_the_session_free(shop, counterparty, rails):
    """A submit locks its own session's row, not its merchant's: the customers of one merchant never wait on
    each other. Locking an attempt leaves its session free too."""
    session = PaymentSession.objects.get()
    a = services.attempt_start(session_id=session.pk, brand="VISA", masked_pan="411111******1111",
                               pan_fingerprint="x")

    def hold(lock, locked, release):
        try:
            with transaction.atomic():
                lock()
                locked.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    for lock, free in ((lambda: services._lock_open_session(session.pk, timezone.now()), [Merchant]),
                       (lambda: services._lock_attempt(a.pk), [Merchant, PaymentSession])):
        locked, release = threading.Event(), threading.Event()
        holder = threading.Thread(target=hold, args=(lock, locked, release))
        holder.start()
        try:
            assert locked.wait(timeout=10)
            for model in free:
                with transaction.atomic():
                    try:
                        model.objects.select_for_update(nowait=True).get()
                    except DatabaseError as exc:
                        pytest.fail(f"{model.__name__} locked along: {exc}")
        finally:
            release.set()
            holder.join(timeout=10)


def test_the_workers_recovery_pass_finishes_an_attempt_whose_watch_task_failed_for_good(shop, counterparty, rails):
    """Its watch task failed (its workers died under it MAX_CLAIMS times): every worker's recovery pass sweeps the
    gateway too, so the attempt past its deadline is concluded all the same, not left holding the card."""
    import time_machine

    from tasdid.core.worker import run_sweeps
    session = PaymentSession.objects.get()
    a = services.attempt_start(session_id=session.pk, brand="VISA", masked_pan="411111******1111",
                               pan_fingerprint="x")
    services.attempt_begin_authorization(attempt_id=a.pk, from_state=AttemptState.AUTHENTICATING,
                                         trans_status="U", eci="07", md_status="2", stan="000042")
    services.attempt_record_authorization(attempt_id=a.pk, result=AuthorizationResult("00", "XYZ123", "999"))
    DBTaskResult.objects.filter(task_path="tasdid.gateway.tasks.watch_attempt").update(status="FAILED")
    run_sweeps()  # not due yet: nothing moves
    assert (attempt().state, counterparty.state.callbacks) == (AttemptState.AUTHORIZED, [])
    with time_machine.travel(later(minutes=5), tick=False):
        run_sweeps()
    assert attempt().state == AttemptState.CAPTURED
    assert [c["AuthCode"] for c in counterparty.state.callbacks] == ["XYZ123"]
    assert [c.original_stan for c in rails.captures] == ["000042"]


def test_an_attempt_whose_deadline_moves_three_times_has_one_watch_and_is_swept_after_its_last_deadline(
        shop, counterparty, rails, run_tasks):
    """The watch set when the attempt starts stays its only one while the deadline moves later; run before the
    last deadline, it sets itself again at that deadline, and there it takes the attempt over."""
    import time_machine

    start = timezone.now()
    session = PaymentSession.objects.get()
    with time_machine.travel(start, tick=False):
        a = services.attempt_start(session_id=session.pk, brand="VISA", masked_pan="411111******1111",
                                   pan_fingerprint="x")
    first_deadline = attempt().deadline
    with time_machine.travel(start + dt.timedelta(seconds=10), tick=False):
        services.attempt_begin_authorization(attempt_id=a.pk, from_state=AttemptState.AUTHENTICATING,
                                             trans_status="U", eci="07", md_status="2", stan="000042")
    with time_machine.travel(start + dt.timedelta(seconds=20), tick=False):
        services.attempt_record_authorization(attempt_id=a.pk, result=AuthorizationResult("00", "XYZ123", "999"))
    with time_machine.travel(start + dt.timedelta(seconds=30), tick=False):
        services.attempt_begin_callback(attempt_id=a.pk)  # the process dies before the merchant is told
    a = attempt()
    assert a.deadline == first_deadline + dt.timedelta(seconds=30)  # moved three times, later each time
    watches = pending_watches(a)
    assert [w.run_after for w in watches] == [first_deadline]

    with time_machine.travel(first_deadline + dt.timedelta(seconds=1), tick=False):
        assert run_tasks() == 1  # not due yet: the watch sets itself again at the deadline, nothing moves
    assert (attempt().state, counterparty.state.callbacks) == (AttemptState.AUTHORIZED, [])
    assert [w.run_after for w in pending_watches(a)] == [a.deadline]

    with time_machine.travel(a.deadline + dt.timedelta(seconds=1), tick=False):
        run_tasks()
    assert attempt().state == AttemptState.CAPTURED  # swept: the callback sent again, the payment captured
    assert [c["AuthCode"] for c in counterparty.state.callbacks] == ["XYZ123"]
    assert [c.original_stan for c in rails.captures] == ["000042"]
    with time_machine.travel(attempt().deadline + dt.timedelta(seconds=1), tick=False):
        run_tasks()  # the capture's watch finds the attempt finished and sets no other
    assert pending_watches(a) == []


def test_a_trans_id_never_reads_as_a_card_number(monkeypatch):
    """The day's prefix (26342…) is a MasterCard BIN: a random part drawn all in digits would make the TransId a
    Luhn-valid card number one time in ten, flagged by every card-data scan; such a draw is made again."""
    from tasdid.core.cards import find_card_numbers

    draws = iter(["727834350001", "12345678ABCD", "0F0F0F0F0F0F", "1234567ABCDE"])
    monkeypatch.setattr(services.secrets, "token_hex", lambda _n: next(draws))
    day = dt.datetime(2026, 12, 8, tzinfo=dt.UTC)
    assert find_card_numbers("26342" + "727834350001")  # the first draw would be a card number
    # Drawn again, and again for 13 digits in a row (2634212345678…), a card number's length.
    assert services._new_trans_id(day) == "263420F0F0F0F0F0F"
    assert services._new_trans_id(day) == "263421234567ABCDE"  # 12 digits in a row: kept
