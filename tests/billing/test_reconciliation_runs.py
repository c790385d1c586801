"""Reconciliation as it runs: the redelivered callback answered by the biller's live server, ``tasdid reconcile``
and its report, and the periodic task chain run by the task worker."""

import datetime as dt
import io

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tasdid.billing.models import Discrepancy, Payment, PaymentOrder, ReconciliationSchedule
from tasdid.billing.services.reconciliation import reconcile, reconciliation_schedule_start
from tasdid.messaging.models import Email
from tests.billing.fake_gateway import FakeOrder
from tests.billing.test_reconciliation import later, paid_order, unpaid_order, world
from tests.support.tasks import run_pending_tasks

# --- AUTHORIZED / UNRESOLVED: the callback sent again, to the biller's real callback endpoint ----------------


def test_paid_but_the_gateway_never_heard_the_answer_is_captured_after_redelivery(parties, gateway):
    order, callback = paid_order()
    gateway.orders[order.oid] = FakeOrder("AUTHORIZED", callback)
    now = later()

    report = reconcile(now=now)

    assert gateway.actions() == [(order.oid, "status"), (order.oid, "redeliver")]
    assert gateway.redeliveries == [(order.oid, "ACTION=POSTAUTH")]  # a replay: nothing recorded twice
    assert [(r.outcome, r.gateway_status) for r in report.results] == [("reconciled", "CAPTURED")]
    order.refresh_from_db()
    assert (order.state, order.reconciled_at) == ("paid", now)
    assert Payment.objects.count() == 1
    assert Email.objects.count() == 1  # the receipt sent at the first callback, and nothing else


def test_unresolved_and_unpaid_is_recorded_by_the_redelivered_callback(parties, gateway):
    order, callback = unpaid_order(trans_id="26101REDELIVER")
    gateway.orders[order.oid] = FakeOrder("UNRESOLVED", callback)
    now = later()

    report = reconcile(now=now)

    payment = Payment.objects.get()
    assert gateway.redeliveries == [(order.oid, "ACTION=POSTAUTH")]
    assert [(r.outcome, r.gateway_status, r.detail) for r in report.results] == [
        ("recorded", "CAPTURED", f"reçu {payment.receipt_number}, 285.00 DH (rappel renvoyé par la passerelle)")]
    order.refresh_from_db()
    assert (order.state, order.reconciled_at, payment.trans_id) == ("paid", now, "26101REDELIVER")
    run_pending_tasks()  # its receipt email, composed after the settlement
    assert list(Email.objects.values_list("subject", flat=True)) == [
        f"Votre reçu de paiement {payment.receipt_number}"]

    before = world()
    assert reconcile(now=now + dt.timedelta(hours=1)).results == []
    assert world() == before


@pytest.mark.django_db
def test_a_redelivery_that_brings_no_answer_is_asked_again_next_run(gateway):
    order, callback = paid_order()
    gateway.orders[order.oid] = FakeOrder("UNRESOLVED", callback, deliver=False)
    before = world()

    report = reconcile(now=later())

    assert [(r.outcome, r.gateway_status, r.detail) for r in report.results] == [
        ("pending", "UNRESOLVED", "UNRESOLVED à la passerelle")]
    assert world() == before
    gateway.orders[order.oid] = FakeOrder("CAPTURED", callback, "285.00")
    assert [r.outcome for r in reconcile(now=later()).results] == ["reconciled"]


# --- tasdid reconcile ---------------------------------------------------------------------------------------

