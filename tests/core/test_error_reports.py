"""Error reports never show a card number, a CVV or a code: frame variables, POST and GET data, the exception."""

import re
import sys
from dataclasses import dataclass
from html import unescape

import pytest
from django.test import Client, RequestFactory
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter, get_exception_reporter_class

from tasdid.core.error_reports import CLEANSED, cleanse, cleanse_text, mask_card_numbers

VISA = "4000000000000002"  # Luhn-valid
VISA_MASKED = "400000******0002"
MASTERCARD = "5220110000000026"
MASTERCARD_MASKED = "522011******0026"
CVV = "739"
OTP, FIDELIO_CODE, STORE_KEY = "482193", "551177", "TASDID-DEMO-STORE-KEY"


@dataclass
class CardData:
    number: str
    expiry: str
    cvv: str


def _fail_with_card_data(request, *, card_data_in_message: bool):
    """A payment step that fails with card data in its locals, as a bug in the gateway or the bank could."""
    pan = VISA
    fields = {"acctNumber": MASTERCARD, "cvv": CVV, "purchaseAmount": "28500", "threeDSSessionData": SEALED}
    card = CardData(number=VISA, expiry="12/30", cvv=CVV)
    typed = " ".join(VISA[i:i + 4] for i in range(0, 16, 4))
    note = f"carte {pan} refusée pour {fields['purchaseAmount']} centimes"
    otp, fidelio_code, store_key = OTP, FIDELIO_CODE, STORE_KEY
    codes = {"otp": otp, "fidelio_code": fidelio_code, "store_key": store_key}
    if card_data_in_message:
        raise ValueError(f"autorisation impossible : {note}, {typed}, {card}, {codes}")
    raise ValueError("autorisation impossible")


def _report(request, reporter_class=ExceptionReporter) -> tuple[str, str]:
    try:
        _fail_with_card_data(request, card_data_in_message=reporter_class is not ExceptionReporter)
    except ValueError:
        reporter = reporter_class(request, *sys.exc_info())
        return reporter.get_traceback_text(), reporter.get_traceback_html()
    raise AssertionError("unreachable")


SEALED = "c2VhbGVk"
SECRETS = [VISA, MASTERCARD, "4000 0000 0000 0002", f"'{CVV}'", OTP, FIDELIO_CODE, STORE_KEY, SEALED,
           "4111 1111 1111 1111", "4111111111111111"]


def html_values(html: str) -> list[tuple[str, str]]:
    """The (name, value) rows of an HTML report: every frame's local variables, then GET, POST, META…"""
    return [(unescape(k), unescape(v))
            for k, v in re.findall(r'<td>([^<]*)</td>\s*<td class="code"><pre>(.*?)</pre></td>', html, re.S)]


def _assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret


def test_frame_variables_and_post_data_are_masked_in_text_and_html_reports():
    request = RequestFactory().post("/fim/est3Dgate", {
        "card_number": "4111 1111 1111 1111", "cvv": CVV, "expiry_month": "12", "email": "client@example.ma",
        "amount": "285.00", "threeDSSessionData": SEALED,
    })
    text, html = _report(request)
    for report in (text, html):
        _assert_clean(report)
    values = html_values(html)
    # What is not secret stays readable for whoever debugs: the masked card, the amounts, the email.
    assert ("pan", f"'{CLEANSED}'") in values and ("typed", f"'{VISA_MASKED}'") in values
    assert ("note", f"'carte {VISA_MASKED} refusée pour 28500 centimes'") in values
    assert ("card", f"CardData(number='{CLEANSED}', expiry='12/30', cvv='{CLEANSED}')") in values
    assert ("fields", f"{{'acctNumber': '{CLEANSED}',\n 'cvv': '{CLEANSED}',\n 'purchaseAmount': '28500',\n "
                      f"'threeDSSessionData': '{CLEANSED}'}}") in values
    assert ("otp", f"'{CLEANSED}'") in values and ("store_key", f"'{CLEANSED}'") in values
    # POST, in both reports.
    assert ("card_number", f"'{CLEANSED}'") in values and ("cvv", f"'{CLEANSED}'") in values
    assert ("email", "'client@example.ma'") in values and ("amount", "'285.00'") in values
    assert f"card_number = '{CLEANSED}'" in text and f"cvv = '{CLEANSED}'" in text
    assert "email = 'client@example.ma'" in text and "expiry_month = '12'" in text


def test_the_exception_text_and_the_query_string_are_masked_by_the_project_reporter():
    request = RequestFactory().get("/paiement", {"pan": VISA, "note": f"carte {MASTERCARD}", "page": "2"})
    reporter_class = get_exception_reporter_class(request)
    text, html = _report(request, reporter_class)
    for report in (text, html):
        _assert_clean(report)
    assert (f"autorisation impossible : carte {VISA_MASKED} refusée pour 28500 centimes, {VISA_MASKED}, "
            f"CardData(number='{CLEANSED}', expiry='12/30', cvv='{CLEANSED}'), {{'otp': '{CLEANSED}', "
            f"'fidelio_code': '{CLEANSED}', 'store_key': '{CLEANSED}'}}") in text
    assert f"note = 'carte {MASTERCARD_MASKED}'" in text and "page = '2'" in text
    assert ("QUERY_STRING", f"\"pan='{CLEANSED}'&note=carte+{MASTERCARD_MASKED}&page=2\"") in html_values(html)


