"""The gateway's demo data: the biller registered as a merchant, from settings."""

from django.conf import settings

from . import protocol, services
from .models import Merchant


def seed_demo() -> Merchant:
    """Register (or update) the biller as a merchant: its client id, store key and name from settings, and the
    host of BILLER_URL as its one allowed return host. Idempotent."""
    result = services.merchant_register(
        client_id=settings.BILLER_CLIENT_ID,
        name=settings.BILLER_NAME,
        store_key=settings.BILLER_STORE_KEY,
        return_hosts=[protocol.host_of_url(settings.BILLER_URL)],
    )
    return result.merchant
