"""The background task worker: ``tasdid worker`` (django-tasks-db's worker with a lease, recovery of the tasks
of dead workers and patience with a busy database: tasdid.core.worker)."""

from django.core.management.base import BaseCommand

from tasdid.core.worker import DEFAULT_LEASE, Worker


class Command(BaseCommand):
    help = "Lance le worker des tâches de fond (envoi des SMS et emails, relances) jusqu'à interruption."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=0.2, help="secondes entre deux recherches à vide")
        parser.add_argument("--batch", action="store_true", help="exécuter ce qui attend, puis s'arrêter")
        parser.add_argument("--lease", type=float, default=DEFAULT_LEASE,
                            help="secondes sans battement après lesquelles les tâches d'un worker sont reprises")

    def handle(self, *args, interval, batch, lease, **options):
        # Its log lines (tasks taken again, database busy) go where the settings send every log: the console.
        worker = Worker(queue_names=["*"], interval=interval, batch=batch, backend_name="default",
                        startup_delay=False, lease=lease)
        worker.configure_signals()
        worker.run()
