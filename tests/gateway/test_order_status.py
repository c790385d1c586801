"""``POST /fim/status``: a merchant asks the gateway, server to server, for an order's status, or for its callback
once more (``action=redeliver``), signed with its store key (ver3 HASH); the answer is signed the same way.
The merchant's callback and the directory are the fake server on 127.0.0.1, the acquirer a local fake."""

from urllib.parse import parse_qsl

import pytest
from django.utils import timezone

from tasdid.core.acquiring import AuthorizationResult
from tasdid.core.signing import ver3_hash, ver3_verify
from tasdid.gateway import flow, protocol, services
from tasdid.gateway.models import Attempt, AttemptState, Event, PaymentSession, SessionState
from tests.support.staff import signed_in, staff_account

from .conftest import (
    CLIENT_ID,
    STORE_KEY,
    card_post,
    gateway_client,
    later,
    make_merchant,
    merchant_fields,
    open_session,
    signed,
)

pytestmark = pytest.mark.django_db(transaction=True)

OID = "ORDER-0001"
RND = "a5Rq0LkP9zXw3Vb7Tn2Mh"  # 21 characters
SELECTION = "0000111995072017,0000111996072017"


@pytest.fixture
def shop(counterparty, rails):
    """The merchant registered with the fake server's host; a browser with an open payment session."""
    make_merchant(hosts=["shop.example.ma", counterparty.host])
    browser = gateway_client()
    token = open_session(browser, signed(merchant_fields(base=counterparty.url)))
    return browser, token


def query(*, oid: str = OID, action: str = "status", rnd: str = RND, store_key: str = STORE_KEY,
          client_id: str = CLIENT_ID, **overrides) -> dict[str, str]:
    fields = {"clientid": client_id, "oid": oid, "rnd": rnd, "action": action, "hashAlgorithm": "ver3",
              **overrides}
    return {**fields, "HASH": ver3_hash(fields, store_key)}


