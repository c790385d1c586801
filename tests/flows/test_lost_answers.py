"""The biller records the payment and answers the callback, and its answer is lost on the way back (a relay on
127.0.0.1 between the gateway and the real biller drops it). The gateway does not void what the biller may have
settled: it sends the same callback again, the biller answers it as it did the first time, and the payment is
captured once (DESIGN.md §7, invariants 1 and 3)."""

from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tasdid.bank import sandbox
from tasdid.billing.models import Invoice, Payment, PaymentOrder
from tasdid.core.signing import ver3_hash
from tasdid.gateway import services
from tasdid.gateway.models import Attempt, CallbackAnswer, PaymentSession
from tasdid.messaging.models import Email

from . import journey
from .relay import AnswerLosingRelay

VISA = sandbox.card_by_outcome("00", "none")
CAPTURED = ["authenticating", "authorizing", "authorized", "capturing", "captured"]


@pytest.fixture
def relay_to_biller(world, request):
    """The relay in front of the biller, losing as many answers as the test's parameter says; the biller's
    request sends its callback through it (the relay's host registered with the gateway, the request signed
    with the biller's store key)."""
    relay = AnswerLosingRelay(urlsplit(world["biller"]).port, drop=request.param)
    yield relay
    relay.close()


def pay_through(relay, person, biller: str):
    merchant = services.merchant_register(
        client_id=settings.BILLER_CLIENT_ID, name=settings.BILLER_NAME,
        return_hosts=[biller.removeprefix("http://"), relay.host]).merchant
    gateway_url, fields = journey.merchant_request(person, journey.consult(person, biller))
    fields.pop("hash")
    fields["callbackUrl"] = f"http://{relay.host}/paiement/callback"
    fields["hash"] = ver3_hash(fields, merchant.store_key)
    pay_page = person.post(gateway_url, fields)
    return journey.pay(person, pay_page, VISA)


def assert_paid_once(opening: Decimal) -> None:
    order = PaymentOrder.objects.get()
    (payment,) = Payment.objects.all()
    assert (order.state, payment.order, payment.amount) == ("paid", order, journey.TOTAL)
    assert journey.unpaid_refs() == []
    assert set(Invoice.objects.values_list("payment", flat=True)) == {payment.pk}
    # The receipt email: composed by the task worker after the settlement.
    journey.wait_for(lambda: Email.objects.filter(status=Email.Status.SENT).exists(), "the receipt email sent")
    assert Email.objects.count() == 1
    attempt = Attempt.objects.get()
    assert (journey.attempt_moves(attempt), attempt.callback_answer) == (CAPTURED, CallbackAnswer.POSTAUTH)
    assert (payment.trans_id, payment.auth_code, payment.host_ref) == (attempt.trans_id, attempt.auth_code,
                                                                       attempt.rrn)
    assert PaymentSession.objects.get().state == "succeeded"
    assert journey.holds_of(VISA) == [("captured", journey.TOTAL)]
    assert journey.balance_of(VISA) == opening - journey.TOTAL
    journey.assert_invariants()


@pytest.mark.parametrize("relay_to_biller", [1], indirect=True)
def test_the_billers_answer_lost_once_the_callback_is_sent_again_and_the_payment_captured_once(
        world, customer, person, callbacks, relay_to_biller):
    opening = journey.balance_of(VISA)
    landing = pay_through(relay_to_biller, person, world["biller"])

    assert landing.title == "Reçu de paiement", landing.visible_text[:2000]
    # The biller settled on the first callback, its answer was lost; the same callback (same HASH) again, the
    # biller answered it as a replay.
    assert (relay_to_biller.connections, relay_to_biller.dropped) == (2, 1)
    assert [answer for _url, _fields, answer in callbacks] == ["AMBIGUOUS", "POSTAUTH"]
    assert callbacks[0][1] == callbacks[1][1]
    assert Attempt.objects.get().callback_tries == 2
    assert_paid_once(opening)


@pytest.mark.parametrize("relay_to_biller", [services.CALLBACK_INLINE_TRIES], indirect=True)
def test_every_answer_lost_while_the_customer_waits_the_task_worker_sends_it_again(
        world, customer, person, callbacks, relay_to_biller, monkeypatch):
    """The customer lands on the biller's page before the gateway knows: the biller already shows the receipt
    (it recorded the payment). The task worker sends the callback again at its deadline and captures."""
    monkeypatch.setattr(services, "CALLBACK_RETRY_DELAYS", (services.dt.timedelta(seconds=1),))
    opening = journey.balance_of(VISA)
    landing = pay_through(relay_to_biller, person, world["biller"])

    assert landing.title == "Reçu de paiement", landing.visible_text[:2000]
    journey.wait_for(lambda: Attempt.objects.filter(state="captured").exists(), "the capture by the task worker")
    assert [answer for _url, _fields, answer in callbacks] == ["AMBIGUOUS"] * 3 + ["POSTAUTH"]
    assert all(fields == callbacks[0][1] for _url, fields, _answer in callbacks)
    assert relay_to_biller.dropped == 3
    assert_paid_once(opening)
