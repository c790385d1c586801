"""The SMS centre and the mail server as the parties see them: a durable outbox, inbound SMS, and, in sandbox
mode, the handsets and the mailbox where the demo's messages arrive."""

import uuid

from django.db import models


class Sms(models.Model):
    """One SMS through the SMS centre, either way. Secrets in the text are redacted once it is delivered or
    has failed.

    An outbound SMS goes queued -> sending -> delivered on the sandbox channel; on the SMPP channel it goes
    queued -> sending (submit_sm on its way) -> accepted (the SMS centre's id recorded) -> delivered or failed
    (its delivery receipt). A transient failure puts it back to queued with a later ``next_try_at``."""

    class Direction(models.TextChoices):
        INBOUND = "in", "reçu par un service"
        OUTBOUND = "out", "envoyé par un service"

    class Status(models.TextChoices):
        QUEUED = "queued", "en attente"
        SENDING = "sending", "en cours d'envoi"
        ACCEPTED = "accepted", "accepté par le centre SMS"
        DELIVERED = "delivered", "délivré"
        FAILED = "failed", "échec"
        HANDLED = "handled", "traité"

    direction = models.CharField("sens", max_length=3, choices=Direction.choices)
    sender = models.CharField("expéditeur", max_length=20)  # E.164, a short number, or an alphanumeric sender name
    recipient = models.CharField("destinataire", max_length=20)
    text = models.TextField("texte")
    # Substrings to redact when the SMS reaches a final state.
    secrets = models.JSONField("secrets à masquer", default=list, blank=True)
    status = models.CharField("état", max_length=10, choices=Status.choices)
    # The channel's deduplication key: every try of this SMS carries it, so a resend after a crash between
    # the send and the "delivered" mark reaches the phone once.
    message_id = models.UUIDField("identifiant du message", default=uuid.uuid4, unique=True, editable=False)
    # The SMS centre's id for it (SMPP submit_sm_resp's message_id), recorded once it accepted the SMS: an SMS
    # with one is never submitted again by the SMPP channel (its delivery receipts name it).
    smsc_id = models.CharField("identifiant au centre SMS", max_length=65, blank=True, default="", db_index=True)
    attempts = models.PositiveSmallIntegerField("essais", default=0)
    resends = models.PositiveSmallIntegerField("renvois", default=0)  # staff's "Renvoyer" after a final failure
    last_error = models.CharField("dernière erreur", max_length=255, blank=True, default="")
    next_try_at = models.DateTimeField("prochain essai", null=True, blank=True)
    created_at = models.DateTimeField("créé le", db_index=True)
    accepted_at = models.DateTimeField("accepté le", null=True, blank=True)
    delivered_at = models.DateTimeField("délivré le", null=True, blank=True)

    class Meta:
        verbose_name = "SMS"
        verbose_name_plural = "SMS"
        indexes = [models.Index(fields=["recipient", "created_at"]),
                   models.Index(fields=["status", "next_try_at"], name="sms_due_idx")]


class Email(models.Model):
    """One email in the outbox; sent by SMTP by a task after the transaction that wrote it commits."""

    class Status(models.TextChoices):
        QUEUED = "queued", "en attente"
        SENDING = "sending", "en cours d'envoi"
        SENT = "sent", "envoyé"
        FAILED = "failed", "échec"

    to = models.EmailField(verbose_name="destinataire")
    subject = models.CharField(max_length=255, verbose_name="objet")
    body_text = models.TextField(verbose_name="texte")
    body_html = models.TextField(blank=True, default="", verbose_name="HTML")
    # Its Content-Language ("": not said).
    language = models.CharField(max_length=8, blank=True, default="", verbose_name="langue")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED, verbose_name="statut")
    # Its Message-ID header (<uuid@sender's domain>): every try sends the same one, so a resend after a crash
    # between the send and the "sent" mark can be recognised by the receiving server (our SMTP sink drops it).
    message_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False,
                                  verbose_name="identifiant du message")
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name="tentatives")
    # staff's "Renvoyer" after a final failure
    resends = models.PositiveSmallIntegerField(default=0, verbose_name="renvois")
    last_error = models.CharField(max_length=255, blank=True, default="", verbose_name="dernière erreur")
    next_try_at = models.DateTimeField(null=True, blank=True, verbose_name="prochain essai le")
    created_at = models.DateTimeField(db_index=True, verbose_name="créé le")
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name="envoyé le")

    class Meta:
        verbose_name = "email"


class EmailAttachment(models.Model):
    """A file sent with an outbox email (a receipt's PDF), kept as it was composed: every try sends the same."""

    email = models.ForeignKey(Email, on_delete=models.CASCADE, related_name="attachments", verbose_name="email")
    filename = models.CharField(max_length=255, verbose_name="nom du fichier")
    mimetype = models.CharField(max_length=100, verbose_name="type MIME")
    content = models.BinaryField(verbose_name="contenu")

    class Meta:
        verbose_name = "pièce jointe"
        verbose_name_plural = "pièces jointes"


class HandsetMessage(models.Model):
    """Sandbox only: an SMS as it arrived on a phone (the sandbox phone reads these)."""

    number = models.CharField(max_length=20, db_index=True, verbose_name="numéro")
    sender = models.CharField(max_length=20, verbose_name="expéditeur")
    text = models.TextField(verbose_name="texte")
    received_at = models.DateTimeField(verbose_name="reçu le")
    sms = models.OneToOneField(Sms, on_delete=models.CASCADE, related_name="handset_copy", verbose_name="SMS")
    # the SMS centre's id: a second delivery is dropped
    message_id = models.UUIDField(null=True, unique=True, verbose_name="identifiant du message")

    class Meta:
        verbose_name = "SMS du téléphone (bac à sable)"
        verbose_name_plural = "SMS des téléphones (bac à sable)"


class MailboxMessage(models.Model):
    """Sandbox only: an email as the demo's SMTP sink received it (raw RFC 5322 message)."""

    mail_from = models.CharField(max_length=255, verbose_name="expéditeur")
    rcpt_to = models.TextField(verbose_name="destinataire")  # comma-separated
    subject = models.CharField(max_length=255, blank=True, default="", verbose_name="objet")
    raw = models.TextField(verbose_name="message brut")
    received_at = models.DateTimeField(db_index=True, verbose_name="reçu le")
    # The Message-ID header, "" when the message has none: a second message with the same id is accepted by
    # SMTP (250) and not stored again, as a mail store deduplicates a client's resend.
    message_id = models.CharField(max_length=255, blank=True, default="", verbose_name="identifiant du message")

    class Meta:
        verbose_name = "email de la boîte (bac à sable)"
        verbose_name_plural = "emails de la boîte (bac à sable)"
        constraints = [models.UniqueConstraint(fields=["message_id"], condition=~models.Q(message_id=""),
                                               name="mailbox_message_id_once")]
