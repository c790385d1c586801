"""The sandbox phone page: send an SMS from any number to a short number, read what a number received."""

import datetime as dt
import importlib
import re

import pytest
from django.test import override_settings
from django.urls import clear_url_caches
from django.utils import timezone

from tasdid.messaging.models import HandsetMessage, Sms
from tests import factories


def inbox_texts(html: str) -> list[str]:
    return re.findall(r'<p class="sms-text">(.*?)</p>', html, re.S)


@pytest.mark.django_db
def test_the_phone_page_offers_to_send_code_to_1111(client):
    html = client.get("/sandbox/phone").content.decode()
    assert '<label for="id_sender">Numéro de l&#x27;expéditeur</label>' in html
    assert re.search(r'<input type="text" name="recipient" value="1111"[^>]*id="id_recipient"', html)
    assert re.search(r'<input type="text" name="text" value="code"[^>]*id="id_text"', html)
    assert '<label for="id_number">Numéro du téléphone</label>' in html


@pytest.mark.django_db
def test_sending_code_then_reading_the_answer_on_the_same_number(client, run_tasks):
    factories.mobile_line(number="+212661000001")
    response = client.post("/sandbox/phone", {"sender": "06 61 00 00 01", "recipient": "1111", "text": "code"})
    assert response.status_code == 302
    assert response["Location"] == "/sandbox/phone?number=%2B212661000001&sent=1"
    assert Sms.objects.filter(direction=Sms.Direction.INBOUND, sender="+212661000001", recipient="1111").count() == 1

    before = client.get(response["Location"]).content.decode()
    assert 'Reçus par le <span dir="ltr">06 61 00 00 01</span>' in before
    assert "Aucun SMS reçu pour l'instant." in before
    assert run_tasks() == 1
    html = client.get(response["Location"]).content.decode()
    [text] = inbox_texts(html)
    assert re.fullmatch(r"Votre code fidelio est \d{6}\. Il est valable 15 minutes .*", text)
    assert '<strong>De <span dir="ltr">1111</span></strong>' in html
    # The send form is ready for the next SMS from the same number.
    assert 'name="sender" value="+212661000001"' in html


@pytest.mark.django_db
def test_the_inbox_shows_the_newest_sms_first(client):
    sms = Sms.objects.create(direction="out", sender="1111", recipient="+212661000001", text="x", status="delivered",
                             created_at=timezone.now())
    base = timezone.now()
    for i, text in enumerate(["premier", "deuxième", "troisième"]):
        HandsetMessage.objects.create(number="+212661000001", sender="1111", text=text,
                                      received_at=base + dt.timedelta(seconds=i),
                                      sms=Sms.objects.create(direction="out", sender="1111",
                                                             recipient="+212661000001", text=text,
                                                             status="delivered", created_at=base))
    HandsetMessage.objects.create(number="+212661000002", sender="1111", text="pas pour moi", received_at=base,
                                  sms=sms)
    html = client.get("/sandbox/phone", {"number": "0661000001"}).content.decode()
    assert inbox_texts(html) == ["troisième", "deuxième", "premier"]


@pytest.mark.django_db
@pytest.mark.parametrize(("data", "field", "message"), [
    ({"sender": "pas un numéro", "recipient": "1111", "text": "code"}, "sender",
     "Saisissez un numéro de téléphone, par exemple 06 61 00 00 01 ou +212 6 61 00 00 01."),
    ({"sender": "1111", "recipient": "1111", "text": "code"}, "sender",
     "Saisissez un numéro de téléphone, par exemple 06 61 00 00 01 ou +212 6 61 00 00 01."),
    ({"sender": "0661000001", "recipient": "0661000002", "text": "code"}, "recipient",
     "Assurez-vous que cette valeur comporte au plus 5 caractères (actuellement 10)."),
    ({"sender": "0661000001", "recipient": "12", "text": "code"}, "recipient",
     "Envoyez à un numéro court de service (3 à 5 chiffres), par exemple 1111."),
    ({"sender": "0661000001", "recipient": "1111", "text": ""}, "text", "Ce champ est obligatoire."),
])
def test_bad_numbers_are_refused_next_to_their_field_and_nothing_is_sent(client, data, field, message):
    response = client.post("/sandbox/phone", data)
    html = response.content.decode().replace("&#x27;", "'")
    assert response.status_code == 200
    assert re.search(rf'<ul class="errorlist" id="id_{field}_error"><li>{re.escape(message)}</li></ul>', html)
    assert Sms.objects.count() == 0


@pytest.mark.django_db
def test_a_bad_number_to_read_is_refused_next_to_its_field(client):
    html = client.get("/sandbox/phone", {"number": "<b>x</b>"}).content.decode()
    assert ('<ul class="errorlist" id="id_number_error"><li>Saisissez un numéro de téléphone, par exemple '
            "06 61 00 00 01 ou +212 6 61 00 00 01.</li></ul>") in html
    assert "<b>x</b>" not in html


@pytest.mark.django_db
def test_the_phone_form_needs_its_csrf_token():
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/sandbox/phone", {"sender": "0661000001", "recipient": "1111",
                                                                        "text": "code"})
    assert response.status_code == 403
    assert Sms.objects.count() == 0


@pytest.mark.django_db
@override_settings(SANDBOX=False)
@pytest.mark.parametrize("path", ["/sandbox/phone", "/sandbox/mail", "/sandbox/mail/1", "/sandbox/mail/1/html"])
def test_sandbox_pages_answer_404_outside_sandbox_mode(client, path):
    assert client.get(path).status_code == 404
    assert client.post(path, {"sender": "0661000001", "recipient": "1111", "text": "code"}).status_code in (404, 405)
    assert Sms.objects.count() == 0


def test_sandbox_pages_are_not_even_routed_outside_sandbox_mode():
    import tasdid.portal.urls as biller_urls

    def routes():
        return [str(p.pattern) for p in biller_urls.urlpatterns]

    assert "sandbox/" in routes()
    try:
        with override_settings(SANDBOX=False):
            importlib.reload(biller_urls)
            assert "sandbox/" not in routes()
            assert "admin/" in routes()
    finally:
        importlib.reload(biller_urls)
        clear_url_caches()
    assert "sandbox/" in routes()
