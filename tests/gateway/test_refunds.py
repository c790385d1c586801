"""Refunds at the gateway: one row per refund (``Operation``), recorded before it is sent, sent over the real
card rails (the gateway's ISO 8583 client → the switch → the issuer host → the bank's ledger, on 127.0.0.1),
several partial refunds up to what was captured, then one refused; a refund left without an answer reversed;
the switch's clearing file reconciled with the gateway's captures and refunds."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

pytest.importorskip("tasdid.switch.server")
pytest.importorskip("tasdid.bank.issuer")

from tasdid.bank import sandbox
from tasdid.bank.models import Card, LedgerEntry
from tasdid.core.acquiring import AuthorizationRequest, CardData, SettlementRequest
from tasdid.core.cards import fingerprint
from tasdid.gateway import flow, rails, selectors, services
from tasdid.gateway.backfill import attempt_operations
from tasdid.gateway.models import (
    Attempt,
    AttemptState,
    Event,
    Operation,
    OperationKind,
    OperationState,
    PaymentSession,
    PendingReversal,
)
from tasdid.switch.models import JournalEntry
from tests.switch.fakes import wait_until

from .conftest import make_merchant

pytestmark = pytest.mark.django_db(transaction=True)

VISA = sandbox.card_by_outcome("00", "none")
MERCHANT = "600000001"


@pytest.fixture
def card_rails(demo_card_rails):
    return demo_card_rails


def create_attempt(**fields) -> Attempt:
    """An attempt as the flow leaves it, with its operation rows (authorization, capture), as migration 0009
    makes them for the attempts recorded before them."""
    attempt = Attempt.objects.create(**fields)
    Operation.objects.bulk_create(attempt_operations(attempt, Operation))
    return attempt


def refunds():
    return Operation.objects.filter(kind=OperationKind.REFUND)


def balance(card) -> Decimal:
    return Card.objects.get(fingerprint=fingerprint(card.number)).account.balance


def captured_payment(amount_minor: int, oid: str = "TSD-REFUND-1") -> Attempt:
    """A payment authorized and captured over the rails, and the gateway's attempt for it as its flow records it."""
    acquirer = rails.SwitchAcquirer()
    month, year = (VISA.issued_expiry or VISA.expiry).split("/")
    auth = AuthorizationRequest(
        card=CardData(pan=VISA.number, expiry_yymm=year + month, cvv=VISA.issued_cvv or VISA.cvv),
        amount_minor=amount_minor, currency="504", merchant_id=MERCHANT, merchant_name="Tasdid Télécom",
        order_id=oid, stan=services.next_stan(), transmitted_at=timezone.now().replace(microsecond=0))
    result = acquirer.authorize(auth)
    assert result.approved
    assert acquirer.capture(SettlementRequest(
        original_stan=auth.stan, original_transmitted_at=auth.transmitted_at, amount_minor=amount_minor,
        currency="504", merchant_id=MERCHANT, order_id=oid, stan=services.next_stan(), transmitted_at=timezone.now(),
        rrn=result.rrn, auth_code=result.auth_code)).accepted
    merchant = make_merchant(client_id=MERCHANT)
    now = timezone.now()
    session = PaymentSession.objects.create(
        token=oid, merchant=merchant, oid=oid, amount=Decimal(amount_minor) / 100, browser_digest="x",
        state="succeeded", created_at=now, expires_at=now, updated_at=now)
    return create_attempt(
        session=session, state=AttemptState.CAPTURED, amount=Decimal(amount_minor) / 100, brand="VISA",
        masked_pan="400011******0017", pan_fingerprint="f", threeds_server_trans_id=oid, trans_id=oid,
        stan=auth.stan, transmitted_at=auth.transmitted_at, response_code="00", auth_code=result.auth_code,
        rrn=result.rrn, authorized_at=now, settled_at=now, deadline=now, created_at=now, updated_at=now)


