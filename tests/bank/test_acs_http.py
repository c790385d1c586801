"""The ACS over real HTTP: signed AReq/ARes on the bank's live server, the challenge pages, the RReq to a stand-in
3DS Server on loopback, and junk that must never make the bank answer 500."""

import base64
import html
import re
from http.cookies import SimpleCookie

import httpx
import pytest

from tasdid.bank import sandbox, services
from tasdid.bank.demo import seed_demo
from tasdid.bank.models import AcsTransaction
from tasdid.core import threeds
from tasdid.messaging.selectors import handset_inbox
from tests.support.sms import code_in, last_sms_text

from .conftest import areq_message, bank_rows, creq_for, post_areq, verified

LINK = threeds.LINK_DIRECTORY_ACS  # these tests stand in for the directory

MAIN = sandbox.card_by_outcome("00", "challenge")
VISA = sandbox.card_by_outcome("00", "none")
FRICTIONLESS = sandbox.card_by_outcome("00", "frictionless")
SESSION_DATA = "gateway-sealed-blob.ZXhhbXBsZQ.7c1f"


@pytest.fixture
def bank(parties):
    seed_demo()
    return parties["bank"]


class Browser:
    """An httpx client that keeps the bank's session cookie although it is Secure and we speak http on loopback
    (Chromium treats 127.0.0.1 as secure; httpx does not)."""

    def __init__(self):
        self.cookies: dict[str, str] = {}

    def post(self, url: str, data: dict) -> httpx.Response:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        response = httpx.post(url, data=data, headers=headers, timeout=60)
        for header in response.headers.get_list("set-cookie"):
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response


def csrf_of(page: httpx.Response) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def hidden(page: httpx.Response, name: str) -> str:
    return html.unescape(re.search(rf'name="{name}" value="([^"]*)"', page.text).group(1))


def sms_code(phone: str, run_tasks) -> str:
    run_tasks()
    return code_in(last_sms_text(phone))


def start(bank, server, browser, card=MAIN):
    ares = verified(post_areq(bank, areq_message(card, server_url=server.url)))
    page = browser.post(ares["acsURL"], {"creq": creq_for(ares), "threeDSSessionData": SESSION_DATA})
    return ares, page


# --- AReq -------------------------------------------------------------------------------------------------------


def test_areq_over_http_answers_signed_ares(bank, three_ds_server):
    challenge = post_areq(bank, areq_message(MAIN, server_url=three_ds_server.url))
    assert challenge.status_code == 200 and challenge.headers["Content-Type"] == "application/json"
    ares = verified(challenge)
    assert (ares["messageType"], ares["transStatus"], ares["acsURL"]) == ("ARes", "C", bank + "/acs/challenge")
    frictionless = verified(post_areq(bank, areq_message(FRICTIONLESS, server_url=three_ds_server.url)))
    assert (frictionless["transStatus"], frictionless["eci"]) == ("Y", "05")
    assert len(frictionless["authenticationValue"]) == 28
    not_enrolled = verified(post_areq(bank, areq_message(VISA, server_url=three_ds_server.url)))
    assert (not_enrolled["transStatus"], not_enrolled["transStatusReason"]) == ("U", "13")


@pytest.mark.parametrize(
    ("body", "signature", "code"),
    [
        (b"not json", "x", "101"),
        (b"\xff\xfe\x00", "x", "101"),
        (b"[1, 2]", "x", "101"),
        (b'{"messageType": "RReq"}', None, "101"),
        (None, "forged", "302"),
        (None, None, "302"),
    ],
)
def test_a_bad_areq_gets_a_signed_erro_and_http_400(bank, body, signature, code):
    if body is None:
        body, _good = threeds.sign_body(areq_message(MAIN, server_url="https://gw.example.ma"), link=LINK)
    headers = {"Content-Type": "application/json"}
    if signature:
        headers[threeds.SIGNATURE_HEADER] = signature
    response = httpx.post(bank + "/acs/areq", content=body, headers=headers, timeout=10)
    assert response.status_code == 400
    erro = verified(response)
    assert (erro["messageType"], erro["errorCode"], erro["errorComponent"]) == ("Erro", code, "A")
    assert AcsTransaction.objects.count() == 0


