"""The kill campaign's checker (bench/kill_invariants.py) sees what it is there to see: an invoice paid at the
biller with no capture at the gateway, its receipt email never sent, and a task left RUNNING by a dead worker;
and it reports nothing on an empty database."""

import datetime as dt

from bench.kill_invariants import check
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tasdid.billing.models import Invoice, Payment, PaymentOrder, PaymentOrderItem
from tests import factories


def test_nothing_to_report_on_an_empty_database(db):
    report = check()
    assert (report["violations"], report["pending"], report["reopened"]) == ([], [], [])


def test_a_paid_invoice_without_capture_without_email_and_a_stuck_task_are_violations(db):
    line = factories.internet_line(identifier="70000001", owner=factories.customer(client_number="700000001"))
    invoice = factories.invoice(line=line, amount_ht="10.00", reference="0700000000010926")
    now = timezone.now()
    order = PaymentOrder.objects.create(oid="KILL-1", line=line, email="k@example.ma", amount=invoice.amount_ttc,
                                        state=PaymentOrder.State.PAID, created_at=now, updated_at=now)
    PaymentOrderItem.objects.create(order=order, invoice=invoice, amount=invoice.amount_ttc)
    payment = Payment.objects.create(order=order, receipt_number="R2026-00000001", amount=invoice.amount_ttc,
                                     email=order.email, paid_at=now, trans_id="T-1", auth_code="123456",
                                     masked_pan="400011******0017", card_brand="VISA", merchant_name="Tasdid")
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.PAID, payment=payment, paid_at=now)
    DBTaskResult.objects.create(status="RUNNING", args_kwargs={"args": [], "kwargs": {"email_id": 1}},
                                task_path="tasdid.messaging.tasks.deliver_email", backend_name="default",
                                queue_name="default", run_after=now, started_at=now - dt.timedelta(minutes=5),
                                worker_ids=["dead-worker"], exception_class_path="", traceback="")

    violations = check()["violations"]

    assert sorted((v["order"], v["invariant"]) for v in violations) == [
        ("", "no task left behind (RUNNING after recovery)"),
        ("KILL-1", "each paid order: one receipt email, sent once"),
        ("KILL-1", "invoice paid without capture"),
    ]
