"""Exactly-once delivery: a message id per SMS and email (one per existing row too), a "sending" state, retry
times and resend counts; the sandbox phone and mailbox keep each message id once."""

import uuid

from django.db import migrations, models


def give_each_message_its_id(apps, schema_editor):
    for name in ("Sms", "Email"):
        model = apps.get_model("messaging", name)
        for pk in model.objects.filter(message_id__isnull=True).values_list("pk", flat=True):
            model.objects.filter(pk=pk).update(message_id=uuid.uuid4())


class Migration(migrations.Migration):

    dependencies = [
        ("messaging", "0001_initial"),
    ]

    operations = [
        migrations.AddField("sms", "message_id", models.UUIDField(null=True, editable=False)),
        migrations.AddField("email", "message_id", models.UUIDField(null=True, editable=False)),
        migrations.RunPython(give_each_message_its_id, migrations.RunPython.noop),
        migrations.AlterField("sms", "message_id", models.UUIDField(default=uuid.uuid4, unique=True, editable=False)),
        migrations.AlterField("email", "message_id", models.UUIDField(default=uuid.uuid4, unique=True, editable=False)),
        migrations.AddField("sms", "resends", models.PositiveSmallIntegerField(default=0)),
        migrations.AddField("email", "resends", models.PositiveSmallIntegerField(default=0)),
        migrations.AddField("sms", "next_try_at", models.DateTimeField(null=True, blank=True)),
        migrations.AddField("email", "next_try_at", models.DateTimeField(null=True, blank=True)),
        migrations.AlterField("sms", "status", models.CharField(max_length=10, choices=[
            ("queued", "en attente"), ("sending", "en cours d'envoi"), ("delivered", "délivré"), ("failed", "échec"),
            ("handled", "traité")])),
        migrations.AlterField("email", "status", models.CharField(max_length=8, default="queued", choices=[
            ("queued", "en attente"), ("sending", "en cours d'envoi"), ("sent", "envoyé"), ("failed", "échec")])),
        migrations.AddField("handsetmessage", "message_id", models.UUIDField(null=True, unique=True)),
        migrations.AddField("mailboxmessage", "message_id", models.CharField(max_length=255, blank=True, default="")),
        migrations.AddConstraint("mailboxmessage", models.UniqueConstraint(
            fields=["message_id"], condition=~models.Q(message_id=""), name="mailbox_message_id_once")),
    ]
