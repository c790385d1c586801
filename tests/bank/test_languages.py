"""The bank's challenge in the customer's language: the AReq's ``browserLanguage`` decides the challenge page and its
SMS; the page's own switch (a form: the page is reached by POST) changes both for this challenge."""

import httpx
import pytest

from tasdid.bank.demo import seed_demo
from tasdid.bank.models import AcsTransaction
from tests.support.sms import code_in, last_sms_text

from .conftest import areq_message, creq_for, post_areq, verified
from .test_acs_http import MAIN, SESSION_DATA, Browser, csrf_of

SMS = {
    "fr": "Crédit du Sahel : votre code de sécurité est {code} pour le paiement de {amount} chez Tasdid Télécom. "
          "Il expire dans 5 minutes. Ne le communiquez à personne.",
    "ar": "Crédit du Sahel: رمز الأمان الخاص بك هو {code} لدفع {amount} لدى Tasdid Télécom. "
          "تنتهي صلاحيته خلال 5 دقائق. لا تُطلع عليه أحدًا.",
    "en": "Crédit du Sahel: your security code is {code} for the payment of {amount} to Tasdid Télécom. "
          "It expires in 5 minutes. Do not share it with anyone.",
}
# The amount as the biller writes it in each language (« درهم » in Arabic, never "DH"); a plain space in the SMS.
NBSP = "\u00a0"
AMOUNT = {"fr": "285.00 DH", "ar": "285.00 درهم", "en": "285.00 DH"}
TITLE = {"fr": "Authentification du paiement", "ar": "مصادقة الدفع", "en": "Payment authentication"}
HTML = {"fr": '<html lang="fr" dir="ltr">', "ar": '<html lang="ar" dir="rtl">', "en": '<html lang="en" dir="ltr">'}


@pytest.fixture
def bank(parties):
    seed_demo()
    return parties["bank"]


def start(bank_url, server, browser, **areq):
    ares = verified(post_areq(bank_url, areq_message(MAIN, server_url=server.url, **areq)))
    page = browser.post(ares["acsURL"], {"creq": creq_for(ares), "threeDSSessionData": SESSION_DATA})
    return ares, page


def sms(lang: str, code: str) -> str:
    return SMS[lang].format(code=code, amount=AMOUNT[lang])


@pytest.mark.parametrize(("asked", "lang"), [("ar", "ar"), ("en", "en"), ("fr", "fr"), ("ar-MA", "ar"),
                                             ("EN-gb", "en"), ("de", "fr"), ("", "fr"), (None, "fr")])
def test_the_challenge_page_and_its_sms_speak_the_areq_language(bank, three_ds_server, run_tasks, asked, lang):
    areq = {} if asked is None else {"browserLanguage": asked}
    _ares, page = start(bank, three_ds_server, Browser(), **areq)
    assert page.status_code == 200
    assert HTML[lang] in page.text and f"<h1 id=\"acs-title\">{TITLE[lang]}</h1>" in page.text
    assert page.headers["Content-Language"] == lang
    shown = AMOUNT[lang].replace(" ", NBSP)
    assert f'<dd class="acs-amount"><bdi>{shown}</bdi></dd>' in page.text
    assert AcsTransaction.objects.get().language == lang
    run_tasks()
    text = last_sms_text(MAIN.phone)
    assert text == sms(lang, code_in(text))


def test_a_browser_language_that_is_not_a_language_tag_is_refused(bank, three_ds_server):
    for junk in (12, "x" * 9, ["ar"]):
        answer = post_areq(bank, areq_message(MAIN, server_url=three_ds_server.url, browserLanguage=junk))
        assert answer.status_code == 400
        erro = verified(answer)
        assert (erro["messageType"], erro["errorCode"], erro["errorDetail"]) == ("Erro", "203", "browserLanguage")
    assert AcsTransaction.objects.count() == 0


def test_arabic_wrong_code_then_the_switch_to_english_for_the_page_and_the_next_sms(bank, three_ds_server, run_tasks):
    browser = Browser()
    ares, page = start(bank, three_ds_server, browser, browserLanguage="ar")
    action = bank + f"/acs/challenge/{ares['acsTransID']}"
    run_tasks()
    first = code_in(last_sms_text(MAIN.phone))
    wrong = "000000" if first != "000000" else "111111"
    again = browser.post(action, {"csrfmiddlewaretoken": csrf_of(page), "threeDSSessionData": SESSION_DATA,
                                  "action": "validate", "code": wrong})
    assert HTML["ar"] in again.text
    assert '<div id="acs-code-errors" role="alert"><ul class="errorlist"><li><span class="visually-hidden">خطأ: ' \
           "</span>رمز خاطئ. تبقّت لك محاولتان.</li></ul></div>" in again.text
    assert 'aria-describedby="acs-code-errors acs-code-help" aria-invalid="true" autofocus>' in again.text
    # the switch: a form posting to the challenge, one button per other language
    assert '<button type="submit" name="lang" value="en" class="lang-button" lang="en" dir="ltr">English</button>' \
        in again.text
    assert '<span aria-current="true" lang="ar" dir="rtl">العربية</span>' in again.text

    english = browser.post(action, {"csrfmiddlewaretoken": csrf_of(again), "threeDSSessionData": SESSION_DATA,
                                    "action": "language", "lang": "en"})
    assert english.status_code == 200 and HTML["en"] in english.text
    assert "To secure your payment, we have just sent you a 6-digit code by SMS to" in english.text
    record = AcsTransaction.objects.get()
    assert (record.language, record.otp_failures, record.state, record.otp_sent_count) == ("en", 1, "challenge", 1)
    assert three_ds_server.rreqs == []

    resent = browser.post(action, {"csrfmiddlewaretoken": csrf_of(english), "threeDSSessionData": SESSION_DATA,
                                   "action": "resend"})
    assert "A new code has been sent to you by SMS. The previous one is no longer valid." in resent.text
    run_tasks()
    text = last_sms_text(MAIN.phone)
    assert text == sms("en", code_in(text))
    wrong = browser.post(action, {"csrfmiddlewaretoken": csrf_of(resent), "threeDSSessionData": SESSION_DATA,
                                  "action": "validate", "code": "12"})
    assert "The code has 6 digits." in wrong.text


def test_a_language_switch_from_another_browser_changes_nothing(bank, three_ds_server):
    ares, page = start(bank, three_ds_server, Browser(), browserLanguage="ar")
    other = Browser()
    refused = other.post(bank + f"/acs/challenge/{ares['acsTransID']}",
                         {"csrfmiddlewaretoken": csrf_of(page), "threeDSSessionData": SESSION_DATA,
                          "action": "language", "lang": "en"})
    assert refused.status_code == 403
    assert AcsTransaction.objects.get().language == "ar"


def test_a_link_to_the_challenge_shows_the_error_page_in_the_language_asked(bank):
    for lang, title in (("ar", "تعذّرت المصادقة"), ("en", "Authentication not possible"),
                        ("fr", "Authentification impossible")):
        page = httpx.get(bank + f"/acs/challenge?lang={lang}", timeout=10)
        assert page.status_code == 405
        assert HTML[lang] in page.text and f"<h1>{title}</h1>" in page.text
