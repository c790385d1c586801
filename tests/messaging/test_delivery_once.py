"""The outbox delivers each message once: retries with backoff for SMS and email, a message id the sandbox
phone and the SMTP sink deduplicate, and staff's "Renvoyer" for the failed ones, visible in the biller's admin."""

import datetime as dt
import html
import re
import smtplib
from email.message import EmailMessage

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tasdid.messaging import channels
from tasdid.messaging.models import Email, HandsetMessage, MailboxMessage, Sms
from tasdid.messaging.services import (
    EMAIL_MAX_ATTEMPTS,
    REDACTED,
    SMS_MAX_ATTEMPTS,
    email_deliver,
    email_resend,
    email_send,
    mailbox_store,
    message_id_header,
    outbox_sweep,
    sms_deliver,
    sms_send,
)
from tests.support.ports import closed_port  # noqa: F401 - a fixture
from tests.support.staff import signed_in, staff_account

TEXT = "Votre code fidelio est 482193. Il est valable 15 minutes."


def _tasks(path: str, **kwargs) -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=f"tasdid.messaging.tasks.{path}", status="READY",
                                            **kwargs).order_by("enqueued_at"))


@pytest.fixture
def smtp_down(settings, closed_port):  # noqa: F811
    settings.EMAIL_BACKEND = "tasdid.messaging.mail.SmtpBackend"
    settings.EMAIL_PORT = closed_port


@pytest.mark.django_db
def test_an_email_the_server_refuses_waits_for_its_next_try_then_fails_after_its_last(smtp_down):
    email = email_send(to="a@example.ma", subject="Reçu", body_text="Merci.")
    before = timezone.now()
    assert email_deliver(email_id=email.pk) is False
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("queued", 1)
    assert email.last_error.startswith("ConnectionRefusedError")
    assert before + dt.timedelta(seconds=2) <= email.next_try_at <= timezone.now() + dt.timedelta(seconds=2)
    # The retry's task is written with the failure, due at the next try.
    [retry] = _tasks("deliver_email", run_after=email.next_try_at)
    assert retry.args_kwargs["kwargs"] == {"email_id": email.pk}
    for _ in range(EMAIL_MAX_ATTEMPTS - 1):
        email_deliver(email_id=email.pk)
    email.refresh_from_db()
    assert (email.status, email.attempts, email.next_try_at) == ("failed", EMAIL_MAX_ATTEMPTS, None)
    assert email_deliver(email_id=email.pk) is False  # final: nothing more is tried
    email.refresh_from_db()
    assert email.attempts == EMAIL_MAX_ATTEMPTS


@pytest.mark.django_db
def test_an_sms_the_channel_refuses_is_tried_again_with_backoff_then_delivered_once(monkeypatch):
    real_send = channels.sandbox_send
    refusals = iter([channels.SmsChannelError("SMSC injoignable")])

    def flaky(*, sms):
        for error in refusals:
            raise error
        return real_send(sms=sms)

    monkeypatch.setattr(channels, "sandbox_send", flaky)
    sms = sms_send(sender="1111", to="+212661000001", text=TEXT, secrets=["482193"])
    assert sms_deliver(sms_id=sms.pk) is False
    sms.refresh_from_db()
    assert (sms.status, sms.attempts, sms.last_error, sms.secrets) == (
        "queued", 1, "SmsChannelError: SMSC injoignable", ["482193"])
    assert sms.next_try_at is not None and _tasks("deliver_sms", run_after=sms.next_try_at)
    assert not HandsetMessage.objects.exists()
    assert sms_deliver(sms_id=sms.pk) is True
    sms.refresh_from_db()
    assert (sms.status, sms.attempts, sms.last_error, sms.next_try_at) == ("delivered", 2, "", None)
    assert REDACTED in sms.text and HandsetMessage.objects.get().text == TEXT


@pytest.mark.django_db
def test_an_sms_refused_on_every_try_fails_without_keeping_its_code(monkeypatch):
    def down(*, sms):
        raise channels.SmsChannelError("SMSC injoignable")

    monkeypatch.setattr(channels, "sandbox_send", down)
    sms = sms_send(sender="1111", to="+212661000001", text=TEXT, secrets=["482193"])
    for _ in range(SMS_MAX_ATTEMPTS):
        sms_deliver(sms_id=sms.pk)
    sms.refresh_from_db()
    assert (sms.status, sms.attempts, sms.secrets) == ("failed", SMS_MAX_ATTEMPTS, [])
    assert "482193" not in sms.text


