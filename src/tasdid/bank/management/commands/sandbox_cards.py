"""``tasdid sandbox cards [--json]``: the sandbox bank's test cards, one per behaviour."""

import json

from django.core.management.base import BaseCommand

from tasdid.bank import sandbox
from tasdid.core.phones import national


class Command(BaseCommand):
    help = "Liste les cartes de test de la banque bac à sable (numéro, expiration, CVV, téléphone, résultat attendu)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="une liste JSON, pour les scripts et les tests")

    def handle(self, *args, **options):
        cards = [card.as_dict() for card in sandbox.CARDS]
        if options["json"]:
            self.stdout.write(json.dumps(cards, ensure_ascii=False, indent=2))
            return
        columns = [
            ("bank", "Banque"), ("brand_label", "Type"), ("number", "Numéro"), ("expiry", "Exp."), ("cvv", "CVV"),
            ("phone", "Téléphone"), ("three_d_secure", "3-D Secure"), ("response_code", "Code"),
            ("outcome", "Résultat attendu"),
        ]
        rows = [[national(c[key]) if key == "phone" else c[key] for key, _ in columns] for c in cards]
        widths = [max(len(title), *(len(r[i]) for r in rows)) for i, (_, title) in enumerate(columns)]
        self.stdout.write("  ".join(title.ljust(w) for (_, title), w in zip(columns, widths, strict=True)).rstrip())
        self.stdout.write("  ".join("-" * w for w in widths))
        for row in rows:
            self.stdout.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
