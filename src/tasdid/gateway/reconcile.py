"""The gateway's side of the end-of-day reconciliation: its own captures, reversals and refunds against the switch's
clearing file (``tasdid.core.clearing``; docs/iso8583.md, "Clearing file"), read-only.

What the gateway knows of each kind of line:

- a capture (0230): the attempt whose authorization the capture names (merchant, the authorization's STAN and
  DE7, the file's DE90), expected CAPTURED, for the amount of its capture ``Operation`` (partial or whole); the
  gateway's captures of the day are its capture operations the switch accepted that UTC day;
- a reversal (0410): the gateway's ``PendingReversal`` of the same original (merchant, MTI, STAN, DE7), expected
  acknowledged with 00, for its amount; the day's are those acknowledged with 00 that UTC day;
- a refund (0210, processing code 20): the gateway's refund ``Operation`` sent under the line's STAN and DE7 for
  that merchant, expected approved, for its amount; the day's are those whose approval the gateway recorded that
  UTC day. A refund the gateway reversed (no answer in time) matches too: its reversal is a line of its own.

Each difference is one ``Difference``; the file is read to its end (every total checked) before anything is
reported, so a bad file reports its fault and no difference.
"""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from tasdid.core import clearing
from tasdid.core import response_codes as rc
from tasdid.core.money import from_minor, to_minor

from . import selectors
from .models import Attempt, AttemptState, Operation, OperationState, PendingReversal

# The kinds of difference, as the report names them.
MISSING_AT_GATEWAY = "absente de la passerelle"
MISSING_IN_FILE = "absente du fichier"
AMOUNT_DIFFERS = "montant différent"
STATE_DIFFERS = "état différent"

KIND_WORDS = {clearing.CAPTURE: "remise", clearing.REVERSAL: "annulation", clearing.REFUND: "remboursement"}


@dataclass(frozen=True)
class Difference:
    kind: str  # one of the four above
    operation: str  # clearing.CAPTURE, REVERSAL, REFUND
    merchant_id: str
    reference: str  # how a person finds it: TransId, order, STANs
    detail: str

    def line(self) -> str:
        return f"{KIND_WORDS[self.operation]} {self.merchant_id} {self.reference} : {self.kind} — {self.detail}"


@dataclass(frozen=True)
class Report:
    day: dt.date
    lines: int  # detail lines read in the file
    matched: int
    differences: list[Difference]


def _de7(value: dt.datetime | None) -> str:
    return clearing.timestamp(value.replace(microsecond=0)) if value is not None else ""


def _amount(minor: int) -> str:
    return f"{from_minor(minor)} DH"


def _capture_key(merchant_id: str, stan: str, transmitted_at: dt.datetime | None) -> tuple:
    return (clearing.CAPTURE, merchant_id, stan, _de7(transmitted_at))


def _reversal_key(merchant_id: str, mti: str, stan: str, transmitted_at: dt.datetime | None) -> tuple:
    return (clearing.REVERSAL, merchant_id, mti, stan, _de7(transmitted_at))


def _refund_key(merchant_id: str, stan: str, transmitted_at: dt.datetime | None) -> tuple:
    return (clearing.REFUND, merchant_id, stan, _de7(transmitted_at))


def _refund_reference(operation: Operation) -> str:
    attempt = operation.attempt
    return (f"TransId {attempt.trans_id}, commande {attempt.session.oid}, remboursement STAN {operation.stan} du "
            f"{_de7(operation.transmitted_at)}")


def _file_reference(d: clearing.Detail) -> str:
    parts = [f"commande {d.order_id}" if d.order_id else "",
             f"original {d.original_mti} STAN {d.original_stan} du {clearing.timestamp(d.original_transmitted_at)}"
             if d.original_stan else f"STAN {d.stan} du {clearing.timestamp(d.transmitted_at)}"]
    return ", ".join(p for p in parts if p)


