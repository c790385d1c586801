"""The gateway's ISO 8583 client (tasdid.gateway.rails) against a fake switch over real TCP on 127.0.0.1:
codes, capture, void, refund, timeouts and durable reversals, late answers, reconnection, pipelining from
several threads, STAN uniqueness, and no card data in the logs."""

import datetime as dt
import logging
import threading
import time

import pytest
from django.utils import timezone

from tasdid.core import iso8583 as iso
from tasdid.core.acquiring import (
    AcquirerUnavailable,
    Authentication,
    AuthorizationRequest,
    CardData,
    RefundRequest,
    SettlementRequest,
)
from tasdid.core.worker import run_sweeps
from tasdid.gateway import rails, services
from tasdid.gateway.models import PendingReversal
from tests.support.fake_switch import FakeSwitch, Reply

pytestmark = pytest.mark.django_db(transaction=True)

VISA = "4000110000000017"
CVV = "123"
MERCHANT = "600000001"


def wait_until(predicate, *, limit: float = 15.0) -> None:
    """Bounded wait for something that happens in another thread (not a timing assertion)."""
    ends = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > ends:
            raise AssertionError("the condition never held")
        time.sleep(0.02)


@pytest.fixture
def switch():
    fake = FakeSwitch().start()
    yield fake
    fake.close()


def make_rails(port: int, **overrides) -> rails.RailsConnection:
    config = {"host": "127.0.0.1", "port": port, "timeout": 1.0, "echo_interval": 60.0, "echo_timeout": 1.0,
              "connect_wait": 2.0, "reconnect_min": 0.05, "reconnect_max": 0.2} | overrides
    return rails.RailsConnection(rails.RailsConfig(**config))


@pytest.fixture
def connection(switch):
    conn = make_rails(switch.port)
    assert conn.wait_up(10)
    yield conn
    conn.close()


@pytest.fixture
def acquirer(connection):
    return rails.SwitchAcquirer(connection)


def authorization(*, pan: str = VISA, amount: int = 28500, authentication: Authentication | None = None,
                  order_id: str = "TSD-ORDER-1") -> AuthorizationRequest:
    return AuthorizationRequest(
        card=CardData(pan=pan, expiry_yymm="2812", cvv=CVV), amount_minor=amount, currency="504",
        merchant_id=MERCHANT, merchant_name="Tasdid Télécom", order_id=order_id, stan=services.next_stan(),
        transmitted_at=timezone.now(), authentication=authentication)


def settlement(auth: AuthorizationRequest, *, amount: int | None = None, rrn: str = "RRN000000001",
               auth_code: str = "A00001") -> SettlementRequest:
    return SettlementRequest(
        original_stan=auth.stan, original_transmitted_at=auth.transmitted_at,
        amount_minor=auth.amount_minor if amount is None else amount, currency="504", merchant_id=MERCHANT,
        order_id=auth.order_id, stan=services.next_stan(), transmitted_at=timezone.now(), rrn=rrn,
        auth_code=auth_code)


def original_of(auth: AuthorizationRequest) -> iso.OriginalData:
    return iso.OriginalData(mti="0100", stan=auth.stan, transmitted_at=auth.transmitted_at.replace(microsecond=0))


# --- codes and messages ------------------------------------------------------------------------------------------


def test_sign_on_first_then_an_approved_authorization_with_every_de48_tag(switch, acquirer):
    auth = authorization(authentication=Authentication(eci="05", authentication_value="AAABBEg0VhI0VniQEjRWAAAAAAA=",
                                                       ds_trans_id="f2b1c3d4-0000-4000-8000-000000000001",
                                                       trans_status="Y"))
    result = acquirer.authorize(auth)

    assert result.approved
    assert (result.response_code, result.rrn, result.auth_code) == ("00", f"RRN{auth.stan:0>9}", f"A{auth.stan[-5:]}")
    first = switch.received[0]
    assert isinstance(first, iso.NetworkRequest) and first.network_code == iso.SIGN_ON
    (sent,) = switch.messages("0100")
    assert (sent.pan, sent.expiry_yymm, sent.cvv, sent.amount_minor, sent.currency) == (VISA, "2812", CVV, 28500, "504")
    assert (sent.stan, iso.de7(sent.transmitted_at)) == (auth.stan, iso.de7(auth.transmitted_at))
    assert (sent.merchant_id, sent.merchant_name, sent.order_id) == (MERCHANT, "Tasdid Telecom", "TSD-ORDER-1")
    assert (sent.eci, sent.authentication_value, sent.trans_status) == ("05", "AAABBEg0VhI0VniQEjRWAAAAAAA=", "Y")
    assert sent.ds_trans_id == "f2b1c3d4-0000-4000-8000-000000000001"
    assert not PendingReversal.objects.exists()