def test_a_signed_areq_with_bad_elements_gets_erro_naming_them(bank):
    message = areq_message(MAIN, server_url="https://gw.example.ma", purchaseAmount="12.50")
    response = post_areq(bank, message)
    assert response.status_code == 400
    erro = verified(response)
    assert (erro["errorCode"], erro["errorDetail"], erro["threeDSServerTransID"]) == (
        "203", "purchaseAmount", message["threeDSServerTransID"])
    missing = post_areq(bank, {"messageType": "AReq", "threeDSServerTransID": ["junk"]})
    assert missing.status_code == 400 and verified(missing)["errorCode"] == "201"
    assert "threeDSServerTransID" not in verified(missing)


DEEP = b"[" * 10_000  # JSON nested deeper than the parser's recursion allows, under the 16 KB cap


@pytest.mark.parametrize("body", [DEEP, b"[" * 200_000, b'{"messageType": "AReq", "a": ' + DEEP + b"}"])
def test_an_areq_nested_too_deep_or_too_large_gets_a_signed_erro_not_a_500(bank, body):
    response = httpx.post(bank + "/acs/areq", content=body, timeout=30,
                          headers={"Content-Type": "application/json", threeds.SIGNATURE_HEADER: "x"})
    assert response.status_code == 400
    assert (verified(response)["messageType"], verified(response)["errorCode"]) == ("Erro", "101")
    assert AcsTransaction.objects.count() == 0


@pytest.mark.parametrize("raw", [DEEP, b"[" * 200_000, b'{"messageType": "CReq", "sig": ' + DEEP + b"}"])
def test_a_creq_nested_too_deep_or_too_large_gets_a_french_page_not_a_500(bank, raw):
    creq = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    response = Browser().post(bank + "/acs/challenge", {"creq": creq, "threeDSSessionData": SESSION_DATA})
    assert response.status_code == 400
    assert "Cette demande d'authentification est invalide ou a expiré." in html.unescape(response.text)


def test_the_areq_endpoint_takes_only_post(bank):
    assert httpx.get(bank + "/acs/areq", timeout=10).status_code == 405
    assert httpx.get(bank + "/acs/challenge", timeout=10).status_code == 405


# --- the challenge ----------------------------------------------------------------------------------------------


def test_challenge_over_http_right_code_sends_rreq_then_cres(bank, three_ds_server, run_tasks):
    browser = Browser()
    ares, page = start(bank, three_ds_server, browser)
    assert page.status_code == 200
    text = page.text
    for expected in ("Crédit du Sahel", "Tasdid Télécom", "285.00\u00a0DH", "522011******0026", "Code reçu par SMS",
                     "Valider", "Renvoyer le code", "Annuler", "06 •• •• •• 02", "/static/bank/logos/sahel.svg",
                     "Le code est valable 5 minutes. Vous disposez de 3 essais."):
        assert expected in text, expected
    assert MAIN.number not in text
    assert hidden(page, "threeDSSessionData") == SESSION_DATA
    assert page.headers["Cache-Control"] == "no-store"

    code = sms_code(MAIN.phone, run_tasks)
    handset = handset_inbox(number=MAIN.phone)[0]
    assert handset.sender == "CreditSahel"
    action = bank + f"/acs/challenge/{ares['acsTransID']}"
    wrong = "000000" if code != "000000" else "111111"
    again = browser.post(action, {"csrfmiddlewaretoken": csrf_of(page), "threeDSSessionData": SESSION_DATA,
                                  "action": "validate", "code": wrong})
    assert again.status_code == 200
    assert "Code incorrect. Il vous reste 2 essais." in again.text
    assert three_ds_server.rreqs == []

    done = browser.post(action, {"csrfmiddlewaretoken": csrf_of(again), "threeDSSessionData": SESSION_DATA,
                                 "action": "validate", "code": code})
    assert done.status_code == 200
    assert f'action="{ares["threeDSServerTransID"]}"' not in done.text
    assert f'action="{three_ds_server.url}/3ds/notification"' in done.text
    assert "form-action" in done.headers["Content-Security-Policy"]
    assert three_ds_server.url in done.headers["Content-Security-Policy"]
    cres = threeds.decode_browser_message(hidden(done, "cres"), message_type="CRes")
    assert cres == {"messageType": "CRes", "messageVersion": "2.2.0",
                    "threeDSServerTransID": ares["threeDSServerTransID"], "acsTransID": ares["acsTransID"],
                    "transStatus": "Y", "challengeCompletionInd": "Y"}
    assert hidden(done, "threeDSSessionData") == SESSION_DATA
    [rreq] = three_ds_server.rreqs
    assert (rreq["transStatus"], rreq["eci"], rreq["dsTransID"], rreq["interactionCounter"]) == (
        "Y", "02", ares["dsTransID"], "02")
    record = AcsTransaction.objects.get()
    assert record.rreq_delivered_at is not None and record.rreq_attempts == 1
    # The CAVV of the RReq authorizes the payment at the bank, once.
    month, year = MAIN.expiry.split("/")
    from django.utils import timezone

    approve = services.authorize(
        pan=MAIN.number, expiry_yymm=year + month, cvv=MAIN.cvv, amount_minor=28500, currency="504",
        merchant_id="600000001", stan="000001", transmitted_at=timezone.now(), eci="02",
        authentication_value=rreq["authenticationValue"], ds_trans_id=rreq["dsTransID"], trans_status="Y",
    )
    assert approve.approved

    # Posting the same page again (back button): no second RReq, the browser is sent back with the same CRes.
    replay = browser.post(action, {"csrfmiddlewaretoken": csrf_of(again), "threeDSSessionData": SESSION_DATA,
                                   "action": "validate", "code": code})
    assert replay.status_code == 200 and "cres" in replay.text
    assert len(three_ds_server.rreqs) == 1

    # threeDSSessionData travelled in the pages only: not in the bank's tables, not in its session.
    from django.contrib.sessions.models import Session

    assert all(SESSION_DATA not in " ".join(map(str, row)) for _table, row in bank_rows())
    sessions = [s.get_decoded() for s in Session.objects.all()]
    assert sessions and all(SESSION_DATA not in str(data) for data in sessions)
    from tests.support.pci import card_data_findings

    assert card_data_findings() == []


