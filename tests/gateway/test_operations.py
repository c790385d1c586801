"""One row per operation at the gateway: an attempt's authorization, its capture (whole or partial, once), its void
and its refunds are ``Operation`` rows, each with its state, amount and rail references, sent over the real card
rails (the gateway's ISO 8583 client → the switch → the issuer host → the bank's holds and ledger, on 127.0.0.1).
A merchant's capture and void (``flow.capture``/``flow.void``) with their refusals; two captures asked at once move
money once; staff's actions in the gateway admin; the rows migration 0009 makes for the attempts recorded before."""

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytest.importorskip("tasdid.switch.server")
pytest.importorskip("tasdid.bank.issuer")

from tasdid.bank import sandbox
from tasdid.bank.models import Card, Hold, LedgerEntry
from tasdid.core.acquiring import AuthorizationRequest, AuthorizationResult, CardData
from tasdid.core.cards import fingerprint, mask
from tasdid.gateway import flow, rails, selectors, services
from tasdid.gateway.models import (
    Attempt,
    AttemptState,
    CallbackAnswer,
    Event,
    Merchant,
    Operation,
    OperationKind,
    OperationState,
    PaymentSession,
)

from .conftest import gateway_client, make_merchant

pytestmark = pytest.mark.django_db(transaction=True)

VISA = sandbox.card_by_outcome("00", "none")
MERCHANT = "600000001"


@pytest.fixture
def card_rails(demo_card_rails):
    return demo_card_rails


def balance() -> Decimal:
    return Card.objects.get(fingerprint=fingerprint(VISA.number)).account.balance


def kept_authorization(amount_minor: int, oid: str) -> Attempt:
    """A card payment authorized over the rails (its authorization's row recorded by the services as the flow
    records it) whose merchant kept the authorization without capture (TranType PreAuth, callback APPROVED)."""
    merchant = Merchant.objects.filter(client_id=MERCHANT).first() or make_merchant(client_id=MERCHANT)
    now = timezone.now()
    session = PaymentSession.objects.create(
        token=oid, merchant=merchant, oid=oid, amount=Decimal(amount_minor) / 100, request_fields={
            "TranType": "PreAuth"}, browser_digest="x", created_at=now, expires_at=now + dt.timedelta(hours=1),
        updated_at=now)
    attempt = services.attempt_start(session_id=session.pk, brand="VISA", masked_pan=mask(VISA.number),
                                     pan_fingerprint="f")
    attempt = services.attempt_begin_authorization(
        attempt_id=attempt.pk, from_state=AttemptState.AUTHENTICATING, trans_status="U", eci="07", md_status="2",
        stan=services.next_stan())
    month, year = (VISA.issued_expiry or VISA.expiry).split("/")
    result = rails.SwitchAcquirer().authorize(AuthorizationRequest(
        card=CardData(pan=VISA.number, expiry_yymm=year + month, cvv=VISA.issued_cvv or VISA.cvv),
        amount_minor=amount_minor, currency="504", merchant_id=MERCHANT, merchant_name="Tasdid Télécom",
        order_id=oid, stan=attempt.stan, transmitted_at=attempt.transmitted_at))
    assert result.approved
    services.attempt_record_authorization(attempt_id=attempt.pk, result=result)
    attempt = services.attempt_record_callback(attempt_id=attempt.pk, answer=CallbackAnswer.APPROVED)
    assert attempt.state == AttemptState.AUTHORIZED
    return Attempt.objects.select_related("session").get(pk=attempt.pk)


def refused(call) -> services.OperationRefused:
    with pytest.raises(services.OperationRefused) as caught:
        call()
    return caught.value


def rows(attempt: Attempt) -> list[tuple[str, str, Decimal]]:
    return [(op.kind, op.state, op.amount) for op in Operation.objects.filter(attempt=attempt).order_by("pk")]


