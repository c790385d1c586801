"""The hosted page in the customer's language: the merchant request's ``lang`` decides it, the page's switch changes
it for the payment session (and the 3-D Secure challenge that follows), refusals speak the request's ``lang``. The
ErrMsg sent to the merchant stays the protocol's French text."""

import html
import re

import pytest

from tasdid.core.acquiring import AuthorizationResult
from tasdid.core.i18n import COOKIE
from tasdid.gateway.models import Attempt, PaymentSession

from .conftest import (
    VISA,
    card_post,
    form_of,
    gateway_client,
    make_merchant,
    merchant_fields,
    open_session,
    signed,
)

pytestmark = pytest.mark.django_db

FIXE, INTERNET = "0000111995072017", "0000111996072017"
HTML = {"fr": '<html lang="fr" dir="ltr">', "ar": '<html lang="ar" dir="rtl">', "en": '<html lang="en" dir="ltr">'}
TITLE = {"fr": "Paiement sécurisé", "ar": "دفع آمن", "en": "Secure payment"}
DEFER = {"fr": "Reporter la facture {}", "ar": "تأجيل الفاتورة {}", "en": "Defer invoice {}"}


def text(response) -> str:
    return html.unescape(response.content.decode())


def language_of(response) -> str:
    body = text(response)
    (lang,) = [code for code, tag in HTML.items() if tag in body]
    return lang


@pytest.mark.parametrize(("asked", "lang"), [("ar", "ar"), ("en", "en"), ("fr", "fr"), ("AR", "ar"), ("de", "fr"),
                                             ("<script>", "fr"), ("ar-MA", "fr"), ("", "fr"), (None, "fr")])
def test_the_merchant_lang_decides_the_page(merchant, asked, lang):
    client = gateway_client()
    token = open_session(client, signed(merchant_fields(lang=asked)))
    assert PaymentSession.objects.get().lang == lang
    response = client.get(f"/paiement/{token}", headers={"Accept-Language": "en-US,en;q=0.9"})
    body = text(response)
    assert language_of(response) == lang and response["Content-Language"] == lang
    assert f"<h1>{TITLE[lang]}</h1>" in body
    for ref in (FIXE, INTERNET):  # the trash buttons name their invoice, in the page's language
        label = DEFER[lang].format(ref)
        assert f'aria-label="{label}" title="{label}"><img src="/static/gateway/trash.svg" alt=""' in body
    assert f'<a href="/conditions?lang={lang}"' in body


def test_arabic_page_reads_right_to_left_with_numbers_kept_left_to_right(merchant):
    client = gateway_client()
    token = open_session(client, signed(merchant_fields(lang="ar")))
    body = text(client.get(f"/paiement/{token}"))
    assert "<h2 id=\"invoices-title\">فواتيرك</h2>" in body
    # The amount as the biller writes it in Arabic (« درهم »), isolated in its own direction (the unit's, right to
    # left; the number's digits keep their order).
    assert '<td class="amount total" id="invoices-total"><bdi>285.00\u00a0درهم</bdi></td>' in body
    main = body.split("<footer", 1)[0].split("<main", 1)[1]
    shown = re.sub(r"<[^>]*>", " ", main)  # what the page shows, not its tokens
    read_out = " ".join(re.findall(r'(?:aria-label|title|alt|data-total)="([^"]*)"', main))  # and what it reads out
    assert 'data-total="285.00\u00a0درهم"' in body
    assert not re.search(r"(?<![A-Za-z])DH(?![A-Za-z])", shown + " " + read_out)
    assert f'<bdi class="mono ref" dir="ltr">{FIXE}</bdi>' in body
    assert '<dd class="mono" id="order-id" dir="ltr">ORDER-0001</dd>' in body
    assert '<button type="submit" class="button primary pay-button">تأكيد الدفع</button>' in body


def test_the_switch_changes_the_session_language_for_the_later_pages(merchant):
    client = gateway_client()
    token = open_session(client, signed(merchant_fields(lang="ar")))
    switched = client.get(f"/paiement/{token}?lang=en")
    assert language_of(switched) == "en"
    assert PaymentSession.objects.get().lang == "en"
    assert switched.cookies[COOKIE].value == "en"
    # later pages of the session, without ?lang= and whatever cookie the browser sends, speak English
    client.cookies[COOKIE] = "fr"
    assert language_of(client.get(f"/paiement/{token}")) == "en"
    deferred = client.post(f"/paiement/{token}", {"action": "defer", "ref": INTERNET}, follow=True)
    assert language_of(deferred) == "en" and "Also pay invoice " + INTERNET in text(deferred)
    # a language that is not ours changes nothing
    assert language_of(client.get(f"/paiement/{token}?lang=de")) == "en"
    assert PaymentSession.objects.get().lang == "en"


