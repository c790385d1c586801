"""Django's error reports (the 500 email, the log's report) never show a card number, a CVV or an SMS code:
every function of the bank holding one is marked with ``sensitive_variables``, the challenge page's POST with
``sensitive_post_parameters``. The exceptions are forced where the secret is in memory."""

import html
import re
import sys

import pytest
from django.core.signals import got_request_exception
from django.test import Client
from django.utils import timezone
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter, get_exception_reporter_class

from tasdid.bank import rules, sandbox, selectors, services
from tasdid.core import threeds
from tasdid.messaging import tasks

from .conftest import areq_message, creq_for

LINK = threeds.LINK_DIRECTORY_ACS  # these tests stand in for the directory

pytestmark = pytest.mark.django_db

MAIN = sandbox.card_by_outcome("00", "challenge")
VISA = sandbox.card_by_outcome("00", "none")
CODE = "246810"


def reports(request, exc_info) -> tuple[str, str]:
    """The text and HTML reports as Django's own filter writes them: what the decorators hide, before the
    project's filter (core.error_reports, masking by content, tested in tests/core) adds its own layer."""
    reporter = ExceptionReporter(request, *exc_info, is_email=True)
    reporter.filter = SafeExceptionReporterFilter()
    return reporter.get_traceback_text(), html.unescape(reporter.get_traceback_html())


def secrets_of(card: sandbox.SandboxCard) -> tuple[str, ...]:
    spaced = " ".join(card.number[i:i + 4] for i in range(0, 16, 4))
    return (card.number, spaced, f"'{card.cvv}'", f'"{card.cvv}"')


def assert_none_in(secrets, *texts: str) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, secret


def broken(*args, **kwargs):
    raise RuntimeError("broken on purpose")


def bank_client() -> Client:
    return Client(raise_request_exception=False, **{"tasdid.party": "bank"})


def failing_request(client: Client, path: str, **kwargs):
    caught = []

    def keep(sender, request, **_kwargs):
        caught.append((request, sys.exc_info()))

    got_request_exception.connect(keep)
    try:
        response = client.post(path, **kwargs)
    finally:
        got_request_exception.disconnect(keep)
    assert response.status_code == 500
    ((request, exc_info),) = caught
    return reports(request, exc_info)


def test_an_exception_inside_authorize_reports_no_card_data(banks, monkeypatch):
    monkeypatch.setattr(rules, "decide", broken)
    with pytest.raises(RuntimeError) as raised:
        services.authorize(pan=VISA.number, expiry_yymm="2909", cvv=VISA.cvv, amount_minor=28500, currency="504",
                           merchant_id="600000001", stan="000001", transmitted_at=timezone.now())
    text, page = reports(None, (raised.type, raised.value, raised.tb))
    assert "broken on purpose" in text and "authorize" in page
    assert_none_in(secrets_of(VISA), text, page)


def test_an_exception_inside_the_areq_endpoint_reports_no_card_data(banks, monkeypatch):
    monkeypatch.setattr(selectors.Card.objects, "select_related", broken)
    body, signature = threeds.sign_body(areq_message(MAIN, server_url="https://gw.example.ma"), link=LINK)
    text, page = failing_request(bank_client(), "/acs/areq", data=body, content_type="application/json",
                                 headers={threeds.SIGNATURE_HEADER: signature})
    assert "broken on purpose" in text and "areq_answer" in page
    assert_none_in(secrets_of(MAIN), text, page)


def test_an_exception_while_checking_the_sms_code_reports_no_code(banks, monkeypatch):
    browser = bank_client()
    body, signature = threeds.sign_body(areq_message(MAIN, server_url="https://gw.example.ma"), link=LINK)
    ares = services.areq_answer(message=threeds.verify_body(body, signature, message_type="AReq", link=LINK))
    page = browser.post("/acs/challenge", {"creq": creq_for(ares), "threeDSSessionData": "sealed-card-data"})
    assert page.status_code == 200
    monkeypatch.setattr(services.authentication, "code_matches", broken)
    text, report = failing_request(browser, f"/acs/challenge/{ares['acsTransID']}", data={
        "csrfmiddlewaretoken": re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1],
        "threeDSSessionData": "sealed-card-data", "action": "validate", "code": CODE})
    assert "broken on purpose" in text and "challenge_submit_code" in report
    assert "code = '********************'" in text
    assert_none_in((CODE, "sealed-card-data"), text, report)


def test_an_exception_while_queueing_the_sms_code_reports_neither_the_code_nor_its_text(banks, monkeypatch):
    body, signature = threeds.sign_body(areq_message(MAIN, server_url="https://gw.example.ma"), link=LINK)
    ares = services.areq_answer(message=threeds.verify_body(body, signature, message_type="AReq", link=LINK))
    monkeypatch.setattr(services.authentication, "generate_numeric", lambda length: CODE)
    monkeypatch.setattr(type(tasks.deliver_sms), "enqueue", broken)
    with pytest.raises(RuntimeError) as raised:
        services.challenge_open(acs_trans_id=ares["acsTransID"],
                                three_ds_server_trans_id=ares["threeDSServerTransID"])
    exc_info = (raised.type, raised.value, raised.tb)
    text, page = reports(None, exc_info)
    project = get_exception_reporter_class(None)(None, *exc_info, is_email=True)
    project_text, project_page = project.get_traceback_text(), html.unescape(project.get_traceback_html())
    for report in (text, page, project_text, project_page):
        assert "broken on purpose" in report and "_send_otp" in report and "sms_send" in report
    assert_none_in((CODE, "votre code de sécurité"), text, page, project_text, project_page)
