"""The customer's language on each payment order (French for the orders made before), and the mark that a
payment's receipt email was queued (set for the payments made before: theirs went with the settlement)."""

from django.db import migrations, models


def mark_sent_receipts(apps, schema_editor):
    apps.get_model("billing", "Payment").objects.filter(receipt_email_queued_at__isnull=True).update(
        receipt_email_queued_at=models.F("paid_at"))


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0006_receiptcheck'),
    ]

    operations = [
        migrations.AddField(
            model_name='payment',
            name='receipt_email_queued_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='paymentorder',
            name='language',
            field=models.CharField(choices=[('fr', 'Français'), ('ar', 'العربية'), ('en', 'English')], default='fr', max_length=8, verbose_name='langue'),
        ),
        migrations.RunPython(mark_sent_receipts, migrations.RunPython.noop),
    ]
