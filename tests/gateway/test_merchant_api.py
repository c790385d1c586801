"""The merchant XML API (``POST /fim/api``, Nestpay's CC5Request) over the real card rails: the gateway's ISO 8583
client → the switch → the issuer host → the bank's ledger, on 127.0.0.1. Each operation and its repeat (the same
answer, the money moved once, checked at the bank), partial refunds up to what was captured then one refused, a
void after a capture refused, concurrent duplicates, the status and history queries."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.utils import timezone

pytest.importorskip("tasdid.switch.server")
pytest.importorskip("tasdid.bank.issuer")

from tasdid.bank import sandbox
from tasdid.bank.models import Card, Hold, LedgerEntry
from tasdid.core.acquiring import AuthorizationRequest, CardData
from tasdid.core.cards import fingerprint
from tasdid.gateway import api, flow, rails, services, xmlapi
from tasdid.gateway.backfill import attempt_operations
from tasdid.gateway.models import (
    ApiRequestRecord,
    Attempt,
    AttemptState,
    CallbackAnswer,
    MerchantApiUser,
    Operation,
    OperationKind,
    OperationState,
    PaymentSession,
)

from .conftest import gateway_client, make_merchant

pytestmark = pytest.mark.django_db(transaction=True)

VISA = sandbox.card_by_outcome("00", "none")
MERCHANT = "600000001"
NAME, PASSWORD = "boutique-api", "mot-de-passe-api-0001"


@pytest.fixture
def card_rails(demo_card_rails):
    return demo_card_rails


@pytest.fixture
def api_user(card_rails):
    merchant = make_merchant(client_id=MERCHANT)
    return services.api_user_create(merchant=merchant, name=NAME, password=PASSWORD).user


def balance(card) -> Decimal:
    return Card.objects.get(fingerprint=fingerprint(card.number)).account.balance


def kept_authorization(amount_minor: int, oid: str) -> Attempt:
    """A payment authorized over the rails that the merchant kept without capture (its callback answered APPROVED),
    and the gateway's attempt for it as its flow records it."""
    acquirer = rails.SwitchAcquirer()
    month, year = (VISA.issued_expiry or VISA.expiry).split("/")
    auth = AuthorizationRequest(
        card=CardData(pan=VISA.number, expiry_yymm=year + month, cvv=VISA.issued_cvv or VISA.cvv),
        amount_minor=amount_minor, currency="504", merchant_id=MERCHANT, merchant_name="Tasdid Télécom",
        order_id=oid, stan=services.next_stan(), transmitted_at=timezone.now().replace(microsecond=0))
    result = acquirer.authorize(auth)
    assert result.approved
    from tasdid.gateway.models import Merchant

    now = timezone.now()
    session = PaymentSession.objects.create(
        token=oid, merchant=Merchant.objects.get(client_id=MERCHANT), oid=oid, amount=Decimal(amount_minor) / 100,
        request_fields={"TranType": "PreAuth"}, browser_digest="x", state="succeeded", created_at=now,
        expires_at=now, updated_at=now)
    attempt = Attempt.objects.create(
        session=session, state=AttemptState.AUTHORIZED, amount=Decimal(amount_minor) / 100, brand="VISA",
        masked_pan="400011******0017", pan_fingerprint="f", threeds_server_trans_id=oid, trans_id=f"T-{oid}"[:20],
        stan=auth.stan, transmitted_at=auth.transmitted_at, response_code="00", proc_return_code="00",
        auth_code=result.auth_code, rrn=result.rrn, authorized_at=now, callback_answer=CallbackAnswer.APPROVED,
        deadline=now + services.AUTHORIZATION_HOLD, created_at=now, updated_at=now)
    for operation in attempt_operations(attempt, Operation):  # its authorization row, as the flow records it
        operation.save()
    return attempt


def post(body: bytes, content_type: str = "text/xml"):
    response = gateway_client().post("/fim/api", data=body, content_type=content_type)
    assert response.status_code == 200 and response["Content-Type"] == "text/xml; charset=utf-8"
    return response


def call(oid: str, type_: str = "", total: str | None = None, query: str = "", key: str = "",
         password: str = PASSWORD) -> tuple[xmlapi.ApiResponse, bytes]:
    body = xmlapi.build_request(name=NAME, password=password, client_id=MERCHANT, order_id=oid, type_=type_,
                                total=total, query=query, idempotency_key=key)
    content = post(body).content
    return xmlapi.read_response(content), content