@pytest.mark.parametrize("code", ["05", "14", "51", "54", "N7", "91", "96"])
def test_a_declined_authorization_gives_the_switchs_code_and_owes_nothing(switch, acquirer, code):
    switch.rule = lambda message: Reply(code=code)
    result = acquirer.authorize(authorization())

    assert (result.response_code, result.approved, result.rrn, result.auth_code) == (code, False, "", "")
    assert not PendingReversal.objects.exists()


def test_capture_full_and_partial_carry_the_original_and_the_amount_asked(switch, acquirer):
    auth = authorization(amount=28500)
    acquirer.authorize(auth)
    full = acquirer.capture(settlement(auth))
    partial_auth = authorization(amount=10000)
    acquirer.authorize(partial_auth)
    partial = acquirer.capture(settlement(partial_auth, amount=6000, rrn="RRN000000002"))

    assert full.accepted and partial.accepted
    first, second = switch.messages("0220")
    assert (first.amount_minor, first.rrn, first.auth_code, first.original) == (28500, "RRN000000001", "A00001",
                                                                                 original_of(auth))
    assert (second.amount_minor, second.rrn, second.original) == (6000, "RRN000000002", original_of(partial_auth))


def test_a_capture_refused_by_the_issuer_is_not_accepted(switch, acquirer):
    switch.rule = lambda message: Reply(code="13" if message.MTI == "0220" else "00")
    auth = authorization()
    acquirer.authorize(auth)
    result = acquirer.capture(settlement(auth, amount=99999))
    assert (result.response_code, result.accepted) == ("13", False)


def test_void_sends_a_0400_with_the_original_and_records_it_done(switch, acquirer):
    auth = authorization()
    acquirer.authorize(auth)
    result = acquirer.void(settlement(auth))

    assert result.accepted
    (sent,) = switch.messages("0400")
    assert (sent.original, sent.rrn, sent.amount_minor, sent.processing_code) == (original_of(auth), "RRN000000001",
                                                                                  28500, "000000")
    row = PendingReversal.objects.get()
    assert (row.state, row.response_code, row.tries, row.original_stan) == ("done", "00", 1, auth.stan)
    # The same void again (the flow retrying) sends nothing more.
    assert acquirer.void(settlement(auth)).accepted
    assert len(switch.messages("0400")) == 1


def test_refund_is_a_0200_with_processing_code_20_found_by_rrn_and_original(switch, acquirer):
    auth = authorization()
    acquirer.authorize(auth)
    result = acquirer.refund(RefundRequest(
        rrn="RRN000000001", original_stan=auth.stan, original_transmitted_at=auth.transmitted_at, amount_minor=8500,
        currency="504", merchant_id=MERCHANT, order_id=auth.order_id, stan=services.next_stan(),
        transmitted_at=timezone.now(), merchant_name="Tasdid Télécom"))

    assert result.accepted and result.rrn.startswith("RRN")
    (sent,) = switch.messages("0200")
    assert (sent.processing_code, sent.is_refund, sent.pan, sent.rrn, sent.amount_minor) == (
        "200000", True, "", "RRN000000001", 8500)
    assert sent.original == original_of(auth)


# --- no answer: reversals -----------------------------------------------------------------------------------------


def test_no_answer_is_unknown_and_its_reversal_is_sent_until_a_final_0410(switch, acquirer, connection):
    answers = iter(["91", "00"])
    switch.rule = lambda message: Reply(silent=True) if message.MTI == "0100" else Reply(code=next(answers))
    auth = authorization()
    with pytest.raises(AcquirerUnavailable):
        acquirer.authorize(auth)

    row = PendingReversal.objects.get()
    assert (row.state, row.original_mti, row.original_stan, row.amount_minor, row.rrn) == (
        "pending", "0100", auth.stan, 28500, "")
    now = timezone.now()
    assert rails.sweep_reversals(now=now, rails=connection) == {"reversals retry later": 1}
    row.refresh_from_db()
    assert (row.state, row.tries, row.last_error[:8]) == ("pending", 1, "0410 91 ")
    assert rails.sweep_reversals(now=now, rails=connection) == {}  # not due before its backoff
    assert rails.sweep_reversals(now=row.next_try_at, rails=connection) == {"reversals acknowledged": 1}
    row.refresh_from_db()
    assert (row.state, row.tries, row.response_code) == ("done", 2, "00")
    first, second = switch.messages("0400")
    assert first.original == second.original == original_of(auth)
    assert first.stan != second.stan  # each send is a message of its own
    assert rails.sweep_reversals(now=row.next_try_at + dt.timedelta(hours=1), rails=connection) == {}


