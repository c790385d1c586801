"""``tasdid billing-sweep``: expire the payment orders nobody finished, and send again the refunds left without
an answer. The task worker does both one by one when due; this catches up after an outage of the worker."""

from django.core.management.base import BaseCommand

from tasdid.billing.services.payments import payment_orders_expire
from tasdid.billing.services.refunds import refunds_send_again


class Command(BaseCommand):
    help = ("Clôt les ordres de paiement abandonnés (sans réponse de la page de paiement dans le délai) et renvoie "
            "les remboursements restés sans réponse.")

    def handle(self, *args, **options):
        count = payment_orders_expire()
        refunds = refunds_send_again()
        if not count and not refunds:
            self.stdout.write("Rien à traiter.")
            return
        self.stdout.write(f"Ordres de paiement expirés : {count}.")
        if refunds:
            done = ", ".join(f"{state} {n}" for state, n in sorted(refunds.items()))
            self.stdout.write(f"Remboursements renvoyés : {sum(refunds.values())} ({done}).")
