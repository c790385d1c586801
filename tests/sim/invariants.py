"""DESIGN.md §7 across every party's tables, as the simulation checks it: ``check(final=False)`` after every step
(what must hold at every instant, whatever crashed), ``check(final=True)`` once recovery has run to quiescence
(what must hold once every process had its chance: everything settled).

Each check returns the list of what is wrong, in words that say which invariant and which rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from email import message_from_string

from django.core import mail
from django_tasks_db.models import DBTaskResult, TaskResultStatus

from tasdid.bank.models import Account, Hold, HoldEvent, LedgerEntry
from tasdid.billing.models import Invoice, Payment, PaymentOrder, PaymentOrderEvent, PaymentOrderItem
from tasdid.billing.services.payments import TRANSITIONS as ORDER_TRANSITIONS
from tasdid.gateway.models import (
    ATTEMPT_TERMINAL,
    ATTEMPT_TRANSITIONS,
    OPERATION_TRANSITIONS,
    SESSION_TRANSITIONS,
    Attempt,
    AttemptState,
    Event,
    Operation,
    OperationKind,
    OperationState,
    PaymentSession,
    SessionState,
)
from tasdid.messaging.models import Email

ZERO = Decimal("0.00")
SETTLED_ANSWER = "POSTAUTH"


def _reachable(transitions: dict, start: str) -> set[str]:
    """Every state reachable from ``start`` by allowed moves (several moves may happen within one step)."""
    seen, todo = {start}, [start]
    while todo:
        for nxt in transitions.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


HOLD_TRANSITIONS = {str(k): {str(v) for v in vs} for k, vs in Hold.TRANSITIONS.items()}
INVOICE_TRANSITIONS = {Invoice.Status.UNPAID: {Invoice.Status.PAID}, Invoice.Status.PAID: set()}


class Watch:
    """Remembers each row's state from one check to the next, to see that states only move forward."""

    def __init__(self):
        self.seen: dict[tuple[str, int], str] = {}

    def _forward(self, kind: str, rows, transitions: dict, problems: list[str]) -> None:
        for pk, state in rows:
            before = self.seen.get((kind, pk))
            if before is not None and state not in _reachable(transitions, before):
                problems.append(f"§7.4 states only forward: {kind} {pk} moved {before} → {state}")
            self.seen[(kind, pk)] = state

    def check(self, *, final: bool) -> list[str]:
        problems: list[str] = []
        self._forward("order", PaymentOrder.objects.values_list("pk", "state"), ORDER_TRANSITIONS, problems)
        self._forward("attempt", Attempt.objects.values_list("pk", "state"), ATTEMPT_TRANSITIONS, problems)
        self._forward("operation", Operation.objects.values_list("pk", "state"), OPERATION_TRANSITIONS, problems)
        self._forward("session", PaymentSession.objects.values_list("pk", "state"), SESSION_TRANSITIONS, problems)
        self._forward("hold", Hold.objects.values_list("pk", "state"), HOLD_TRANSITIONS, problems)
        self._forward("invoice", Invoice.objects.values_list("pk", "status"), INVOICE_TRANSITIONS, problems)
        problems += always()
        if final:
            problems += settled()
        return problems


def _attempt_of(payment: Payment) -> Attempt | None:
    return Attempt.objects.filter(trans_id=payment.trans_id).select_related("session").first()


def _hold_of(attempt: Attempt | None) -> Hold | None:
    if attempt is None or not attempt.rrn:
        return None
    return Hold.objects.filter(rrn=attempt.rrn).first()


def _receipt_emails(payment: Payment) -> list[Email]:
    return [e for e in Email.objects.filter(to=payment.email) if payment.receipt_number in e.subject]


def _delivered_copies(payment: Payment) -> int:
    """How many distinct messages carrying this receipt reached the mail server (one Message-ID each: a server
    that deduplicates by Message-ID delivers a message sent twice under one id once)."""
    ids = {_message_id(m) for m in mail.outbox if payment.receipt_number in m.subject and payment.email in m.to}
    return len(ids)


