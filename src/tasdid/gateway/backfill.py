"""The operation rows of attempts recorded before the gateway kept one row per operation: their authorization,
capture and void, read from the attempt's own fields and state (migration 0009). Takes the model classes as
arguments, so that the migration runs it on its historical models."""

# The attempt's state -> (authorization's state, capture's state, void's state); None: no such row.
_ROWS = {
    "authorizing": ("pending", None, None),
    "authorized": ("approved", None, None),
    "declined": ("refused", None, None),
    "capturing": ("approved", "pending", None),
    "captured": ("approved", "approved", None),
    "voiding": ("approved", None, "pending"),
    "voided": ("approved", None, "approved"),
}


def attempt_operations(attempt, Operation) -> list:
    """The unsaved operation rows an attempt's state stands for, that it has not got yet. An authorization whose
    answer never came (voiding or voided without an RRN) is ``reversing``/``reversed``: its void is its reversal."""
    states = _ROWS.get(attempt.state)
    if states is None or not attempt.stan or attempt.transmitted_at is None:
        return []
    have = set(Operation.objects.filter(attempt_id=attempt.pk).values_list("kind", flat=True))
    authorization, capture, void = states
    if attempt.state in ("voiding", "voided") and not attempt.rrn:
        authorization = "reversing" if attempt.state == "voiding" else "reversed"
    decided = attempt.authorized_at or (attempt.updated_at if authorization != "pending" else None)
    common = {"attempt_id": attempt.pk, "amount": attempt.amount, "currency": attempt.session.currency,
              "requested_by": "", "created_at": attempt.transmitted_at, "updated_at": attempt.updated_at}
    rows = []
    if "authorization" not in have:
        rows.append(Operation(
            kind="authorization", state=authorization, stan=attempt.stan,
            transmitted_at=attempt.transmitted_at.replace(microsecond=0), response_code=attempt.response_code,
            rrn=attempt.rrn, tries=1, decided_at=decided, **common))
    settled_at = attempt.settled_at or attempt.updated_at
    for kind, state in (("capture", capture), ("void", void)):
        if state is None or kind in have:
            continue
        rows.append(Operation(
            kind=kind, state=state, stan="", transmitted_at=settled_at, response_code="00" if state == "approved"
            else "", tries=attempt.settle_tries, decided_at=attempt.settled_at if state == "approved" else None,
            **{**common, "created_at": settled_at}))
    return rows


def backfill(Attempt, Operation, *, batch: int = 1000) -> int:
    """Create the missing operation rows of every attempt; returns how many."""
    created = 0
    attempts = Attempt.objects.select_related("session").exclude(stan="").order_by("pk")
    for attempt in attempts.iterator(chunk_size=batch):
        rows = attempt_operations(attempt, Operation)
        if rows:
            Operation.objects.bulk_create(rows)
            created += len(rows)
    return created
