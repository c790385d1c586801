"""The issuer host over real TCP: every answer of the sandbox cards with the money checked in the bank's ledger,
capture, reversal, refund, duplicates, pipelining, and bad input (the host keeps serving, nothing authorized)."""

import contextlib
import os
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import iso8583
import pytest

from tasdid.bank import sandbox, selectors, services
from tasdid.bank.demo import seed_demo
from tasdid.bank.models import Authorization, Card, Hold, LedgerEntry, MessageKey, Refund
from tasdid.bank.services import authorization as authorization_service
from tasdid.core import iso8583 as iso
from tasdid.core.cards import fingerprint
from tests.support.tasks import database_url

from .conftest import areq_message
from .iso_client import (
    Client,
    HostThread,
    authorization,
    completion,
    next_stan,
    now,
    original_of,
    refund,
    reversal,
)

TASDID = Path(sys.executable).with_name("tasdid")
VISA = sandbox.card_by_outcome("00", "none")
POOR = sandbox.card_by_outcome("51")
FRICTIONLESS = sandbox.card_by_outcome("00", "frictionless")
CHALLENGE = sandbox.card_by_outcome("00", "challenge")


@pytest.fixture
def host(transactional_db):
    seed_demo()
    running = HostThread().start()
    yield running
    running.stop()


@pytest.fixture
def impatient_host(transactional_db):
    seed_demo()
    running = HostThread(idle_timeout=1.0).start()
    yield running
    running.stop()


def account(card):
    return Card.objects.get(fingerprint=fingerprint(card.number)).account


def available(card) -> Decimal:
    acc = account(card)
    return selectors.account_available(account_id=acc.pk, balance=acc.balance)


def nothing_moved(card, balance: Decimal) -> None:
    acc = account(card)
    assert acc.balance == balance
    assert not Hold.objects.filter(account=acc, state="held").exists()


# --- Every answer of the sandbox cards ------------------------------------------------------------------------


@pytest.mark.parametrize("card", [c for c in sandbox.CARDS if c.three_d_secure == "none"],
                         ids=lambda c: f"{c.response_code}-{c.number[-4:]}")
def test_each_sandbox_card_gets_its_documented_code_and_only_an_approval_holds_money(host, card):
    balance = account(card).balance
    request = authorization(card, amount_minor=28500)
    with Client(host.port) as client:
        answer = client.ask(request)
    assert isinstance(answer, iso.AuthorizationResponse)
    assert answer.response_code == card.response_code
    assert (answer.amount_minor, answer.currency, answer.merchant_id) == (28500, "504", "600000001")
    acc = account(card)
    assert acc.balance == balance
    if card.response_code == "00":
        hold = Hold.objects.get(account=acc)
        assert (hold.state, hold.amount, hold.rrn, hold.auth_code) == ("held", Decimal("285.00"), answer.rrn,
                                                                        answer.auth_code)
        assert len(answer.rrn) == 12 and len(answer.auth_code) == 6
        assert available(card) == balance - Decimal("285.00")
    else:
        assert (answer.rrn, answer.auth_code) == ("", "")
        assert not Hold.objects.filter(account=acc).exists()


def test_the_other_refusals_over_the_rails(host):
    with Client(host.port) as client:
        unknown = client.ask(authorization(VISA, pan=sandbox.UNKNOWN_NUMBER))
        too_much = client.ask(authorization(POOR, amount_minor=5001))
        just_enough = client.ask(authorization(POOR, amount_minor=5000))
        wrong_expiry = client.ask(iso.AuthorizationRequest(
            pan=VISA.number, expiry_yymm="2912", amount_minor=100, currency="504", stan=next_stan(),
            transmitted_at=now(), merchant_id="600000001", cvv=VISA.cvv))
        euros = client.ask(iso.AuthorizationRequest(
            pan=VISA.number, expiry_yymm="2909", amount_minor=100, currency="978", stan=next_stan(),
            transmitted_at=now(), merchant_id="600000001", cvv=VISA.cvv))
        nothing = client.ask(authorization(VISA, amount_minor=0))
        no_cvv = client.ask(authorization(VISA, cvv=""))
    assert [a.response_code for a in (unknown, too_much, just_enough, wrong_expiry, euros, nothing, no_cvv)] == [
        "14", "51", "00", "54", "57", "13", "N7"]
    assert Hold.objects.count() == 1 and Hold.objects.get().amount == Decimal("50.00")