def test_cancel_over_http_sends_rreq_n(bank, three_ds_server):
    browser = Browser()
    ares, page = start(bank, three_ds_server, browser)
    done = browser.post(bank + f"/acs/challenge/{ares['acsTransID']}",
                        {"csrfmiddlewaretoken": csrf_of(page), "threeDSSessionData": SESSION_DATA,
                         "action": "cancel"})
    assert done.status_code == 200 and "Authentification annulée" in done.text
    [rreq] = three_ds_server.rreqs
    assert (rreq["transStatus"], rreq["transStatusReason"], rreq["challengeCancel"], rreq["eci"]) == (
        "N", "01", "01", "00")
    assert "authenticationValue" not in rreq
    assert threeds.decode_browser_message(hidden(done, "cres"), message_type="CRes")["transStatus"] == "N"


def test_resend_is_limited(bank, three_ds_server, run_tasks):
    browser = Browser()
    ares, page = start(bank, three_ds_server, browser)
    action = bank + f"/acs/challenge/{ares['acsTransID']}"
    for _ in range(2):
        page = browser.post(action, {"csrfmiddlewaretoken": csrf_of(page), "threeDSSessionData": SESSION_DATA,
                                     "action": "resend"})
        assert "Un nouveau code vous a été envoyé par SMS." in page.text
    assert "Renvoyer le code" not in page.text
    refused = browser.post(action, {"csrfmiddlewaretoken": csrf_of(page), "threeDSSessionData": SESSION_DATA,
                                    "action": "resend"})
    assert "Vous avez atteint le nombre maximal d'envois du code." in html.unescape(refused.text)
    run_tasks()
    assert len(handset_inbox(number=MAIN.phone)) == 3


@pytest.mark.parametrize("code", ["12ab", "12345²", "１２３４５", "1234567"])
def test_a_code_of_the_wrong_shape_costs_no_try(bank, three_ds_server, code):
    browser = Browser()
    ares, page = start(bank, three_ds_server, browser)
    again = browser.post(bank + f"/acs/challenge/{ares['acsTransID']}",
                         {"csrfmiddlewaretoken": csrf_of(page), "threeDSSessionData": SESSION_DATA,
                          "action": "validate", "code": code})
    assert again.status_code == 200 and "Le code comporte 6 chiffres." in again.text
    assert AcsTransaction.objects.get().otp_failures == 0