def test_the_switch_needs_the_browser_that_opened_the_session(merchant):
    owner = gateway_client()
    token = open_session(owner, signed(merchant_fields(lang="ar")))
    assert gateway_client().get(f"/paiement/{token}?lang=en").status_code == 404
    assert PaymentSession.objects.get().lang == "ar"


def test_card_errors_in_arabic_summarised_and_linked(merchant):
    client = gateway_client()
    token = open_session(client, signed(merchant_fields(lang="ar")))
    response = client.post(f"/paiement/{token}", card_post(number="4111111111111112", cvv="1", terms=False,
                                                           selection=f"{FIXE},{INTERNET}"))
    body = text(response)
    assert language_of(response) == "ar"
    summary = re.search(r'<div class="alert error error-summary" id="error-summary".*?</div>', body, re.S).group(0)
    assert "لم يُرسَل الدفع: يُرجى تصحيح الحقول الـ3 المشار إليها أدناه." in summary
    assert re.findall(r'<a href="#(\w+)">([^<]+)</a>', summary) == [
        ("id_card_number", "رقم البطاقة: رقم البطاقة هذا غير صالح: تحقق منه."),
        ("id_cvv", "رمز التحقق (CVV): يجب أن يتكون رمز التحقق من 3 أرقام."),
        ("id_terms", "أوافق على الشروط العامة للاستخدام: يجب أن توافق على الشروط العامة للاستخدام."),
    ]
    assert re.search(r'<input type="checkbox" name="terms" required aria-invalid="true" '
                     r'aria-describedby="id_terms_error" id="id_terms">', body)
    assert Attempt.objects.count() == 0


def test_a_defer_refused_in_english(merchant):
    client = gateway_client()
    token = open_session(client, signed(merchant_fields(lang="en")))
    client.post(f"/paiement/{token}", {"action": "defer", "ref": INTERNET})
    refused = client.post(f"/paiement/{token}", {"action": "defer", "ref": FIXE}, headers={"X-Tasdid-Fragment":
                                                                                            "invoices"})
    assert refused.status_code == 400
    assert '<p class="alert error" role="alert">You must pay at least one invoice: the last one cannot be deferred.' \
           "</p>" in text(refused)


@pytest.mark.parametrize(("asked", "lang", "message"), [
    ("ar", "ar", "توقيع «hash» لطلب الدفع غير صالح."),
    ("en", "en", "The signature “hash” of the payment request is invalid."),
    ("de", "fr", "La signature « hash » de la demande de paiement est invalide."),
    ("", "fr", "La signature « hash » de la demande de paiement est invalide."),
])
def test_a_refusal_before_any_session_speaks_the_request_lang(merchant, asked, lang, message):
    fields = signed(merchant_fields(lang=asked))
    fields["hash"] = "A" + fields["hash"][1:]
    response = gateway_client().post("/fim/est3Dgate", fields)
    assert response.status_code == 400 and language_of(response) == lang
    assert f'<p class="alert error" id="refusal">{message}</p>' in text(response)
    assert PaymentSession.objects.count() == 0


def test_a_refusal_without_a_lang_field_keeps_the_customer_language(merchant):
    fields = merchant_fields(lang=None)
    fields.pop("oid")
    client = gateway_client()
    client.cookies[COOKIE] = "en"
    response = client.post("/fim/est3Dgate", signed(fields))
    assert language_of(response) == "en"
    assert "The required field “oid” is missing from the payment request." in text(response)
    arabic = gateway_client().post("/fim/est3Dgate", {"clientid": "x", "LANG": "ar", "lang": "en"})
    assert language_of(arabic) == "ar"  # a field posted twice is refused, in the first lang's language
    assert "الحقل «lang» مُرسَل أكثر من مرة." in text(arabic)


def test_the_same_order_posted_again_in_another_language_continues_in_it(merchant):
    client = gateway_client()
    token = open_session(client, signed(merchant_fields(lang="fr")))
    again = open_session(client, signed(merchant_fields(lang="ar", rnd="1700000001")))
    assert again == token
    assert PaymentSession.objects.get().lang == "ar"
    assert language_of(client.get(f"/paiement/{token}")) == "ar"