def test_partial_refunds_up_to_the_capture_then_one_refused(card_rails):
    attempt = captured_payment(28500)
    opening = balance(VISA)
    credits = LedgerEntry.objects.count()

    first = flow.refund(attempt_id=attempt.pk, amount=Decimal("100.00"), requested_by="staff:amina")
    assert (first.state, first.response_code, len(first.rrn), first.amount) == ("approved", "00", 12, Decimal("100.00"))
    assert first.decided_at is not None and first.stan != attempt.stan
    assert balance(VISA) == opening + Decimal("100.00")
    assert selectors.refundable_amount(attempt) == Decimal("185.00")

    second = flow.refund(attempt_id=attempt.pk, amount=Decimal("100.00"), requested_by="staff:amina")
    assert second.state == "approved" and balance(VISA) == opening + Decimal("200.00")

    # More than is left: refused by the gateway before anything is sent, no row, no money.
    with pytest.raises(services.RefundRefused) as refused:
        flow.refund(attempt_id=attempt.pk, amount=Decimal("85.01"), requested_by="staff:amina")
    assert refused.value.refundable == Decimal("85.00")
    assert refunds().count() == 2 and balance(VISA) == opening + Decimal("200.00")

    last = flow.refund(attempt_id=attempt.pk, amount=Decimal("85.00"), requested_by="staff:amina")
    assert last.state == "approved" and balance(VISA) == opening + Decimal("285.00")
    assert selectors.refundable_amount(attempt) == Decimal("0.00")
    for amount in (Decimal("0.01"), Decimal("0"), Decimal("-1"), Decimal("1.001")):
        with pytest.raises(services.RefundRefused):
            flow.refund(attempt_id=attempt.pk, amount=amount, requested_by="staff:amina")
    assert refunds().count() == 3 and LedgerEntry.objects.count() == credits + 3
    # Each refund moved once, with its events: recorded, then answered.
    assert [(e.from_state, e.to_state) for e in Event.objects.filter(operation=first)] == [
        ("", "pending"), ("pending", "approved")]
    assert len({(op.stan, op.transmitted_at) for op in refunds()}) == 3


def test_a_refund_the_issuer_refuses_is_recorded_refused_and_counts_nothing(card_rails):
    attempt = captured_payment(10000, oid="TSD-REFUND-2")
    opening = balance(VISA)
    Attempt.objects.filter(pk=attempt.pk).update(rrn="999999999999")  # a payment the issuer does not know
    refused = flow.refund(attempt_id=attempt.pk, amount=Decimal("10.00"), requested_by="staff:amina")
    assert refused.state == "refused" and refused.response_code == "12" and refused.decided_at is not None
    assert balance(VISA) == opening
    assert selectors.refundable_amount(Attempt.objects.get(pk=attempt.pk)) == Decimal("100.00")


def test_a_refund_of_a_payment_not_captured_is_refused(db):
    merchant = make_merchant(client_id=MERCHANT)
    now = timezone.now()
    session = PaymentSession.objects.create(token="t", merchant=merchant, oid="O", amount=Decimal("10.00"),
                                            browser_digest="x", created_at=now, expires_at=now, updated_at=now)
    attempt = create_attempt(
        session=session, state=AttemptState.AUTHORIZED, amount=Decimal("10.00"), brand="VISA", masked_pan="x",
        pan_fingerprint="f", threeds_server_trans_id="t", trans_id="T1", stan="000001", transmitted_at=now,
        rrn="000000000001", deadline=now, created_at=now, updated_at=now)
    with pytest.raises(services.RefundRefused):
        services.refund_open(attempt_id=attempt.pk, amount=Decimal("1.00"), requested_by="t")
    assert not refunds().exists() and selectors.refundable_amount(attempt) == Decimal("0.00")


