"""Django's error reports (the 500 email, the log's report) never show a card number or a CVV: every function
of the gateway holding one is marked with ``sensitive_variables``, and the card form's POST with
``sensitive_post_parameters``. The exception is forced where the card is in memory: inside ``send_areq``."""

import html
import sys
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.signals import got_request_exception
from django.test import Client
from django.utils import timezone
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from tasdid.core.acquiring import CardData
from tasdid.gateway import threeds_server, vault

from .conftest import card_post, make_merchant, merchant_fields, open_session, signed

pytestmark = pytest.mark.django_db(transaction=True)

PAN = "4111111111111111"
CVV = "987"
SECRETS = (PAN, "4111 1111 1111 1111", f"'{CVV}'", f'"{CVV}"')


def reports(request, exc_info) -> tuple[str, str]:
    """The text and HTML reports as Django's own filter writes them: what the decorators hide, before the
    project's filter (core.error_reports, masking by content, tested in tests/core) adds its own layer."""
    reporter = ExceptionReporter(request, *exc_info, is_email=True)
    reporter.filter = SafeExceptionReporterFilter()
    return reporter.get_traceback_text(), html.unescape(reporter.get_traceback_html())


def assert_no_card_data(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, secret


def test_an_exception_inside_send_areq_reports_no_card_data(monkeypatch, settings):
    make_merchant()
    browser = Client(raise_request_exception=False, **{"tasdid.party": "gateway"})
    token = open_session(browser, signed(merchant_fields()))

    def directory_exploded(url, **kwargs):
        raise RuntimeError("directory exploded")

    monkeypatch.setattr(threeds_server, "party_post", directory_exploded)
    caught = []

    def keep(sender, request, **kwargs):
        caught.append((request, sys.exc_info()))

    got_request_exception.connect(keep)
    try:
        response = browser.post(f"/paiement/{token}", card_post(number=PAN, cvv=CVV,
                                                                selection="0000111995072017,0000111996072017"))
    finally:
        got_request_exception.disconnect(keep)
    assert response.status_code == 500
    ((request, exc_info),) = caught
    text, page = reports(request, exc_info)
    # The report is about this failure, with its frames and the form's fields...
    assert "directory exploded" in text and "send_areq" in text and "submit_card" in page
    assert "card_number = '********************'" in text and "cvv = '********************'" in text
    # ... and holds no card data: not the POST, not a frame's variables (the AReq, its JSON body, the card).
    assert_no_card_data(text, page)


@pytest.mark.parametrize("call", ["seal", "unseal", "send_areq"])
def test_the_vault_and_the_areq_hide_the_card_in_their_frames(monkeypatch, call):
    card = CardData(pan=PAN, expiry_yymm="2912", cvv=CVV)
    sealed = vault.seal(attempt_id=1, threeds_server_trans_id="t", card=card)

    def broken(*args, **kwargs):
        raise RuntimeError("broken")

    monkeypatch.setattr(vault, "json", SimpleNamespace(loads=broken, dumps=broken))
    monkeypatch.setattr(threeds_server.threeds, "sign_body", broken)
    with pytest.raises(RuntimeError) as raised:
        if call == "seal":
            vault.seal(attempt_id=1, threeds_server_trans_id="t", card=card)
        elif call == "unseal":
            vault.unseal(sealed)
        else:
            threeds_server.send_areq(threeds_server.build_areq(
                attempt=SimpleNamespace(threeds_server_trans_id="t", amount=Decimal("1.00")),
                merchant=SimpleNamespace(name="Boutique", client_id="600000099"), card=card, now=timezone.now()))
    text, page = reports(None, (raised.type, raised.value, raised.tb))
    assert call in page
    assert_no_card_data(text, page)
