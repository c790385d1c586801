"""Issuing: the sandbox banks, their cardholders' accounts and cards."""

import secrets
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from tasdid.core.cards import brand_of, cvv_digest, fingerprint, is_digits, mask, parse_expiry
from tasdid.core.money import MAD_NUMERIC, quantize
from tasdid.core.phones import PhoneKind, parse_number

from ..models import Account, Bank, Card, LedgerEntry


@transaction.atomic
def bank_register(*, code: str, name: str, short_name: str, logo: str, bin_prefixes: list[str]) -> Bank:
    """Create the bank ``code`` or bring its details up to date."""
    if not 1 <= len(short_name) <= 11:
        raise ValueError("an SMS sender name has 1 to 11 characters")
    bank, _created = Bank.objects.update_or_create(
        code=code, defaults={"name": name, "short_name": short_name, "logo": logo, "bin_prefixes": list(bin_prefixes)}
    )
    return bank


@transaction.atomic
def account_open(*, bank_id: int, holder_name: str, opening_balance: Decimal) -> Account:
    """A new account; a positive opening balance is credited by a ledger entry."""
    now = timezone.now()
    opening = quantize(opening_balance)
    if opening < 0:
        raise ValueError("an opening balance is not negative")
    account = Account.objects.create(
        bank_id=bank_id, number=f"MA{secrets.randbelow(10**20):020d}", holder_name=holder_name,
        balance=opening, currency=MAD_NUMERIC, opened_at=now,
    )
    if opening:
        LedgerEntry.objects.create(account=account, kind=LedgerEntry.Kind.CREDIT, amount=opening,
                                   balance_after=opening, label=_("Solde d'ouverture"), created_at=now)
    return account


@sensitive_variables()  # the card number and CVV
@transaction.atomic
def card_issue(
    *,
    account_id: int,
    pan: str,
    expiry: str,
    cvv: str,
    holder_name: str,
    phone: str,
    status: str = Card.Status.ACTIVE,
    three_ds: str = Card.ThreeDS.NONE,
) -> Card:
    """Issue a card on an account. ``pan`` and ``cvv`` are used for their keyed hashes only; ``expiry`` "MM/YY"."""
    account = Account.objects.select_related("bank").get(pk=account_id)
    brand = brand_of(pan)
    if brand is None or not any(pan.startswith(p) for p in account.bank.bin_prefixes):
        raise ValueError("the number is not in one of the bank's BIN ranges")
    if not is_digits(cvv, 3):
        raise ValueError("a CVV has three digits")
    month, year = expiry.split("/")
    parsed = parse_expiry(month, year)
    return Card.objects.create(
        bank=account.bank, account=account, brand=brand, fingerprint=fingerprint(pan), masked_pan=mask(pan),
        last4=pan[-4:], holder_name=holder_name, phone=parse_number(phone, PhoneKind.MOBILE),
        expiry_month=parsed.month, expiry_year=parsed.year, cvv_digest=cvv_digest(pan, cvv),
        status=status, three_ds=three_ds, issued_at=timezone.now(),
    )
