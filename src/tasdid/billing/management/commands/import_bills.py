"""``tasdid import-bills FILE.json``: import customers, lines, bills and invoices (docs/import-format.md)."""

import sys

from django.core.management.base import BaseCommand
from django.db import DatabaseError
from django.utils.translation import gettext as _
from tqdm import tqdm

from tasdid.billing.importing.errors import BillImportFailed
from tasdid.billing.importing.reader import BillsFile, FileProblem
from tasdid.billing.services.importing import ImportSummary, import_bills


def _n(value: int) -> str:
    return f"{value:,}".replace(",", "\u202f")


def summary_lines(summary: ImportSummary, *, verbose: bool = False) -> list[str]:
    rows = [(_("clients"), summary.customers), (_("lignes"), summary.lines),
            (_("factures mensuelles"), summary.bills), (_("factures"), summary.invoices)]
    lines = [_("Import terminé en %(seconds).1f s (%(rate)s factures par seconde).") % {
        "seconds": summary.seconds, "rate": _n(round(summary.invoices_per_second))}]
    for label, tally in rows:
        lines.append(_("  %(label)s : %(created)s créé(s), %(present)s déjà présent(s)") % {
            "label": label, "created": _n(tally.created), "present": _n(tally.present)})
    if summary.discarded_invoices:
        lines.append(_("  (un import interrompu, jamais publié, a été effacé avant : %(count)s facture(s))") % {
            "count": _n(summary.discarded_invoices)})
    if verbose:
        lines.append(_("  plus longue transaction d'écriture : %(seconds).3f s") % {
            "seconds": summary.longest_transaction})
    return lines


class Command(BaseCommand):
    help = _("Importe clients, lignes, factures mensuelles et factures d'un fichier JSON (docs/import-format.md) : "
             "tout ou rien, publié d'un coup à la fin, le site restant disponible pendant l'import ; réimporter le "
             "même fichier ne change rien.")

    def add_arguments(self, parser):
        parser.add_argument("file", help=_("le fichier JSON à importer"))
        parser.add_argument("--no-progress", action="store_true",
                            help=_("pas de barre de progression (elle ne s'affiche que sur un terminal)"))

    def handle(self, *args, file: str, no_progress: bool = False, **options):
        bar = None
        if not no_progress and self.stderr.isatty():
            try:
                total = BillsFile(file).size()
            except FileProblem:
                total = None
            bar = tqdm(total=total, unit="o", unit_scale=True, unit_divisor=1024, desc=_("Import"),
                       file=self.stderr._out)
        try:
            summary = import_bills(source=file, progress=bar.update if bar is not None else None)
        except BillImportFailed as failure:
            self._fail(bar, failure.headline(), *(f"  {problem}" for problem in failure.problems))
        except DatabaseError as exc:  # locked by another writer, not migrated…: rolled back all the same
            self._fail(bar, _("Import refusé, rien n'a été importé : la base de données a répondu « %(error)s » "
                              "(base à jour ? « tasdid migrate »)") % {"error": exc})
        if bar is not None:
            bar.close()
        for line in summary_lines(summary, verbose=options.get("verbosity", 1) >= 2):
            self.stdout.write(line)

    def _fail(self, bar, *lines: str) -> None:
        if bar is not None:
            bar.close()
        for line in lines:
            self.stderr.write(line)
        sys.exit(1)