def test_a_refund_recorded_and_never_answered_is_reversed_and_loses_nothing(card_rails):
    """The process dies between recording the refund and recording its answer: the sweeper reverses it over the
    rails (a 0400 of the 0200) and the refund ends REVERSED; the money counts as gone until then."""
    attempt = captured_payment(20000, oid="TSD-REFUND-3")
    opening = balance(VISA)
    # Sent and credited, then the process died before it recorded the answer.
    operation = services.refund_open(attempt_id=attempt.pk, amount=Decimal("50.00"), requested_by="staff:amina")
    acquirer = rails.SwitchAcquirer()
    from tasdid.core.acquiring import RefundRequest

    answer = acquirer.refund(RefundRequest(
        rrn=attempt.rrn, original_stan=attempt.stan, original_transmitted_at=attempt.transmitted_at,
        amount_minor=5000, currency="504", merchant_id=MERCHANT, order_id=attempt.session.oid, stan=operation.stan,
        transmitted_at=operation.transmitted_at))
    assert answer.accepted and balance(VISA) == opening + Decimal("50.00")
    assert selectors.refundable_amount(attempt) == Decimal("150.00")  # pending: counted

    assert flow.sweep_operations() == {}  # not due yet
    later = timezone.now() + services.operation_answer_grace() + dt.timedelta(seconds=1)
    assert flow.sweep_operations(now=later) == {"refunds reversed": 1}
    operation.refresh_from_db()
    assert operation.state == OperationState.REVERSING
    reversal = PendingReversal.objects.get(original_mti="0200", original_stan=operation.stan)
    assert rails.sweep_reversals(now=later) == {"reversals acknowledged": 1}
    reversal.refresh_from_db()
    assert (reversal.state, reversal.response_code) == ("done", "00")
    assert balance(VISA) == opening  # the credit taken back
    assert flow.sweep_operations(now=later) == {"refund reversals acknowledged": 1}
    operation.refresh_from_db()
    assert operation.state == OperationState.REVERSED
    assert selectors.refundable_amount(attempt) == Decimal("200.00")
    # A late answer recorded now changes nothing.
    assert services.operation_record_answer(operation_id=operation.pk, response_code="00").state == "reversed"


def test_the_clearing_file_reconciles_captures_and_refunds_and_names_an_injected_difference(card_rails, tmp_path):
    attempt = captured_payment(30000, oid="TSD-REFUND-4")
    first = flow.refund(attempt_id=attempt.pk, amount=Decimal("120.00"), requested_by="staff:amina")
    second = flow.refund(attempt_id=attempt.pk, amount=Decimal("30.00"), requested_by="staff:amina")
    assert first.state == second.state == "approved"
    # The switch journals its answers in batches: the day's file is written once the three are in.
    wait_until(lambda: JournalEntry.objects.filter(direction="acq_out", response_code="00",
                                                   mti__in=("0230", "0210")).count() == 3, "journal written")
    day = timezone.now().astimezone(dt.UTC).date()
    output = tmp_path / "clearing.csv"
    call_command("clearing", "--date", day.isoformat(), "--output", str(output), "--no-progress",
                 stderr=io.StringIO())
    out = io.StringIO()
    call_command("gateway_reconcile", str(output), stdout=out)
    assert out.getvalue().splitlines() == [
        f"Rapprochement du {day.isoformat()} : 3 opérations dans le fichier, 3 concordantes, 0 écart(s)."]

    # Injected: the gateway recorded the second refund for another amount, and a refund the switch never saw.
    Operation.objects.filter(pk=second.pk).update(amount=Decimal("35.00"))
    ghost = services.refund_open(attempt_id=attempt.pk, amount=Decimal("5.00"), requested_by="staff:amina")
    services.operation_record_answer(operation_id=ghost.pk, response_code="00", rrn="000000000777")
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("gateway_reconcile", str(output), stdout=out)
    assert exit_.value.code == 1
    lines = out.getvalue().splitlines()
    assert lines[0] == f"Rapprochement du {day.isoformat()} : 3 opérations dans le fichier, 2 concordantes, 2 écart(s)."
    de7 = second.transmitted_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ghost_de7 = ghost.transmitted_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert lines[1:] == [
        f"- remboursement {MERCHANT} TransId TSD-REFUND-4, commande TSD-REFUND-4, remboursement STAN {second.stan} "
        f"du {de7} : montant différent — 30.00 DH dans le fichier, 35.00 DH à la passerelle",
        f"- remboursement {MERCHANT} TransId TSD-REFUND-4, commande TSD-REFUND-4, remboursement STAN {ghost.stan} "
        f"du {ghost_de7} : absente du fichier — 5.00 DH à la passerelle, aucune ligne dans le fichier",
    ]


