"""``tasdid reconcile``: compare the biller's payments with what the gateway captured, now, and print the report
(services.reconciliation). Exit code 0, or 1 when this run flagged a discrepancy (for cron and scripts; an
order left pending is asked about again at the next run and does not fail the command).
``tasdid reconcile --schedule`` starts the periodic run that the task worker carries out instead."""

import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from tasdid.billing.services.reconciliation import (
    OUTCOME_LABELS,
    Outcome,
    ReconciliationReport,
    reconcile,
    reconciliation_schedule_start,
)


def report_lines(report: ReconciliationReport) -> list[str]:
    """The printed report: counts per outcome, then one line per order that needs a look."""
    lines = [f"Rapprochement avec la passerelle : {len(report.results)} ordre(s) examiné(s)."]
    width = max(len(label) for label in OUTCOME_LABELS.values())
    lines += [f"  {label:<{width}} : {report.count(outcome)}" for outcome, label in OUTCOME_LABELS.items()]
    for outcome, title in ((Outcome.DISCREPANCY, "Écarts"), (Outcome.RECORDED, "Paiements enregistrés"),
                           (Outcome.PENDING, "À revoir")):
        results = report.of(outcome)
        if results:
            lines.append(f"{title} :")
            lines += [f"  {r.oid} [{r.gateway_status or '-'}] {r.detail}" for r in results]
    return lines


class Command(BaseCommand):
    help = ("Rapproche les paiements du facturier avec les encaissements de la passerelle et affiche le bilan "
            "(code de sortie 1 si un écart est signalé).")

    def add_arguments(self, parser):
        parser.add_argument("--schedule", action="store_true",
                            help="démarre (ou redémarre) le rapprochement périodique exécuté par le worker")

    def handle(self, *args, schedule: bool, **options):
        if schedule:
            reconciliation_schedule_start()
            self.stdout.write(f"Rapprochement périodique démarré : toutes les {settings.RECONCILE_SECONDS} "
                              "secondes, exécuté par le worker (tasdid worker).")
            return
        report = reconcile()
        self.stdout.write("\n".join(report_lines(report)))
        if report.count(Outcome.DISCREPANCY):
            sys.exit(1)