def test_3ds_authentication_value_travels_in_de48(host):
    ares = services.areq_answer(message=areq_message(FRICTIONLESS, server_url="https://gw.example.ma"))
    auth = {"eci": ares["eci"], "authentication_value": ares["authenticationValue"],
            "ds_trans_id": ares["dsTransID"], "trans_status": "Y"}
    with Client(host.port) as client:
        without = client.ask(authorization(FRICTIONLESS))
        other_amount = client.ask(authorization(FRICTIONLESS, amount_minor=28400, **auth))
        wrong_eci = client.ask(authorization(FRICTIONLESS, **{**auth, "eci": "07"}))
        with_it = client.ask(authorization(FRICTIONLESS, **auth))
        again = client.ask(authorization(FRICTIONLESS, **auth))
        challenge_card = client.ask(authorization(CHALLENGE))
    assert [a.response_code for a in (without, other_amount, wrong_eci, with_it, again, challenge_card)] == [
        "05", "05", "05", "00", "05", "05"]
    assert Hold.objects.get().rrn == with_it.rrn


# --- Capture, reversal, refund ----------------------------------------------------------------------------------


def test_capture_in_full_debits_the_account_once(host):
    balance = account(VISA).balance
    request = authorization(VISA)
    with Client(host.port) as client:
        approved = client.ask(request)
        first = client.ask(completion(request, approved))
        again = client.ask(completion(request, approved))
    assert isinstance(first, iso.CompletionResponse)
    assert (first.response_code, first.rrn, again.response_code) == ("00", approved.rrn, "00")
    assert account(VISA).balance == balance - Decimal("285.00")
    assert Hold.objects.get().state == "captured"
    assert list(LedgerEntry.objects.filter(kind="debit").values_list("amount", flat=True)) == [Decimal("285.00")]


def test_partial_capture_debits_what_it_asks_and_frees_the_rest(host):
    balance = account(VISA).balance
    request = authorization(VISA, amount_minor=28500)
    with Client(host.port) as client:
        approved = client.ask(request)
        partial = client.ask(completion(request, approved, amount_minor=20000))
        other = client.ask(completion(request, approved, amount_minor=28500))
    assert (partial.response_code, partial.amount_minor, other.response_code) == ("00", 20000, "12")
    assert account(VISA).balance == balance - Decimal("200.00")
    assert available(VISA) == balance - Decimal("200.00")
    assert LedgerEntry.objects.get(kind="debit").amount == Decimal("200.00")


def test_capture_above_the_hold_is_refused_and_moves_nothing(host):
    balance = account(VISA).balance
    request = authorization(VISA, amount_minor=28500)
    with Client(host.port) as client:
        approved = client.ask(request)
        above = client.ask(completion(request, approved, amount_minor=28501))
        nothing = client.ask(completion(request, approved, amount_minor=0))
    assert (above.response_code, nothing.response_code) == ("13", "13")
    assert account(VISA).balance == balance
    assert Hold.objects.get().state == "held"
    assert not LedgerEntry.objects.filter(kind="debit").exists()


def test_reversal_releases_the_hold_once_by_the_original_data(host):
    balance = account(VISA).balance
    request = authorization(VISA)
    with Client(host.port) as client:
        approved = client.ask(request)
        first = client.ask(reversal(request, rrn=approved.rrn))
        again = client.ask(reversal(request))  # the same original (DE90), another STAN, no RRN
        late_capture = client.ask(completion(request, approved))
    assert isinstance(first, iso.ReversalResponse)
    assert (first.response_code, again.response_code, late_capture.response_code) == ("00", "00", "12")
    hold = Hold.objects.get()
    assert hold.state == "released"
    assert list(hold.events.values_list("to_state", flat=True)) == ["held", "released"]
    nothing_moved(VISA, balance)
    assert available(VISA) == balance


def test_a_reversal_of_an_unknown_original_is_acknowledged_and_a_late_authorization_declined(host):
    balance = account(VISA).balance
    request = authorization(VISA)
    with Client(host.port) as client:
        first = client.ask(reversal(request))
        again = client.ask(reversal(request))
        late = client.ask(request)
    assert (first.response_code, again.response_code, late.response_code) == ("00", "00", "12")
    assert MessageKey.objects.get(stan=request.stan).reversed_at is not None
    nothing_moved(VISA, balance)