_MESSAGE_IDS: dict[int, str] = {}


def _message_id(message) -> str:
    """The Message-ID the mail server received (a server that deduplicates by it delivers one copy)."""
    key = id(message)
    if key not in _MESSAGE_IDS:
        _MESSAGE_IDS[key] = message_from_string(message.message().as_string()).get("Message-ID") or str(key)
    return _MESSAGE_IDS[key]


def always() -> list[str]:
    """What holds after every step, whatever crashed or is down: nothing is ever paid twice, no amount differs
    between the parties, a payment recorded is never voided, money moves only with a capture, one email per
    receipt (queued with the payment, sent at most once), every state is its last event's. Each table is read
    once (this runs after every step)."""
    problems: list[str] = []
    invoices = list(Invoice.objects.values_list("pk", "reference", "status", "payment_id"))
    by_payment = defaultdict(list)
    for pk, reference, status, payment_id in invoices:
        if payment_id is not None:
            by_payment[payment_id].append((pk, reference))
        if (status == Invoice.Status.PAID) != (payment_id is not None):
            problems.append(f"§7.1 invoice {reference} is {status} with payment {payment_id}")
    item_amounts = {(o, i): a for o, i, a in PaymentOrderItem.objects.values_list("order_id", "invoice_id", "amount")}
    orders = {pk: (oid, state) for pk, oid, state in PaymentOrder.objects.values_list("pk", "oid", "state")}
    attempts = {a.trans_id: a for a in Attempt.objects.all()}
    holds = {h.rrn: h for h in Hold.objects.all()}
    emails = Counter((e.to, e.subject) for e in Email.objects.only("to", "subject"))
    composing = {row["kwargs"].get("payment_id") for row in DBTaskResult.objects.filter(
        task_path="tasdid.billing.tasks.send_receipt_email",
        status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING]).values_list("args_kwargs", flat=True)}
    delivered = defaultdict(set)
    for m in mail.outbox:
        delivered[(tuple(m.to), m.subject)].add(_message_id(m))
    for payment in Payment.objects.all():
        paid = by_payment.get(payment.pk, [])
        oid, order_state = orders[payment.order_id]
        kept = sum((item_amounts.get((payment.order_id, pk), ZERO) for pk, _ref in paid), ZERO)
        where = f"order {oid} (receipt {payment.receipt_number})"
        if payment.amount != kept or not paid:
            problems.append(f"§7.3 one amount: {where}: receipt {payment.amount} ≠ invoices kept {kept}")
        if order_state != PaymentOrder.State.PAID:
            problems.append(f"§7.1 {where}: a payment on an order {order_state}")
        queued = sum(n for (to, subject), n in emails.items()
                     if to == payment.email and payment.receipt_number in subject)
        # Queued with the payment: its email in the outbox, or the durable task that composes it (with its PDF)
        # after the settlement commits.
        if queued != 1 and not (queued == 0 and payment.pk in composing):
            problems.append(f"§7 one email per receipt: {where}: {queued} emails queued")
        copies = sum(len(ids) for (to, subject), ids in delivered.items()
                     if payment.email in to and payment.receipt_number in subject)
        if copies > 1:
            problems.append(f"§7.5 one email per receipt: {where}: delivered {copies} times")
        attempt = attempts.get(payment.trans_id)
        if attempt is None:
            problems.append(f"§7.1 {where}: paid at the biller, no such transaction {payment.trans_id} at the "
                            "gateway")
            continue
        hold = holds.get(attempt.rrn) if attempt.rrn else None
        if attempt.amount != payment.amount or sorted(attempt.paid_refs) != sorted(ref for _pk, ref in paid):
            problems.append(f"§7.3 one amount: {where}: gateway authorized {attempt.amount} for "
                            f"{attempt.paid_refs}, biller recorded {payment.amount}")
        if attempt.state in (AttemptState.VOIDING, AttemptState.VOIDED) or (hold and hold.state == Hold.State.RELEASED):
            problems.append(f"§7.1 no invoice paid without a capture: {where} is paid at the biller while the "
                            f"gateway's authorization {attempt.trans_id} is {attempt.state} (callback answer "
                            f"{attempt.callback_answer or '-'}) and the bank's hold is "
                            f"{hold.state if hold else 'missing'}")
        if hold is not None and hold.amount != payment.amount:
            problems.append(f"§7.3 one amount: {where}: bank hold {hold.amount} ≠ receipt {payment.amount}")

    # The gateway and the bank agree on captures; money leaves an account only by a capture, once.
    for attempt in attempts.values():
        if attempt.state == AttemptState.CAPTURED:
            hold = holds.get(attempt.rrn)
            if hold is None or hold.state != Hold.State.CAPTURED or hold.amount != attempt.amount:
                problems.append(f"§7.3 gateway captured {attempt.trans_id} for {attempt.amount}, the bank's hold "
                                f"is {(hold.state, hold.amount) if hold else 'missing'}")
    # No double debit: one order's money leaves the bank once (one captured hold per order, whatever reached the
    # issuer twice: a duplicated or late 0100, a switch that forgot what it forwarded).
    captured_by_order = Counter(h.order_id for h in holds.values() if h.state == Hold.State.CAPTURED)
    problems += [f"§7.1 no double debit: order {oid} captured {n} times at the bank"
                 for oid, n in sorted(captured_by_order.items()) if n > 1]
    entries = list(LedgerEntry.objects.order_by("pk").values_list("account_id", "kind", "amount", "balance_after",
                                                                  "hold_id"))
    by_hold = defaultdict(list)
    for _account, kind, amount, _after, hold_id in entries:
        if hold_id is not None:
            by_hold[hold_id].append((kind, amount))
    for hold in holds.values():
        expected = [(LedgerEntry.Kind.DEBIT, hold.amount)] if hold.state == Hold.State.CAPTURED else []
        if by_hold.get(hold.pk, []) != expected:
            problems.append(f"§7.3 hold {hold.rrn} {hold.state} {hold.amount}: ledger {by_hold.get(hold.pk)}")
    balance = {}
    for account, kind, amount, after, _hold in entries:
        signed = amount if kind == LedgerEntry.Kind.CREDIT else -amount
        balance[account] = (balance[account] if account in balance else after - signed) + signed
        if balance[account] != after:
            problems.append(f"§7.3 account {account}: ledger entry after {after} ≠ running balance {balance[account]}")
    for pk, current in Account.objects.values_list("pk", "balance"):
        if pk in balance and balance[pk] != current:
            problems.append(f"§7.3 account {pk}: balance {current} ≠ ledger {balance[pk]}")

    # Every state is the last one its events recorded (§7.4: every transition recorded).
    last_move = dict(Event.objects.filter(subject="attempt").order_by("pk").values_list("attempt_id", "to_state"))
    for attempt in attempts.values():
        if last_move.get(attempt.pk) != attempt.state:
            problems.append(f"§7.4 attempt {attempt.trans_id} is {attempt.state}, its last event says "
                            f"{last_move.get(attempt.pk)}")
    last_move = dict(Event.objects.filter(subject="operation").order_by("pk").values_list("operation_id", "to_state"))
    for pk, kind, state in Operation.objects.values_list("pk", "kind", "state"):
        if last_move.get(pk) != state:
            problems.append(f"§7.4 operation {pk} ({kind}) is {state}, its last event says {last_move.get(pk)}")
    last_move = dict(HoldEvent.objects.order_by("pk").values_list("hold_id", "to_state"))
    for hold in holds.values():
        if last_move.get(hold.pk, Hold.State.HELD) != hold.state:
            problems.append(f"§7.4 hold {hold.rrn} is {hold.state}, its last event says {last_move.get(hold.pk)}")
    last_move = dict(PaymentOrderEvent.objects.order_by("pk").values_list("order_id", "to_state"))
    for pk, (oid, state) in orders.items():
        if last_move.get(pk) != state:
            problems.append(f"§7.4 order {oid} is {state}, its last event says {last_move.get(pk)}")
    return problems