@pytest.mark.django_db(transaction=True)
def test_the_3ds_request_carries_the_session_language_and_errmsg_stays_french(counterparty, rails):
    make_merchant(hosts=["shop.example.ma", counterparty.host])
    client = gateway_client()
    token = open_session(client, signed(merchant_fields(base=counterparty.url, lang="fr")))
    client.get(f"/paiement/{token}?lang=ar")
    rails.authorize_answer = AuthorizationResult("51")
    response = client.post(f"/paiement/{token}", card_post(number=VISA, selection=f"{FIXE},{INTERNET}"))
    (areq,) = counterparty.state.areqs
    assert areq["browserLanguage"] == "ar"
    assert language_of(response) == "ar"
    assert "جارٍ الرجوع إلى موقع التاجر…" in text(response)
    _action, fields = form_of(response)
    assert (fields["ProcReturnCode"], fields["ErrMsg"]) == ("51", "Provision insuffisante")
    assert counterparty.state.callbacks[0]["ErrMsg"] == "Provision insuffisante"


@pytest.mark.django_db(transaction=True)
def test_the_status_page_and_the_cancel_speak_the_session_language(merchant, counterparty):
    make_merchant(client_id="600000098", hosts=[counterparty.host])
    client = gateway_client()
    token = open_session(client, signed(merchant_fields(client_id="600000098", base=counterparty.url, lang="en"),
                                        store_key="SHOP-STORE-KEY-1234"))
    cancelled = client.post(f"/paiement/{token}", {"action": "cancel"})
    assert language_of(cancelled) == "en" and "Payment cancelled. Going back to the merchant's site…" in text(cancelled)
    assert form_of(cancelled)[1]["ErrMsg"] == "Paiement annulé par le client"
    status = client.get(f"/paiement/{token}")
    assert language_of(status) == "en" and "<h1>Payment cancelled</h1>" in text(status)
    assert language_of(client.get(f"/paiement/{token}?lang=ar")) == "ar"


def test_the_refusal_page_switch_keeps_the_reason_in_the_other_languages(merchant):
    fields = signed(merchant_fields(lang="ar", currency="978"))
    refused = gateway_client().post("/fim/est3Dgate", fields)
    body = text(refused)
    assert refused.status_code == 400 and language_of(refused) == "ar"
    assert '<p class="alert error" id="refusal">يجب أن تكون العملة «currency» هي 504 (الدرهم المغربي).</p>' in body
    links = dict((lang, url) for url, lang in re.findall(r'<a href="([^"]+)" lang="(\w\w)"', body))
    assert sorted(links) == ["en", "fr"] and all(url.startswith("/fim/refus?r=") for url in links.values())
    browser = gateway_client()
    english = browser.get(links["en"])
    assert english.status_code == 200 and language_of(english) == "en"
    assert '<p class="alert error" id="refusal">The currency “currency” must be 504 (Moroccan dirham).</p>' \
        in text(english)
    # and its own switch, as on any page, to French
    french_url = re.search(r'<a href="([^"]+)" lang="fr"', text(english)).group(1)
    french = browser.get(html.unescape(french_url))
    assert language_of(french) == "fr"
    assert "La devise « currency » doit être 504 (dirham marocain)." in text(french)
    # a reason that is not the gateway's own is not shown
    token = re.search(r"r=([^&]+)", links["en"]).group(1)
    assert browser.get("/fim/refus?r=" + token[:-2] + "xx&lang=en").status_code == 404
    assert browser.get("/fim/refus?lang=en").status_code == 404
    assert PaymentSession.objects.count() == 0


def test_the_3ds_return_address_refuses_a_link_in_every_language():
    browser = gateway_client()
    arabic = browser.get("/3ds/notification?lang=ar")
    assert arabic.status_code == 405 and language_of(arabic) == "ar"
    # « 3-D Secure » isolated left to right inside the Arabic sentence
    assert '<p class="alert error" id="refusal">يستقبل هذا العنوان نتيجة مصادقة \u20663-D Secure\u2069.</p>' \
        in text(arabic)
    english_url = re.search(r'<a href="(/fim/refus\?[^"]+)" lang="en"', text(arabic)).group(1)
    english = browser.get(html.unescape(english_url))
    assert language_of(english) == "en"
    assert "This address receives the return from the 3-D Secure authentication." in text(english)