@pytest.mark.parametrize("digits", ["٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "０１２３４５６７８９"])
def test_the_code_typed_in_arabic_indic_digits_is_the_code(bank, three_ds_server, run_tasks, digits):
    browser = Browser()
    ares, page = start(bank, three_ds_server, browser)
    code = sms_code(MAIN.phone, run_tasks)
    typed = code[:3].translate(str.maketrans("0123456789", digits)) + " " + code[3:]
    done = browser.post(bank + f"/acs/challenge/{ares['acsTransID']}",
                        {"csrfmiddlewaretoken": csrf_of(page), "threeDSSessionData": SESSION_DATA,
                         "action": "validate", "code": typed})
    assert done.status_code == 200 and "Code vérifié" in done.text
    record = AcsTransaction.objects.get()
    assert (record.state, record.otp_failures) == ("authenticated", 0)
    assert [r["transStatus"] for r in three_ds_server.rreqs] == ["Y"]


def test_later_steps_need_the_bank_session_and_its_csrf_token(bank, three_ds_server):
    browser = Browser()
    ares, page = start(bank, three_ds_server, browser)
    action = bank + f"/acs/challenge/{ares['acsTransID']}"
    no_token = browser.post(action, {"threeDSSessionData": SESSION_DATA, "action": "cancel"})
    assert no_token.status_code == 403 and "Ce formulaire a expiré" in no_token.text
    stranger = Browser().post(action, {"csrfmiddlewaretoken": csrf_of(page), "threeDSSessionData": SESSION_DATA,
                                       "action": "cancel"})
    assert stranger.status_code == 403
    assert AcsTransaction.objects.get().state == "challenge"
    assert three_ds_server.rreqs == []


def test_a_creq_opens_its_challenge_once_a_replay_changes_nothing(bank, three_ds_server, run_tasks):
    """The CReq carries no key: anyone who saw it can post it. The first post opens the challenge (one SMS); the
    same CReq from another browser is refused; the browser that opened it, reloading, sees its page again; a CReq
    naming an ACS transaction that no AReq from the directory created opens nothing."""
    browser = Browser()
    ares, page = start(bank, three_ds_server, browser)
    assert page.status_code == 200 and "Code reçu par SMS" in html.unescape(page.text)
    code = sms_code(MAIN.phone, run_tasks)
    replay = Browser().post(ares["acsURL"], {"creq": creq_for(ares), "threeDSSessionData": SESSION_DATA})
    assert replay.status_code == 400
    assert "Cette demande d'authentification est invalide ou a expiré." in html.unescape(replay.text)
    reload = browser.post(ares["acsURL"], {"creq": creq_for(ares), "threeDSSessionData": SESSION_DATA})
    assert reload.status_code == 200 and "Code reçu par SMS" in html.unescape(reload.text)
    run_tasks()
    record = AcsTransaction.objects.get()
    assert (record.state, record.otp_sent_count, record.otp_failures) == ("challenge", 1, 0)
    assert len(handset_inbox(number=MAIN.phone)) == 1 and three_ds_server.rreqs == []
    assert code_in(last_sms_text(MAIN.phone)) == code  # still the one code sent
    forged = {**ares, "acsTransID": "00000000-0000-4000-8000-000000000000"}
    unknown = Browser().post(ares["acsURL"], {"creq": creq_for(forged), "threeDSSessionData": SESSION_DATA})
    assert unknown.status_code == 400 and AcsTransaction.objects.count() == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"creq": "junk", "threeDSSessionData": SESSION_DATA},
        {"creq": "", "threeDSSessionData": SESSION_DATA},
        {"threeDSSessionData": SESSION_DATA},
        {"creq": threeds.encode_browser_message({"messageType": "CRes"}), "threeDSSessionData": SESSION_DATA},
        {"creq": threeds.encode_browser_message({"messageType": "CReq", "acsTransID": "nope",
                                                 "threeDSServerTransID": "x"}), "threeDSSessionData": SESSION_DATA},
        {"creq": "eyJtZXNzYWdlVHlwZSI6IkNSZXEiLCJzaWciOiJ4In0", "threeDSSessionData": SESSION_DATA},
    ],
)
def test_a_bad_creq_gets_a_french_page_and_http_400(bank, fields):
    response = Browser().post(bank + "/acs/challenge", fields)
    assert response.status_code == 400
    assert "Cette demande d'authentification est invalide ou a expiré." in html.unescape(response.text)


def test_a_creq_without_session_data_or_with_a_huge_one_is_refused(bank, three_ds_server):
    ares = verified(post_areq(bank, areq_message(MAIN, server_url=three_ds_server.url)))
    for session_data in ("", "x" * 9000):
        response = Browser().post(ares["acsURL"], {"creq": creq_for(ares), "threeDSSessionData": session_data})
        assert response.status_code == 400
    assert AcsTransaction.objects.get().otp_sent_count == 0