def test_the_flow_void_after_a_lost_answer_drives_the_same_reversal(switch, acquirer):
    switch.rule = lambda message: Reply(silent=True) if message.MTI == "0100" else Reply(code="00")
    auth = authorization()
    with pytest.raises(AcquirerUnavailable):
        acquirer.authorize(auth)
    result = acquirer.void(settlement(auth, rrn="", auth_code=""))

    assert result.accepted
    assert PendingReversal.objects.get().state == "done"
    (sent,) = switch.messages("0400")
    assert (sent.original, sent.rrn) == (original_of(auth), "")


def test_a_reversal_of_an_authorization_the_switch_never_forwarded_is_done(switch, acquirer):
    switch.rule = lambda message: Reply(code="12") if message.MTI == "0400" else Reply(silent=True)
    auth = authorization()
    with pytest.raises(AcquirerUnavailable):
        acquirer.authorize(auth)
    result = acquirer.void(settlement(auth, rrn="", auth_code=""))

    assert result.response_code == "00"
    row = PendingReversal.objects.get()
    assert (row.state, row.response_code) == ("done", "12")


def test_the_reversal_survives_the_process_and_the_worker_sweep_sends_it(switch, connection, settings):
    switch.rule = lambda message: Reply(silent=True) if message.MTI == "0100" else Reply(code="00")
    with pytest.raises(AcquirerUnavailable):
        rails.SwitchAcquirer(connection).authorize(authorization())
    connection.close()  # the process is gone; only the database remembers
    assert PendingReversal.objects.get().state == "pending"

    settings.SWITCH_HOST, settings.SWITCH_PORT, settings.RAILS_TIMEOUT = "127.0.0.1", switch.port, 2.0
    rails.reset_connection()
    try:
        run_sweeps()  # what every task worker runs with its recovery pass (settings.TASK_WORKER_SWEEPS)
    finally:
        rails.reset_connection()
    row = PendingReversal.objects.get()
    assert (row.state, row.response_code) == ("done", "00")
    assert len(switch.messages("0400")) == 1


def test_a_late_answer_is_ignored_and_the_reversal_still_goes(switch, acquirer, connection):
    switch.rule = lambda message: Reply(delay=1.5) if message.MTI == "0100" else Reply(code="00")
    with pytest.raises(AcquirerUnavailable):
        acquirer.authorize(authorization())
    wait_until(lambda: connection.late_answers == 1)

    assert PendingReversal.objects.get().state == "pending"
    assert rails.sweep_reversals(rails=connection) == {"reversals acknowledged": 1}


def test_a_connection_dropped_after_sending_owes_a_reversal(switch, acquirer, connection):
    switch.rule = lambda message: Reply(drop=True) if message.MTI == "0100" else Reply()
    with pytest.raises(AcquirerUnavailable):
        acquirer.authorize(authorization())
    assert PendingReversal.objects.get().state == "pending"

    wait_until(lambda: connection.sign_ons == 2)  # reconnected
    assert rails.sweep_reversals(rails=connection) == {"reversals acknowledged": 1}


def test_a_refund_without_answer_owes_the_reversal_of_the_0200(switch, acquirer, connection):
    switch.rule = lambda message: Reply(silent=True) if message.MTI == "0200" else Reply()
    auth = authorization()
    acquirer.authorize(auth)
    refund = RefundRequest(rrn="RRN000000001", original_stan=auth.stan, original_transmitted_at=auth.transmitted_at,
                           amount_minor=500, currency="504", merchant_id=MERCHANT, order_id=auth.order_id,
                           stan=services.next_stan(), transmitted_at=timezone.now())
    with pytest.raises(AcquirerUnavailable):
        acquirer.refund(refund)
    row = PendingReversal.objects.get()
    assert (row.original_mti, row.original_stan, row.processing_code) == ("0200", refund.stan, "200000")

    assert rails.sweep_reversals(rails=connection) == {"reversals acknowledged": 1}
    (sent,) = switch.messages("0400")
    assert (sent.processing_code, sent.original.mti, sent.original.stan) == ("200000", "0200", refund.stan)


