"""Reads of the messaging infrastructure: what a phone received, what the sandbox mailbox holds."""

from email.parser import BytesParser
from email.policy import default as default_policy

from django.db.models import QuerySet

from tasdid.core.phones import normalize_address

from .models import HandsetMessage, MailboxMessage


def handset_inbox(*, number: str, limit: int = 50) -> QuerySet[HandsetMessage]:
    """The SMS a phone received, newest first."""
    return HandsetMessage.objects.filter(number=normalize_address(number)).order_by("-received_at", "-pk")[:limit]


def mailbox(*, to: str | None = None, limit: int = 50) -> list[MailboxMessage]:
    """Messages the sandbox SMTP sink received, newest first, optionally for one recipient."""
    qs = MailboxMessage.objects.order_by("-received_at", "-pk")
    if to:
        qs = qs.filter(rcpt_to__icontains=to.strip())
    return list(qs[:limit])


def mailbox_parts(message: MailboxMessage) -> dict[str, str]:
    """The readable parts of a received email: headers, plain text and HTML bodies, its attachments (listed)."""
    # Parse the bytes: 8bit parts read from a str would lose their non-ASCII characters ("Reçu" -> "Re�u").
    parsed = BytesParser(policy=default_policy).parsebytes(message.raw.encode("utf-8"))
    text = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    return {
        "from": str(parsed.get("From", "")),
        "to": str(parsed.get("To", "")),
        "subject": str(parsed.get("Subject", "")),
        "date": str(parsed.get("Date", "")),
        "text": text.get_content() if text is not None else "",
        "html": html.get_content() if html is not None else "",
        "attachments": [{"index": n, "filename": part.get_filename() or f"piece-{n}", "type": part.get_content_type(),
                         "size": len(part.get_payload(decode=True) or b"")}
                        for n, part in enumerate(parsed.iter_attachments(), start=1)],
    }


def mailbox_attachment(message: MailboxMessage, index: int) -> tuple[str, str, bytes] | None:
    """The ``index``-th attachment (from 1) of a received email: its file name, type and bytes; None if none."""
    parsed = BytesParser(policy=default_policy).parsebytes(message.raw.encode("utf-8"))
    for n, part in enumerate(parsed.iter_attachments(), start=1):
        if n == index:
            return part.get_filename() or f"piece-{n}", part.get_content_type(), part.get_payload(decode=True) or b""
    return None