REFUNDS = Operation.objects.filter(kind=OperationKind.REFUND)  # beside each payment's authorization and capture


def hold_of(attempt: Attempt) -> Hold:
    return Hold.objects.get(rrn=attempt.rrn)


def test_postauth_captures_a_kept_authorization_once(api_user):
    attempt = kept_authorization(28500, "API-CAPTURE-1")
    opening = balance(VISA)
    answer, raw = call("API-CAPTURE-1", "PostAuth")
    assert (answer.response, answer.proc_return_code, answer.order_id, answer.group_id) == (
        "Approved", "00", "API-CAPTURE-1", "API-CAPTURE-1")
    assert (answer.trans_id, answer.host_ref_num, answer.auth_code, answer.err_msg) == (
        attempt.trans_id, attempt.rrn, attempt.auth_code, "")
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.CAPTURED
    assert hold_of(attempt).state == Hold.State.CAPTURED and balance(VISA) == opening - Decimal("285.00")
    entries = LedgerEntry.objects.count()
    assert attempt.events.filter(cause__endswith="demandée par api:boutique-api", to_state="capturing").count() == 1

    # The same request again (a timeout on the merchant's side): the same bytes, nothing moves.
    _again, raw_again = call("API-CAPTURE-1", "PostAuth")
    assert raw_again == raw
    assert LedgerEntry.objects.count() == entries and balance(VISA) == opening - Decimal("285.00")
    # Another request for the amount it took finds that capture: approved, nothing moves; for another amount,
    # refused.
    same, _raw = call("API-CAPTURE-1", "PostAuth", total="285.00")
    assert (same.response, same.proc_return_code, same.trans_id) == ("Approved", "00", attempt.trans_id)
    other, _raw = call("API-CAPTURE-1", "PostAuth", total="200.00")
    assert (other.response, other.proc_return_code, other.extra["ERRORCODE"]) == ("Error", "99", "ALREADY_CAPTURED")
    assert LedgerEntry.objects.count() == entries and balance(VISA) == opening - Decimal("285.00")


def test_postauth_for_part_of_the_amount_captures_that_part_once_and_releases_the_rest(api_user):
    attempt = kept_authorization(10000, "API-CAPTURE-2")
    opening = balance(VISA)
    answer, _raw = call("API-CAPTURE-2", "PostAuth", total="60.00")
    assert (answer.response, answer.proc_return_code) == ("Approved", "00")
    assert (answer.extra["TRANS_STAT"], answer.extra["REFUNDABLE_AMT"]) == ("C", "60.00")
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.CAPTURED and hold_of(attempt).state == Hold.State.CAPTURED
    assert balance(VISA) == opening - Decimal("60.00")  # the other 40.00 released
    status = call("API-CAPTURE-2", query="ORDERSTATUS")[0]
    assert (status.extra["CAPTURE_AMT"], status.extra["ORIG_TRANS_AMT"]) == ("60.00", "100.00")
    # A second capture, for another amount: refused, nothing moves.
    again, _raw = call("API-CAPTURE-2", "PostAuth", total="40.00")
    assert (again.response, again.extra["ERRORCODE"]) == ("Error", "ALREADY_CAPTURED")
    assert balance(VISA) == opening - Decimal("60.00")
    # More than the authorization: refused before anything moved, and not kept.
    other = kept_authorization(5000, "API-CAPTURE-3")
    above, _raw = call("API-CAPTURE-3", "PostAuth", total="50.01")
    assert (above.response, above.extra["ERRORCODE"]) == ("Error", "AMOUNT_ABOVE_CAPTURABLE")
    other.refresh_from_db()
    assert other.state == AttemptState.AUTHORIZED and hold_of(other).state == Hold.State.HELD