def _run_command(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("reconcile", *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code), out.getvalue()
    return 0, out.getvalue()


@pytest.mark.django_db
def test_the_command_prints_the_report_and_fails_on_a_discrepancy(gateway, time_machine):
    voided, voided_callback = paid_order(number="+212661000001", trans_id="26101VOIDED")
    captured, captured_callback = paid_order(number="+212661000002", trans_id="26101CAPTURED")
    recorded, recorded_callback = unpaid_order(number="+212661000003", trans_id="26101RECORDED")
    busy, busy_callback = unpaid_order(number="+212661000004", trans_id="26101BUSY")
    gateway.orders.update({
        voided.oid: FakeOrder("VOIDED", voided_callback),
        captured.oid: FakeOrder("CAPTURED", captured_callback, "285.00"),
        recorded.oid: FakeOrder("CAPTURED", recorded_callback, "285.00"),
        busy.oid: FakeOrder("OPEN", busy_callback),
    })
    time_machine.move_to(later(), tick=False)

    code, out = _run_command()

    receipt_voided = Payment.objects.get(order=voided).receipt_number
    receipt_recorded = Payment.objects.get(order=recorded).receipt_number
    refs = ", ".join(sorted(voided.items.values_list("invoice__reference", flat=True)))
    assert code == 1
    assert out == (
        "Rapprochement avec la passerelle : 4 ordre(s) examiné(s).\n"
        "  payés et encaissés (rapprochés)            : 1\n"
        "  non payés des deux côtés                   : 0\n"
        "  paiements enregistrés depuis la passerelle : 1\n"
        "  écarts signalés                            : 1\n"
        "  à revoir au prochain passage               : 1\n"
        "Écarts :\n"
        f"  {voided.oid} [VOIDED] payé chez le facturier, non encaissé par la passerelle : reçu {receipt_voided} "
        f"annulé, 285.00 DH, factures {refs} rouvertes\n"
        "Paiements enregistrés :\n"
        f"  {recorded.oid} [CAPTURED] reçu {receipt_recorded}, 285.00 DH, transaction 26101RECORDED\n"
        "À revoir :\n"
        f"  {busy.oid} [OPEN] OPEN à la passerelle\n"
    )

    # Again: only the order still open is asked about; nothing new, so the command succeeds.
    code, out = _run_command()
    assert code == 0
    assert out == (
        "Rapprochement avec la passerelle : 1 ordre(s) examiné(s).\n"
        "  payés et encaissés (rapprochés)            : 0\n"
        "  non payés des deux côtés                   : 0\n"
        "  paiements enregistrés depuis la passerelle : 0\n"
        "  écarts signalés                            : 0\n"
        "  à revoir au prochain passage               : 1\n"
        "À revoir :\n"
        f"  {busy.oid} [OPEN] OPEN à la passerelle\n"
    )
    assert Discrepancy.objects.count() == 1


@pytest.mark.django_db
def test_the_command_with_nothing_to_do(gateway):
    assert _run_command() == (0, "Rapprochement avec la passerelle : 0 ordre(s) examiné(s).\n"
                                 "  payés et encaissés (rapprochés)            : 0\n"
                                 "  non payés des deux côtés                   : 0\n"
                                 "  paiements enregistrés depuis la passerelle : 0\n"
                                 "  écarts signalés                            : 0\n"
                                 "  à revoir au prochain passage               : 0\n")
    assert gateway.requests == []


# --- The periodic run -----------------------------------------------------------------------------------------

def _reconcile_tasks():
    return DBTaskResult.objects.filter(task_path="tasdid.billing.tasks.reconcile_payments")


@pytest.mark.django_db
def test_the_periodic_run_reconciles_and_enqueues_its_successor(gateway, run_tasks, time_machine):
    time_machine.move_to(later(), tick=False)
    order, callback = paid_order()
    time_machine.move_to(later(), tick=False)
    gateway.orders[order.oid] = FakeOrder("CAPTURED", callback, "285.00")

    code, out = _run_command("--schedule")
    assert (code, out) == (0, f"Rapprochement périodique démarré : toutes les {settings.RECONCILE_SECONDS} "
                              "secondes, exécuté par le worker (tasdid worker).\n")
    run_tasks()

    order.refresh_from_db()
    assert order.reconciled_at == timezone.now()
    first, second = _reconcile_tasks().get(status="SUCCESSFUL"), _reconcile_tasks().get(status="READY")
    schedule = ReconciliationSchedule.objects.get()
    assert (first.status, first.return_value) == (
        "SUCCESSFUL", {"reconciled": 1, "unpaid": 0, "recorded": 0, "discrepancy": 0, "pending": 0})
    assert (second.status, second.run_after) == (
        "READY", timezone.now() + dt.timedelta(seconds=settings.RECONCILE_SECONDS))
    assert second.args_kwargs["kwargs"] == {"token": schedule.token}
    assert schedule.last_run_at == timezone.now()

    # The first run run again (its worker died before recording it; a transient error): its token is spent,
    # it reconciles nothing and starts no second chain.
    DBTaskResult.objects.filter(pk=first.pk).update(status="READY")
    assert run_tasks() == 1
    assert sorted(_reconcile_tasks().values_list("status", flat=True)) == ["READY", "SUCCESSFUL"]

    # Its time comes: it runs and enqueues the next one, and so on, one chain.
    time_machine.move_to(timezone.now() + dt.timedelta(seconds=settings.RECONCILE_SECONDS), tick=False)
    assert run_tasks() == 1
    assert sorted(_reconcile_tasks().values_list("status", flat=True)) == ["READY", "SUCCESSFUL", "SUCCESSFUL"]


@pytest.mark.django_db
def test_starting_again_leaves_one_chain(gateway, run_tasks, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    reconciliation_schedule_start()
    run_tasks()
    reconciliation_schedule_start()  # e.g. the demo started again: a new chain, due now
    time_machine.move_to(timezone.now() + dt.timedelta(seconds=settings.RECONCILE_SECONDS), tick=False)

    run_tasks()  # the new chain's first run, and the old chain's successor, which ends there

    token = ReconciliationSchedule.objects.get().token
    ready = _reconcile_tasks().filter(status="READY")
    assert [t.args_kwargs["kwargs"]["token"] for t in ready] == [token]
    assert ReconciliationSchedule.objects.count() == 1
    assert PaymentOrder.objects.count() == 0