def ask(fields: dict[str, str]) -> dict[str, str]:
    """Post the query; the answer's fields, after checking it is a signed form-encoded answer to it."""
    response = gateway_client().post("/fim/status", fields)
    assert response.status_code == 200, response.content.decode()[:2000]
    assert response["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8"
    answer = dict(parse_qsl(response.content.decode(), keep_blank_values=True))
    assert ver3_verify(answer, STORE_KEY, hash_field="HASH")
    assert (answer["clientid"], answer["oid"], answer["rnd"]) == (fields["clientid"], fields["oid"], fields["rnd"])
    assert answer["OrderStatus"] in protocol.ORDER_STATUSES
    return answer


def authorized_attempt() -> Attempt:
    """An attempt of the open session, authorized by the acquirer, whose callback was not sent yet."""
    session = PaymentSession.objects.get()
    a = services.attempt_start(session_id=session.pk, brand="VISA", masked_pan="411111******1111",
                               pan_fingerprint="x")
    services.attempt_begin_authorization(attempt_id=a.pk, from_state=AttemptState.AUTHENTICATING,
                                         trans_status="U", eci="07", md_status="2", stan=services.next_stan())
    return services.attempt_record_authorization(attempt_id=a.pk,
                                                 result=AuthorizationResult("00", "A1B2C3", "123456789012"))


def unresolved_attempt() -> Attempt:
    """An authorized attempt whose callback tries were all spent without a usable answer (each begun, then
    recorded ambiguous, as flow.deliver_callback records them)."""
    a = authorized_attempt()
    for _ in range(services.CALLBACK_MAX_TRIES):
        services.attempt_begin_callback(attempt_id=a.pk)
        services.attempt_record_callback(attempt_id=a.pk, answer=protocol.AMBIGUOUS)
    a.refresh_from_db()
    assert services.callback_unresolved(a) and a.state == AttemptState.AUTHORIZED
    return a


def pay(browser, token):
    return browser.post(f"/paiement/{token}", card_post(selection=SELECTION))


def moved() -> tuple:
    """Everything a query could move: the rows and their events."""
    return (list(Attempt.objects.values_list("state", "callback_answer", "callback_tries", "callback_tries_begun",
                                             "updated_at")),
            list(PaymentSession.objects.values_list("state", "updated_at")), Event.objects.count())


# --- the status of each state --------------------------------------------------------------------------


def _in_state(status, browser, token, counterparty, rails):
    if status == "EXPIRED":
        services.session_expire(session_id=PaymentSession.objects.get().pk, now=later(hours=1))
    elif status == "CANCELLED":
        browser.post(f"/paiement/{token}", {"action": "cancel"})
    elif status == "PROCESSING":
        services.attempt_start(session_id=PaymentSession.objects.get().pk, brand="VISA",
                               masked_pan="411111******1111", pan_fingerprint="x")
    elif status == "AUTHORIZED":
        authorized_attempt()
    elif status == "UNRESOLVED":
        unresolved_attempt()
    elif status in ("CAPTURED", "VOIDED", "DECLINED", "FAILED"):
        counterparty.state.callback_answer = "FAILURE" if status == "VOIDED" else "ACTION=POSTAUTH"
        if status == "DECLINED":
            rails.authorize_answer = AuthorizationResult("51")
        if status == "FAILED":
            counterparty.state.default_ares = "N"
        pay(browser, token)


AUTHORIZED_STATES = ("AUTHORIZED", "UNRESOLVED", "CAPTURED", "VOIDED")


@pytest.mark.parametrize("status", ["OPEN", "EXPIRED", "CANCELLED", "PROCESSING", "AUTHORIZED", "UNRESOLVED",
                                    "CAPTURED", "VOIDED", "DECLINED", "FAILED"])
def test_the_status_of_an_order_in_each_state(shop, counterparty, rails, status):
    browser, token = shop
    _in_state(status, browser, token, counterparty, rails)
    callbacks = len(counterparty.state.callbacks)
    before = moved()

    answer = ask(query())

    assert answer["OrderStatus"] == status
    assert answer["capturedAmount"] == ("285.00" if status == "CAPTURED" else "0.00")
    a = Attempt.objects.first()
    if status in AUTHORIZED_STATES:
        # Every field of the callback, so that the merchant can record the payment from this answer alone.
        callback = protocol.result_fields(PaymentSession.objects.get().request_fields, flow.outcome_of(a),
                                          store_key=STORE_KEY, callback=True)
        expected = {k: v for k, v in callback.items() if k not in ("HASH", "rnd")}
        assert {k: answer[k] for k in expected} == expected
        assert (answer["TransId"], answer["AuthCode"], answer["HostRefNum"]) == (a.trans_id, "A1B2C3",
                                                                                 "123456789012")
        assert (answer["amount"], answer["paidAmount"], answer["paidItems"]) == ("285.00", "285.00", SELECTION)
        assert answer["Response"] == ("Error" if status == "VOIDED" else "Approved")
    else:
        assert set(answer) == {"clientid", "oid", "rnd", "OrderStatus", "capturedAmount", "HASH"}
    # A status query moves nothing and sends nothing.
    assert moved() == before and len(counterparty.state.callbacks) == callbacks


def test_an_unknown_order_and_another_merchants_order_are_unknown(shop, counterparty, rails):
    browser, token = shop
    pay(browser, token)
    assert ask(query(oid="NO-SUCH-ORDER"))["OrderStatus"] == "UNKNOWN"
    make_merchant(client_id="600000077", store_key="OTHER-STORE-KEY-99")
    other = query(client_id="600000077", store_key="OTHER-STORE-KEY-99")
    response = gateway_client().post("/fim/status", other)
    answer = dict(parse_qsl(response.content.decode(), keep_blank_values=True))
    assert ver3_verify(answer, "OTHER-STORE-KEY-99", hash_field="HASH")
    assert (answer["OrderStatus"], answer["capturedAmount"]) == ("UNKNOWN", "0.00")
    assert "TransId" not in answer and "MaskedPan" not in answer


def test_a_status_query_reads_little(shop, counterparty, rails, django_assert_num_queries):
    browser, token = shop
    pay(browser, token)
    fields = query()
    with django_assert_num_queries(3):  # the merchant; the attempt with its session; its operations
        response = gateway_client().post("/fim/status", fields)
    assert dict(parse_qsl(response.content.decode()))["OrderStatus"] == "CAPTURED"


# --- refusals ----------------------------------------------------------------------------------------


REFUSED = {
    "wrong HASH": lambda: {**query(action="redeliver"), "HASH": query(action="status")["HASH"]},
    "no HASH": lambda: {k: v for k, v in query(action="redeliver").items() if k != "HASH"},
    "signed with another key": lambda: query(action="redeliver", store_key="NOT-THE-STORE-KEY"),
    "unknown client": lambda: query(action="redeliver", client_id="600000000"),
    "no client": lambda: query(action="redeliver", client_id=""),
    "a field changed after signing": lambda: {**query(action="redeliver"), "oid": "ORDER-0002"},
}


@pytest.mark.parametrize("case", REFUSED)
def test_an_unknown_client_or_a_bad_hash_is_refused_and_moves_nothing(shop, counterparty, rails, case):
    unresolved_attempt()
    counterparty.state.callback_answer = "ACTION=POSTAUTH"
    before = moved()
    response = gateway_client().post("/fim/status", REFUSED[case]())
    assert response.status_code == 403
    assert response.content.decode() == "Demande refusée : marchand inconnu ou signature « HASH » invalide."
    assert counterparty.state.callbacks == [] and rails.captures == [] and rails.voids == []
    assert moved() == before


def test_an_inactive_merchant_is_refused(shop, counterparty, rails):
    make_merchant(hosts=["shop.example.ma", counterparty.host], active=False)
    assert gateway_client().post("/fim/status", query()).status_code == 403


MALFORMED = {
    "rnd too short": (dict(rnd="x" * 19), "Le champ « rnd » doit comporter de 20 à 128 caractères imprimables."),
    "rnd with a space": (dict(rnd="a" * 10 + " " + "b" * 10),
                         "Le champ « rnd » doit comporter de 20 à 128 caractères imprimables."),
    "unknown action": (dict(action="capture"), "Le champ « action » doit être « status » ou « redeliver »."),
    "bad oid": (dict(oid="ORDER 1"), "Le numéro de commande « oid » doit comporter de 1 à 64 lettres, chiffres ou "
                                     "signes . _ : / -."),
    "other algorithm": (dict(hashAlgorithm="ver2"), "L'algorithme de signature « hashAlgorithm » doit être "
                                                    "« ver3 »."),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_signed_but_malformed_query_is_refused_and_moves_nothing(shop, counterparty, rails, case):
    unresolved_attempt()
    before = moved()
    overrides, message = MALFORMED[case]
    fields = {"clientid": CLIENT_ID, "oid": OID, "rnd": RND, "action": "redeliver", "hashAlgorithm": "ver3",
              **overrides}
    response = gateway_client().post("/fim/status", {**fields, "HASH": ver3_hash(fields, STORE_KEY)})
    assert (response.status_code, response.content.decode()) == (400, message)
    assert counterparty.state.callbacks == [] and moved() == before


def test_a_field_posted_twice_or_a_get_is_refused(shop, counterparty, rails):
    fields = query()
    response = gateway_client().post("/fim/status", {**fields, "OID": "ORDER-0002"})
    assert response.status_code == 400
    assert gateway_client().get("/fim/status", fields).status_code == 405


# --- redeliver ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("merchant_says", "status", "state", "session_state"), [
    ("ACTION=POSTAUTH", "CAPTURED", AttemptState.CAPTURED, SessionState.SUCCEEDED),
    ("APPROVED", "AUTHORIZED", AttemptState.AUTHORIZED, SessionState.SUCCEEDED),
    ("FAILURE", "VOIDED", AttemptState.VOIDED, SessionState.FAILED),
])
def test_redeliver_of_an_unresolved_order_settles_as_the_merchant_answers_and_a_replay_changes_nothing(
        shop, counterparty, rails, merchant_says, status, state, session_state):
    a = unresolved_attempt()
    assert ask(query())["OrderStatus"] == "UNRESOLVED"
    counterparty.state.callback_answer = merchant_says
    redeliver = query(action="redeliver")

    answer = ask(redeliver)

    assert answer["OrderStatus"] == status
    assert answer["capturedAmount"] == ("285.00" if status == "CAPTURED" else "0.00")
    (callback,) = counterparty.state.callbacks
    assert ver3_verify(callback, STORE_KEY, hash_field="HASH") and callback["TransId"] == a.trans_id
    a.refresh_from_db()
    assert (a.state, a.callback_answer) == (state, merchant_says.removeprefix("ACTION="))
    assert PaymentSession.objects.get().state == session_state
    assert (len(rails.captures), len(rails.voids)) == (int(status == "CAPTURED"), int(status == "VOIDED"))
    assert not services.callback_unresolved(a)
    # The same request again: the same answer, nothing sent, nothing moved.
    before = moved()
    assert ask(redeliver) == answer
    assert len(counterparty.state.callbacks) == 1 and moved() == before
    assert (len(rails.captures), len(rails.voids)) == (int(status == "CAPTURED"), int(status == "VOIDED"))