@pytest.mark.django_db
def test_an_sms_whose_worker_died_after_the_phone_got_it_reaches_the_phone_once(monkeypatch):
    real_send = channels.sandbox_send

    def then_killed(*, sms):
        real_send(sms=sms)
        raise KeyboardInterrupt  # stands for SIGKILL: nothing after the send runs

    monkeypatch.setattr(channels, "sandbox_send", then_killed)
    sms = sms_send(sender="1111", to="+212661000001", text=TEXT, secrets=["482193"])
    with pytest.raises(KeyboardInterrupt):
        sms_deliver(sms_id=sms.pk)
    sms.refresh_from_db()
    assert (sms.status, HandsetMessage.objects.count()) == ("sending", 1)
    monkeypatch.setattr(channels, "sandbox_send", real_send)
    assert sms_deliver(sms_id=sms.pk) is True  # the task taken again after the crash
    sms.refresh_from_db()
    assert (sms.status, sms.attempts) == ("delivered", 2)
    [copy] = HandsetMessage.objects.all()
    assert (copy.message_id, copy.text) == (sms.message_id, TEXT)


def test_the_sink_accepts_a_resent_message_but_keeps_it_once(smtp_sink, settings):
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "paiement@tasdid.example.ma", "a@example.ma", "Reçu R-9"
    message["Message-ID"] = "<0b0e5c1e-resent@tasdid.example.ma>"
    message.set_content("Merci.")
    other = EmailMessage()
    other["From"], other["To"], other["Subject"] = "paiement@tasdid.example.ma", "a@example.ma", "Autre"
    other.set_content("Sans identifiant.")
    with smtplib.SMTP("127.0.0.1", settings.TEST_PORTS["smtp"], timeout=10) as client:
        assert client.send_message(message) == {}
        assert client.send_message(message) == {}  # accepted again (250), as a server must
        assert client.send_message(other) == {}
        assert client.send_message(other) == {}  # no Message-ID: nothing to tell them apart
    assert MailboxMessage.objects.filter(subject="Reçu R-9").count() == 1
    assert MailboxMessage.objects.get(subject="Reçu R-9").message_id == "<0b0e5c1e-resent@tasdid.example.ma>"
    assert MailboxMessage.objects.filter(subject="Autre").count() == 2


@pytest.mark.django_db
def test_an_email_carries_its_outbox_message_id_on_every_try():
    email = email_send(to="a@example.ma", subject="Reçu", body_text="Merci.")
    assert message_id_header(email) == f"<{email.message_id}@tasdid.example.ma>"
    raw = (f"Message-ID: {message_id_header(email)}\r\nSubject: Reçu\r\n\r\nMerci.\r\n").encode()
    first = mailbox_store(mail_from="p@tasdid.example.ma", rcpt_to=["a@example.ma"], raw=raw)
    again = mailbox_store(mail_from="p@tasdid.example.ma", rcpt_to=["a@example.ma"], raw=raw)
    assert first.pk == again.pk and MailboxMessage.objects.count() == 1


# The admin ---------------------------------------------------------------------------------------------------

@pytest.fixture
def staff():
    staff_account("staff", parties=["biller"])
    return signed_in("biller", "staff")


def _failed_email() -> Email:
    email = email_send(to="a@example.ma", subject="Reçu R-5", body_text="Merci.")
    Email.objects.filter(pk=email.pk).update(status="failed", attempts=EMAIL_MAX_ATTEMPTS,
                                             last_error="ConnectionRefusedError: [Errno 111] Connection refused")
    DBTaskResult.objects.all().delete()
    return email


def _row(page: str, text: str) -> list[str]:
    """The cells of the admin list's row that shows ``text`` (tags stripped)."""
    [row] = [r for r in re.findall(r"<tr>(.*?)</tr>", page, re.S) if text in r]
    cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells][1:]  # without the checkbox


