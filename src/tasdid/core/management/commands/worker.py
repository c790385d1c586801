"""The background task worker: ``tasdid worker`` (django-tasks-db's db_worker with Tasdid's defaults)."""

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the background task worker (outbox delivery, retries) until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=0.2, help="seconds between polls when idle")
        parser.add_argument("--batch", action="store_true", help="run what is queued, then exit")

    def handle(self, *args, interval, batch, **options):
        call_command("db_worker", queue_name="*", interval=interval, batch=batch, reload=False,
                     startup_delay=False)
