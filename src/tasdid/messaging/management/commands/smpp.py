"""``tasdid smpp``: the SMPP channel's long-lived process (tasdid.messaging.smpp), bound to the SMS centre."""

import asyncio
import logging
import os
import signal
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from tasdid.messaging.smpp import SmppChannel, SmppConfig


class Command(BaseCommand):
    help = ("Bind to the SMS centre (SMPP 3.4 transceiver, TASDID_SMPP_*), submit the outbox's SMS, follow their "
            "delivery receipts and hand inbound SMS to the services. Runs until SIGINT or SIGTERM.")

    def add_arguments(self, parser):
        parser.add_argument("--poll-interval", type=float, default=None,
                            help="seconds between two looks at an empty outbox (0.5)")
        parser.add_argument("--batch", type=int, default=None, help="SMS taken from the outbox at once (200)")
        parser.add_argument("--reconnect-min", type=float, default=None,
                            help="first wait before binding again after a lost connection, in seconds (0.5)")

    def handle(self, *args, poll_interval, batch, reconnect_min, **options):
        if settings.SMS_CHANNEL != "smpp":
            raise CommandError("le canal SMS n'est pas SMPP : définissez TASDID_SMS_CHANNEL=smpp "
                               f"(actuellement {settings.SMS_CHANNEL or 'aucun'!r})")
        if not settings.SMPP_SYSTEM_ID:
            raise CommandError("définissez TASDID_SMPP_SYSTEM_ID (et TASDID_SMPP_PASSWORD) pour le centre SMS")
        config = SmppConfig.from_settings(poll_interval=poll_interval, batch=batch, reconnect_min=reconnect_min)
        self.stdout.write(f"SMPP channel: SMS centre {config.host}:{config.port} as {config.system_id!r}")
        self.stdout.flush()
        asyncio.run(self._run(config))
        self.stdout.write("SMPP channel stopped")
        self.stdout.flush()
        # smpp34's engine keeps native (tokio) threads that may still call into Python while the interpreter
        # finalizes, which aborts the process (SIGABRT) after a clean stop. Everything is committed and flushed
        # here: leave without finalizing.
        logging.shutdown()
        connections.close_all()
        sys.stderr.flush()
        os._exit(0)

    async def _run(self, config: SmppConfig) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await SmppChannel(config).run(stop)
