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


# --- the store keys in the back office -------------------------------------------------------------------------


def _failing_admin_post(monkeypatch, path: str, data: dict, break_at: tuple[object, str]) -> tuple[str, str]:
    """A gateway staff member's POST that fails at ``break_at`` (an object, an attribute), reported by the
    project's exception reporter (settings.DEFAULT_EXCEPTION_REPORTER and its filter), text and HTML."""
    from django.views.debug import get_exception_reporter_class

    from tests.support.staff import signed_in, staff_account

    staff_account("staff", parties=["gateway"])
    browser = signed_in("gateway")
    browser.raise_request_exception = False

    def broken(*args, **kwargs):
        raise RuntimeError("back office exploded")

    monkeypatch.setattr(*break_at, broken)
    caught = []

    def keep(sender, request, **kwargs):
        caught.append((request, sys.exc_info()))

    got_request_exception.connect(keep)
    try:
        response = browser.post(path, data)
    finally:
        got_request_exception.disconnect(keep)
    assert response.status_code == 500
    ((request, exc_info),) = caught
    reporter = get_exception_reporter_class(request)(request, *exc_info, is_email=True)
    return reporter.get_traceback_text(), html.unescape(reporter.get_traceback_html())


def test_a_failing_rotation_reports_neither_the_new_key_nor_the_old(monkeypatch):
    from tasdid.gateway import services
    from tasdid.gateway.admin import MerchantAdmin
    from tasdid.gateway.models import Merchant

    from .conftest import STORE_KEY

    merchant = make_merchant()
    text, page = _failing_admin_post(
        monkeypatch, f"/admin/gateway/merchant/{merchant.pk}/rotation/",
        {"overlap_days": "3", "confirmation": services.rotation_confirmation(merchant)},
        (MerchantAdmin, "log_change"))
    new_key = Merchant.objects.get(pk=merchant.pk).store_key
    assert new_key != STORE_KEY  # rotated before the failure: the new key was in memory
    assert "back office exploded" in text and "rotation_view" in text and "rotation" in page
    for report in (text, page):
        assert new_key not in report and STORE_KEY not in report


def test_a_failing_change_of_the_store_key_reports_no_key(monkeypatch):
    from tasdid.gateway import services

    merchant = make_merchant()
    typed = "A-STORE-KEY-TYPED-BY-STAFF-42"
    text, page = _failing_admin_post(
        monkeypatch, f"/admin/gateway/merchant/{merchant.pk}/change/",
        {"client_id": merchant.client_id, "name": "Boutique", "mode": "test", "active": "on",
         "hosts": "shop.example.ma", "new_store_key": typed},
        (services, "merchant_register"))
    assert "back office exploded" in text and "save_model" in text
    assert "new_store_key" in text
    for report in (text, page):
        assert typed not in report
