"""Reads of reconciliation: which payment orders may disagree with the gateway, and the open discrepancies."""

import datetime as dt

from django.db.models import Q

from ..models import PaymentOrder

State = PaymentOrder.State

# A payment just recorded may still be on its way to capture (the gateway reads the callback's answer, then
# captures): reconciliation leaves it this long before asking.
PAID_SETTLE_DELAY = dt.timedelta(minutes=2)


def orders_to_reconcile(*, now: dt.datetime, days: int, unpaid_after: dt.timedelta) -> list[int]:
    """The orders to ask the gateway about, oldest first: every paid order not yet reconciled, and the unpaid
    ones (created, failed, expired) of the last ``days`` days whose payment page has closed (``unpaid_after``
    since they were made), which the gateway may have captured all the same."""
    paid = Q(state=State.PAID, updated_at__lte=now - PAID_SETTLE_DELAY)
    unpaid = Q(state__in=[State.CREATED, State.FAILED, State.EXPIRED],
               created_at__gte=now - dt.timedelta(days=days), created_at__lte=now - unpaid_after)
    return list(PaymentOrder.objects.filter(reconciled_at__isnull=True).filter(paid | unpaid)
                .order_by("created_at", "pk").values_list("pk", flat=True))
