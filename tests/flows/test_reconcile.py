"""Reconciliation against the real gateway (its order status query, POST /fim/status): after real payments through
every party, the biller and the gateway agree, and the biller says so without moving any money."""

import datetime as dt

from django.utils import timezone

from tasdid.bank import sandbox
from tasdid.billing.gateway_status import order_status
from tasdid.billing.models import Discrepancy, Payment, PaymentOrder, ServiceLine
from tasdid.billing.services.payments import ORDER_EXPIRY, payment_order_create
from tasdid.billing.services.reconciliation import reconcile

from . import journey

VISA = sandbox.card_by_outcome("00", "none")
NO_FUNDS = sandbox.card_by_outcome("51")


def test_paid_declined_and_unknown_orders_reconcile_without_a_discrepancy(world, customer, person):
    biller = world["biller"]
    # An order the customer never took to the payment page: the gateway knows nothing of it.
    never_sent = payment_order_create(line_id=ServiceLine.objects.get().pk, email=journey.EMAIL)
    journey.pay(person, journey.to_gateway(person, journey.consult(person, biller)), NO_FUNDS)
    journey.pay(person, journey.to_gateway(person, journey.consult(person, biller)), VISA)
    journey.delivered_email()  # the receipt has gone: the callback was answered
    paid = PaymentOrder.objects.get(state="paid")
    declined = PaymentOrder.objects.get(state="failed")
    journey.wait_for(lambda: order_status(oid=paid.oid, order_amount=paid.amount).status == "CAPTURED",
                     "la capture à la passerelle")
    before = {k: v for k, v in journey.snapshot().items() if k != "order events"}
    payment = Payment.objects.get()

    now = timezone.now() + ORDER_EXPIRY + dt.timedelta(minutes=1)
    report = reconcile(now=now)

    outcomes = {r.oid: (r.outcome, r.gateway_status) for r in report.results}
    assert set(outcomes) == {paid.oid, declined.oid, never_sent.oid}
    assert outcomes[paid.oid] == ("reconciled", "CAPTURED")
    assert outcomes[never_sent.oid] == ("unpaid", "UNKNOWN")
    # The declined order's page has closed: whichever word the gateway uses for it, nothing was captured.
    assert outcomes[declined.oid][0] == "unpaid"
    assert outcomes[declined.oid][1] in {"DECLINED", "FAILED", "CANCELLED", "EXPIRED"}
    assert Discrepancy.objects.count() == 0
    assert Payment.objects.get() == payment
    assert set(PaymentOrder.objects.values_list("reconciled_at", flat=True)) == {now}
    assert {k: v for k, v in journey.snapshot().items() if k != "order events"} == before  # no money moved
    journey.assert_invariants()
    # A second run asks nothing more.
    assert reconcile(now=now + dt.timedelta(hours=1)).results == []
