"""The SMS channels the outbox hands SMS to. Each one deduplicates by the outbox's message id: the outbox may
hand it the same SMS twice (a worker killed between the send and the "delivered" mark), the phone gets it once."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import HandsetMessage, Sms


class SmsChannelError(Exception):
    """The channel could not take the SMS now (unreachable, refused): the outbox tries again later."""


def sandbox_send(*, sms: Sms) -> bool:
    """The sandbox channel: the phone itself receives the SMS (the handset keeps the code, as a phone does).
    Returns False when a message with this id had already arrived (nothing stored twice)."""
    if HandsetMessage.objects.filter(message_id=sms.message_id).exists():
        return False
    try:
        with transaction.atomic():
            HandsetMessage.objects.create(number=sms.recipient, sender=sms.sender, text=sms.text,
                                          received_at=timezone.now(), sms=sms, message_id=sms.message_id)
    except IntegrityError:  # the same SMS arriving at the same instant by another worker
        return False
    return True