def test_a_captured_payment_is_not_reversed(host):
    request = authorization(VISA)
    with Client(host.port) as client:
        approved = client.ask(request)
        client.ask(completion(request, approved))
        reversed_ = client.ask(reversal(request, rrn=approved.rrn))
    assert reversed_.response_code == "12"
    assert Hold.objects.get().state == "captured"


def captured_payment(client: Client, card=VISA, amount_minor=28500):
    request = authorization(card, amount_minor=amount_minor)
    approved = client.ask(request)
    assert client.ask(completion(request, approved)).response_code == "00"
    return request, approved


def test_a_refund_credits_the_card_account_once_and_answers_the_same_twice(host):
    with Client(host.port) as client:
        request, approved = captured_payment(client)
        after_payment = account(VISA).balance
        ask = refund(amount_minor=10000, rrn=approved.rrn, original=original_of(request))
        first = client.ask(ask)
        again = client.ask(ask)
    assert isinstance(first, iso.FinancialResponse)
    assert (first.response_code, first.rrn, first.processing_code) == ("00", approved.rrn, "200000")
    assert (again.response_code, again.rrn) == (first.response_code, first.rrn)
    assert account(VISA).balance == after_payment + Decimal("100.00")
    credit = LedgerEntry.objects.get(kind="credit", refund__isnull=False)
    assert credit.amount == Decimal("100.00") and credit.account == account(VISA)
    assert Refund.objects.count() == 1


def test_refunds_never_exceed_what_was_captured(host):
    with Client(host.port) as client:
        request, approved = captured_payment(client)
        after_payment = account(VISA).balance
        first = client.ask(refund(amount_minor=20000, rrn=approved.rrn, original=original_of(request)))
        beyond = client.ask(refund(amount_minor=8501, rrn=approved.rrn, original=original_of(request)))
        rest = client.ask(refund(amount_minor=8500, rrn=approved.rrn, original=original_of(request)))
        unknown = client.ask(refund(amount_minor=100, rrn="999999999999", original=original_of(request)))
        other_key = client.ask(refund(amount_minor=100, stan=first.stan, at=first.transmitted_at,
                                      rrn=approved.rrn, original=original_of(request)))
    assert [a.response_code for a in (first, beyond, rest, unknown, other_key)] == ["00", "13", "00", "12", "94"]
    assert account(VISA).balance == after_payment + Decimal("285.00")


def test_a_refund_by_card_number_and_its_reversal(host):
    balance = account(POOR).balance
    ask = refund(amount_minor=1500, pan=POOR.number)
    with Client(host.port) as client:
        credited = client.ask(ask)
        assert account(POOR).balance == balance + Decimal("15.00")
        undone = client.ask(iso.ReversalRequest(amount_minor=1500, currency="504", stan=next_stan(),
                                                transmitted_at=now(), merchant_id="600000001",
                                                processing_code=iso.REFUND, original=original_of(ask)))
        again = client.ask(iso.ReversalRequest(amount_minor=1500, currency="504", stan=next_stan(),
                                               transmitted_at=now(), merchant_id="600000001",
                                               processing_code=iso.REFUND, original=original_of(ask)))
        unknown_card = client.ask(refund(amount_minor=1500, pan=sandbox.UNKNOWN_NUMBER))
    assert [a.response_code for a in (credited, undone, again, unknown_card)] == ["00", "00", "00", "14"]
    assert account(POOR).balance == balance
    assert Refund.objects.get(response_code="00").reversed_at is not None


def test_a_purchase_in_one_message_is_not_offered(host):
    with Client(host.port) as client:
        answer = client.ask(iso.FinancialRequest(processing_code=iso.PURCHASE, amount_minor=100, currency="504",
                                                 stan=next_stan(), transmitted_at=now(), merchant_id="600000001",
                                                 pan=VISA.number, expiry_yymm="2909", cvv=VISA.cvv))
    assert answer.response_code == "12"
    assert not Hold.objects.exists() and not LedgerEntry.objects.filter(kind="debit").exists()


# --- Duplicates, network messages, pipelining -------------------------------------------------------------------


