"""The demo's mail server: an aiosmtpd sink on loopback that keeps what it receives for the sandbox mailbox."""

from aiosmtpd.controller import Controller
from asgiref.sync import sync_to_async
from django.db import connection

from . import services


def _store(**kwargs) -> None:
    try:
        services.mailbox_store(**kwargs)
    finally:
        connection.close()  # a pooled thread's connection would outlive the sink (and block dropping a database)


class MailboxHandler:
    async def handle_DATA(self, server, session, envelope):
        await sync_to_async(_store, thread_sensitive=False)(
            mail_from=envelope.mail_from or "", rcpt_to=list(envelope.rcpt_tos), raw=envelope.original_content or b""
        )
        return "250 Message accepted for delivery"


def sink_controller(*, host: str = "127.0.0.1", port: int) -> Controller:
    """A started-on-demand SMTP sink (``.start()`` / ``.stop()``); pick a free port first (0 does not work)."""
    return Controller(MailboxHandler(), hostname=host, port=port)
