"""``tasdid merchant add``: register a merchant of the gateway, or update it (same client id)."""

from django.core.management.base import BaseCommand, CommandError

from tasdid.gateway import services
from tasdid.gateway.admin import masked_key


class Command(BaseCommand):
    help = ("Enregistre un marchand de la plateforme de paiement (ou le met à jour s'il existe) : "
            "tasdid merchant add --client-id 600000001 --store-key CLE --name \"Nom\" --return-host 127.0.0.1:8000")

    def add_arguments(self, parser):
        parser.add_argument("--client-id", required=True, help="identifiant marchand (clientid)")
        parser.add_argument("--store-key", help="clé du magasin (hash ver3) ; obligatoire pour un nouveau marchand")
        parser.add_argument("--name", required=True, help="nom du marchand affiché sur la page de paiement")
        parser.add_argument("--return-host", action="append", dest="return_hosts", required=True,
                            metavar="HOTE[:PORT]",
                            help="hôte autorisé pour okUrl, failUrl, callbackUrl et shopurl (répétable)")
        parser.add_argument("--inactive", action="store_true", help="enregistrer le marchand comme inactif")
        parser.add_argument("--mode", choices=["test", "production"],
                            help="test (cartes du bac à sable seulement) ou production ; un nouveau marchand est "
                                 "en test par défaut, un marchand existant garde le sien")

    def handle(self, *args, client_id, store_key, name, return_hosts, inactive, mode=None, **options):
        try:
            result = services.merchant_register(client_id=client_id, name=name, return_hosts=return_hosts,
                                                store_key=store_key, active=not inactive, mode=mode)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        merchant = result.merchant
        verb = "enregistré" if result.created else "mis à jour"
        self.stdout.write(f"Marchand {merchant.client_id} « {merchant.name} » {verb} : "
                          f"{'actif' if merchant.active else 'inactif'}, clé {masked_key(merchant.store_key)}, "
                          f"hôtes de retour {', '.join(merchant.return_hosts)}")
