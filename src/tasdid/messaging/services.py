"""Writes of the messaging infrastructure: queue SMS and emails (durable outbox), deliver them, receive SMS."""

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string
from django.views.decorators.debug import sensitive_variables
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from tasdid.core.phones import normalize_address

from . import channels
from .models import Email, MailboxMessage, Sms

logger = logging.getLogger(__name__)

REDACTED = "••••••"
EMAIL_MAX_ATTEMPTS = 8
SMS_MAX_ATTEMPTS = 8


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
    # The task row is written in this transaction: it exists exactly when the SMS does. On the SMPP channel
    # the ``tasdid smpp`` process takes queued SMS from the table itself.
    if uses_tasks():
        deliver_sms.enqueue(sms_id=sms.pk)
    return sms


def uses_tasks() -> bool:
    """Whether outbound SMS are delivered by tasks (the sandbox channel) rather than by ``tasdid smpp``."""
    return settings.SMS_CHANNEL != "smpp"


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by REDACTED, longest first (a code inside another stays hidden)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _finish(sms: Sms, *, status: str, at: dt.datetime, error: str = "") -> None:
    """Move a locked SMS to a final state; its secrets leave the outbox with it, whatever the outcome."""
    sms.text, sms.secrets = redact(sms.text, sms.secrets), []
    sms.status = status
    sms.next_try_at = None
    fields = ["attempts", "text", "secrets", "status", "next_try_at"]
    if status == Sms.Status.DELIVERED:
        sms.delivered_at = at
        sms.last_error = ""
        fields += ["delivered_at", "last_error"]
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


def retry_delay(attempts: int) -> dt.timedelta:
    """How long a message waits after its ``attempts``-th failed try: 2, 4, 8 … seconds, at most 10 minutes."""
    return dt.timedelta(seconds=min(2 ** attempts, 600))


def _out_of_tries(message: Sms | Email, max_attempts: int) -> bool:
    # Each "Renvoyer" by staff gives a failed message a fresh round of tries.
    return message.attempts >= max_attempts * (message.resends + 1)


@sensitive_variables()  # the SMS in clear, its codes included, until it is delivered
def sms_deliver(*, sms_id: int) -> bool:
    """Hand a queued SMS to the SMS channel; idempotent. Returns True when this call delivered it.

    Exactly once across a crash: "sending" is committed before the channel is called, "delivered" after it
    answers; an SMS found "sending" (its worker died) is handed over again with the same message id, which the
    channel deduplicates. A channel error leaves it queued for a retry (backoff), up to SMS_MAX_ATTEMPTS.
    """
    with transaction.atomic():
        sms = Sms.objects.select_for_update().filter(
            pk=sms_id, direction=Sms.Direction.OUTBOUND, status__in=[Sms.Status.QUEUED, Sms.Status.SENDING]).first()
        if sms is None or not uses_tasks():  # on the SMPP channel, ``tasdid smpp`` delivers it
            return False
        sms.attempts += 1
        error = _no_channel_error()
        if error:
            logger.error("SMS %s not delivered: %s", sms.pk, error)
            _finish(sms, status=Sms.Status.FAILED, at=timezone.now(), error=error)
            return False
        sms.status = Sms.Status.SENDING
        sms.save(update_fields=["attempts", "status"])
    try:
        channels.sandbox_send(sms=sms)
    except (channels.SmsChannelError, OSError, DatabaseError) as exc:
        _sms_try_failed(sms_id=sms.pk, error=f"{type(exc).__name__}: {exc}")
        return False
    with transaction.atomic():
        sms = Sms.objects.select_for_update().filter(pk=sms_id, status=Sms.Status.SENDING).first()
        if sms is None:  # another worker finished it meanwhile
            return False
        _finish(sms, status=Sms.Status.DELIVERED, at=timezone.now())
    return True


@transaction.atomic
def _sms_try_failed(*, sms_id: int, error: str) -> None:
    from .tasks import deliver_sms

    sms = Sms.objects.select_for_update().filter(pk=sms_id, status=Sms.Status.SENDING).first()
    if sms is None:
        return
    logger.warning("SMS %s not delivered (attempt %s): %s", sms.pk, sms.attempts, error)
    if _out_of_tries(sms, SMS_MAX_ATTEMPTS):
        _finish(sms, status=Sms.Status.FAILED, at=timezone.now(), error=error)
        return
    sms.status, sms.last_error = Sms.Status.QUEUED, error[:255]
    sms.next_try_at = timezone.now() + retry_delay(sms.attempts)
    sms.save(update_fields=["status", "last_error", "next_try_at"])
    if uses_tasks():
        deliver_sms.using(run_after=sms.next_try_at).enqueue(sms_id=sms.pk)