def test_the_portal_identification_views_mark_their_codes_sensitive(monkeypatch):
    """Even Django's own filter (which knows nothing of our field names) hides the codes of these forms."""
    from tasdid.portal import views

    def broken(request, *args, **kwargs):
        raise RuntimeError("panne")

    monkeypatch.setattr(views, "_identify", broken)
    factory = RequestFactory()
    for view, field, path in ((views.mobile, "fidelio_code", "/mobile"), (views.fixed, "payment_code", "/fixe")):
        request = factory.post(path, {"number": "06 61 00 00 01", field: "482193", "email": "k@example.ma"})
        with pytest.raises(RuntimeError):
            view(request)
        post = SafeExceptionReporterFilter().get_post_parameters(request)
        assert post[field] == CLEANSED and post["email"] == "k@example.ma"


@pytest.mark.django_db
def test_a_debug_page_of_a_failing_identification_shows_no_code(settings, monkeypatch):
    """With DEBUG on (a developer's machine), the technical 500 page goes through the same filter."""
    from tasdid.portal import views

    def broken(*args, **kwargs):
        raise RuntimeError(f"panne avec {VISA}")

    settings.DEBUG = True
    monkeypatch.setattr(views.FixedForm, "identify", broken)
    response = Client(raise_request_exception=False).post("/fixe", {
        "number": "05 22 00 00 01", "payment_code": "4821", "email": "k@example.ma", "terms": "on",
    })
    html = response.content.decode()
    assert response.status_code == 500 and "RuntimeError" in html
    assert VISA not in html and f"panne avec {VISA_MASKED}" in html
    assert "&#x27;4821&#x27;" not in html and "payment_code" in html


def test_a_password_element_of_an_xml_body_is_hidden():
    body = repr(b"<CC5Request><Name>api</Name><Password>S3cret-pw</Password><ClientId>600000001</ClientId>")
    cleansed = cleanse_text(body)
    assert "S3cret-pw" not in cleansed
    assert "<Name>api</Name>" in cleansed and "<ClientId>600000001</ClientId>" in cleansed


@pytest.mark.parametrize(("text", "expected"), [
    (f"carte {VISA}.", f"carte {VISA_MASKED}."),
    ("4000-0000-0000-0002", VISA_MASKED),
    (f"{VISA} 123", f"{VISA_MASKED} 123"),  # a number beside a CVV: the whole run is no card, its part is
    (f"{VISA} 739", "400000*********2739"),  # ... or, 1 time in 10, the whole run passes Luhn: hidden all the same
    ("4000000000000003", "4000000000000003"),  # not Luhn-valid
    ("400000000002", "400000000002"),  # 12 digits: too short
    ("commande 20261126205038 du 26/11", "commande 20261126205038 du 26/11"),
])
def test_card_numbers_in_text(text, expected):
    assert mask_card_numbers(text) == expected


def test_sensitive_keys_in_text_and_containers():
    assert cleanse_text("acctNumber=x&cvv=739&amount=285.00") == (
        f"acctNumber='{CLEANSED}'&cvv='{CLEANSED}'&amount=285.00")
    assert cleanse_text('{"HASH": "abc==", "oid": "TSD1"}') == f'{{"HASH": \'{CLEANSED}\', "oid": "TSD1"}}'
    assert cleanse({"Payment-Code": "4821", "items": [{"card_number": VISA}, VISA]}) == {
        "Payment-Code": CLEANSED, "items": [{"card_number": CLEANSED}, VISA_MASKED]}
    assert repr(cleanse(int(VISA))) == VISA_MASKED and cleanse(285) == 285


def test_logged_messages_and_tracebacks_show_card_numbers_masked():
    import logging

    from tasdid.core.error_reports import CardDataLogFilter

    try:
        raise RuntimeError(f"panne avec {VISA}")
    except RuntimeError:
        record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Erreur sur %s (code=%s)",
                                   (f"/paiement?pan={MASTERCARD}", "51"), sys.exc_info())
    assert CardDataLogFilter().filter(record) is True
    text = logging.Formatter("%(message)s").format(record)
    assert text.startswith(f"Erreur sur /paiement?pan={MASTERCARD_MASKED} (code=51)\nTraceback")
    assert text.endswith(f"RuntimeError: panne avec {VISA_MASKED}")
    assert VISA not in text and MASTERCARD not in text


def test_every_log_handler_masks_card_numbers(settings):
    assert all("card_data" in handler.get("filters", []) for handler in settings.LOGGING["handlers"].values())