@pytest.mark.django_db
def test_staff_see_failures_and_retries_and_resend_a_failed_email_once(staff):
    email = _failed_email()
    waiting = email_send(to="b@example.ma", subject="Reçu R-6", body_text="Merci.")
    Email.objects.filter(pk=waiting.pk).update(attempts=2, next_try_at=timezone.now() + dt.timedelta(seconds=4),
                                               last_error="SMTPServerDisconnected: fermé")
    page = staff.get("/admin/messaging/email/").content.decode()
    assert "Renvoyer les emails en échec" in page
    failed, queued = _row(page, "Reçu R-5"), _row(page, "Reçu R-6")
    assert [failed[i] for i in (3, 4, 5, 6)] == [
        "échec", str(EMAIL_MAX_ATTEMPTS), "-", "ConnectionRefusedError: [Errno 111] Connection refused"]
    assert [queued[i] for i in (3, 4, 6)] == ["en attente", "2", "SMTPServerDisconnected: fermé"]
    assert queued[5] != "-"  # its next try
    response = staff.post("/admin/messaging/email/", {"action": "resend", "_selected_action": [email.pk]},
                          follow=True)
    assert "1 message remis en file d&#x27;envoi." in response.content.decode()
    email.refresh_from_db()
    assert (email.status, email.resends, email.attempts) == ("queued", 1, EMAIL_MAX_ATTEMPTS)
    assert len(_tasks("deliver_email", args_kwargs__kwargs__email_id=email.pk)) == 1
    # Twice "Renvoyer" (a double click, a second staff member): the second changes nothing.
    response = staff.post("/admin/messaging/email/", {"action": "resend", "_selected_action": [email.pk]},
                          follow=True)
    assert "1 message ignoré" in response.content.decode()
    email.refresh_from_db()
    assert (email.status, email.resends) == ("queued", 1)
    assert len(_tasks("deliver_email", args_kwargs__kwargs__email_id=email.pk)) == 1


@pytest.mark.django_db
def test_a_resent_email_gets_a_new_round_of_tries(smtp_down):
    email = _failed_email()
    assert email_resend(email_id=email.pk) is True
    assert email_deliver(email_id=email.pk) is False  # the server is still down: queued again, not failed
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("queued", EMAIL_MAX_ATTEMPTS + 1)


@pytest.mark.django_db
def test_staff_never_see_an_sms_code_and_cannot_resend_a_redacted_one(staff, monkeypatch, settings):
    queued = sms_send(sender="1111", to="+212661000001", text=TEXT, secrets=["482193"])
    page = staff.get("/admin/messaging/sms/").content.decode()
    assert f"Votre code fidelio est {REDACTED}" in page and "482193" not in page
    assert "482193" not in staff.get(f"/admin/messaging/sms/{queued.pk}/change/").content.decode()
    settings.SMS_CHANNEL = "smsc-production"
    sms_deliver(sms_id=queued.pk)  # fails, its code redacted
    plain = sms_send(sender="1111", to="+212661000002", text="Votre paiement est enregistré.")
    sms_deliver(sms_id=plain.pk)
    DBTaskResult.objects.all().delete()
    response = staff.post("/admin/messaging/sms/", {"action": "resend", "_selected_action": [queued.pk, plain.pk]},
                          follow=True)
    html = response.content.decode()
    assert "1 message remis en file d&#x27;envoi." in html and "1 message ignoré" in html
    assert Sms.objects.get(pk=queued.pk).status == "failed"
    assert (Sms.objects.get(pk=plain.pk).status, Sms.objects.get(pk=plain.pk).resends) == ("queued", 1)
    assert [t.args_kwargs["kwargs"] for t in _tasks("deliver_sms")] == [{"sms_id": plain.pk}]


@pytest.mark.django_db
def test_the_sweep_marks_failed_the_messages_no_task_will_deliver_and_nothing_else():
    waiting = email_send(to="a@example.ma", subject="Reçu R-1", body_text="Merci.")
    lost = email_send(to="b@example.ma", subject="Reçu R-2", body_text="Merci.")
    DBTaskResult.objects.filter(args_kwargs__kwargs__email_id=lost.pk).update(
        status="FAILED", exception_class_path="tasdid.core.worker.WorkerLost")
    Email.objects.filter(pk=lost.pk).update(status="sending", attempts=5)
    sms = sms_send(sender="1111", to="+212661000001", text=TEXT, secrets=["482193"])
    DBTaskResult.objects.filter(args_kwargs__kwargs__sms_id=sms.pk).delete()  # pruned

    assert outbox_sweep() == 2

    assert Email.objects.get(pk=waiting.pk).status == "queued"
    lost.refresh_from_db()
    sms.refresh_from_db()
    assert (lost.status, lost.last_error) == ("failed", "delivery task lost (failed or removed): resend it from "
                                                        "the admin")
    assert (sms.status, sms.secrets) == ("failed", []) and "482193" not in sms.text
    assert outbox_sweep() == 0
