"""The email channel: an outbox email as the message that leaves (MIME parts, attachments, transactional headers)
and the SMTP connection that carries it (none, STARTTLS or implicit TLS, the server's certificate verified)."""

import ssl
from dataclasses import dataclass
from email.utils import format_datetime, parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend
from django.utils import timezone
from django.utils.functional import cached_property

from .models import Email

SECURITY_MODES = ("none", "starttls", "tls")


@dataclass(frozen=True)
class Attachment:
    """A file sent with an email (the receipt's PDF)."""

    filename: str
    content: bytes
    mimetype: str


def message_id_header(email: Email) -> str:
    """The email's Message-ID: its outbox id at the sender's domain, the same on every try."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "tasdid.invalid"
    return f"<{email.message_id}@{domain}>"


def outgoing_message(email: Email) -> EmailMultiAlternatives:
    """The message for an outbox email: text, then HTML as its alternative, then the attachments (a multipart/
    mixed around the multipart/alternative when there are any).

    Transactional headers: the same Message-ID on every try, Date (set when it leaves), Auto-Submitted
    (RFC 3834: automatic replies must not answer it), a Reply-To people can write to; no List-Unsubscribe
    (a receipt is not a mailing list). Content-Language when the outbox knows the language."""
    headers = {"Message-ID": message_id_header(email), "Date": format_datetime(timezone.now()),  # "+0000", not "-0000"
               "Auto-Submitted": "auto-generated"}
    if email.language:
        headers["Content-Language"] = email.language
    reply_to = [settings.EMAIL_REPLY_TO] if settings.EMAIL_REPLY_TO else []
    message = EmailMultiAlternatives(email.subject, email.body_text, settings.DEFAULT_FROM_EMAIL, [email.to],
                                     headers=headers, reply_to=reply_to)
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    for attachment in email.attachments.order_by("pk"):
        message.attach(attachment.filename, bytes(attachment.content), attachment.mimetype)
    return message


class SmtpBackend(EmailBackend):
    """Django's SMTP backend, its TLS verifying the server against the system's CAs, or against
    ``EMAIL_SSL_CAFILE`` alone when set (a private CA). Host names are checked; a certificate that does not verify
    fails the send (ssl.SSLCertVerificationError, an OSError): the outbox keeps the email queued and tries again.
    Which TLS (settings.EMAIL_SECURITY): "starttls" (EMAIL_USE_TLS) or "tls", implicit (EMAIL_USE_SSL)."""

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        # With a CA file, that CA alone (the system's CAs are not loaded): the server we were told to trust.
        context = ssl.create_default_context(cafile=settings.EMAIL_SSL_CAFILE or None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.ssl_certfile or self.ssl_keyfile:  # a client certificate, for servers that ask for one
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context