def test_void_releases_the_hold_and_a_void_after_a_capture_is_refused(api_user):
    kept = kept_authorization(5000, "API-VOID-1")
    opening = balance(VISA)
    answer, raw = call("API-VOID-1", "Void")
    assert (answer.response, answer.proc_return_code, answer.trans_id) == ("Approved", "00", kept.trans_id)
    kept.refresh_from_db()
    assert kept.state == AttemptState.VOIDED and hold_of(kept).state == Hold.State.RELEASED
    assert balance(VISA) == opening
    assert call("API-VOID-1", "Void")[1] == raw  # repeated: the same answer
    assert call("API-VOID-1", "PostAuth")[0].extra["ERRORCODE"] == "VOIDED"

    captured = kept_authorization(7000, "API-VOID-2")
    assert call("API-VOID-2", "PostAuth")[0].response == "Approved"
    refused, _raw = call("API-VOID-2", "Void")
    assert (refused.response, refused.extra["ERRORCODE"]) == ("Error", "ALREADY_CAPTURED")
    assert "ne peut plus être annulé" in refused.err_msg
    captured.refresh_from_db()
    assert captured.state == AttemptState.CAPTURED and hold_of(captured).state == Hold.State.CAPTURED


def test_partial_refunds_up_to_the_capture_then_one_refused(api_user):
    kept_authorization(28500, "API-REFUND-1")
    assert call("API-REFUND-1", "PostAuth")[0].response == "Approved"
    opening = balance(VISA)

    first, raw = call("API-REFUND-1", "Credit", total="100.00")
    assert (first.response, first.proc_return_code, len(first.host_ref_num)) == ("Approved", "00", 12)
    assert first.extra["REFUNDABLE_AMT"] == "185.00" and balance(VISA) == opening + Decimal("100.00")
    # The same refund again (10.5 and 10.50 are the same amount): the same answer, no money.
    assert call("API-REFUND-1", "Credit", total="100")[1] == raw
    assert balance(VISA) == opening + Decimal("100.00") and REFUNDS.count() == 1
    # A second refund of the same amount: its own IDEMPOTENCY_KEY.
    second, _raw = call("API-REFUND-1", "Credit", total="100.00", key="refund-2")
    assert second.response == "Approved" and second.trans_id != first.trans_id
    assert balance(VISA) == opening + Decimal("200.00")

    too_much, _raw = call("API-REFUND-1", "Credit", total="85.01")
    assert (too_much.response, too_much.extra["ERRORCODE"]) == ("Error", "REFUND_REFUSED")
    assert "85.00 DH" in too_much.err_msg
    last, _raw = call("API-REFUND-1", "Credit", total="85.00")
    assert last.response == "Approved" and last.extra["REFUNDABLE_AMT"] == "0.00"
    assert call("API-REFUND-1", "Credit", total="0.01")[0].extra["ERRORCODE"] == "REFUND_REFUSED"
    assert balance(VISA) == opening + Decimal("285.00") and REFUNDS.count() == 3
    assert set(REFUNDS.values_list("requested_by", flat=True)) == {"api:boutique-api"}

    # The order as the queries tell it.
    status, _raw = call("API-REFUND-1", query="ORDERSTATUS")
    assert status.response == "Approved"
    assert {k: status.extra[k] for k in ("ORDERSTATUS", "TRANS_STAT", "ORIG_TRANS_AMT", "CAPTURE_AMT", "REFUND_AMT",
                                         "REFUNDABLE_AMT")} == {
        "ORDERSTATUS": "CAPTURED", "TRANS_STAT": "C", "ORIG_TRANS_AMT": "285.00", "CAPTURE_AMT": "285.00",
        "REFUND_AMT": "285.00", "REFUNDABLE_AMT": "0.00"}
    assert status.extra["PAN"] == "400011******0017"
    history, _raw = call("API-REFUND-1", query="ORDERHISTORY")
    rows = [history.extra[f"TRX{n}"].split("\t") for n in range(1, int(history.extra["TRXCOUNT"]) + 1)]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("PreAuth", "A", "285.00"), ("PostAuth", "C", "285.00"), ("Credit", "C", "100.00"), ("Credit", "C", "100.00"),
        ("Credit", "C", "85.00")]


def test_a_refund_the_issuer_declines_is_answered_declined(api_user):
    attempt = kept_authorization(10000, "API-REFUND-2")
    assert call("API-REFUND-2", "PostAuth")[0].response == "Approved"
    opening = balance(VISA)
    Attempt.objects.filter(pk=attempt.pk).update(rrn="999999999999")  # a payment the issuer does not know
    answer, raw = call("API-REFUND-2", "Credit", total="10.00")
    assert (answer.response, answer.proc_return_code) == ("Declined", "12")
    assert balance(VISA) == opening
    assert call("API-REFUND-2", "Credit", total="10.00")[1] == raw  # the bank's answer is kept too
    assert REFUNDS.count() == 1


