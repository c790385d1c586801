"""Writes of the messaging infrastructure: queue SMS and emails (durable outbox), deliver them, receive SMS."""

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django.views.decorators.debug import sensitive_variables

from tasdid.core.phones import normalize_address

from .models import Email, HandsetMessage, MailboxMessage, Sms

logger = logging.getLogger(__name__)

REDACTED = "••••••"
EMAIL_MAX_ATTEMPTS = 8


@sensitive_variables()  # the text and its secrets (codes); outermost, so that transaction.atomic's frame is hidden too
@transaction.atomic
def sms_send(*, sender: str, to: str, text: str, secrets: Sequence[str] = ()) -> Sms:
    """Queue an SMS from a service to a phone. ``secrets`` (codes) are redacted from the outbox as soon as the
    SMS reaches a final state, delivered or failed."""
    from .tasks import deliver_sms

    sms = Sms.objects.create(
        direction=Sms.Direction.OUTBOUND,
        sender=sender,
        recipient=normalize_address(to),
        text=text,
        secrets=[s for s in secrets if s],
        status=Sms.Status.QUEUED,
        created_at=timezone.now(),
    )
    # The task row is written in this transaction: it exists exactly when the SMS does.
    deliver_sms.enqueue(sms_id=sms.pk)
    return sms


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by REDACTED, longest first (a code inside another stays hidden)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _finish(sms: Sms, *, status: str, at: dt.datetime, error: str = "") -> None:
    """Move a locked SMS to a final state; its secrets leave the outbox with it, whatever the outcome."""
    sms.text, sms.secrets = redact(sms.text, sms.secrets), []
    sms.status = status
    fields = ["attempts", "text", "secrets", "status"]
    if status == Sms.Status.DELIVERED:
        sms.delivered_at = at
        fields.append("delivered_at")
    else:
        sms.last_error = error[:255]
        fields.append("last_error")
    sms.save(update_fields=fields)


def _no_channel_error() -> str:
    """Why no SMS channel can carry an SMS now, or "" when one can. The sandbox phones keep the text in clear,
    codes included: they are a channel in sandbox mode only."""
    channel = settings.SMS_CHANNEL
    if channel != "sandbox":
        return f"no SMS channel {channel!r}" if channel else "no SMS channel configured"
    if not settings.SANDBOX:
        return "no SMS channel configured (the sandbox channel works only in sandbox mode)"
    return ""


@sensitive_variables()  # the SMS in clear, its codes included, until it is delivered
def sms_deliver(*, sms_id: int) -> bool:
    """Hand a queued SMS to the SMS channel; idempotent. Returns True when this call delivered it."""
    with transaction.atomic():
        sms = Sms.objects.select_for_update().filter(pk=sms_id, status=Sms.Status.QUEUED).first()
        if sms is None:
            return False
        now = timezone.now()
        sms.attempts += 1
        error = _no_channel_error()
        if error:
            logger.error("SMS %s not delivered: %s", sms.pk, error)
            _finish(sms, status=Sms.Status.FAILED, at=now, error=error)
            return False
        # The sandbox channel: the phone itself receives it (the handset keeps the code, as a phone does).
        HandsetMessage.objects.create(number=sms.recipient, sender=sms.sender, text=sms.text, received_at=now, sms=sms)
        _finish(sms, status=Sms.Status.DELIVERED, at=now)
        return True


def _service_handlers() -> dict[str, Callable[..., None]]:
    return {number: import_string(path) for number, path in settings.SMS_SERVICES.items()}


@transaction.atomic
def sms_receive(*, sender: str, to: str, text: str) -> Sms:
    """An SMS from a phone to a service's short number: record it and hand it to that service.

    The service answers by calling ``sms_send``; an unassigned short number gets a polite reply.
    """
    sender_address = normalize_address(sender)
    to_address = normalize_address(to)
    sms = Sms.objects.create(
        direction=Sms.Direction.INBOUND,
        sender=sender_address,
        recipient=to_address,
        text=text[:1000],
        status=Sms.Status.HANDLED,
        created_at=timezone.now(),
        delivered_at=timezone.now(),
    )
    handler = _service_handlers().get(to_address)
    if handler is None:
        sms_send(sender=to_address, to=sender_address,
                 text="Ce numéro de service n'est pas attribué. Votre message n'a pas été traité.")
    else:
        handler(sender=sender_address, text=text)
    return sms


@transaction.atomic
def email_send(*, to: str, subject: str, body_text: str, body_html: str = "") -> Email:
    """Queue an email; a task sends it by SMTP once this transaction commits."""
    from .tasks import deliver_email

    email = Email.objects.create(to=to, subject=subject, body_text=body_text, body_html=body_html,
                                 created_at=timezone.now())
    deliver_email.enqueue(email_id=email.pk)
    return email


def email_deliver(*, email_id: int) -> dt.timedelta | None:
    """Send a queued email by SMTP. Returns the delay before a retry when the server failed, else None."""
    with transaction.atomic():
        email = Email.objects.select_for_update().filter(pk=email_id, status=Email.Status.QUEUED).first()
        if email is None:
            return None
        email.attempts += 1
        email.save(update_fields=["attempts"])
    message = EmailMultiAlternatives(email.subject, email.body_text, settings.DEFAULT_FROM_EMAIL, [email.to])
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    try:
        message.send(fail_silently=False)
    except OSError as exc:  # smtplib.SMTPException is an OSError
        failed = email.attempts >= EMAIL_MAX_ATTEMPTS
        Email.objects.filter(pk=email.pk).update(
            last_error=f"{type(exc).__name__}: {exc}"[:255],
            status=Email.Status.FAILED if failed else Email.Status.QUEUED,
        )
        logger.warning("email %s not sent (attempt %s): %s", email.pk, email.attempts, type(exc).__name__)
        return None if failed else dt.timedelta(seconds=min(2 ** email.attempts, 600))
    Email.objects.filter(pk=email.pk).update(status=Email.Status.SENT, sent_at=timezone.now(), last_error="")
    return None


def mailbox_store(*, mail_from: str, rcpt_to: Sequence[str], raw: bytes) -> MailboxMessage:
    """Sandbox SMTP sink: keep a received message for the sandbox mailbox."""
    parsed: EmailMessage = BytesParser(policy=default_policy).parsebytes(raw)
    return MailboxMessage.objects.create(
        mail_from=mail_from,
        rcpt_to=",".join(rcpt_to),
        subject=str(parsed.get("Subject", ""))[:255],
        raw=raw.decode("utf-8", errors="replace"),
        received_at=timezone.now(),
    )