def test_redeliver_still_unanswered_keeps_the_order_unresolved(shop, counterparty, rails, settings):
    a = unresolved_attempt()
    settings.PARTY_HTTP_TIMEOUT = 0.5
    counterparty.state.callback_answer = "500"
    assert ask(query(action="redeliver"))["OrderStatus"] == "UNRESOLVED"
    assert len(counterparty.state.callbacks) == 1 and rails.voids == [] and rails.captures == []
    a.refresh_from_db()
    assert (a.state, a.callback_tries_begun, a.deadline) == (AttemptState.AUTHORIZED, 11,
                                                             a.authorized_at + services.AUTHORIZATION_HOLD)
    # Refused connections now prove nothing either: the merchant may have recorded it on an earlier try.
    counterparty.state.callback_answer = "404"
    assert ask(query(action="redeliver"))["OrderStatus"] == "UNRESOLVED"
    assert rails.voids == []


def test_redeliver_sends_nothing_for_a_settled_order_or_while_a_try_is_under_way(shop, counterparty, rails):
    a = unresolved_attempt()
    Attempt.objects.filter(pk=a.pk).update(callback_tries_begun=11, callback_last_begun_at=timezone.now())
    assert ask(query(action="redeliver"))["OrderStatus"] == "UNRESOLVED"
    assert counterparty.state.callbacks == []
    Attempt.objects.filter(pk=a.pk).update(callback_last_begun_at=later(minutes=-5))  # that try's sender died
    assert ask(query(action="redeliver"))["OrderStatus"] == "CAPTURED"
    assert len(counterparty.state.callbacks) == 1
    assert ask(query(action="redeliver", rnd=RND + "2"))["OrderStatus"] == "CAPTURED"
    assert len(counterparty.state.callbacks) == 1 and len(rails.captures) == 1