def three_at_once(body: bytes) -> list[bytes]:
    """The same body posted by three threads released together; their answers."""
    answers: list[bytes] = []
    start = threading.Barrier(3)

    def send():
        start.wait()
        answers.append(post(body).content)

    threads = [threading.Thread(target=send) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_concurrent_duplicates_move_the_money_once(api_user):
    kept_authorization(30000, "API-RACE-1")
    assert call("API-RACE-1", "PostAuth")[0].response == "Approved"
    opening = balance(VISA)
    body = xmlapi.build_request(name=NAME, password=PASSWORD, client_id=MERCHANT, order_id="API-RACE-1",
                                type_="Credit", total="40.00")
    answers = three_at_once(body)
    assert len(answers) == 3 and len(set(answers)) == 1
    assert xmlapi.read_response(answers[0]).response == "Approved"
    assert REFUNDS.count() == 1 and balance(VISA) == opening + Decimal("40.00")


def test_queries_of_unknown_and_open_orders(api_user):
    unknown, _raw = call("NO-SUCH-ORDER", query="ORDERSTATUS")
    assert (unknown.response, unknown.extra["ERRORCODE"]) == ("Error", "ORDER_UNKNOWN")
    kept_authorization(1500, "API-STATUS-1")
    status, _raw = call("API-STATUS-1", query="ORDERSTATUS")
    assert (status.extra["ORDERSTATUS"], status.extra["TRANS_STAT"], status.extra["CAPTURE_AMT"]) == (
        "AUTHORIZED", "A", "0.00")
    history, _raw = call("API-STATUS-1", query="ORDERHISTORY")
    assert history.extra["TRXCOUNT"] == "1" and history.extra["TRX1"].startswith("PreAuth\tA\t15.00\t")
    # A query is answered afresh each time: never kept.
    assert not ApiRequestRecord.objects.exists()


def test_an_error_after_a_refund_was_approved_never_lets_its_repeat_refund_again(api_user, monkeypatch):
    """The refund approved, then the answer's own reads fail (a 500 to the merchant): the request's claim stays,
    linked to the refund it recorded, so the merchant's retry with the same request, once the claim is old, is
    answered from that refund (approved) and moves nothing; the order's history tells the same."""
    kept_authorization(10000, "API-REFUND-9")
    assert call("API-REFUND-9", "PostAuth")[0].response == "Approved"
    opening = balance(VISA)
    real = api._refunded

    def failing(operation, request):
        monkeypatch.setattr(api, "_refunded", real)
        raise RuntimeError("the database went away after the refund")

    monkeypatch.setattr(api, "_refunded", failing)
    with pytest.raises(RuntimeError):
        gateway_client().post("/fim/api", data=xmlapi.build_request(
            name=NAME, password=PASSWORD, client_id=MERCHANT, order_id="API-REFUND-9", type_="Credit",
            total="40.00", query="", idempotency_key=""), content_type="text/xml")
    assert balance(VISA) == opening + Decimal("40.00") and REFUNDS.count() == 1
    record = ApiRequestRecord.objects.get(kind="Credit")
    assert (record.state, record.operation) == (ApiRequestRecord.State.IN_FLIGHT, REFUNDS.get())
    left_at(record, minutes=5)

    again, raw = call("API-REFUND-9", "Credit", total="40.00")
    assert (again.response, again.proc_return_code, again.trans_id) == (
        "Approved", "00", api.refund_trans_id(REFUNDS.get()))
    assert balance(VISA) == opening + Decimal("40.00") and REFUNDS.count() == 1
    assert call("API-REFUND-9", "Credit", total="40.00")[1] == raw  # stored: the same bytes from now on
    history = call("API-REFUND-9", query="ORDERHISTORY")[0]
    assert any(row.startswith("Credit\tC\t40.00") for name, row in history.extra.items() if name.startswith("TRX"))


def left_at(record: ApiRequestRecord, **ago) -> ApiRequestRecord:
    """A claim as a process that died left it, ``ago`` before now (past twice api.BUSY_WAIT_SECONDS)."""
    ApiRequestRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - dt.timedelta(**ago))
    return ApiRequestRecord.objects.get(pk=record.pk)