def settled() -> list[str]:
    """Once recovery has run to quiescence (every process up, the clock past every timer and a grace): every
    authorization ended captured or reversed and no hold is open (§7.2), the biller's payments are exactly the
    captures (§7.1, §7.3), every receipt email was sent once, no order, session or task is left hanging."""
    problems: list[str] = []
    for hold in Hold.objects.filter(state=Hold.State.HELD):
        problems.append(f"§7.2 hold {hold.rrn} ({hold.amount}, order {hold.order_id}) still open after recovery")
    for attempt in Attempt.objects.exclude(state__in=ATTEMPT_TERMINAL):
        problems.append(f"§7.2 attempt {attempt.trans_id} still {attempt.state} after recovery")
    for attempt in Attempt.objects.filter(response_code="00").exclude(
            state__in=(AttemptState.CAPTURED, AttemptState.VOIDED)):
        problems.append(f"§7.2 approved attempt {attempt.trans_id} ended {attempt.state}")
    for attempt in Attempt.objects.filter(callback_answer=""):
        problems.append(f"merchant never told of attempt {attempt.trans_id} ({attempt.state})")
    captured = {a.trans_id: a for a in Attempt.objects.filter(state=AttemptState.CAPTURED)}
    payments = {p.trans_id: p for p in Payment.objects.select_related("order")}
    for trans_id in sorted(set(payments) - set(captured)):
        p = payments[trans_id]
        attempt = _attempt_of(p)
        problems.append(f"§7.1 no invoice paid without a capture: order {p.order.oid} (receipt {p.receipt_number}, "
                        f"{p.amount}) paid at the biller, gateway attempt {trans_id} ended "
                        f"{attempt.state if attempt else 'missing'}")
    for trans_id in sorted(set(captured) - set(payments)):
        a = captured[trans_id]
        problems.append(f"§7.1 captured, not recorded: gateway captured {trans_id} ({a.amount}, order "
                        f"{a.session.oid}), no payment at the biller")
    for trans_id in sorted(set(captured) & set(payments)):
        a, p = captured[trans_id], payments[trans_id]
        hold = _hold_of(a)
        if not (hold and hold.state == Hold.State.CAPTURED and a.amount == p.amount == hold.amount):
            problems.append(f"§7.3 one amount: {trans_id}: receipt {p.amount}, captured {a.amount}, bank "
                            f"{(hold.state, hold.amount) if hold else 'missing'}")
    for p in payments.values():
        emails = _receipt_emails(p)
        if [e.status for e in emails] != [Email.Status.SENT] or _delivered_copies(p) != 1:
            problems.append(f"one email per receipt: receipt {p.receipt_number}: outbox "
                            f"{[e.status for e in emails]}, delivered {_delivered_copies(p)} time(s)")
    for order in PaymentOrder.objects.filter(state=PaymentOrder.State.CREATED):
        problems.append(f"order {order.oid} still waiting after recovery")
    for session in PaymentSession.objects.filter(state__in=(SessionState.OPEN, SessionState.PROCESSING)):
        problems.append(f"payment session {session.oid} still {session.state} after recovery")
    stuck = Counter(DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING).values_list("task_path", flat=True))
    for task_path, count in sorted(stuck.items()):
        problems.append(f"no task left behind: {count} × {task_path} RUNNING forever (its worker died)")
    by_order = defaultdict(int)
    for oid in Payment.objects.values_list("order__oid", flat=True):
        by_order[oid] += 1
    problems += [f"§7.1 order {oid} paid {n} times" for oid, n in by_order.items() if n > 1]
    problems += money_through_the_ledger()
    problems += reversals_settled()
    problems += operations_settled()
    return problems


