"""Serve one party's web application with gunicorn: ``tasdid serve biller --port 8000``."""

import os
import sys
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tasdid.core.accesslog import ACCESS_LOG_FORMAT
from tasdid.core.http import PARTIES

PARTY_URL_SETTINGS = {"biller": "BILLER_URL", "gateway": "GATEWAY_URL", "bank": "BANK_URL", "switch": "SWITCH_URL"}


def party_port(party: str) -> int:
    url = urlsplit(getattr(settings, PARTY_URL_SETTINGS[party]))
    return url.port or (443 if url.scheme == "https" else 80)


class Command(BaseCommand):
    help = "Serve one party (biller, gateway, bank or switch) with gunicorn on 127.0.0.1."

    def add_arguments(self, parser):
        parser.add_argument("party", choices=PARTIES)
        parser.add_argument("--host", default=os.environ.get("TASDID_BIND_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, help="default: the port of the party's URL setting")
        parser.add_argument("--workers", type=int, default=int(os.environ.get("TASDID_WEB_WORKERS", "2")))
        parser.add_argument("--threads", type=int, default=int(os.environ.get("TASDID_WEB_THREADS", "4")))

    def handle(self, *args, party, host, port, workers, threads, **options):
        port = port or party_port(party)
        if not 0 < port < 65536:
            raise CommandError(f"port invalide : {port}")
        argv = [
            sys.executable, "-m", "gunicorn", f"tasdid.wsgi:{party}",
            "--bind", f"{host}:{port}", "--workers", str(workers), "--threads", str(threads),
            "--name", f"tasdid-{party}", "--graceful-timeout", "5", "--timeout", "60",
            "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT.format(party=party),
            "--logger-class", "tasdid.core.accesslog.AccessLogger",  # control characters of URLs escaped
        ]
        os.execv(sys.executable, argv)  # noqa: S606 - replace this process with gunicorn
