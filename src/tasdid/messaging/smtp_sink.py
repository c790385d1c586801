"""The demo's mail server: an aiosmtpd sink on loopback that keeps what it receives for the sandbox mailbox."""

from aiosmtpd.controller import Controller
from asgiref.sync import sync_to_async

from . import services


class MailboxHandler:
    async def handle_DATA(self, server, session, envelope):
        await sync_to_async(services.mailbox_store, thread_sensitive=False)(
            mail_from=envelope.mail_from or "", rcpt_to=list(envelope.rcpt_tos), raw=envelope.original_content or b""
        )
        return "250 Message accepted for delivery"


def sink_controller(*, host: str = "127.0.0.1", port: int) -> Controller:
    """A started-on-demand SMTP sink (``.start()`` / ``.stop()``); pick a free port first (0 does not work)."""
    return Controller(MailboxHandler(), hostname=host, port=port)
