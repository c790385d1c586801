"""The sandbox banks' BIN routes (docs/sandbox-bank.md), to the default issuer host."""

from django.db import migrations

SANDBOX_ROUTES = (
    ("400011", "Banque Atlas"),  # Visa
    ("606101", "Banque Atlas"),  # CMI, the domestic range
    ("522011", "Crédit du Sahel"),  # MasterCard
)


def seed(apps, schema_editor):
    Route = apps.get_model("switch", "Route")
    for prefix, bank in SANDBOX_ROUTES:
        Route.objects.get_or_create(bin_prefix=prefix, defaults={"bank_name": bank})


class Migration(migrations.Migration):
    dependencies = [("switch", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