def test_a_duplicate_authorization_gets_the_first_answer_and_one_hold(host):
    request = authorization(VISA)
    with Client(host.port) as client:
        first = client.ask(request)
    with Client(host.port) as client:
        again = client.ask(request)
        other = client.ask(authorization(VISA, stan=request.stan, at=request.transmitted_at, amount_minor=100))
    assert (again.response_code, again.rrn, again.auth_code) == (first.response_code, first.rrn, first.auth_code)
    assert other.response_code == "94"
    assert Hold.objects.count() == 1


def test_the_same_authorization_twice_in_one_write_holds_once(host):
    request = authorization(VISA)
    with Client(host.port) as client:
        client.send(request, request)
        first, second = client.receive(), client.receive()
    assert first.response_code == "00"
    assert (second.response_code, second.rrn, second.auth_code) == ("00", first.rrn, first.auth_code)
    assert Hold.objects.count() == 1
    assert Authorization.objects.filter(duplicate_of__isnull=False).count() == 1


def test_two_refunds_racing_on_one_payment_never_exceed_what_was_captured(host):
    with Client(host.port) as client:
        request, approved = captured_payment(client)
    after_payment = account(VISA).balance
    asks = [refund(amount_minor=20000, rrn=approved.rrn, original=original_of(request)) for _ in range(2)]
    with Client(host.port) as one, Client(host.port) as two:
        one.send(asks[0])
        two.send(asks[1])
        codes = sorted([one.receive().response_code, two.receive().response_code])
    assert codes == ["00", "13"]
    assert account(VISA).balance == after_payment + Decimal("200.00")


@pytest.mark.parametrize("code", [iso.SIGN_ON, iso.ECHO, iso.SIGN_OFF])
def test_network_management_is_answered(host, code):
    request = iso.NetworkRequest(stan=next_stan(), transmitted_at=now(), network_code=code)
    with Client(host.port) as client:
        answer = client.ask(request)
        echo = client.ask(iso.NetworkRequest(stan=next_stan(), transmitted_at=now(), network_code=iso.ECHO))
    assert isinstance(answer, iso.NetworkResponse)
    assert (answer.response_code, answer.network_code, echo.response_code) == ("00", code, "00")


def test_pipelined_requests_are_answered_as_each_finishes(host, monkeypatch):
    """A slow authorization does not hold back the answers behind it on the same connection: those that come
    while it is being decided go in the next batch (group commit), to the other thread, and are answered first."""
    release = threading.Event()
    entered = threading.Event()
    real = authorization_service.authorize

    def slow(**kwargs):
        if kwargs["stan"] == slow_request.stan:
            entered.set()
            assert release.wait(timeout=60)
        return real(**kwargs)

    monkeypatch.setattr(authorization_service, "authorize", slow)
    slow_request = authorization(VISA, amount_minor=100)
    others = [authorization(POOR, amount_minor=100 + i) for i in range(3)]
    echo = iso.NetworkRequest(stan=next_stan(), transmitted_at=now(), network_code=iso.ECHO)
    with Client(host.port) as client:
        client.send(slow_request)
        assert entered.wait(timeout=60)
        client.send(*others, echo)
        early = [client.receive() for _ in range(4)]
        release.set()
        last = client.receive()
    assert {iso.match_key(a) for a in early} == {iso.match_key(m) for m in [*others, echo]}
    assert all(a.response_code == "00" for a in early)
    assert iso.match_key(last) == iso.match_key(slow_request) and last.response_code == "00"
    assert Hold.objects.count() == 4


def queue_a_batch(monkeypatch, running, count):
    """Hold the only group-commit thread on a first authorization until ``count`` more wait in the queue; then
    let it go: the next batch is those ``count``. Returns the requests (the first one first) and their answers."""
    release, entered = threading.Event(), threading.Event()
    real = authorization_service.authorize

    def held(**kwargs):
        entered.set()
        assert release.wait(timeout=60)
        return real(**kwargs)

    monkeypatch.setattr(authorization_service, "authorize", held)
    first = authorization(VISA, amount_minor=100)
    batch = [authorization(VISA, amount_minor=200 + i) for i in range(count)]
    with Client(running.port) as client:
        client.send(first)
        assert entered.wait(timeout=60)
        client.send(*batch)
        ends = time.monotonic() + 60
        while running.host._authorizations.qsize() < count and time.monotonic() < ends:
            time.sleep(0.01)
        assert running.host._authorizations.qsize() == count
        release.set()
        answers = {iso.match_key(a): a for a in (client.receive() for _ in range(count + 1))}
    return [first, *batch], [answers[iso.match_key(r)] for r in [first, *batch]]


