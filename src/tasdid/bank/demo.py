"""Demo data of the sandbox bank: its two banks and the sandbox cards (``sandbox.py``). Idempotent."""

from django.db import transaction

from tasdid.core.cards import fingerprint

from . import sandbox, services
from .models import Bank, Card


@transaction.atomic
def seed_demo() -> dict[str, int]:
    """Create the banks and every sandbox card that does not exist yet; cards already there are left as they
    are (their balance may have moved). Returns how many banks and cards exist, and how many cards were new."""
    banks = {}
    for spec in sandbox.BANKS:
        banks[spec.code] = services.bank_register(
            code=spec.code, name=spec.name, short_name=spec.short_name, logo=spec.logo,
            bin_prefixes=list(spec.bin_prefixes),
        )
    created = 0
    for spec in sandbox.CARDS:
        if Card.objects.filter(fingerprint=fingerprint(spec.number)).exists():
            continue
        account = services.account_open(bank_id=banks[spec.bank].pk, holder_name=spec.holder,
                                        opening_balance=spec.balance)
        services.card_issue(
            account_id=account.pk, pan=spec.number, expiry=spec.bank_expiry, cvv=spec.bank_cvv,
            holder_name=spec.holder, phone=spec.phone, status=spec.status, three_ds=spec.three_d_secure,
        )
        created += 1
    return {"banks": Bank.objects.count(), "cards": Card.objects.count(), "created": created}