def test_junk_on_a_step_never_makes_a_500(bank, three_ds_server):
    browser = Browser()
    ares, page = start(bank, three_ds_server, browser)
    action = bank + f"/acs/challenge/{ares['acsTransID']}"
    token = csrf_of(page)
    for fields in ({"action": "validate", "code": "1" * 5000}, {"action": "explode"}, {"action": "validate"}):
        response = browser.post(action, {"csrfmiddlewaretoken": token, "threeDSSessionData": SESSION_DATA, **fields})
        assert response.status_code == 200
        token = csrf_of(response)
    assert browser.post(bank + "/acs/challenge/00000000-0000-0000-0000-000000000000",
                        {"csrfmiddlewaretoken": token, "threeDSSessionData": SESSION_DATA}).status_code == 400
    assert browser.post(bank + "/acs/challenge/not-a-uuid", {}).status_code == 404
    assert AcsTransaction.objects.get().otp_failures == 0


@pytest.mark.parametrize("mode", ["http500", "unsigned"])
def test_an_rreq_that_cannot_be_delivered_is_retried_then_a_french_page_offers_to_retry(
        bank, three_ds_server, mode):
    browser = Browser()
    ares, page = start(bank, three_ds_server, browser)
    three_ds_server.mode = mode
    failed = browser.post(bank + f"/acs/challenge/{ares['acsTransID']}",
                          {"csrfmiddlewaretoken": csrf_of(page), "threeDSSessionData": SESSION_DATA,
                           "action": "cancel"})
    assert failed.status_code == 503
    assert "Votre banque n'a pas pu transmettre le résultat de l'authentification" in html.unescape(failed.text)
    assert 'name="cres"' not in failed.text
    record = AcsTransaction.objects.get()
    assert (record.rreq_attempts, record.rreq_delivered_at) == (services.RREQ_ATTEMPTS, None)
    assert record.events.filter(kind="rreq_failed").count() == services.RREQ_ATTEMPTS

    three_ds_server.mode = "ok"
    retried = browser.post(bank + f"/acs/challenge/{ares['acsTransID']}",
                           {"csrfmiddlewaretoken": csrf_of(failed), "threeDSSessionData": SESSION_DATA,
                            "action": "retry"})
    assert retried.status_code == 200
    assert threeds.decode_browser_message(hidden(retried, "cres"), message_type="CRes")["transStatus"] == "N"
    # A 500 never got as far as reading the RReq; an unsigned RRes means each try reached the server.
    received_before = 0 if mode == "http500" else services.RREQ_ATTEMPTS
    assert [r["transStatus"] for r in three_ds_server.rreqs] == ["N"] * (received_before + 1)


def test_an_rreq_to_a_closed_port_fails_cleanly(bank, three_ds_server):
    from tests.support.ports import free_port

    closed = f"http://127.0.0.1:{free_port()}"
    browser = Browser()
    ares = verified(post_areq(bank, areq_message(MAIN, server_url=three_ds_server.url,
                                                 threeDSServerURL=closed + "/3ds/rreq")))
    page = browser.post(ares["acsURL"], {"creq": creq_for(ares), "threeDSSessionData": SESSION_DATA})
    failed = browser.post(bank + f"/acs/challenge/{ares['acsTransID']}",
                          {"csrfmiddlewaretoken": csrf_of(page), "threeDSSessionData": SESSION_DATA,
                           "action": "cancel"})
    assert failed.status_code == 503 and "Réessayer" in failed.text
    record = AcsTransaction.objects.get()
    assert (record.state, record.rreq_attempts, record.rreq_delivered_at) == ("failed", services.RREQ_ATTEMPTS, None)
    assert 'name="cres"' not in failed.text  # the browser is not sent back before the RReq went through
    assert three_ds_server.rreqs == [] and three_ds_server.cres == []


def test_home_page_lists_the_banks(bank):
    page = httpx.get(bank + "/", timeout=10)
    assert page.status_code == 200
    assert "Banque Atlas" in page.text and "Crédit du Sahel" in page.text and "522011" in page.text
    assert MAIN.number not in page.text
    logo = httpx.get(bank + "/static/bank/logos/atlas.svg", timeout=10)
    assert logo.status_code == 200 and "<svg" in logo.text