@pytest.fixture
def one_thread_host(transactional_db):
    seed_demo()
    running = HostThread(group_workers=1).start()
    yield running
    running.stop()


def test_authorizations_waiting_together_are_decided_in_one_transaction(one_thread_host, monkeypatch):
    requests, answers = queue_a_batch(monkeypatch, one_thread_host, 20)
    assert one_thread_host.host.batches == 2
    assert [a.response_code for a in answers] == ["00"] * 21
    holds = {h.rrn: h for h in Hold.objects.all()}
    assert len(holds) == 21
    for request, answer in zip(requests, answers, strict=True):
        hold = holds[answer.rrn]
        assert (hold.stan, hold.amount, hold.auth_code, hold.state) == (
            request.stan, Decimal(request.amount_minor) / 100, answer.auth_code, "held")
    assert available(VISA) == account(VISA).balance - sum(Decimal(r.amount_minor) / 100 for r in requests)


def test_a_batch_that_fails_is_decided_again_one_message_at_a_time(one_thread_host, monkeypatch):
    real = authorization_service.authorize_many

    def broken(asks):  # a batch fails; one request alone (authorize) goes through
        if len(asks) > 1:
            raise RuntimeError("broken on purpose")
        return real(asks)

    monkeypatch.setattr(authorization_service, "authorize_many", broken)
    _requests, answers = queue_a_batch(monkeypatch, one_thread_host, 5)
    assert [a.response_code for a in answers] == ["00"] * 6
    assert sorted(Hold.objects.values_list("rrn", flat=True)) == sorted(a.rrn for a in answers)