def operations_settled() -> list[str]:
    """One row per operation, settled: every authorization sent has its row, every operation ended (none pending
    or being reversed), and the rows say what the attempt's state says: a captured attempt one capture accepted
    for its amount and no void, a voided one its voids accepted and no capture."""
    problems: list[str] = []
    rows: dict[int, list[Operation]] = defaultdict(list)
    for operation in Operation.objects.order_by("pk"):
        rows[operation.attempt_id].append(operation)
        if operation.state in (OperationState.PENDING, OperationState.REVERSING):
            problems.append(f"operation {operation.pk} ({operation.kind} {operation.amount}) still {operation.state} "
                            "after recovery")
    for attempt in Attempt.objects.exclude(stan=""):
        kinds = Counter(op.kind for op in rows[attempt.pk])
        captures = [op for op in rows[attempt.pk] if op.kind == OperationKind.CAPTURE]
        voids = [op for op in rows[attempt.pk] if op.kind == OperationKind.VOID]
        where = f"attempt {attempt.trans_id} ({attempt.state})"
        if kinds[OperationKind.AUTHORIZATION] != 1:
            problems.append(f"{where}: {kinds[OperationKind.AUTHORIZATION]} authorization rows")
        if attempt.state == AttemptState.CAPTURED and not (
                len(captures) == 1 and captures[0].state == OperationState.APPROVED
                and captures[0].amount == attempt.amount and not voids):
            problems.append(f"{where}: operations {[(op.kind, op.state, op.amount) for op in rows[attempt.pk]]}")
        if attempt.state == AttemptState.VOIDED and (
                captures or not voids or any(op.state != OperationState.APPROVED for op in voids)):
            problems.append(f"{where}: operations {[(op.kind, op.state, op.amount) for op in rows[attempt.pk]]}")
    return problems