def reconcile(stream: IO[bytes]) -> Report:
    """Compare the clearing file in ``stream`` with the gateway's records. Raises ``clearing.ClearingFileError``
    for a bad file (before any comparison is reported)."""
    records = clearing.read(stream)
    header = next(records)
    start = dt.datetime.combine(header.day, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    # The gateway's operations of the day, by the key the file gives them; those the file names are removed.
    expected: dict[tuple, tuple[str, str, int]] = {}
    for operation in selectors.captures_on(start=start, end=end):
        attempt = operation.attempt
        key = _capture_key(attempt.session.merchant.client_id, attempt.stan, attempt.transmitted_at)
        expected[key] = _capture_known(attempt, operation)
    for operation in selectors.refunds_approved_on(start=start, end=end):
        key = _refund_key(operation.attempt.session.merchant.client_id, operation.stan, operation.transmitted_at)
        expected[key] = (_refund_reference(operation), operation.state, to_minor(operation.amount))
    for row in selectors.reversals_done_on(start=start, end=end):
        if row.response_code == rc.APPROVED:
            key = _reversal_key(row.merchant_id, row.original_mti, row.original_stan, row.original_transmitted_at)
            expected[key] = (_reversal_reference(row), row.state, row.amount_minor)
    differences: list[Difference] = []
    lines = matched = 0
    for d in records:
        lines += 1
        found = _compare(d, expected)
        if found is None:
            matched += 1
        else:
            differences.append(found)
    for key, (reference, _state, amount) in expected.items():
        kind, merchant_id = key[0], key[1]
        differences.append(Difference(MISSING_IN_FILE, kind, merchant_id, reference,
                                      f"{_amount(amount)} à la passerelle, aucune ligne dans le fichier"))
    return Report(day=header.day, lines=lines, matched=matched, differences=differences)


def _capture_known(attempt: Attempt, capture: Operation | None) -> tuple[str, str, int]:
    """What the gateway knows of an attempt's capture: its reference, the attempt's state (CAPTURED once the
    switch accepted the capture), and the capture's amount (the attempt's when none was recorded)."""
    state = AttemptState.CAPTURED if capture is not None and capture.state == OperationState.APPROVED \
        else attempt.state
    amount = capture.amount if capture is not None else attempt.amount
    return f"TransId {attempt.trans_id}, commande {attempt.session.oid}", state, to_minor(amount)


def _reversal_reference(row: PendingReversal) -> str:
    order = f"commande {row.order_id}, " if row.order_id else ""
    return f"{order}original {row.original_mti} STAN {row.original_stan} du {_de7(row.original_transmitted_at)}"


def _compare(d: clearing.Detail, expected: dict) -> Difference | None:
    reference = _file_reference(d)
    if d.kind == clearing.REFUND:
        key = _refund_key(d.merchant_id, d.stan, d.transmitted_at)
        known = expected.pop(key, None)
        if known is None:
            operation = selectors.refund_by_message(merchant_id=d.merchant_id, stan=d.stan,
                                                    transmitted_at=d.transmitted_at)
            if operation is not None:
                # Reversed at the gateway: approved at the issuer, then taken back by its own reversal line.
                state = (OperationState.APPROVED if operation.state in (OperationState.REVERSING,
                                                                         OperationState.REVERSED)
                         else operation.state)
                known = (_refund_reference(operation), state, to_minor(operation.amount))
        done_state, state_words = OperationState.APPROVED, _operation_state_words
        if known is None:
            return Difference(MISSING_AT_GATEWAY, d.kind, d.merchant_id, reference,
                              f"{_amount(d.amount_minor)} dans le fichier, inconnu de la passerelle")
        return _compare_known(d, known, done_state, state_words)
    if d.kind == clearing.CAPTURE:
        key = _capture_key(d.merchant_id, d.original_stan, d.original_transmitted_at)
        known = expected.pop(key, None)
        if known is None and d.original_transmitted_at is not None:
            attempt = selectors.attempt_by_authorization(merchant_id=d.merchant_id, stan=d.original_stan,
                                                         transmitted_at=d.original_transmitted_at)
            if attempt is not None:
                known = _capture_known(attempt, selectors.capture_of(attempt))
        done_state, state_words = AttemptState.CAPTURED, _attempt_state_words
    else:
        key = _reversal_key(d.merchant_id, d.original_mti, d.original_stan, d.original_transmitted_at)
        known = expected.pop(key, None)
        if known is None and d.original_transmitted_at is not None:
            row = selectors.reversal_by_original(merchant_id=d.merchant_id, original_mti=d.original_mti,
                                                 original_stan=d.original_stan,
                                                 original_transmitted_at=d.original_transmitted_at)
            if row is not None:
                state = row.state if row.response_code in ("", rc.APPROVED) else f"{row.state} {row.response_code}"
                known = (_reversal_reference(row), state, row.amount_minor)
        done_state, state_words = PendingReversal.State.DONE, _reversal_state_words
    if known is None:
        return Difference(MISSING_AT_GATEWAY, d.kind, d.merchant_id, reference,
                          f"{_amount(d.amount_minor)} dans le fichier, inconnue de la passerelle")
    return _compare_known(d, known, done_state, state_words)


def _compare_known(d: clearing.Detail, known: tuple, done_state: str, state_words) -> Difference | None:
    their_reference, state, amount = known
    if state != done_state:
        return Difference(STATE_DIFFERS, d.kind, d.merchant_id, their_reference,
                          f"approuvée dans le fichier, « {state_words(state)} » à la passerelle")
    if amount != d.amount_minor:
        return Difference(AMOUNT_DIFFERS, d.kind, d.merchant_id, their_reference,
                          f"{_amount(d.amount_minor)} dans le fichier, {_amount(amount)} à la passerelle")
    return None


def _operation_state_words(state: str) -> str:
    return str(OperationState(state).label) if state in OperationState.values else state


def _attempt_state_words(state: str) -> str:
    return str(AttemptState(state).label) if state in AttemptState.values else state


def _reversal_state_words(state: str) -> str:
    if state == PendingReversal.State.PENDING:
        return "à envoyer"
    if state.startswith(PendingReversal.State.DONE):
        return f"acquittée avec le code {state.split()[-1]}" if " " in state else "acquittée"
    return state


def report_lines(report: Report) -> Iterator[str]:
    """The report, in French, one line at a time."""
    yield (f"Rapprochement du {report.day.isoformat()} : {report.lines} opérations dans le fichier, "
           f"{report.matched} concordantes, {len(report.differences)} écart(s).")
    for difference in report.differences:
        yield f"- {difference.line()}"