def test_a_partial_capture_then_refunds_up_to_the_captured_amount_and_one_more_refused(card_rails):
    attempt = kept_authorization(30000, "TSD-OPS-1")
    opening = balance()
    hold = Hold.objects.get(rrn=attempt.rrn)
    assert (hold.state, hold.amount) == (Hold.State.HELD, Decimal("300.00"))
    assert rows(attempt) == [("authorization", "approved", Decimal("300.00"))]
    (authorization,) = Operation.objects.filter(attempt=attempt)
    assert (authorization.stan, authorization.rrn, authorization.response_code) == (attempt.stan, attempt.rrn, "00")
    assert selectors.capturable_amount(attempt) == Decimal("300.00")
    assert selectors.order_status(attempt.session, attempt) == "AUTHORIZED"

    capture = flow.capture(attempt_id=attempt.pk, amount=Decimal("200.00"), requested_by="staff:amina")
    assert (capture.kind, capture.state, capture.response_code, capture.amount) == (
        "capture", "approved", "00", Decimal("200.00"))
    assert capture.stan not in ("", attempt.stan) and capture.tries == 1 and capture.requested_by == "staff:amina"
    # The bank debited what was asked and released the rest: its hold is captured, one debit of 200.00.
    hold.refresh_from_db()
    assert hold.state == Hold.State.CAPTURED
    assert list(LedgerEntry.objects.filter(hold=hold).values_list("kind", "amount")) == [("debit", Decimal("200.00"))]
    assert balance() == opening - Decimal("200.00")
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.CAPTURED
    assert (selectors.captured_amount(attempt), selectors.capturable_amount(attempt),
            selectors.refundable_amount(attempt)) == (Decimal("200.00"), Decimal("0.00"), Decimal("200.00"))
    assert selectors.order_status(attempt.session, attempt) == "CAPTURED"
    assert [(e.from_state, e.to_state) for e in Event.objects.filter(operation=capture)] == [
        ("", "pending"), ("pending", "approved")]
    assert "staff:amina" in Event.objects.filter(operation=capture).first().cause

    # One capture per authorization: the rest was released. The same capture again is the one recorded.
    for amount in (Decimal("100.00"), Decimal("300.00"), None):
        assert refused(lambda a=amount: flow.capture(attempt_id=attempt.pk, amount=a,
                                                     requested_by="staff:amina")).code == "already_captured"
    again = flow.capture(attempt_id=attempt.pk, amount=Decimal("200.00"), requested_by="staff:amina")
    assert (again.pk, again.tries) == (capture.pk, 1) and balance() == opening - Decimal("200.00")

    first = flow.refund(attempt_id=attempt.pk, amount=Decimal("150.00"), requested_by="staff:amina")
    last = flow.refund(attempt_id=attempt.pk, amount=Decimal("50.00"), requested_by="staff:amina")
    assert first.state == last.state == "approved" and balance() == opening
    no_more = refused(lambda: flow.refund(attempt_id=attempt.pk, amount=Decimal("0.01"), requested_by="staff:amina"))
    assert isinstance(no_more, services.RefundRefused)
    assert (no_more.code, no_more.refundable) == ("amount_above_refundable", Decimal("0.00"))
    assert balance() == opening
    assert rows(attempt) == [("authorization", "approved", Decimal("300.00")),
                             ("capture", "approved", Decimal("200.00")), ("refund", "approved", Decimal("150.00")),
                             ("refund", "approved", Decimal("50.00"))]
    # Every row its own message on the rails.
    assert len({(op.stan, op.transmitted_at) for op in Operation.objects.all()}) == 4


def test_a_void_after_a_capture_is_refused_and_sends_nothing(card_rails):
    attempt = kept_authorization(12000, "TSD-OPS-2")
    assert refused(lambda: flow.capture(attempt_id=attempt.pk, amount=Decimal("120.01"),
                                        requested_by="staff:amina")).code == "amount_above_capturable"
    for amount in (Decimal("0"), Decimal("-1"), Decimal("1.001")):
        assert refused(lambda a=amount: flow.capture(attempt_id=attempt.pk, amount=a,
                                                     requested_by="staff:amina")).code == "invalid_amount"
    capture = flow.capture(attempt_id=attempt.pk, amount=None, requested_by="api:shop")  # the whole authorization
    assert (capture.state, capture.amount) == ("approved", Decimal("120.00"))
    opening = balance()
    void = refused(lambda: flow.void(attempt_id=attempt.pk, requested_by="staff:amina"))
    assert void.code == "already_captured" and str(void) == void.message and "remboursé" in void.message
    assert rows(attempt) == [("authorization", "approved", Decimal("120.00")),
                             ("capture", "approved", Decimal("120.00"))]
    assert Hold.objects.get(rrn=attempt.rrn).state == Hold.State.CAPTURED and balance() == opening
    # Asked again for the same amount, the capture is the one recorded: nothing sent, nothing moved.
    again = flow.capture(attempt_id=attempt.pk, amount=None, requested_by="api:shop")
    assert again.pk == capture.pk and again.tries == 1 and balance() == opening