def test_many_connections_at_once(host):
    answers: list[str] = []

    def pay(i: int) -> None:
        with Client(host.port) as client:
            answers.append(client.ask(authorization(VISA, amount_minor=100 + i)).response_code)

    threads = [threading.Thread(target=pay, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert answers == ["00"] * 8
    assert Hold.objects.count() == 8
    assert available(VISA) == account(VISA).balance - sum(Decimal(100 + i) / 100 for i in range(8))


# --- Bad input ---------------------------------------------------------------------------------------------------


def good_frame() -> bytes:
    return iso.encode_frame(authorization(VISA))


def still_serving(port: int) -> None:
    with Client(port) as client:
        assert client.ask(iso.NetworkRequest(stan=next_stan(), transmitted_at=now(),
                                             network_code=iso.ECHO)).response_code == "00"


def corrupt_bitmap(frame: bytes) -> bytes:
    # MTI is bytes 2..6 of the frame, the primary bitmap (16 hex characters) follows.
    return frame[:6] + b"Z" + frame[7:]


def unknown_mti(frame: bytes) -> bytes:
    return frame[:2] + b"0300" + frame[6:]


def a_response(frame: bytes) -> bytes:
    return iso.encode_frame(iso.respond(authorization(VISA), "00"))


CLOSING = {
    "length 0": lambda: b"\x00\x00",
    "length over the limit": lambda: b"\xff\xff" + b"0" * 100,
    "length of one byte only": lambda: b"\x01",
    "truncated frame": lambda: good_frame()[:-10],
    "bad bitmap": lambda: corrupt_bitmap(good_frame()),
    "unknown MTI": lambda: unknown_mti(good_frame()),
    "a response instead of a request": lambda: a_response(good_frame()),
    "junk": lambda: iso.frame(b"\x00\xff" * 40),
}


@pytest.mark.parametrize("case", CLOSING)
def test_a_message_nobody_can_be_answered_for_closes_that_connection_only(host, case):
    bystander = Client(host.port)
    with Client(host.port) as client:
        client.send_raw(CLOSING[case]())
        if case in ("truncated frame", "length of one byte only"):
            client.sock.shutdown(1)  # the peer stops inside the frame
        assert client.closed_by_host()
    with bystander:  # another connection opened before is untouched
        assert bystander.ask(iso.NetworkRequest(stan=next_stan(), transmitted_at=now(),
                                                network_code=iso.ECHO)).response_code == "00"
    still_serving(host.port)
    assert not Authorization.objects.exists() and not Hold.objects.exists()


def with_field(request: iso.Message, number: str, value: str) -> bytes:
    """The request's frame with element ``number`` replaced by ``value`` as is (the codec would refuse it)."""
    fields = iso._to_fields(request)
    fields[number] = value
    raw, _ = iso8583.encode(fields, iso.SPEC)
    return iso.frame(bytes(raw))


def test_a_field_in_the_wrong_format_is_answered_30_and_authorizes_nothing(host):
    request = authorization(VISA, amount_minor=28500)
    bad_amount = with_field(request, "4", "0000000285X0")
    bad_currency = with_field(authorization(VISA, amount_minor=100), "49", "5O4")
    with Client(host.port) as client:
        client.send_raw(bad_amount)
        answer = client.receive()
        assert isinstance(answer, iso.AuthorizationResponse)
        assert (answer.response_code, answer.stan) == ("30", request.stan)
        client.send_raw(bad_currency)  # a currency that is not digits
        assert client.receive().response_code == "30"
        # the connection is still in step: a good request on it is answered
        assert client.ask(authorization(VISA, amount_minor=100)).response_code == "00"
    assert Hold.objects.get().amount == Decimal("1.00")


def test_a_silent_client_is_closed_after_the_idle_timeout(impatient_host):
    host = impatient_host
    with Client(host.port) as client:
        assert client.closed_by_host()  # this host's idle timeout is 1 s
    with Client(host.port) as client:
        client.send_raw(good_frame()[:20])  # starts a frame, never finishes it
        assert client.closed_by_host()
    still_serving(host.port)
    assert not Hold.objects.exists()


def test_ten_megabytes_close_that_connection_and_nothing_else(host):
    junk = b"\x07\xd0" + os.urandom(10 * 1024 * 1024)  # a plausible length first, then noise
    with Client(host.port) as client:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # closed while it was still sending
            client.send_raw(junk)
        assert client.closed_by_host()
    still_serving(host.port)
    assert not Authorization.objects.exists()


def test_frames_of_bad_messages_then_a_good_one_on_a_new_connection(host):
    for make in CLOSING.values():
        with Client(host.port) as client:
            client.send_raw(make())
            with contextlib.suppress(OSError):
                client.sock.shutdown(1)
            assert client.closed_by_host()
    with Client(host.port) as client:
        assert client.ask(authorization(VISA)).response_code == "00"
    assert Hold.objects.count() == 1


# --- The command ---------------------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tasdid_issuer_runs_as_a_process_on_the_port_of_its_environment(transactional_db, tmp_path):
    seed_demo()
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tasdid.settings", "TASDID_SANDBOX": "1",
           "DATABASE_URL": database_url(), "TASDID_VAR_DIR": str(tmp_path), "TASDID_ISSUER_HOST": "127.0.0.1",
           "TASDID_ISSUER_PORT": str(port)}
    process = subprocess.Popen([str(TASDID), "issuer"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout.readline().strip() == f"issuer host listening on 127.0.0.1:{port}"
        with Client(port) as client:
            assert client.ask(iso.NetworkRequest(stan=next_stan(), transmitted_at=now(),
                                                 network_code=iso.SIGN_ON)).response_code == "00"
            request = authorization(VISA)
            approved = client.ask(request)
            assert approved.response_code == "00"
            assert client.ask(completion(request, approved)).response_code == "00"
            client.send_raw(b"\x00\x00")
            assert client.closed_by_host()
        with Client(port) as client:
            assert client.ask(authorization(POOR, amount_minor=5001)).response_code == "51"
    finally:
        process.terminate()
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "issuer host stopped" in out
    assert "Traceback" not in err
    assert VISA.number not in err + out and VISA.cvv not in err
    assert Hold.objects.get().state == "captured"


def test_a_port_that_is_no_number_is_refused(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tasdid.settings", "TASDID_SANDBOX": "1",
           "TASDID_VAR_DIR": str(tmp_path), "TASDID_ISSUER_PORT": "85a4"}
    done = subprocess.run([str(TASDID), "issuer"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    # The settings refuse it first (they read TASDID_ISSUER_PORT for the switch's default issuer too).
    assert "TASDID_ISSUER_PORT must be a number, not '85a4'" in done.stderr
    assert "Traceback" not in done.stderr
