"""Reads of the sandbox bank: cards by number, available balances, 3-D Secure transactions."""

import uuid
from collections.abc import Iterable
from decimal import Decimal

from django.db.models import Sum
from django.views.decorators.debug import sensitive_variables

from tasdid.core.cards import fingerprint, is_digits

from .models import AcsTransaction, Card, Hold


@sensitive_variables()
def card_by_number(*, pan: str) -> Card | None:
    """The card carrying ``pan``, found by its keyed fingerprint (the number itself is nowhere in the tables)."""
    if not is_digits(pan):
        return None
    return Card.objects.select_related("bank", "account").filter(fingerprint=fingerprint(pan)).first()


def cards_by_fingerprint(*, fingerprints: Iterable[str]) -> dict[str, Card]:
    """Cards by their numbers' fingerprints (``core.cards.fingerprint``), in one query; their accounts are not
    read (the authorization locks them itself)."""
    return {card.fingerprint: card for card in Card.objects.filter(fingerprint__in=set(fingerprints))}


def accounts_held(*, account_ids: Iterable[int]) -> dict[int, Decimal]:
    """``account_held`` for many accounts in one query (0.00 for an account without a held hold)."""
    ids = set(account_ids)
    held = dict.fromkeys(ids, Decimal("0.00"))
    rows = (Hold.objects.filter(account_id__in=ids, state=Hold.State.HELD).order_by()
            .values_list("account_id").annotate(s=Sum("amount")))
    held.update({account_id: total for account_id, total in rows})
    return held


def account_held(*, account_id: int) -> Decimal:
    total = Hold.objects.filter(account_id=account_id, state=Hold.State.HELD).aggregate(s=Sum("amount"))["s"]
    return total or Decimal("0.00")


def account_available(*, account_id: int, balance: Decimal) -> Decimal:
    """Balance minus the holds still active on the account."""
    return balance - account_held(account_id=account_id)


def acs_transaction(*, acs_trans_id: str) -> AcsTransaction | None:
    try:
        key = uuid.UUID(str(acs_trans_id))
    except ValueError:
        return None
    return AcsTransaction.objects.select_related("card__bank").filter(acs_trans_id=key).first()
