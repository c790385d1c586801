"""The 3-D Secure directory on the switch's web site (real TCP: the switch's and the bank's party servers): routed
by BIN to the bank's ACS, each link signed with its own key, unknown BIN, ACS down."""

import datetime as dt
import json
import uuid

import httpx
import pytest

from tasdid.bank.demo import seed_demo as seed_bank
from tasdid.bank.models import AcsTransaction
from tasdid.core import threeds
from tasdid.core.cards import mask
from tasdid.gateway import threeds_server
from tasdid.switch.models import DirectoryTransaction, Route
from tests.support.ports import free_port

TO_SERVER, TO_ACS = threeds.LINK_SERVER_DIRECTORY, threeds.LINK_DIRECTORY_ACS


@pytest.fixture
def directory(parties, settings):
    seed_bank()
    settings.GATEWAY_3DS_DIRECTORY_URL = parties["switch"] + "/3ds/areq"
    return parties


def areq(number: str, expiry: str = "3003", *, gateway: str = "https://gw.example.ma") -> dict:
    return {
        "messageType": "AReq", "messageVersion": "2.2.0", "threeDSServerTransID": str(uuid.uuid4()),
        "acctNumber": number, "cardExpiryDate": expiry, "purchaseAmount": "28500", "purchaseCurrency": "504",
        "purchaseExponent": "2", "purchaseDate": dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S"),
        "merchantName": "Tasdid Télécom", "acquirerMerchantID": "600000001",
        "threeDSServerURL": gateway + "/3ds/rreq", "notificationURL": gateway + "/3ds/notification",
        "deviceChannel": "02", "messageCategory": "01", "browserLanguage": "fr",
    }


def post(url: str, message: dict, *, link: threeds.Link) -> httpx.Response:
    body, signature = threeds.sign_body(message, link=link)
    return httpx.post(url, content=body, timeout=15,
                      headers={"Content-Type": "application/json", threeds.SIGNATURE_HEADER: signature})


def answer(response: httpx.Response, *, link: threeds.Link) -> dict:
    return threeds.verify_body(response.content, response.headers.get(threeds.SIGNATURE_HEADER),
                               message_type=json.loads(response.content)["messageType"], link=link)


@pytest.mark.parametrize(("number", "expiry", "bank", "status"), [
    ("4000110000000041", "3003", "Banque Atlas", "Y"),  # Visa, frictionless
    ("5220110000000026", "2812", "Crédit du Sahel", "C"),  # MasterCard, challenge
    ("6061010000000036", "3006", "Banque Atlas", "U"),  # CMI, not enrolled
])
def test_the_directory_routes_each_sandbox_bank_to_its_acs(directory, number, expiry, bank, status):
    message = areq(number, expiry)
    response = post(directory["switch"] + "/3ds/areq", message, link=TO_SERVER)
    assert response.status_code == 200
    ares = answer(response, link=TO_SERVER)
    assert (ares["messageType"], ares["threeDSServerTransID"], ares["transStatus"]) == (
        "ARes", message["threeDSServerTransID"], status)
    record = DirectoryTransaction.objects.get()
    assert (record.bank_name, str(record.ds_trans_id), record.trans_status) == (bank, ares["dsTransID"], status)
    assert record.masked_pan == mask(number) and number not in record.masked_pan
    assert record.three_ds_server_url == "https://gw.example.ma/3ds/rreq"
    if status == "C":
        assert ares["acsURL"] == directory["bank"] + "/acs/challenge"
        acs = AcsTransaction.objects.get()
        # The ACS knows the directory's transaction and sends its RReq to the directory, which relays it.
        assert (str(acs.ds_trans_id), acs.three_ds_server_url) == (ares["dsTransID"],
                                                                   directory["switch"] + "/3ds/rreq")
    if status == "Y":
        assert ares["eci"] == "05" and len(ares["authenticationValue"]) == 28
    again = answer(post(directory["switch"] + "/3ds/areq", message, link=TO_SERVER), link=TO_SERVER)
    assert again == ares  # a re-sent AReq: the same answer, one record
    assert DirectoryTransaction.objects.count() == 1