def test_a_capture_of_a_voided_authorization_is_refused(card_rails):
    attempt = kept_authorization(8000, "TSD-OPS-3")
    opening = balance()
    void = flow.void(attempt_id=attempt.pk, requested_by="staff:amina")
    assert (void.kind, void.state, void.response_code, void.amount) == ("void", "approved", "00", Decimal("80.00"))
    hold = Hold.objects.get(rrn=attempt.rrn)
    assert hold.state == Hold.State.RELEASED and not LedgerEntry.objects.filter(hold=hold).exists()
    assert balance() == opening
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.VOIDED and selectors.order_status(attempt.session, attempt) == "VOIDED"
    assert selectors.capturable_amount(attempt) == Decimal("0.00")

    assert refused(lambda: flow.capture(attempt_id=attempt.pk, amount=None,
                                        requested_by="staff:amina")).code == "voided"
    assert refused(lambda: flow.refund(attempt_id=attempt.pk, amount=Decimal("1.00"),
                                       requested_by="staff:amina")).code == "not_captured"
    assert flow.void(attempt_id=attempt.pk, requested_by="staff:amina").pk == void.pk  # the same void, once
    assert rows(attempt) == [("authorization", "approved", Decimal("80.00")), ("void", "approved", Decimal("80.00"))]
    assert balance() == opening


def test_two_captures_asked_at_once_move_money_once(card_rails, monkeypatch):
    """Two staff members capture the same authorization at the same moment: the attempt's lock takes them one after
    the other; the second finds the first's row (the slow selector widens the window), one 0220, one debit."""
    attempt = kept_authorization(28500, "TSD-OPS-4")
    opening = balance()
    real = selectors.capturable_amount

    def slow_capturable(a):
        value = real(a)
        time.sleep(0.3)
        return value

    monkeypatch.setattr(services.selectors, "capturable_amount", slow_capturable)
    barrier = threading.Barrier(2)
    outcomes, errors = [], []

    def capture(who: str):
        try:
            barrier.wait(timeout=10)
            outcomes.append(flow.capture(attempt_id=attempt.pk, amount=None, requested_by=who).pk)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=capture, args=(f"staff:{n}",)) for n in ("amina", "youssef")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert errors == []
    assert len(outcomes) == 2 and len(set(outcomes)) == 1
    capture = Operation.objects.get(attempt=attempt, kind=OperationKind.CAPTURE)
    assert (capture.state, capture.tries, capture.amount) == ("approved", 1, Decimal("285.00"))
    hold = Hold.objects.get(rrn=attempt.rrn)
    assert list(LedgerEntry.objects.filter(hold=hold).values_list("amount", flat=True)) == [Decimal("285.00")]
    assert balance() == opening - Decimal("285.00")


def test_a_capture_recorded_and_never_sent_is_sent_by_the_sweeper(card_rails):
    """The process dies after recording the capture, before sending it: the attempt's deadline brings the sweeper,
    which sends it under a STAN recorded first; the money moves once."""
    attempt = kept_authorization(5000, "TSD-OPS-5")
    opening = balance()
    opened = services.capture_open(attempt_id=attempt.pk, amount=Decimal("30.00"), requested_by="api:shop")
    assert opened.created and opened.operation.state == OperationState.PENDING and opened.operation.stan == ""
    assert selectors.order_status(attempt.session, Attempt.objects.get(pk=attempt.pk)) == "CAPTURED"
    assert balance() == opening
    later = timezone.now() + services.SETTLE_SAFETY + dt.timedelta(seconds=1)
    assert flow.sweep(now=later).get("settled") == 1
    capture = Operation.objects.get(pk=opened.operation.pk)
    assert (capture.state, capture.tries, len(capture.stan)) == ("approved", 1, 6)
    assert balance() == opening - Decimal("30.00")
    assert Attempt.objects.get(pk=attempt.pk).state == AttemptState.CAPTURED


