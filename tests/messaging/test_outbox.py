"""The SMS outbox: codes leave it as soon as an SMS reaches a final state, delivered or failed."""

import logging
import runpy

import pytest

import tasdid.settings
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


def test_outside_sandbox_mode_the_sandbox_channel_delivers_nothing_and_keeps_no_code(settings, caplog):
    settings.SANDBOX = False
    settings.SMS_CHANNEL = "sandbox"
    sms = sms_send(sender="1111", to="+212661000001", text=TEXT, secrets=["482193"])
    with caplog.at_level(logging.ERROR, logger="tasdid.messaging.services"):
        assert sms_deliver(sms_id=sms.pk) is False
    sms.refresh_from_db()
    assert (sms.status, sms.text, sms.secrets, sms.attempts, sms.last_error) == (
        "failed", f"Votre code fidelio est {REDACTED}. Il est valable 15 minutes.", [], 1,
        "no SMS channel configured (the sandbox channel works only in sandbox mode)")
    assert not HandsetMessage.objects.exists()
    assert not Sms.objects.filter(text__contains="482193").exists()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"SMS {sms.pk} not delivered: no SMS channel configured (the sandbox channel works only in "
                      "sandbox mode)"]
    assert "482193" not in caplog.text


def test_outside_sandbox_mode_there_is_no_sms_channel_by_default(monkeypatch):
    env = {"TASDID_SECRET_KEY": "x" * 50, "TASDID_BILLER_STORE_KEY": "k", "TASDID_BILLER_GATEWAY_API_PASSWORD": "p"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TASDID_SMS_CHANNEL", raising=False)
    for sandbox, channel in (("0", ""), ("1", "sandbox")):
        monkeypatch.setenv("TASDID_SANDBOX", sandbox)
        namespace = runpy.run_path(tasdid.settings.__file__)
        assert namespace["SMS_CHANNEL"] == channel


def test_redact_hides_every_secret_even_one_inside_another():
    assert redact("code 1234 puis 123456", ["1234", "123456"]) == f"code {REDACTED} puis {REDACTED}"
    assert redact("rien à cacher", ["", "9999"]) == "rien à cacher"