def test_an_unknown_bin_gets_ares_n_reason_08_and_nothing_reaches_a_bank(directory):
    message = areq("4111111111111111")
    response = post(directory["switch"] + "/3ds/areq", message, link=TO_SERVER)
    assert response.status_code == 200
    ares = answer(response, link=TO_SERVER)
    assert (ares["transStatus"], ares["transStatusReason"], ares["threeDSServerTransID"]) == (
        "N", "08", message["threeDSServerTransID"])
    assert not DirectoryTransaction.objects.exists() and not AcsTransaction.objects.exists()
    assert threeds_server.send_areq(message)["transStatusReason"] == "08"  # the gateway reads it as a refusal


@pytest.mark.parametrize("how", ["tampered", "acs key", "unsigned"])
def test_an_areq_not_signed_with_the_gateway_link_key_is_refused(directory, how):
    message = areq("4000110000000041")
    body, signature = threeds.sign_body(message, link=TO_ACS if how == "acs key" else TO_SERVER)
    if how == "tampered":
        body = body.replace(b'"28500"', b'"00100"')
    headers = {"Content-Type": "application/json"}
    if how != "unsigned":
        headers[threeds.SIGNATURE_HEADER] = signature
    response = httpx.post(directory["switch"] + "/3ds/areq", content=body, headers=headers, timeout=15)
    assert response.status_code == 400
    erro = answer(response, link=TO_SERVER)
    assert (erro["messageType"], erro["errorCode"], erro["errorComponent"]) == ("Erro", "302", "D")
    assert not DirectoryTransaction.objects.exists() and not AcsTransaction.objects.exists()


def test_the_acs_refuses_what_the_gateway_link_key_signed(directory):
    message = {**areq("4000110000000041"), "dsTransID": str(uuid.uuid4())}
    response = post(directory["bank"] + "/acs/areq", message, link=TO_SERVER)
    assert response.status_code == 400
    assert answer(response, link=TO_ACS)["errorCode"] == "302"
    assert not AcsTransaction.objects.exists()
    assert httpx.post(directory["bank"] + "/3ds/areq", timeout=10).status_code == 404  # the bank has no directory


def test_an_rreq_not_signed_with_the_acs_link_key_is_refused(directory):
    message = areq("5220110000000026", "2812")
    ares = answer(post(directory["switch"] + "/3ds/areq", message, link=TO_SERVER), link=TO_SERVER)
    rreq = {"messageType": "RReq", "messageVersion": "2.2.0", "threeDSServerTransID": message["threeDSServerTransID"],
            "acsTransID": ares["acsTransID"], "dsTransID": ares["dsTransID"], "transStatus": "Y", "eci": "02",
            "authenticationValue": "x" * 28, "messageCategory": "01"}
    forged = post(directory["switch"] + "/3ds/rreq", rreq, link=TO_SERVER)  # the gateway's key, not the ACS's
    assert forged.status_code == 400
    assert answer(forged, link=TO_ACS)["errorCode"] == "302"
    unknown = post(directory["switch"] + "/3ds/rreq", {**rreq, "dsTransID": str(uuid.uuid4())}, link=TO_ACS)
    assert unknown.status_code == 404 and answer(unknown, link=TO_ACS)["errorCode"] == "301"
    assert DirectoryTransaction.objects.get().rreq_status == ""


def test_acs_down_is_an_erro_the_gateway_takes_as_a_directory_fault(directory):
    Route.objects.filter(bin_prefix="522011").update(acs_url=f"http://127.0.0.1:{free_port()}/acs/areq")
    message = areq("5220110000000026", "2812")
    response = post(directory["switch"] + "/3ds/areq", message, link=TO_SERVER)
    assert response.status_code == 502
    erro = answer(response, link=TO_SERVER)
    assert (erro["messageType"], erro["errorCode"], erro["threeDSServerTransID"]) == (
        "Erro", "405", message["threeDSServerTransID"])
    assert not AcsTransaction.objects.exists()
    with pytest.raises(threeds_server.DirectoryError, match="HTTP 502"):
        threeds_server.send_areq(areq("5220110000000026", "2812"))
    # The other bank's route still answers.
    assert answer(post(directory["switch"] + "/3ds/areq", areq("4000110000000041"), link=TO_SERVER),
                  link=TO_SERVER)["transStatus"] == "Y"
