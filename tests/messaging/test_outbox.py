"""The SMS outbox: codes leave it as soon as an SMS reaches a final state, delivered or failed."""

import pytest

from tasdid.messaging.models import HandsetMessage, Sms
from tasdid.messaging.services import REDACTED, redact, sms_deliver, sms_send

pytestmark = pytest.mark.django_db

TEXT = "Votre code fidelio est 482193. Il est valable 15 minutes."


def test_a_delivered_sms_keeps_no_code_in_the_outbox_but_the_phone_receives_it():
    sms = sms_send(sender="1111", to="+212661000001", text=TEXT, secrets=["482193"])
    assert sms_deliver(sms_id=sms.pk) is True
    sms.refresh_from_db()
    assert (sms.status, sms.text, sms.secrets, sms.attempts) == (
        "delivered", f"Votre code fidelio est {REDACTED}. Il est valable 15 minutes.", [], 1)
    assert HandsetMessage.objects.get(sms=sms).text == TEXT


def test_an_sms_that_no_channel_can_carry_fails_without_keeping_its_code(settings):
    settings.SMS_CHANNEL = "smsc-production"
    sms = sms_send(sender="1111", to="+212661000001", text=TEXT, secrets=["482193"])
    assert sms_deliver(sms_id=sms.pk) is False
    sms.refresh_from_db()
    assert (sms.status, sms.text, sms.secrets, sms.attempts, sms.last_error) == (
        "failed", f"Votre code fidelio est {REDACTED}. Il est valable 15 minutes.", [], 1,
        "no SMS channel 'smsc-production'")
    assert not HandsetMessage.objects.exists()
    assert not Sms.objects.filter(text__contains="482193").exists()
    # A final state is final: delivering again changes nothing.
    assert sms_deliver(sms_id=sms.pk) is False
    sms.refresh_from_db()
    assert (sms.status, sms.attempts) == ("failed", 1)


def test_redact_hides_every_secret_even_one_inside_another():
    assert redact("code 1234 puis 123456", ["1234", "123456"]) == f"code {REDACTED} puis {REDACTED}"
    assert redact("rien à cacher", ["", "9999"]) == "rien à cacher"
