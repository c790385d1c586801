"""``tasdid switch``: the centre monétique's ISO 8583 server (tasdid.switch.server), until stopped."""

import asyncio
import signal

from django.core.management.base import BaseCommand, CommandError

from tasdid.core import aio
from tasdid.switch.server import Switch, SwitchConfig


class Command(BaseCommand):
    help = ("Le centre monétique : reçoit l'ISO 8583 des acquéreurs (TASDID_SWITCH_HOST:TASDID_SWITCH_PORT) et "
            "l'achemine par BIN vers les hôtes émetteurs.")

    def add_arguments(self, parser):
        parser.add_argument("--host", help="défaut : TASDID_SWITCH_HOST (127.0.0.1)")
        parser.add_argument("--port", type=int, help="défaut : TASDID_SWITCH_PORT (8583)")

    def handle(self, *args, host=None, port=None, **options):
        overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
        config = SwitchConfig.from_settings(**overrides)
        if not 0 <= config.port < 65536:
            raise CommandError(f"port invalide : {config.port}")
        try:
            aio.run(self._serve(config))
        except OSError as exc:
            raise CommandError(f"le switch ne peut pas écouter sur {config.host}:{config.port} : {exc}") from None

    async def _serve(self, config: SwitchConfig) -> None:
        switch = Switch(config)
        await switch.start()
        self.stdout.write(f"Centre monétique : ISO 8583 sur {config.host}:{switch.port}", ending="\n")
        self.stdout.flush()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        try:
            await stopping.wait()
        finally:
            await switch.stop()