@transaction.atomic
def sms_resend(*, sms_id: int) -> bool:
    """Staff's "Renvoyer": queue a failed outbound SMS once more; idempotent (True when this call queued it).
    An SMS whose code was redacted is not resent: its text no longer holds the code; the service sends a new one."""
    from .tasks import deliver_sms

    sms = Sms.objects.select_for_update().filter(
        pk=sms_id, direction=Sms.Direction.OUTBOUND, status=Sms.Status.FAILED).first()
    if sms is None or REDACTED in sms.text:
        return False
    sms.status, sms.resends, sms.next_try_at = Sms.Status.QUEUED, sms.resends + 1, timezone.now()
    sms.smsc_id, sms.accepted_at = "", None  # a new submission gets a new id from the SMS centre
    sms.save(update_fields=["status", "resends", "next_try_at", "smsc_id", "accepted_at"])
    if uses_tasks():
        deliver_sms.enqueue(sms_id=sms.pk)
    logger.info("SMS %s queued again by staff (resend %s)", sms.pk, sms.resends)
    return True


@dataclass(frozen=True)
class SmsToSubmit:
    """An outbound SMS that ``tasdid smpp`` took from the outbox (marked "sending") to submit to the SMS centre."""

    pk: int
    sender: str
    recipient: str
    text: str = field(repr=False)  # may hold a code


@sensitive_variables()
def smpp_claim(*, limit: int) -> list[SmsToSubmit]:
    """Take up to ``limit`` queued SMS that are due, oldest first, and mark them "sending" (one more try) before
    anything is submitted: committed first, so that a crash during the submission leaves them visible."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(Sms.objects.select_for_update()
                    .filter(direction=Sms.Direction.OUTBOUND, status=Sms.Status.QUEUED)
                    .filter(Q(next_try_at__isnull=True) | Q(next_try_at__lte=now))
                    .order_by("pk").values_list("pk", "sender", "recipient", "text")[:limit])
        if rows:
            Sms.objects.filter(pk__in=[row[0] for row in rows], status=Sms.Status.QUEUED).update(
                status=Sms.Status.SENDING, attempts=F("attempts") + 1)
    return [SmsToSubmit(*row) for row in rows]


@dataclass(frozen=True)
class SubmitOutcome:
    """What the SMS centre answered to one submit_sm: its id (accepted), or an error and whether to retry."""

    pk: int
    accepted: bool = False
    smsc_id: str = ""  # may be "" when the SMS centre accepts without an id (no receipt can name the SMS then)
    error: str = ""
    transient: bool = True
    submitted: bool = True  # False: never sent (the session ended first), the try does not count


@transaction.atomic
def smpp_record(outcomes: Sequence[SubmitOutcome]) -> list[SubmitOutcome]:
    """Record the answers to submitted SMS, in one transaction: "accepted" with the SMS centre's id, or back to
    "queued" with a backoff after a transient refusal or a lost connection, or "failed" (a permanent refusal, or
    out of tries). Returns the outcomes recorded as accepted."""
    now = timezone.now()
    accepted = []
    for outcome in outcomes:
        if outcome.accepted:
            if Sms.objects.filter(pk=outcome.pk, status=Sms.Status.SENDING).update(
                    status=Sms.Status.ACCEPTED, smsc_id=outcome.smsc_id[:65], accepted_at=now, last_error="",
                    next_try_at=None):
                accepted.append(outcome)
            continue
        if not outcome.submitted:
            Sms.objects.filter(pk=outcome.pk, status=Sms.Status.SENDING).update(
                status=Sms.Status.QUEUED, attempts=F("attempts") - 1)
            continue
        sms = Sms.objects.select_for_update().filter(pk=outcome.pk, status=Sms.Status.SENDING).first()
        if sms is None:
            continue
        if not outcome.transient or _out_of_tries(sms, SMS_MAX_ATTEMPTS):
            logger.error("SMS %s failed (attempt %s): %s", sms.pk, sms.attempts, outcome.error)
            _finish(sms, status=Sms.Status.FAILED, at=now, error=outcome.error)
            continue
        logger.warning("SMS %s not accepted (attempt %s): %s", sms.pk, sms.attempts, outcome.error)
        sms.status, sms.last_error = Sms.Status.QUEUED, outcome.error[:255]
        sms.next_try_at = now + retry_delay(sms.attempts)
        sms.save(update_fields=["status", "last_error", "next_try_at"])
    return accepted


@transaction.atomic
def smpp_receipt(*, smsc_id: str, stat: str, err: str = "") -> bool:
    """A delivery receipt from the SMS centre: DELIVRD makes the SMS it names delivered; UNDELIV, EXPIRED,
    DELETED, REJECTD make it failed; an intermediate state (ENROUTE, ACCEPTD, UNKNOWN) changes nothing.
    Idempotent. Returns False when no SMS has this id (yet: the receipt may outrun the record of the id)."""
    from .smpp_codec import FINAL_FAILURES

    sms = (Sms.objects.select_for_update()
           .filter(direction=Sms.Direction.OUTBOUND, smsc_id=smsc_id, status=Sms.Status.ACCEPTED)
           .order_by("-pk").first())
    if sms is None:
        return Sms.objects.filter(direction=Sms.Direction.OUTBOUND, smsc_id=smsc_id).exists()
    if stat == "DELIVRD":
        _finish(sms, status=Sms.Status.DELIVERED, at=timezone.now())
    elif stat in FINAL_FAILURES:
        error = f"delivery receipt: stat:{stat} err:{err or '-'}"
        logger.warning("SMS %s not delivered: %s", sms.pk, error)
        _finish(sms, status=Sms.Status.FAILED, at=timezone.now(), error=error)
    return True


def smpp_requeue_unacknowledged() -> int:
    """At the start of ``tasdid smpp``: SMS left "sending" with no SMS-centre id (the process stopped between
    their submit_sm and its answer) go back to the queue. They are submitted again: the SMS centre may have
    taken them (at least once, see docs/sms-centre.md); an SMS with an id is never submitted again."""
    count = Sms.objects.filter(direction=Sms.Direction.OUTBOUND, status=Sms.Status.SENDING, smsc_id="").update(
        status=Sms.Status.QUEUED, next_try_at=None)
    if count:
        logger.warning("%s SMS submitted without an answer before the last stop: queued again", count)
    return count


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


def message_id_header(email: Email) -> str:
    """The email's Message-ID: its outbox id at the sender's domain, the same on every try."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "tasdid.invalid"
    return f"<{email.message_id}@{domain}>"


