"""``tasdid merchant list``: the merchants of the gateway (store keys masked)."""

import json

from django.core.management.base import BaseCommand

from tasdid.gateway import selectors
from tasdid.gateway.admin import masked_key


class Command(BaseCommand):
    help = "Liste les marchands de la plateforme de paiement (clés masquées)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json", help="une liste JSON")

    def handle(self, *args, as_json: bool = False, **options):
        rows = [
            {"client_id": m.client_id, "name": m.name, "active": m.active, "return_hosts": m.return_hosts,
             "store_key": masked_key(m.store_key)}
            for m in selectors.merchants()
        ]
        if as_json:
            self.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        if not rows:
            self.stdout.write("Aucun marchand enregistré (tasdid merchant add …).")
        for row in rows:
            state = "actif" if row["active"] else "inactif"
            self.stdout.write(f"{row['client_id']}\t{row['name']}\t{state}\t{row['store_key']}\t"
                              f"{', '.join(row['return_hosts'])}")