def test_redeliver_of_an_authorization_waiting_for_its_first_callback_sends_it(shop, counterparty, rails):
    authorized_attempt()  # the process died before its first callback
    assert ask(query(action="redeliver"))["OrderStatus"] == "CAPTURED"
    assert len(counterparty.state.callbacks) == 1 and len(rails.captures) == 1


# --- the admin list « à rapprocher » -----------------------------------------------------------------


def test_the_admin_lists_the_attempts_to_reconcile(shop, counterparty, rails):
    a = unresolved_attempt()
    staff_account("staff", parties=["gateway"])
    staff = signed_in("gateway")
    listing = staff.get("/admin/gateway/attempt/").content.decode()
    assert "à rapprocher" in listing
    waiting = staff.get("/admin/gateway/attempt/?a_rapprocher=en_attente").content.decode()
    assert a.trans_id in waiting
    assert a.trans_id not in staff.get("/admin/gateway/attempt/?a_rapprocher=annulees").content.decode()
    counterparty.state.callback_answer = "404"  # still no answer at the end of the hold
    assert flow.sweep(now=later(days=1, minutes=1)) == {"unresolved hold voided": 1}
    assert a.trans_id not in staff.get("/admin/gateway/attempt/?a_rapprocher=en_attente").content.decode()
    assert a.trans_id in staff.get("/admin/gateway/attempt/?a_rapprocher=annulees").content.decode()
