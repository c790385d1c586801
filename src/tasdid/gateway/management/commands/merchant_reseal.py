"""``tasdid merchant reseal``: seal every merchant's store keys again under the first key of
TASDID_GATEWAY_STORE_KEY_KEYS, after a new encryption key was put first in the list (the old one stays after it
until this command has run, then may leave)."""

from django.core.management.base import BaseCommand, CommandError

from tasdid.gateway import services
from tasdid.gateway.store_keys import StoreKeyError


class Command(BaseCommand):
    help = ("Chiffre à nouveau les clés des magasins sous la première clé de TASDID_GATEWAY_STORE_KEY_KEYS "
            "(après l'ajout d'une nouvelle clé de chiffrement en tête de liste).")

    def handle(self, *args, **options):
        try:
            resealed, unchanged = services.store_keys_reseal()
        except StoreKeyError:
            raise CommandError("Une clé de magasin n'est chiffrée sous aucune des clés de "
                               "TASDID_GATEWAY_STORE_KEY_KEYS : remettez l'ancienne clé dans la liste, puis "
                               "relancez la commande (les marchands déjà traités le restent).") from None
        self.stdout.write(f"Clés des magasins chiffrées à nouveau : {resealed} marchand(s) ; "
                          f"déjà sous la première clé : {unchanged}.")
