"""The biller's SMS service on the short number 1111: "code" gets a fidelio code back."""

from tasdid.billing.services.fidelio import fidelio_sms_received


def fidelio_service(*, sender: str, text: str) -> None:
    """Called by tasdid.messaging.services.sms_receive for every SMS to 1111 (settings.SMS_SERVICES)."""
    fidelio_sms_received(sender=sender, text=text)
