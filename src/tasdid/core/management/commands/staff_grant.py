"""``tasdid staff-grant USERNAME PARTY…``: let an account into the admin site of each party named."""

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from tasdid.core.http import PARTIES
from tasdid.core.staff import RESERVED_PERMISSIONS, STAFF_GROUPS, staff_grant


class Command(BaseCommand):
    help = "Ajoute un compte au personnel d'une ou plusieurs parties (biller, gateway, bank)."

    def add_arguments(self, parser):
        parser.add_argument("username", help="le nom d'utilisateur du compte (tasdid createsuperuser le crée)")
        parser.add_argument("parties", nargs="+", choices=PARTIES, metavar="PARTY",
                            help="biller, gateway ou bank")
        parser.add_argument("--permission", action="append", default=[], dest="permissions",
                            choices=sorted(RESERVED_PERMISSIONS),
                            help="une permission que le groupe du personnel ne donne pas (répétable)")

    def handle(self, *args, username, parties, permissions, **options):
        try:
            staff_grant(username=username, parties=parties, permissions=permissions)
        except User.DoesNotExist:
            raise CommandError(f"Aucun compte « {username} ».") from None
        for party in parties:
            self.stdout.write(f"{username} : membre de « {STAFF_GROUPS[party]} » (administration {party}).")
        for permission in permissions:
            self.stdout.write(f"{username} : permission {permission}.")