def test_capture_and_void_of_an_authorization_not_kept_are_refused(db):
    merchant = make_merchant(client_id=MERCHANT)
    now = timezone.now()
    session = PaymentSession.objects.create(token="t", merchant=merchant, oid="O", amount=Decimal("10.00"),
                                            browser_digest="x", created_at=now, expires_at=now + dt.timedelta(hours=1),
                                            updated_at=now)
    attempt = services.attempt_start(session_id=session.pk, brand="VISA", masked_pan="x", pan_fingerprint="f")
    services.attempt_begin_authorization(attempt_id=attempt.pk, from_state=AttemptState.AUTHENTICATING,
                                         trans_status="U", eci="07", md_status="2", stan=services.next_stan())
    assert refused(lambda: services.capture_open(attempt_id=attempt.pk, amount=None,
                                                 requested_by="x")).code == "not_authorized"
    assert selectors.order_status(session, attempt) == "PROCESSING"
    services.attempt_record_authorization(attempt_id=attempt.pk,
                                          result=AuthorizationResult("00", "A1B2C3", "000000000001"))
    # Authorized, the merchant not answered yet: neither a capture nor a void before its answer.
    assert refused(lambda: services.capture_open(attempt_id=attempt.pk, amount=None,
                                                 requested_by="x")).code == "awaiting_callback"
    assert refused(lambda: services.void_open(attempt_id=attempt.pk, requested_by="x")).code == "awaiting_callback"
    assert rows(attempt) == [("authorization", "approved", Decimal("10.00"))]


# --- the gateway admin ------------------------------------------------------------------------------------------


def staff_client():
    from django.contrib.auth.models import User

    from tasdid.core.staff import staff_grant

    User.objects.create_superuser("amina", "amina@example.ma", "pw-Strong-123")
    staff_grant(username="amina", parties=["gateway"])
    staff = gateway_client()
    assert staff.post("/admin/login/", {"username": "amina", "password": "pw-Strong-123"}).status_code == 302
    return staff


def test_staff_capture_refund_and_void_from_the_admin_with_a_confirmation_page(card_rails):
    attempt = kept_authorization(20000, "TSD-OPS-ADMIN")
    opening = balance()
    staff = staff_client()
    changelist = "/admin/gateway/attempt/"
    action = {"action": "capture", "_selected_action": [str(attempt.pk)]}

    page = staff.post(changelist, action).content.decode()  # the confirmation page: nothing moved yet
    assert "Remettre le paiement (capture)" in page and "Reste à remettre" in page and "200.00" in page
    assert 'name="amount"' in page and "Confirmer la remise" in page and "amina" in page
    assert rows(attempt) == [("authorization", "approved", Decimal("200.00"))]
    bad = staff.post(changelist, {**action, "confirm": "yes", "amount": "abc"}).content.decode()
    assert 'name="amount"' in bad and rows(attempt) == [("authorization", "approved", Decimal("200.00"))]

    done = staff.post(changelist, {**action, "confirm": "yes", "amount": "120.00"}, follow=True).content.decode()
    assert "Remise de 120.00 DH sur" in done and "acceptée" in done
    capture = Operation.objects.get(attempt=attempt, kind=OperationKind.CAPTURE)
    assert (capture.state, capture.amount, capture.requested_by) == ("approved", Decimal("120.00"), "staff:amina")
    assert Event.objects.filter(operation=capture, cause__contains="staff:amina").exists()  # the audit entry
    assert balance() == opening - Decimal("120.00")

    refund = {"action": "refund", "_selected_action": [str(attempt.pk)]}
    confirmation = staff.post(changelist, refund).content.decode()
    assert "Reste à rembourser" in confirmation and 'name="left" value="120.00"' in confirmation
    staff.post(changelist, {**refund, "confirm": "yes", "amount": "20.00", "left": "120.00"})
    assert balance() == opening - Decimal("100.00")
    # The same confirmation posted again (a double click, a reload): what is left changed, nothing is sent.
    twice = staff.post(changelist, {**refund, "confirm": "yes", "amount": "20.00", "left": "120.00"},
                       follow=True).content.decode()
    assert "n&#x27;est plus 120.00 DH mais 100.00 DH" in twice or "n'est plus 120.00 DH mais 100.00 DH" in twice
    assert balance() == opening - Decimal("100.00")
    assert Operation.objects.filter(attempt=attempt, kind=OperationKind.REFUND).count() == 1

    void = {"action": "void", "_selected_action": [str(attempt.pk)], "confirm": "yes"}
    answer = staff.post(changelist, void, follow=True).content.decode()
    assert "ne peut plus être annulé" in answer
    assert not Operation.objects.filter(attempt=attempt, kind=OperationKind.VOID).exists()

    page = staff.get(f"/admin/gateway/attempt/{attempt.pk}/change/").content.decode()
    assert "autorisation" in page and "remise" in page and "remboursement" in page and "staff:amina" in page
    assert "100.00 DH" in page and "120.00 DH" in page  # left to refund, captured


