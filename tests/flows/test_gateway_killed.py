"""The gateway is killed after its callback reached the biller, before it recorded that the callback went out;
when it tries again, the biller is down (connection refused). The biller recorded the payment: the gateway must
not read that refused try as a first one and void the card's hold. With the biller back, the callback sent again
captures the payment once (DESIGN.md §7, invariants 1 and 2; issue 6, item 1).

Each party runs in this process (live servers on 127.0.0.1); the kill is the gateway's request ending right
after the callback's POST returned, so that nothing after it is recorded, as a ``kill -9`` at that instant."""

import datetime as dt
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from tasdid.bank import sandbox
from tasdid.billing.models import Payment, PaymentOrder
from tasdid.core.signing import ver3_hash
from tasdid.gateway import flow, services
from tasdid.gateway.models import Attempt, AttemptState, CallbackAnswer, PaymentSession
from tasdid.messaging.models import Email

from . import journey
from .relay import AnswerLosingRelay

VISA = sandbox.card_by_outcome("00", "none")


class GatewayKilled(RuntimeError):
    """The gateway's process ends here: what it had not recorded yet is lost."""


def later(**kwargs) -> dt.datetime:
    return timezone.now() + dt.timedelta(**kwargs)


def test_a_gateway_killed_after_its_callback_was_delivered_does_not_void_what_the_biller_recorded(
        world, customer, person, callbacks, monkeypatch):
    # The task worker runs along (as in the demo); its retries come after this test's own sweeps.
    monkeypatch.setattr(services, "CALLBACK_RETRY_DELAYS", (dt.timedelta(hours=1),))
    biller = world["biller"]
    relay = AnswerLosingRelay(urlsplit(biller).port, drop=0)  # the biller as the gateway reaches it
    try:
        merchant = services.merchant_register(
            client_id=settings.BILLER_CLIENT_ID, name=settings.BILLER_NAME,
            return_hosts=[biller.removeprefix("http://"), relay.host]).merchant
        gateway_url, fields = journey.merchant_request(person, journey.consult(person, biller))
        fields.pop("hash")
        fields["callbackUrl"] = f"http://{relay.host}/paiement/callback"
        fields["hash"] = ver3_hash(fields, merchant.store_key)
        pay_page = person.post(gateway_url, fields)
        opening = journey.balance_of(VISA)

        spy = flow.send_callback

        def send_then_die(url, fields, **kwargs):
            spy(url, fields, **kwargs)
            raise GatewayKilled("killed after the callback's POST returned")

        monkeypatch.setattr(flow, "send_callback", send_then_die)
        died = journey.submit_card(person, pay_page, VISA)
        monkeypatch.setattr(flow, "send_callback", spy)

        # The biller recorded the payment (and its email is on its way); the gateway recorded no outcome.
        assert died.status == 500
        assert [answer for _url, _fields, answer in callbacks] == ["POSTAUTH"]
        assert PaymentOrder.objects.get().state == "paid" and Payment.objects.count() == 1
        attempt = Attempt.objects.get()
        assert (attempt.state, attempt.callback_answer, attempt.callback_tries, attempt.callback_tries_begun) == (
            AttemptState.AUTHORIZED, "", 0, 1)
        assert journey.holds_of(VISA) == [("held", journey.TOTAL)]

        # The biller is down when the gateway's sweep tries again: a refused connection proves nothing now.
        port = relay.port
        relay.close()
        assert flow.sweep(now=later(minutes=5)) == {"callback retry later": 1}
        assert [answer for _url, _fields, answer in callbacks] == ["POSTAUTH", "NOT_DELIVERED"]
        attempt.refresh_from_db()
        assert (attempt.state, attempt.callback_answer) == (AttemptState.AUTHORIZED, "")
        assert journey.holds_of(VISA) == [("held", journey.TOTAL)]
        assert PaymentSession.objects.get().state == "processing"

        # The biller is back: the same callback once more, answered as the first one was; captured once.
        relay = AnswerLosingRelay(urlsplit(biller).port, drop=0, port=port)
        assert flow.sweep(now=later(hours=2)) == {"concluded": 1}
    finally:
        relay.close()
    assert [answer for _url, _fields, answer in callbacks] == ["POSTAUTH", "NOT_DELIVERED", "POSTAUTH"]
    assert callbacks[0][1] == callbacks[2][1]
    attempt.refresh_from_db()
    assert (attempt.state, attempt.callback_answer) == (AttemptState.CAPTURED, CallbackAnswer.POSTAUTH)
    assert PaymentSession.objects.get().state == "succeeded"
    assert journey.holds_of(VISA) == [("captured", journey.TOTAL)]
    assert journey.balance_of(VISA) == opening - journey.TOTAL
    # The receipt email: composed by the task worker after the settlement.
    journey.wait_for(lambda: Email.objects.filter(status=Email.Status.SENT).exists(), "the receipt email sent")
    assert Payment.objects.count() == 1 and Email.objects.count() == 1
    journey.assert_invariants()
