"""DESIGN §7's money and delivery invariants, read in every party's tables after a kill campaign.

Run by bench/kill_campaign.py as its own process against the campaign's database (the parties share one database
in the demo setup; this reads their tables and writes nothing):

    DATABASE_URL=… TASDID_SANDBOX=1 python bench/kill_invariants.py   # prints a JSON report

The report has ``violations`` (an invariant broken: which order, which invariant, the rows' facts), ``pending``
(something legitimately unfinished, with the deadline after which it would be a violation), and ``counts``.
"Biller paid" is an invoice marked paid; a payment whose invoices were all reopened (by reconciliation) is
listed under ``reopened`` and is not a paid order.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections import Counter
from decimal import Decimal

# A deadline this far in the past is overdue: the sweeps have just run, but a retry may be on its way.
DEADLINE_SLACK = dt.timedelta(seconds=5)
# A task may be RUNNING this long (its worker's lease, then another worker's recovery pass) before it counts as
# left behind by a dead worker.
TASK_LEASE_BUDGET = dt.timedelta(seconds=60)


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def check() -> dict:
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from tasdid.bank.models import Hold, LedgerEntry
    from tasdid.billing.models import Invoice, Payment, PaymentOrder
    from tasdid.gateway.models import ATTEMPT_TERMINAL, Attempt, AttemptState
    from tasdid.messaging.models import Email, MailboxMessage

    now = timezone.now()
    # The last time a worker looked for due tasks: one due after it is waiting for the next worker, not left behind.
    last_worker_run = os.environ.get("TASDID_KILL_LAST_WORKER_RUN")
    tasks_seen_at = dt.datetime.fromisoformat(last_worker_run) if last_worker_run else now
    violations: list[dict] = []
    pending: list[dict] = []
    reopened: list[dict] = []

    def violation(order: str, invariant: str, **facts) -> None:
        violations.append({"order": order, "invariant": invariant, **{k: str(v) for k, v in facts.items()}})

    attempts_by_oid: dict[str, list] = {}
    for attempt in Attempt.objects.select_related("session").order_by("pk"):
        attempts_by_oid.setdefault(attempt.session.oid, []).append(attempt)
    holds_by_rrn = {h.rrn: h for h in Hold.objects.all()}
    debits = {e.hold_id: e for e in LedgerEntry.objects.filter(hold__isnull=False)}

    for order in PaymentOrder.objects.order_by("pk"):
        attempts = attempts_by_oid.get(order.oid, [])
        captured = [a for a in attempts if a.state == AttemptState.CAPTURED]
        payment = Payment.objects.filter(order=order).first()
        paid = list(Invoice.objects.filter(payment=payment, status=Invoice.Status.PAID)) if payment else []
        if len(captured) > 1:
            violation(order.oid, "one capture per order", captured=[a.trans_id for a in captured])
        if payment is not None and not paid:
            reopened.append({"order": order.oid, "receipt": payment.receipt_number, "trans_id": payment.trans_id})
        if paid:
            attempt = next((a for a in attempts if a.trans_id == payment.trans_id), None)
            if attempt is None:
                violation(order.oid, "invoice paid without capture", detail="no gateway attempt with the payment's "
                          "TransId", trans_id=payment.trans_id, refs=[i.reference for i in paid])
                continue
            if attempt.state in (AttemptState.AUTHORIZED, AttemptState.CAPTURING) and attempt.deadline > now:
                pending.append({"order": order.oid, "what": "capture of a paid order", "state": attempt.state,
                                "deadline": _iso(attempt.deadline)})
                continue
            if attempt.state != AttemptState.CAPTURED:
                hold = holds_by_rrn.get(attempt.rrn)
                violation(order.oid, "invoice paid without capture", trans_id=attempt.trans_id,
                          attempt_state=attempt.state, callback_answer=attempt.callback_answer,
                          callback_tries=attempt.callback_tries, hold_state=hold.state if hold else "none",
                          refs=[i.reference for i in paid], receipt=payment.receipt_number)
                continue
            hold = holds_by_rrn.get(attempt.rrn)
            debit = debits.get(hold.pk) if hold else None
            kept = sum((item.amount for item in order.items.filter(invoice__in=paid)), Decimal("0.00"))
            if hold is None or hold.state != Hold.State.CAPTURED or debit is None:
                violation(order.oid, "gateway captured = bank debited", trans_id=attempt.trans_id,
                          hold_state=hold.state if hold else "none", debited=debit is not None)
            elif not (payment.amount == kept == attempt.amount == hold.amount == debit.amount):
                violation(order.oid, "one amount everywhere", payment=payment.amount, invoices=kept,
                          captured=attempt.amount, held=hold.amount, debited=debit.amount)
            if sorted(i.reference for i in paid) != sorted(attempt.paid_refs):
                violation(order.oid, "the invoices paid are the ones captured",
                          paid=sorted(i.reference for i in paid), captured=sorted(attempt.paid_refs))
        else:
            for attempt in captured:
                violation(order.oid, "captured at the gateway but not paid at the biller", trans_id=attempt.trans_id,
                          amount=attempt.amount, refs=attempt.paid_refs, order_state=order.state,
                          reopened=payment is not None)

    # At most one payment per invoice: no invoice in two captured attempts, nor in two biller payments.
    captured_refs = Counter(ref for a in Attempt.objects.filter(state=AttemptState.CAPTURED) for ref in a.paid_refs)
    for ref, times in captured_refs.items():
        if times > 1:
            violation("", "at most one payment per invoice (captured twice)", invoice=ref, captures=times)
    for invoice in Invoice.objects.filter(status=Invoice.Status.PAID).select_related("payment__order"):
        if not invoice.payment.order.items.filter(invoice=invoice).exists():
            violation(invoice.payment.order.oid, "invoice paid by an order that did not hold it",
                      invoice=invoice.reference)

    # No hold open past its deadline: a held amount belongs to an attempt still in flight, within its deadline.
    attempt_by_rrn = {a.rrn: a for oid_attempts in attempts_by_oid.values() for a in oid_attempts if a.rrn}
    for hold in Hold.objects.filter(state=Hold.State.HELD):
        attempt = attempt_by_rrn.get(hold.rrn)
        if attempt is not None and attempt.state not in ATTEMPT_TERMINAL and attempt.deadline > now - DEADLINE_SLACK:
            pending.append({"order": hold.order_id, "what": "hold", "state": attempt.state,
                            "deadline": _iso(attempt.deadline)})
        else:
            violation(hold.order_id, "no hold open past its deadline", rrn=hold.rrn, amount=hold.amount,
                      held_since=_iso(hold.created_at), attempt_state=attempt.state if attempt else "none",
                      attempt_deadline=_iso(attempt.deadline) if attempt else "")
    for oid, oid_attempts in attempts_by_oid.items():
        for attempt in oid_attempts:
            if attempt.state in ATTEMPT_TERMINAL:
                continue
            if attempt.deadline > now - DEADLINE_SLACK:
                pending.append({"order": oid, "what": "attempt", "state": attempt.state,
                                "deadline": _iso(attempt.deadline)})
            else:
                violation(oid, "no attempt left past its deadline", trans_id=attempt.trans_id, state=attempt.state,
                          deadline=_iso(attempt.deadline))

    # Each paid order: one receipt, one email in the outbox, sent, and one message in the SMTP sink's mailbox.
    for payment in Payment.objects.select_related("order").order_by("pk"):
        if not Invoice.objects.filter(payment=payment, status=Invoice.Status.PAID).exists():
            continue
        number = payment.receipt_number
        outbox = list(Email.objects.filter(subject__contains=number))
        received = MailboxMessage.objects.filter(raw__contains=number).count()
        if len(outbox) != 1 or outbox[0].status != Email.Status.SENT or received != 1:
            violation(payment.order.oid, "each paid order: one receipt email, sent once", receipt=number,
                      outbox=[(e.pk, e.status, e.attempts) for e in outbox], mailbox=received)

    # The task queue after recovery: nothing left running by a dead worker, nothing ready left unrun.
    for task in DBTaskResult.objects.exclude(status__in=("SUCCESSFUL", "FAILED")).order_by("enqueued_at"):
        args = json.dumps(task.args_kwargs)[:200]
        if task.status == "RUNNING" and task.started_at and task.started_at + TASK_LEASE_BUDGET > now:
            pending.append({"order": "", "what": f"task {task.task_path} running", "state": task.status,
                            "deadline": _iso(task.started_at + TASK_LEASE_BUDGET)})
        elif task.status == "RUNNING":
            violation("", "no task left behind (RUNNING after recovery)", task=task.task_path, args=args,
                      started=_iso(task.started_at), workers=task.worker_ids)
        elif task.run_after and task.run_after.year < 9999 and task.run_after > tasks_seen_at - DEADLINE_SLACK:
            pending.append({"order": "", "what": f"task {task.task_path}", "state": task.status,
                            "deadline": _iso(task.run_after)})
        else:
            violation("", "no task left behind (ready, not run)", task=task.task_path, args=args,
                      status=task.status, run_after=_iso(task.run_after))

    counts = {
        "orders": dict(Counter(PaymentOrder.objects.values_list("state", flat=True))),
        "attempts": dict(Counter(Attempt.objects.values_list("state", flat=True))),
        "holds": dict(Counter(Hold.objects.values_list("state", flat=True))),
        "payments": Payment.objects.count(),
        "invoices paid": Invoice.objects.filter(status=Invoice.Status.PAID).count(),
        "invoices unpaid": Invoice.objects.filter(status=Invoice.Status.UNPAID).count(),
        "emails": dict(Counter(Email.objects.values_list("status", flat=True))),
        "mailbox": MailboxMessage.objects.count(),
        "tasks": dict(Counter(DBTaskResult.objects.values_list("status", flat=True))),
    }
    return {"checked_at": _iso(now), "violations": violations, "pending": pending, "reopened": reopened,
            "counts": counts}


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tasdid.settings")
    import django

    django.setup()
    json.dump(check(), sys.stdout, ensure_ascii=False, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