def email_deliver(*, email_id: int) -> bool:
    """Send a queued email by SMTP; idempotent. Returns True when this call sent it.

    Exactly once across a crash, as far as the receiving server deduplicates by Message-ID (our SMTP sink does):
    "sending" is committed before the SMTP transaction and "sent" right after it; an email found "sending" (its
    worker died) is sent again with the same Message-ID. An SMTP failure leaves it queued for a retry (backoff),
    up to EMAIL_MAX_ATTEMPTS, then failed (staff can resend it from the admin).
    """
    with transaction.atomic():
        email = Email.objects.select_for_update().filter(
            pk=email_id, status__in=[Email.Status.QUEUED, Email.Status.SENDING]).first()
        if email is None:
            return False
        email.attempts += 1
        email.status = Email.Status.SENDING
        email.save(update_fields=["attempts", "status"])
    message = EmailMultiAlternatives(email.subject, email.body_text, settings.DEFAULT_FROM_EMAIL, [email.to],
                                     headers={"Message-ID": message_id_header(email)})
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    try:
        message.send(fail_silently=False)
    except OSError as exc:  # smtplib.SMTPException is an OSError
        _email_try_failed(email_id=email.pk, error=f"{type(exc).__name__}: {exc}")
        return False
    sent = Email.objects.filter(pk=email.pk, status=Email.Status.SENDING).update(
        status=Email.Status.SENT, sent_at=timezone.now(), last_error="", next_try_at=None)
    return bool(sent)


@transaction.atomic
def _email_try_failed(*, email_id: int, error: str) -> None:
    from .tasks import deliver_email

    email = Email.objects.select_for_update().filter(pk=email_id, status=Email.Status.SENDING).first()
    if email is None:
        return
    logger.warning("email %s not sent (attempt %s): %s", email.pk, email.attempts, error.partition(":")[0])
    email.last_error = error[:255]
    if _out_of_tries(email, EMAIL_MAX_ATTEMPTS):
        email.status, email.next_try_at = Email.Status.FAILED, None
    else:
        email.status, email.next_try_at = Email.Status.QUEUED, timezone.now() + retry_delay(email.attempts)
        # In the same transaction: the email is queued exactly when a task will come back for it.
        deliver_email.using(run_after=email.next_try_at).enqueue(email_id=email.pk)
    email.save(update_fields=["status", "last_error", "next_try_at"])


