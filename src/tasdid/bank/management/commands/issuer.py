"""``tasdid issuer [--host H] [--port P]``: the sandbox banks' issuer host, ISO 8583 over TCP."""

import asyncio
import signal

from django.core.management.base import BaseCommand, CommandError

from tasdid.bank import issuer
from tasdid.core import aio


class Command(BaseCommand):
    help = ("Hôte émetteur des banques bac à sable : ISO 8583 sur TCP (0100, 0200 remboursement, 0220, 0400, "
            "0800). Adresse par défaut : TASDID_ISSUER_HOST / TASDID_ISSUER_PORT, sinon 127.0.0.1:8584.")

    def add_arguments(self, parser):
        parser.add_argument("--host", help="adresse d'écoute (TASDID_ISSUER_HOST, 127.0.0.1 par défaut)")
        parser.add_argument("--port", type=int, help="port d'écoute (TASDID_ISSUER_PORT, 8584 par défaut; 0 : libre)")
        parser.add_argument("--idle-timeout", type=float, default=issuer.IDLE_TIMEOUT,
                            help="secondes de silence avant de fermer une connexion")

    def handle(self, *args, **options):
        try:
            host, port = issuer.address_from_env()
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        host = options["host"] or host
        port = port if options["port"] is None else options["port"]
        if not 0 <= port <= 65535:
            raise CommandError(f"not a port number: {port}")
        try:
            aio.run(self._run(host, port, options["idle_timeout"]))
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    async def _run(self, host: str, port: int, idle_timeout: float) -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)

        def ready(host_server: issuer.IssuerHost) -> None:
            self.stdout.write(f"issuer host listening on {host}:{host_server.port}")
            self.stdout.flush()

        try:
            await issuer.serve(host=host, port=port, ready=ready, idle_timeout=idle_timeout)
        except asyncio.CancelledError:
            self.stdout.write("issuer host stopped")
