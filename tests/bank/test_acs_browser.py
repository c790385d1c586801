"""The 3-D Secure challenge page in Chromium, read as a cardholder reads it: the code comes from the sandbox
phone's inbox (delivered by the real task worker), the result goes to a stand-in 3DS Server by RReq and the
browser follows with the CRes."""

import pytest
from playwright.sync_api import expect

from tasdid.bank import sandbox
from tasdid.bank.demo import seed_demo
from tasdid.bank.models import AcsTransaction
from tasdid.messaging.selectors import handset_inbox
from tests.support.sms import codes_received

from .conftest import areq_message, creq_for, post_areq, verified

pytestmark = pytest.mark.browser

MAIN = sandbox.card_by_outcome("00", "challenge")
SESSION_DATA = "sealed-by-the-gateway.c2FuZGJveA.42"


@pytest.fixture
def challenge_page(parties, task_worker, three_ds_server, page):
    seed_demo()
    ares = verified(post_areq(parties["bank"], areq_message(MAIN, server_url=three_ds_server.url)))
    page.goto(three_ds_server.add_start_page(acs_url=ares["acsURL"], creq=creq_for(ares), session_data=SESSION_DATA))
    page.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("heading", name="Authentification du paiement")).to_be_visible()
    return page


def wrong_code(right: str) -> str:
    return "000000" if right != "000000" else "111111"


def test_the_code_from_the_sandbox_phone_authenticates(challenge_page, three_ds_server):
    page = challenge_page
    expect(page.locator(".site-header")).to_contain_text("Crédit du Sahel")
    expect(page.get_by_role("img", name="Logo Crédit du Sahel")).to_be_visible()
    facts = page.locator("dl.acs-facts")
    expect(facts).to_contain_text("Tasdid Télécom")
    expect(facts).to_contain_text("285.00 DH")
    expect(facts).to_contain_text("522011******0026")
    expect(page.get_by_text("06 •• •• •• 02")).to_be_visible()

    [first] = codes_received(MAIN.phone, 1)
    page.get_by_role("button", name="Renvoyer le code").click()
    expect(page.get_by_text("Un nouveau code vous a été envoyé par SMS.")).to_be_visible()
    newest, previous = codes_received(MAIN.phone, 2)
    assert previous == first
    if previous != newest:  # the replaced code no longer works
        page.get_by_label("Code reçu par SMS").fill(previous)
        page.get_by_role("button", name="Valider").click()
        expect(page.get_by_text("Code incorrect. Il vous reste 2 essais.")).to_be_visible()
    page.get_by_label("Code reçu par SMS").fill(newest)
    page.get_by_role("button", name="Valider").click()
    expect(page.locator("#status")).to_have_text("transStatus=Y")
    assert page.url == three_ds_server.url + "/3ds/notification"
    [rreq] = three_ds_server.rreqs
    assert (rreq["transStatus"], rreq["eci"]) == ("Y", "02")
    assert three_ds_server.cres[0]["transStatus"] == "Y"
    assert three_ds_server.session_data == [SESSION_DATA]
    assert handset_inbox(number=MAIN.phone)[0].sender == "CreditSahel"


def test_three_wrong_codes_fail(challenge_page, three_ds_server):
    page = challenge_page
    [right] = codes_received(MAIN.phone, 1)
    for remaining in (2, 1):
        page.get_by_label("Code reçu par SMS").fill(wrong_code(right))
        page.get_by_role("button", name="Valider").click()
        tries = "1 essai" if remaining == 1 else f"{remaining} essais"
        expect(page.get_by_text(f"Code incorrect. Il vous reste {tries}.")).to_be_visible()
        expect(page.get_by_label("Code reçu par SMS")).to_have_value("")
    page.get_by_label("Code reçu par SMS").fill(wrong_code(right))
    page.get_by_role("button", name="Valider").click()
    expect(page.locator("#status")).to_have_text("transStatus=N")
    [rreq] = three_ds_server.rreqs
    assert (rreq["transStatus"], rreq["transStatusReason"], rreq["interactionCounter"]) == ("N", "01", "03")
    assert AcsTransaction.objects.get().otp_failures == 3


def test_cancel_fails(challenge_page, three_ds_server):
    page = challenge_page
    page.get_by_role("button", name="Annuler").click()
    expect(page.locator("#status")).to_have_text("transStatus=N")
    [rreq] = three_ds_server.rreqs
    assert (rreq["transStatus"], rreq["challengeCancel"]) == ("N", "01")


def test_an_expired_code_fails(challenge_page, three_ds_server):
    from django.utils import timezone

    page = challenge_page
    [right] = codes_received(MAIN.phone, 1)
    AcsTransaction.objects.update(otp_expires_at=timezone.now())  # five minutes have passed
    page.get_by_label("Code reçu par SMS").fill(right)
    page.get_by_role("button", name="Valider").click()
    expect(page.locator("#status")).to_have_text("transStatus=N")
    [rreq] = three_ds_server.rreqs
    assert (rreq["transStatus"], rreq["transStatusReason"]) == ("N", "14")
