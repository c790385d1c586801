"""Callbacks racing on a committed database, each in its own thread and connection: one invoice is paid once."""

import threading

import pytest
from django.db import connection

from tasdid.billing.models import Invoice, Payment, PaymentOrder
from tasdid.billing.services.payments import payment_callback
from tasdid.messaging.models import Email
from tests.billing.payments_fixtures import gateway_message, line_with_two_invoices, new_order


def race(*field_sets: dict) -> list[str]:
    """Deliver each callback from its own thread, all released at once; the answers in the same order."""
    barrier = threading.Barrier(len(field_sets))
    answers: list[str | BaseException] = [""] * len(field_sets)

    def deliver(i: int, fields: dict) -> None:
        try:
            barrier.wait(timeout=10)
            answers[i] = payment_callback(fields=fields).answer
        except BaseException as exc:  # reported below, in the test's thread
            answers[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(i, f)) for i, f in enumerate(field_sets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return answers


@pytest.mark.parametrize("round_", range(3))
def test_two_orders_on_the_same_invoices_exactly_one_wins(transactional_db, round_, run_tasks):
    line, *_ = line_with_two_invoices()
    first, second = new_order(line), new_order(line)

    answers = race(gateway_message(first, trans_id=f"T-A{round_}"), gateway_message(second, trans_id=f"T-B{round_}"))

    assert sorted(answers) == ["ACTION=POSTAUTH", "FAILURE"]
    winner = first if answers[0] == "ACTION=POSTAUTH" else second
    loser = second if winner is first else first
    payment = Payment.objects.get()
    assert payment.order_id == winner.pk
    assert set(Invoice.objects.values_list("status", "payment_id")) == {("paid", payment.pk)}
    assert PaymentOrder.objects.get(pk=loser.pk).state == "created"
    run_tasks()  # the receipt email is composed after the settlement
    assert Email.objects.count() == 1


def test_the_same_callback_twice_at_once_settles_once(transactional_db, run_tasks):
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    fields = gateway_message(order, trans_id="T-TWICE")

    answers = race(fields, fields)

    # The second one waits for the first, then sees its own payment: a replay, captured again, nothing new.
    assert answers == ["ACTION=POSTAUTH", "ACTION=POSTAUTH"]
    assert Payment.objects.count() == 1
    run_tasks()
    assert Email.objects.count() == 1


def test_concurrent_settlements_take_distinct_receipt_numbers(transactional_db):
    orders = [new_order(line_with_two_invoices(number=f"+21266100001{i}")[0]) for i in range(4)]

    answers = race(*(gateway_message(o, trans_id=f"T-{i}") for i, o in enumerate(orders)))

    assert answers == ["ACTION=POSTAUTH"] * 4
    numbers = sorted(Payment.objects.values_list("receipt_number", flat=True))
    assert len(set(numbers)) == 4
    assert [int(n.rsplit("-", 1)[1]) for n in numbers] == [1, 2, 3, 4]