def money_through_the_ledger() -> list[str]:
    """The money invariant read from the bank's ledger: for every order, what the bank debited (ledger entries of
    its holds) = what the gateway says it captured = what the biller recorded as paid; and no hold stands (held
    or captured) without a captured authorization of the gateway's with its RRN."""
    problems: list[str] = []
    debited: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for order_id, amount in LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT, hold__isnull=False).values_list(
            "hold__order_id", "amount"):
        debited[order_id] += amount
    captured: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for oid, amount in Operation.objects.filter(kind=OperationKind.CAPTURE, state=OperationState.APPROVED).values_list(
            "attempt__session__oid", "amount"):
        captured[oid] += amount
    paid: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for oid, amount in Payment.objects.values_list("order__oid", "amount"):
        paid[oid] += amount
    for oid in sorted(set(debited) | set(captured) | set(paid)):
        if not debited[oid] == captured[oid] == paid[oid]:
            problems.append(f"§7.3 money through the ledger: order {oid}: bank debited {debited[oid]}, gateway "
                            f"captured {captured[oid]}, biller paid {paid[oid]}")
    known = set(Attempt.objects.filter(state=AttemptState.CAPTURED).exclude(rrn="").values_list("rrn", flat=True))
    for hold in Hold.objects.exclude(state=Hold.State.RELEASED):
        if hold.rrn not in known:
            problems.append(f"§7.2 hold {hold.rrn} ({hold.state} {hold.amount}, order {hold.order_id}) stands without "
                            "a captured authorization the gateway knows")
    return problems


def reversals_settled() -> list[str]:
    """Every reversal owed (the gateway's to the switch, the switch's to the issuer host) was acknowledged."""
    from tasdid.gateway.models import PendingReversal as GatewayReversal
    from tasdid.switch.models import PendingReversal as SwitchReversal

    problems = [f"reversal owed by the gateway never acknowledged: {r.original_mti} STAN {r.original_stan} "
                f"(order {r.order_id}, {r.tries} tries, {r.last_error})"
                for r in GatewayReversal.objects.exclude(state=GatewayReversal.State.DONE)]
    problems += [f"reversal owed by the switch never acknowledged: {r.original_mti} STAN {r.original_stan} "
                 f"(order {r.order_id}, {r.attempts} tries, {r.last_error})"
                 for r in SwitchReversal.objects.filter(acknowledged_at__isnull=True)]
    return problems