def test_while_the_switch_is_down_the_sweep_waits_once_and_leaves_the_reversals(switch, acquirer, connection):
    switch.rule = lambda message: Reply(silent=True) if message.MTI == "0100" else Reply()
    for _ in range(3):
        with pytest.raises(AcquirerUnavailable):
            acquirer.authorize(authorization())
    switch.stop()
    wait_until(lambda: not connection.up)

    assert rails.sweep_reversals(rails=connection) == {"reversals waiting for the switch": 3}
    assert list(PendingReversal.objects.values_list("state", "tries")) == [("pending", 0)] * 3
    switch.restart()
    assert rails.sweep_reversals(rails=connection) == {"reversals acknowledged": 3}
    assert len(switch.messages("0400")) == 3


def test_a_capture_without_answer_is_unavailable_and_not_reversed(switch, acquirer):
    switch.rule = lambda message: Reply(silent=True) if message.MTI == "0220" else Reply()
    auth = authorization()
    acquirer.authorize(auth)
    with pytest.raises(AcquirerUnavailable):
        acquirer.capture(settlement(auth))
    assert not PendingReversal.objects.exists()


# --- the connection -------------------------------------------------------------------------------------------------


def test_switch_down_nothing_sent_nothing_owed_then_back(switch, acquirer, connection):
    switch.stop()
    with pytest.raises(AcquirerUnavailable):
        acquirer.authorize(authorization())
    assert not PendingReversal.objects.exists()
    assert switch.messages("0100") == []

    switch.restart()
    wait_until(lambda: connection.up)
    assert acquirer.authorize(authorization()).approved
    assert connection.sign_ons == 2


def test_reconnects_after_the_switch_restarts(switch, acquirer, connection):
    assert acquirer.authorize(authorization()).approved
    switch.restart()
    wait_until(lambda: connection.sign_ons == 2)
    assert acquirer.authorize(authorization()).approved
    assert switch.connections == 2
    assert [m.network_code for m in switch.messages("0800")] == [iso.SIGN_ON, iso.SIGN_ON]


def test_a_refused_sign_on_keeps_the_connection_down(switch):
    switch.refuse_sign_on = True
    conn = make_rails(switch.port)
    try:
        assert not conn.wait_up(0.5)
        with pytest.raises(rails.NotSent):
            conn.exchange(iso.NetworkRequest(stan="000001", transmitted_at=timezone.now(), network_code=iso.ECHO))
        switch.refuse_sign_on = False
        assert conn.wait_up(10)
    finally:
        conn.close()


def test_an_echo_when_idle(switch):
    conn = make_rails(switch.port, echo_interval=0.2)
    try:
        wait_until(lambda: conn.echoes >= 2)
    finally:
        conn.close()
    codes = [m.network_code for m in switch.messages("0800")]
    assert codes[0] == iso.SIGN_ON and codes.count(iso.ECHO) >= 2
    assert codes[-1] in (iso.ECHO, iso.SIGN_OFF)


def test_concurrent_calls_from_several_threads_find_their_own_answers(switch, acquirer):
    # Odd amounts are declined; each answer waits a different time, so answers come back out of order.
    def rule(message):
        return Reply(code="05" if message.amount_minor % 2 else "00", delay=(int(message.stan) * 7 % 10) / 40)

    switch.rule = rule
    results, errors = [], []

    def pay(thread: int) -> None:
        try:
            for n in range(6):
                auth = authorization(amount=1000 + thread * 10 + n)
                results.append((auth, acquirer.authorize(auth)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=pay, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert errors == []
    assert len(results) == 36
    for auth, result in results:
        if auth.amount_minor % 2:
            assert (result.response_code, result.rrn) == ("05", "")
        else:
            assert (result.response_code, result.rrn) == ("00", f"RRN{auth.stan:0>9}")
    assert not PendingReversal.objects.exists()
    stans = [m.stan for m in switch.received]
    assert len(stans) == len(set(stans)) == 37  # the sign-on, then 36 authorizations


def test_stans_are_unique_for_the_day_across_threads():
    stans: list[str] = []

    def take() -> None:
        from django.db import connections

        try:
            stans.extend(services.next_stan() for _ in range(25))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(stans) == len(set(stans)) == 100
    assert all(len(s) == 6 and s.isdigit() for s in stans)


def test_no_card_number_or_cvv_in_the_logs(switch, acquirer, connection, caplog):
    caplog.set_level(logging.DEBUG)
    switch.rule = lambda message: Reply(delay=1.5) if message.MTI == "0100" else Reply()
    with pytest.raises(AcquirerUnavailable):
        acquirer.authorize(authorization())
    wait_until(lambda: connection.late_answers == 1)
    rails.sweep_reversals(rails=connection)

    assert "rails:" in caplog.text
    assert VISA not in caplog.text and f"CV003{CVV}" not in caplog.text
