"""Abandoned payment orders expire; a late approved callback still settles them if nothing else paid their
invoices, and is refused (void) if something did."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tasdid.billing.models import Invoice, Payment, PaymentOrder, PaymentOrderEvent
from tasdid.billing.services.payments import (
    ORDER_EXPIRY,
    payment_callback,
    payment_order_expire,
    payment_orders_expire,
)
from tasdid.messaging.models import Email
from tests.billing.payments_fixtures import gateway_message, line_with_two_invoices, new_order

pytestmark = pytest.mark.django_db

CAUSE = "abandonnée : aucune réponse de la page de paiement 45 minutes après sa création"


def aged(order: PaymentOrder, by: dt.timedelta) -> PaymentOrder:
    """The order as if it had been made ``by`` ago (its expiry watch due as well)."""
    created = timezone.now() - by
    PaymentOrder.objects.filter(pk=order.pk).update(created_at=created, updated_at=created)
    DBTaskResult.objects.filter(task_path="tasdid.billing.tasks.expire_order").update(run_after=created + ORDER_EXPIRY)
    order.refresh_from_db()
    return order


def moves(order: PaymentOrder) -> list[tuple[str, str]]:
    return list(order.events.order_by("pk").values_list("from_state", "to_state"))


def test_the_expiry_is_the_payment_page_time_and_a_margin():
    assert dt.timedelta(minutes=30 + 15) == ORDER_EXPIRY


def test_an_order_is_watched_from_its_creation_until_its_expiry():
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    [watch] = DBTaskResult.objects.filter(task_path="tasdid.billing.tasks.expire_order")
    assert (watch.status, watch.run_after, watch.args_kwargs["kwargs"]) == (
        "READY", order.created_at + ORDER_EXPIRY, {"order_id": order.pk})


def test_an_order_expires_once_at_its_expiry_and_not_before():
    line, *_ = line_with_two_invoices()
    order = new_order(line)

    assert payment_order_expire(order_id=order.pk, now=order.created_at + ORDER_EXPIRY - dt.timedelta(seconds=1)) \
        is False
    order.refresh_from_db()
    assert (order.state, moves(order)) == ("created", [("", "created")])

    at = order.created_at + ORDER_EXPIRY
    assert payment_order_expire(order_id=order.pk, now=at) is True
    assert payment_order_expire(order_id=order.pk, now=at + dt.timedelta(hours=1)) is False
    order.refresh_from_db()
    assert (order.state, order.updated_at) == ("expired", at)
    assert list(order.events.order_by("pk").values_list("from_state", "to_state", "at", "cause"))[1:] == [
        ("created", "expired", at, CAUSE)]
    assert Invoice.objects.filter(status="unpaid").count() == 2


def test_the_task_worker_expires_an_abandoned_order_at_its_expiry(run_tasks):
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    assert run_tasks() == 0  # not due yet

    aged(order, ORDER_EXPIRY + dt.timedelta(seconds=5))
    assert run_tasks() == 1

    order.refresh_from_db()
    assert (order.state, moves(order)) == ("expired", [("", "created"), ("created", "expired")])


@pytest.mark.parametrize(("code", "state"), [("00", "paid"), ("51", "failed")])
def test_an_order_the_gateway_answered_never_expires(code, state):
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    payment_callback(fields=gateway_message(order, code=code))
    aged(order, ORDER_EXPIRY * 2)

    assert payment_order_expire(order_id=order.pk) is False
    order.refresh_from_db()
    assert order.state == state and "expired" not in [to for _, to in moves(order)]


def test_a_late_approved_callback_settles_an_expired_order_whose_invoices_are_unpaid(run_tasks):
    line, *_ = line_with_two_invoices()
    order = aged(new_order(line), ORDER_EXPIRY + dt.timedelta(minutes=1))
    assert payment_order_expire(order_id=order.pk) is True

    result = payment_callback(fields=gateway_message(order, trans_id="26101LATE0001"))

    assert (result.answer, result.reason) == ("ACTION=POSTAUTH", "settled")
    order.refresh_from_db()
    assert (order.state, moves(order)) == ("paid", [("", "created"), ("created", "expired"), ("expired", "paid")])
    payment = Payment.objects.get()
    assert (payment.order_id, payment.amount, payment.trans_id) == (order.pk, Decimal("285.00"), "26101LATE0001")
    assert set(Invoice.objects.values_list("status", flat=True)) == {"paid"}
    run_tasks()  # the receipt email is composed after the settlement
    assert Email.objects.count() == 1


def test_a_late_approved_callback_for_an_expired_order_whose_invoice_was_paid_since_is_voided(run_tasks):
    line, *_ = line_with_two_invoices()
    abandoned = aged(new_order(line), ORDER_EXPIRY + dt.timedelta(minutes=1))
    assert payment_order_expire(order_id=abandoned.pk) is True
    paid_since = new_order(line)
    assert payment_callback(fields=gateway_message(paid_since, trans_id="26101NEW00001")).answer == "ACTION=POSTAUTH"
    run_tasks()
    before = (list(PaymentOrderEvent.objects.values_list("pk", flat=True)), Email.objects.count())

    result = payment_callback(fields=gateway_message(abandoned, trans_id="26101LATE0001"))

    assert (result.answer, result.reason) == ("FAILURE", "invoice_already_paid")
    abandoned.refresh_from_db()
    assert abandoned.state == "expired"
    assert list(Payment.objects.values_list("trans_id", flat=True)) == ["26101NEW00001"]
    assert (list(PaymentOrderEvent.objects.values_list("pk", flat=True)), Email.objects.count()) == before


def test_a_late_decline_of_an_expired_order_is_acknowledged_and_changes_nothing():
    line, *_ = line_with_two_invoices()
    order = aged(new_order(line), ORDER_EXPIRY + dt.timedelta(minutes=1))
    payment_order_expire(order_id=order.pk)

    assert payment_callback(fields=gateway_message(order, code="51")).answer == "APPROVED"
    order.refresh_from_db()
    assert (order.state, order.failure_code, len(moves(order))) == ("expired", "", 2)


def test_billing_sweep_expires_every_overdue_order_and_only_those(capsys):
    overdue = [aged(new_order(line_with_two_invoices(number=f"+21266100000{n}")[0]), ORDER_EXPIRY + dt.timedelta(
        minutes=n)) for n in (1, 2)]
    recent = new_order(line_with_two_invoices(number="+212661000003")[0])
    answered = new_order(line_with_two_invoices(number="+212661000004")[0])
    payment_callback(fields=gateway_message(answered, code="05"))
    aged(answered, ORDER_EXPIRY * 3)
    aged(recent, ORDER_EXPIRY - dt.timedelta(minutes=1))

    call_command("billing_sweep")

    assert capsys.readouterr().out == "Ordres de paiement expirés : 2.\n"
    states = dict(PaymentOrder.objects.values_list("pk", "state"))
    assert [states[o.pk] for o in (*overdue, recent, answered)] == ["expired", "expired", "created", "failed"]
    call_command("billing_sweep")
    assert capsys.readouterr().out == "Rien à traiter.\n"
    assert payment_orders_expire() == 0