@transaction.atomic
def email_resend(*, email_id: int) -> bool:
    """Staff's "Renvoyer": queue a failed email once more; idempotent (True when this call queued it)."""
    from .tasks import deliver_email

    email = Email.objects.select_for_update().filter(pk=email_id, status=Email.Status.FAILED).first()
    if email is None:
        return False
    email.status, email.resends, email.next_try_at = Email.Status.QUEUED, email.resends + 1, timezone.now()
    email.save(update_fields=["status", "resends", "next_try_at"])
    deliver_email.enqueue(email_id=email.pk)
    logger.info("email %s queued again by staff (resend %s)", email.pk, email.resends)
    return True


def _pending_deliveries(task_name: str, key: str) -> set[int]:
    """Ids of the messages that a task will still deliver (READY, or RUNNING under a worker)."""
    tasks = DBTaskResult.objects.filter(task_path=f"tasdid.messaging.tasks.{task_name}",
                                        status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING])
    return {kwargs.get(key) for kwargs in (t["kwargs"] for t in tasks.values_list("args_kwargs", flat=True))}


def outbox_sweep(*, limit: int = 500) -> int:
    """Mark failed each SMS or email that no task will deliver any more (its task failed, e.g. its workers died
    under it again and again, or was pruned), so that it shows in the admin and staff can resend it. Run by
    every worker's recovery pass (settings.TASK_WORKER_SWEEPS). Returns how many it marked; idempotent."""
    marked = 0
    error = "delivery task lost (failed or removed): resend it from the admin"
    waiting_emails = list(Email.objects.filter(status__in=[Email.Status.QUEUED, Email.Status.SENDING])
                          .values_list("pk", flat=True)[:limit])
    if waiting_emails:
        pending = _pending_deliveries("deliver_email", "email_id")
        for pk in set(waiting_emails) - pending:
            with transaction.atomic():
                if pk in _pending_deliveries("deliver_email", "email_id"):
                    continue
                marked += Email.objects.filter(pk=pk, status__in=[Email.Status.QUEUED, Email.Status.SENDING]).update(
                    status=Email.Status.FAILED, next_try_at=None, last_error=error)
                logger.error("email %s: %s", pk, error)
    # On the SMPP channel no task carries SMS: ``tasdid smpp`` takes every queued one from the table.
    waiting_sms = list(Sms.objects.filter(direction=Sms.Direction.OUTBOUND,
                                          status__in=[Sms.Status.QUEUED, Sms.Status.SENDING])
                       .values_list("pk", flat=True)[:limit]) if uses_tasks() else []
    if waiting_sms:
        pending = _pending_deliveries("deliver_sms", "sms_id")
        for pk in set(waiting_sms) - pending:
            with transaction.atomic():
                sms = Sms.objects.select_for_update().filter(
                    pk=pk, status__in=[Sms.Status.QUEUED, Sms.Status.SENDING]).first()
                if sms is None or pk in _pending_deliveries("deliver_sms", "sms_id"):
                    continue
                _finish(sms, status=Sms.Status.FAILED, at=timezone.now(), error=error)
                marked += 1
                logger.error("SMS %s: %s", pk, error)
    return marked


def mailbox_store(*, mail_from: str, rcpt_to: Sequence[str], raw: bytes) -> MailboxMessage:
    """Sandbox SMTP sink: keep a received message for the sandbox mailbox, once per Message-ID (a client's
    resend of a message it could not see accepted is the same message)."""
    parsed: EmailMessage = BytesParser(policy=default_policy).parsebytes(raw)
    message_id = str(parsed.get("Message-ID", "")).strip()[:255]
    fields = {
        "mail_from": mail_from,
        "rcpt_to": ",".join(rcpt_to),
        "subject": str(parsed.get("Subject", ""))[:255],
        "raw": raw.decode("utf-8", errors="replace"),
        "received_at": timezone.now(),
    }
    if not message_id:
        return MailboxMessage.objects.create(**fields)
    try:
        with transaction.atomic():
            message, created = MailboxMessage.objects.get_or_create(message_id=message_id, defaults=fields)
    except IntegrityError:  # the same message stored at the same instant by another connection
        return MailboxMessage.objects.get(message_id=message_id)
    if not created:
        logger.info("mailbox: message %s received again, kept once", message_id)
    return message