def test_a_viewer_without_the_right_to_change_attempts_has_no_money_actions(db):
    from django.contrib.auth.models import Permission, User

    from tasdid.core.staff import staff_grant

    user = User.objects.create_user("karim", "karim@example.ma", "pw-Strong-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_attempt"))
    staff_grant(username="karim", parties=["gateway"])
    staff = gateway_client()
    assert staff.post("/admin/login/", {"username": "karim", "password": "pw-Strong-123"}).status_code == 302
    page = staff.get("/admin/gateway/attempt/").content.decode()
    assert 'value="capture"' not in page and 'value="void"' not in page and 'value="refund"' not in page


# --- migration 0013 ---------------------------------------------------------------------------------------------


def test_migration_0013_makes_the_rows_of_the_attempts_recorded_before(transactional_db):
    before, after = [("gateway", "0012_operation_kinds")], [("gateway", "0013_operations_backfill")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        merchant = old.get_model("gateway", "Merchant").objects.create(client_id="600000009", name="M",
                                                                      store_key_sealed="sealed", return_hosts=[])
        now = timezone.now()
        made = {}
        for n, (state, rrn) in enumerate([("authenticating", ""), ("authorizing", ""), ("declined", ""),
                                          ("authorized", "1"), ("capturing", "2"), ("captured", "3"),
                                          ("voiding", ""), ("voided", "4"), ("voided", "")]):
            session = old.get_model("gateway", "PaymentSession").objects.create(
                token=f"t{n}", merchant=merchant, oid=f"O{n}", amount=Decimal("10.00"), browser_digest="x",
                created_at=now, expires_at=now, updated_at=now)
            made[(state, rrn)] = old.get_model("gateway", "Attempt").objects.create(
                session=session, state=state, amount=Decimal("10.00"), brand="VISA", masked_pan="x",
                pan_fingerprint="f", threeds_server_trans_id=f"3ds{n}", trans_id=f"T{n}",
                stan="" if state == "authenticating" else f"{n + 1:06d}",
                transmitted_at=None if state == "authenticating" else now.replace(microsecond=120000),
                rrn=rrn.zfill(12) if rrn else "", response_code="00" if rrn else "",
                settled_at=now if state in ("captured", "voided") else None, settle_tries=2, deadline=now,
                created_at=now, updated_at=now).pk
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        new = executor.loader.project_state(after).apps
        Operation_ = new.get_model("gateway", "Operation")

        def of(key):
            return [(o.kind, o.state) for o in Operation_.objects.filter(attempt_id=made[key]).order_by("pk")]

        assert of(("authenticating", "")) == []
        assert of(("authorizing", "")) == [("authorization", "pending")]
        assert of(("declined", "")) == [("authorization", "refused")]
        assert of(("authorized", "1")) == [("authorization", "approved")]
        assert of(("capturing", "2")) == [("authorization", "approved"), ("capture", "pending")]
        assert of(("captured", "3")) == [("authorization", "approved"), ("capture", "approved")]
        assert of(("voiding", "")) == [("authorization", "reversing"), ("void", "pending")]
        assert of(("voided", "4")) == [("authorization", "approved"), ("void", "approved")]
        assert of(("voided", "")) == [("authorization", "reversed"), ("void", "approved")]
        authorization = Operation_.objects.get(attempt_id=made[("captured", "3")], kind="authorization")
        assert (authorization.stan, authorization.rrn, authorization.amount) == ("000006", "000000000003",
                                                                                 Decimal("10.00"))
        assert authorization.transmitted_at == now.replace(microsecond=0)
        capture = Operation_.objects.get(attempt_id=made[("captured", "3")], kind="capture")
        assert (capture.stan, capture.tries, capture.decided_at, capture.response_code) == ("", 2, now, "00")
        # Run again (the migration unapplied and applied), it makes the same rows, no more.
        count = Operation_.objects.count()
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        assert Operation_.objects.count() == 0
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        assert Operation_.objects.count() == count
        # The order status reads them (the current code, over the current schema).
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
        attempt = Attempt.objects.select_related("session").get(pk=made[("captured", "3")])
        assert selectors.order_status(attempt.session, attempt) == "CAPTURED"
        assert selectors.refundable_amount(attempt) == Decimal("10.00")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
