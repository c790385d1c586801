"""``tasdid clearing``: the centre monétique's end-of-day clearing file (docs/iso8583.md, "Clearing file")."""

import datetime as dt
import io
import os
import sys
import tempfile

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils import timezone
from tqdm import tqdm

from tasdid.core import clearing
from tasdid.switch import selectors


def write_clearing(out, *, day: dt.date, progress=None) -> clearing.Totals:
    """The day's clearing file into ``out`` (text, ``newline=""``), streamed from the journal."""
    writer = clearing.Writer(out, day=day, generated_at=timezone.now())
    for n, detail in enumerate(selectors.clearing_details(day=day), start=1):
        writer.detail(detail)
        if progress is not None and n % 1000 == 0:
            progress(1000)
    return writer.close()


class Command(BaseCommand):
    help = ("Produit le fichier de compensation du jour : remises, annulations et remboursements approuvés, "
            "par commerçant et par banque, avec leurs totaux.")

    def add_arguments(self, parser):
        parser.add_argument("--date", help="le jour (AAAA-MM-JJ, UTC) ; défaut : hier")
        parser.add_argument("--output", help="le fichier à écrire ; défaut : la sortie standard")
        parser.add_argument("--no-progress", action="store_true",
                            help="pas de barre de progression (elle ne s'affiche que sur un terminal)")

    def handle(self, *args, date=None, output=None, no_progress=False, **options):
        if date is None:
            day = timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=1)
        else:
            try:
                day = dt.date.fromisoformat(date)
            except ValueError:
                raise CommandError(f"date invalide : « {date} » (AAAA-MM-JJ attendu)") from None
        bar = None
        try:
            if not no_progress and self.stderr.isatty():
                bar = tqdm(total=selectors.clearing_count(day=day), unit=" op", desc="Compensation",
                           file=self.stderr._out)
            progress = bar.update if bar is not None else None
            if output is None:  # UTF-8 whatever the locale says
                out = io.TextIOWrapper(sys.stdout.buffer, encoding=clearing.ENCODING, newline="", write_through=True)
                try:
                    totals = write_clearing(out, day=day, progress=progress)
                finally:
                    out.detach()
            else:
                totals = self._to_file(output, day, progress)
        except DatabaseError as exc:
            raise CommandError(f"le journal n'a pas pu être lu : {exc} (base à jour ? « tasdid migrate »)") from None
        finally:
            if bar is not None:
                bar.close()
        if output is not None:
            self.stderr.write(f"{output} : {totals.lines} opérations du {day.isoformat()} "
                              f"({totals.counts[clearing.CAPTURE]} remises, {totals.counts[clearing.REVERSAL]} "
                              f"annulations, {totals.counts[clearing.REFUND]} remboursements)")

    @staticmethod
    def _to_file(output: str, day: dt.date, progress) -> clearing.Totals:
        """Written beside the target and renamed when complete: a failed run leaves no half file."""
        folder = os.path.dirname(os.path.abspath(output))
        try:
            fd, partial = tempfile.mkstemp(dir=folder, prefix=".clearing-", suffix=".part")
        except OSError as exc:
            raise CommandError(f"impossible d'écrire dans {folder} : {exc.strerror}") from None
        try:
            with os.fdopen(fd, "w", encoding=clearing.ENCODING, newline="") as out:
                totals = write_clearing(out, day=day, progress=progress)
            os.replace(partial, output)
        except BaseException:
            os.unlink(partial)
            raise
        return totals
