"""Store keys sealed at rest (each existing key sealed, then the clear column dropped), the previous key of a
rotation with its date, the merchant's mode (the merchants already registered are in production), and the
indexes of the back office's transaction list and daily report."""

from django.db import migrations, models


def seal_existing(apps, schema_editor):
    from tasdid.gateway import store_keys

    Merchant = apps.get_model("gateway", "Merchant")
    for merchant in Merchant.objects.all():
        merchant.store_key_sealed = store_keys.seal(merchant.store_key)
        merchant.mode = "production"
        merchant.save(update_fields=["store_key_sealed", "mode"])


def unseal_existing(apps, schema_editor):
    from tasdid.gateway import store_keys

    Merchant = apps.get_model("gateway", "Merchant")
    for merchant in Merchant.objects.all():
        merchant.store_key = store_keys.unseal(merchant.store_key_sealed)
        merchant.save(update_fields=["store_key"])


class Migration(migrations.Migration):

    dependencies = [
        ('gateway', '0007_operations'),
    ]

    operations = [
        migrations.AddField(
            model_name='merchant',
            name='store_key_sealed',
            field=models.TextField(default='', verbose_name='clé du magasin (chiffrée)'),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='merchant',
            name='previous_store_key_sealed',
            field=models.TextField(blank=True, default='', verbose_name='clé précédente (chiffrée)'),
        ),
        migrations.AddField(
            model_name='merchant',
            name='previous_store_key_until',
            field=models.DateTimeField(blank=True, null=True, verbose_name="clé précédente acceptée jusqu'au"),
        ),
        migrations.AddField(
            model_name='merchant',
            name='store_key_changed_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='clé du magasin changée le'),
        ),
        migrations.AddField(
            model_name='merchant',
            name='mode',
            field=models.CharField(choices=[('test', 'test (bac à sable)'), ('production', 'production')], default='test', max_length=10, verbose_name='mode'),
        ),
        migrations.AlterField(
            model_name='merchant',
            name='store_key',
            field=models.CharField(blank=True, default='', max_length=128, verbose_name='clé du magasin'),
        ),
        migrations.RunPython(seal_existing, unseal_existing),
        migrations.RemoveField(
            model_name='merchant',
            name='store_key',
        ),
        migrations.AddIndex(
            model_name='paymentsession',
            index=models.Index(fields=['merchant', 'created_at'], name='gateway_session_merchant_day'),
        ),
        migrations.AddIndex(
            model_name='attempt',
            index=models.Index(fields=['session', 'created_at'], name='gateway_attempt_session_day'),
        ),
        migrations.AddIndex(
            model_name='attempt',
            index=models.Index(fields=['created_at'], name='gateway_attempt_created'),
        ),
        migrations.AddIndex(
            model_name='attempt',
            index=models.Index(fields=['state', 'created_at'], name='gateway_attempt_state_day'),
        ),
        migrations.AddIndex(
            model_name='attempt',
            index=models.Index(fields=['masked_pan'], name='gateway_attempt_masked_pan', opclasses=['varchar_pattern_ops']),
        ),
    ]
