"""The demo's mail server: ``tasdid smtp-sink --port 8025`` keeps what it receives for the sandbox mailbox."""

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tasdid.messaging.smtp_sink import sink_controller


class Command(BaseCommand):
    help = "Run a local SMTP sink (sandbox mode) that stores received emails for /sandbox/mail."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.EMAIL_PORT)

    def handle(self, *args, host, port, **options):
        if not settings.SANDBOX:
            raise CommandError("le puits SMTP n'existe qu'en mode bac à sable (TASDID_SANDBOX=1)")
        controller = sink_controller(host=host, port=port)
        try:
            controller.start()
        except OSError as exc:
            raise CommandError(f"impossible d'écouter sur {host}:{port} : {exc}") from exc
        self.stdout.write(f"SMTP sink listening on {host}:{port}")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        controller.stop()