def dead_claim(oid: str, type_: str, total: str | None = None) -> tuple[bytes, ApiRequestRecord]:
    """A request's claim left in flight five minutes ago by a process that died before anything else."""
    body = xmlapi.build_request(name=NAME, password=PASSWORD, client_id=MERCHANT, order_id=oid, type_=type_,
                                total=total, query="", idempotency_key="")
    claim = services.api_request_claim(user=MerchantApiUser.objects.get(name=NAME),
                                       key=api.idempotency_key(xmlapi.parse(body)), kind=type_, order_id=oid,
                                       now=timezone.now() - dt.timedelta(minutes=5))
    assert claim.record is not None and not claim.busy
    return body, claim.record


def test_a_claim_left_before_anything_was_recorded_is_taken_over_and_the_money_moves_once(api_user):
    attempt = kept_authorization(10000, "API-DEAD-1")
    assert call("API-DEAD-1", "PostAuth")[0].response == "Approved"
    opening = balance(VISA)
    body, stale = dead_claim("API-DEAD-1", "Credit", "25.00")

    # Within twice BUSY_WAIT_SECONDS of a claim, a repeat waits for it; past that, and nothing recorded, the repeat
    # takes the claim over and acts.
    raw = post(body).content
    answer = xmlapi.read_response(raw)
    assert (answer.response, answer.proc_return_code) == ("Approved", "00")
    assert REFUNDS.count() == 1 and balance(VISA) == opening + Decimal("25.00")
    record = ApiRequestRecord.objects.get(pk=stale.pk)
    assert (record.state, record.operation, record.answer) == (
        ApiRequestRecord.State.DONE, REFUNDS.get(), raw.decode())
    assert post(body).content == raw and REFUNDS.count() == 1

    # The process thought dead was only stalled: waking, it records nothing under the claim it lost (nothing sent).
    with pytest.raises(services.ApiClaimLost):
        flow.refund(attempt_id=attempt.pk, amount=Decimal("25.00"), requested_by="api:boutique-api",
                    api_request=stale)
    assert REFUNDS.count() == 1 and balance(VISA) == opening + Decimal("25.00")


def test_repeats_of_a_claim_left_before_anything_was_recorded_arriving_together_refund_once(api_user):
    """Three repeats at once of a request whose process died right after its claim: one takes the claim over and
    refunds; the others wait for its answer and get the same bytes."""
    kept_authorization(10000, "API-DEAD-5")
    assert call("API-DEAD-5", "PostAuth")[0].response == "Approved"
    opening = balance(VISA)
    body, _stale = dead_claim("API-DEAD-5", "Credit", "15.00")
    answers = three_at_once(body)
    assert len(answers) == 3 and len(set(answers)) == 1
    assert xmlapi.read_response(answers[0]).response == "Approved"
    assert REFUNDS.count() == 1 and balance(VISA) == opening + Decimal("15.00")


def test_a_claim_left_after_its_refund_was_recorded_is_answered_from_that_refund(api_user):
    attempt = kept_authorization(10000, "API-DEAD-2")
    assert call("API-DEAD-2", "PostAuth")[0].response == "Approved"
    opening = balance(VISA)
    body, stale = dead_claim("API-DEAD-2", "Credit", "30.00")
    # The process recorded the refund (linked to the claim in the same transaction), then died before sending it.
    refund = flow_refund_recorded(attempt, "30.00", stale)
    assert ApiRequestRecord.objects.get(pk=stale.pk).operation == refund

    # Unsettled: BUSY, nothing sent, the claim kept.
    busy = xmlapi.read_response(post(body).content)
    assert (busy.response, busy.extra["ERRORCODE"]) == ("Error", "BUSY")
    assert REFUNDS.count() == 1 and balance(VISA) == opening
    assert ApiRequestRecord.objects.get(pk=stale.pk).state == ApiRequestRecord.State.IN_FLIGHT

    # The sweeper reverses the refund left without an answer; reversed, the repeat is told NO_ANSWER and the claim
    # released ...
    later = timezone.now() + services.operation_answer_grace() + dt.timedelta(seconds=1)
    assert flow.sweep_operations(now=later) == {"refunds reversed": 1}
    busy_again = xmlapi.read_response(post(body).content)  # REVERSING: still unsettled
    assert busy_again.extra["ERRORCODE"] == "BUSY"
    assert rails.sweep_reversals(now=later) == {"reversals acknowledged": 1}
    assert flow.sweep_operations(now=later) == {"refund reversals acknowledged": 1}
    refund.refresh_from_db()
    assert refund.state == OperationState.REVERSED
    reversed_ = xmlapi.read_response(post(body).content)
    assert (reversed_.response, reversed_.extra["ERRORCODE"]) == ("Error", "NO_ANSWER")
    assert not ApiRequestRecord.objects.filter(pk=stale.pk).exists()
    assert balance(VISA) == opening
    # ... so the same request sent again refunds, once.
    again = xmlapi.read_response(post(body).content)
    assert again.response == "Approved"
    assert REFUNDS.filter(state=OperationState.APPROVED).count() == 1 and balance(VISA) == opening + Decimal("30.00")