def test_the_gateway_admin_shows_each_refund_and_what_is_left(db):
    from django.contrib.auth.models import User

    from tasdid.core.staff import staff_grant

    from .conftest import gateway_client

    merchant = make_merchant(client_id=MERCHANT)
    now = timezone.now()
    session = PaymentSession.objects.create(token="t", merchant=merchant, oid="TSD-ADMIN-1", amount=Decimal("285.00"),
                                            browser_digest="x", created_at=now, expires_at=now, updated_at=now)
    attempt = create_attempt(
        session=session, state=AttemptState.CAPTURED, amount=Decimal("285.00"), brand="VISA", masked_pan="x",
        pan_fingerprint="f", threeds_server_trans_id="t", trans_id="T-ADMIN-1", stan="900001", transmitted_at=now,
        rrn="000000000001", deadline=now, created_at=now, updated_at=now)
    approved = services.refund_open(attempt_id=attempt.pk, amount=Decimal("100.00"), requested_by="staff:amina")
    services.operation_record_answer(operation_id=approved.pk, response_code="00", rrn="000000000042")
    refused = services.refund_open(attempt_id=attempt.pk, amount=Decimal("20.00"), requested_by="staff:amina")
    services.operation_record_answer(operation_id=refused.pk, response_code="13")

    User.objects.create_superuser("admin", "admin@example.ma", "pw-Strong-123")
    staff_grant(username="admin", parties=["gateway"])
    staff = gateway_client()
    assert staff.post("/admin/login/", {"username": "admin", "password": "pw-Strong-123"}).status_code == 302
    listing = staff.get("/admin/gateway/operation/").content.decode()
    assert listing.count("remboursement") >= 2 and "acceptée" in listing and "refusée" in listing
    assert "TSD-ADMIN-1" in listing and "000000000042" in listing and "staff:amina" in listing
    page = staff.get(f"/admin/gateway/attempt/{attempt.pk}/change/").content.decode()
    assert "Reste à rembourser" in page and "185.00 DH" in page and "000000000042" in page
    assert staff.get("/admin/gateway/operation/add/").status_code == 403
    change = staff.post(f"/admin/gateway/operation/{approved.pk}/change/", {"amount": "1.00", "_save": "1"})
    assert change.status_code == 403
    approved.refresh_from_db()
    assert approved.amount == Decimal("100.00")


def test_two_refunds_at_once_cannot_refund_more_than_was_captured(transactional_db, monkeypatch):
    """Two staff members refund 200.00 of a 285.00 payment at the same moment: the attempt's lock takes them one
    after the other, and the second sees what the first left (the slow selector widens the window)."""
    import threading
    import time

    from django.db import connection

    merchant = make_merchant(client_id=MERCHANT)
    now = timezone.now()
    session = PaymentSession.objects.create(token="t", merchant=merchant, oid="TSD-RACE-1", amount=Decimal("285.00"),
                                            browser_digest="x", created_at=now, expires_at=now, updated_at=now)
    attempt = create_attempt(
        session=session, state=AttemptState.CAPTURED, amount=Decimal("285.00"), brand="VISA", masked_pan="x",
        pan_fingerprint="f", threeds_server_trans_id="t", trans_id="T-RACE-1", stan="900001", transmitted_at=now,
        rrn="000000000001", deadline=now, created_at=now, updated_at=now)
    real = selectors.refundable_amount

    def slow_refundable(a):
        value = real(a)
        time.sleep(0.3)
        return value

    monkeypatch.setattr(services.selectors, "refundable_amount", slow_refundable)
    barrier = threading.Barrier(2)
    outcomes, errors = [], []

    def refund(who: str):
        try:
            barrier.wait(timeout=10)
            services.refund_open(attempt_id=attempt.pk, amount=Decimal("200.00"), requested_by=who)
            outcomes.append("recorded")
        except services.RefundRefused:
            outcomes.append("refused")
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=refund, args=(f"staff:{n}",)) for n in ("amina", "youssef")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(outcomes) == ["recorded", "refused"]
    assert refunds().count() == 1 and real(attempt) == Decimal("85.00")
