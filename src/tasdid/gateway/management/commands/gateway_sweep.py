"""``tasdid gateway-sweep``: close expired sessions and take over every attempt past its deadline
(abandoned 3-D Secure challenges failed, unanswered or uncaptured authorizations reversed, captures and
voids retried), and send the reversals owed to the switch (rails.sweep_reversals). The task worker does the same
attempt by attempt; this catches up after an outage."""

from django.core.management.base import BaseCommand

from tasdid.gateway import flow, rails


class Command(BaseCommand):
    help = "Traite les sessions et tentatives de paiement dont le délai est dépassé."

    def handle(self, *args, **options):
        counts = flow.sweep()
        counts.update(rails.sweep_reversals())
        if not counts:
            self.stdout.write("Rien à traiter.")
        for what, count in sorted(counts.items()):
            self.stdout.write(f"{what}: {count}")