def flow_refund_recorded(attempt: Attempt, amount: str, record: ApiRequestRecord) -> Operation:
    return services.refund_open(attempt_id=attempt.pk, amount=Decimal(amount), requested_by="api:boutique-api",
                                api_request=record)


def test_a_claim_left_after_its_refund_was_answered_is_answered_from_that_refund_once(api_user):
    attempt = kept_authorization(10000, "API-DEAD-3")
    assert call("API-DEAD-3", "PostAuth")[0].response == "Approved"
    opening = balance(VISA)
    body, stale = dead_claim("API-DEAD-3", "Credit", "20.00")
    # Recorded, sent, approved by the bank: the process died before storing its answer.
    refund = flow.send_operation(operation_id=flow_refund_recorded(attempt, "20.00", stale).pk)
    assert refund.state == OperationState.APPROVED and balance(VISA) == opening + Decimal("20.00")

    raw = post(body).content
    answer = xmlapi.read_response(raw)
    assert (answer.response, answer.proc_return_code, answer.trans_id, answer.host_ref_num) == (
        "Approved", "00", api.refund_trans_id(refund), refund.rrn)
    assert answer.extra["REFUNDABLE_AMT"] == "80.00"
    assert ApiRequestRecord.objects.get(pk=stale.pk).state == ApiRequestRecord.State.DONE
    assert post(body).content == raw
    assert REFUNDS.count() == 1 and balance(VISA) == opening + Decimal("20.00")


def test_a_claim_left_after_its_capture_was_recorded_is_answered_approved_and_captured_once(api_user):
    attempt = kept_authorization(10000, "API-DEAD-4")
    opening = balance(VISA)
    body, stale = dead_claim("API-DEAD-4", "PostAuth")
    # The capture recorded (linked to the claim), the process died before sending it.
    opened = services.capture_open(attempt_id=attempt.pk, amount=None, requested_by="api:boutique-api",
                                   api_request=stale)
    assert opened.created and ApiRequestRecord.objects.get(pk=stale.pk).operation == opened.operation

    # Recorded, a capture is approved as it would have been (the gateway sends it until accepted) ...
    raw = post(body).content
    answer = xmlapi.read_response(raw)
    assert (answer.response, answer.proc_return_code, answer.trans_id) == ("Approved", "00", attempt.trans_id)
    assert ApiRequestRecord.objects.get(pk=stale.pk).state == ApiRequestRecord.State.DONE
    # ... and the task worker sends it, once.
    flow.settle(attempt_id=attempt.pk)
    assert post(body).content == raw
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.CAPTURED and balance(VISA) == opening - Decimal("100.00")
    assert Operation.objects.filter(attempt=attempt, kind=OperationKind.CAPTURE).count() == 1


def test_a_repeat_sent_by_another_api_user_of_the_same_merchant_is_the_same_request(api_user):
    """While a merchant rotates its API credentials, a timed-out refund sent again under its new user refunds once."""
    services.api_user_create(merchant=api_user.merchant, name="boutique-api-2", password=PASSWORD)
    kept_authorization(10000, "API-REFUND-8")
    assert call("API-REFUND-8", "PostAuth")[0].response == "Approved"
    opening = balance(VISA)
    first, raw = call("API-REFUND-8", "Credit", total="30.00")
    assert first.response == "Approved"
    body = xmlapi.build_request(name="boutique-api-2", password=PASSWORD, client_id=MERCHANT,
                                order_id="API-REFUND-8", type_="Credit", total="30.00", query="", idempotency_key="")
    assert post(body).content == raw
    assert balance(VISA) == opening + Decimal("30.00") and REFUNDS.count() == 1
