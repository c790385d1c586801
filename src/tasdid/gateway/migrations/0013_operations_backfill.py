from django.db import migrations


def forwards(apps, schema_editor):
    from tasdid.gateway.backfill import backfill

    backfill(apps.get_model("gateway", "Attempt"), apps.get_model("gateway", "Operation"))


def backwards(apps, schema_editor):
    kinds = ("authorization", "capture", "void")
    apps.get_model("gateway", "Event").objects.filter(operation__kind__in=kinds).update(operation=None)
    apps.get_model("gateway", "Operation").objects.filter(kind__in=kinds).delete()


class Migration(migrations.Migration):
    """One row per operation: the authorization, capture and void of every attempt recorded before."""

    dependencies = [
        ('gateway', '0012_operation_kinds'),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
