"""``tasdid merchant api-user``: create a user of the merchant XML API (``/fim/api``) for a registered merchant."""

import sys

from django.core.management.base import BaseCommand, CommandError

from tasdid.gateway import selectors, services


class Command(BaseCommand):
    help = ("Crée un utilisateur de l'API XML marchand (/fim/api) : tasdid merchant api-user --client-id 600000001 "
            "--name boutique-api ; le mot de passe est généré et affiché une seule fois (ou lu sur l'entrée "
            "standard avec --password-stdin).")

    def add_arguments(self, parser):
        parser.add_argument("--client-id", required=True, help="identifiant du marchand (clientid)")
        parser.add_argument("--name", required=True, help="nom d'utilisateur API (élément Name des CC5Request)")
        parser.add_argument("--password-stdin", action="store_true",
                            help="lire le mot de passe sur l'entrée standard au lieu de le générer")

    def handle(self, *args, client_id, name, password_stdin, **options):
        merchant = selectors.merchant_active(client_id)
        if merchant is None:
            raise CommandError(f"Marchand inconnu ou inactif : {client_id}")
        password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
        try:
            created = services.api_user_create(merchant=merchant, name=name, password=password)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Utilisateur API « {created.user.name} » créé pour le marchand {merchant.client_id}.")
        if not password_stdin:
            self.stdout.write(f"Mot de passe (affiché une seule fois, conservez-le) : {created.password}")
