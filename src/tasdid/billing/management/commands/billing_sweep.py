"""``tasdid billing-sweep``: expire the payment orders nobody finished. The task worker does it order by order at
each one's expiry; this catches up after an outage of the worker."""

from django.core.management.base import BaseCommand

from tasdid.billing.services.payments import payment_orders_expire


class Command(BaseCommand):
    help = "Clôt les ordres de paiement abandonnés (sans réponse de la page de paiement dans le délai)."

    def handle(self, *args, **options):
        count = payment_orders_expire()
        self.stdout.write(f"Ordres de paiement expirés : {count}." if count else "Rien à traiter.")
