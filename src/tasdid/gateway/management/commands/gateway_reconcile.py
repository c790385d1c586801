"""``tasdid gateway-reconcile FILE``: the gateway's captures and reversals against the switch's clearing file."""

import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from tasdid.core.clearing import ClearingFileError
from tasdid.gateway.reconcile import reconcile, report_lines


class Command(BaseCommand):
    help = ("Rapproche le fichier de compensation du centre monétique des remises et annulations de la passerelle "
            "et liste chaque écart. Code de sortie : 0 sans écart, 1 avec des écarts, 2 si le fichier est "
            "illisible.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="le fichier de compensation (tasdid clearing)")

    def handle(self, *args, file: str, **options):
        try:
            with open(file, "rb") as stream:
                report = reconcile(stream)
        except OSError as exc:
            raise CommandError(f"fichier illisible : {file} : {exc.strerror}", returncode=2) from None
        except ClearingFileError as exc:
            raise CommandError(f"fichier de compensation refusé, aucun rapprochement fait : {file} : {exc}",
                               returncode=2) from None
        except DatabaseError as exc:
            raise CommandError(f"la base de la passerelle n'a pas pu être lue : {exc}", returncode=2) from None
        for line in report_lines(report):
            self.stdout.write(line)
        if report.differences:
            sys.exit(1)
