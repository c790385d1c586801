"""An approved card, and yet nothing is paid: the biller refuses the callback (FAILURE), or cannot be reached at
callback time. The authorization is voided at the bank, the hold released, the customer told (DESIGN.md §7.2)."""

from decimal import Decimal

from django.conf import settings

from tasdid.bank import sandbox
from tasdid.bank.models import Authorization
from tasdid.billing.models import Invoice, Payment, PaymentOrder
from tasdid.core.signing import ver3_hash
from tasdid.gateway import services
from tasdid.gateway.models import Attempt, CallbackAnswer, PaymentSession
from tasdid.messaging.models import Email

from . import journey
from .browser import Browser

VISA = sandbox.card_by_outcome("00", "none")
CMI = next(c for c in sandbox.CARDS if c.response_code == "00" and c.brand == "CMI")
VOIDED = ["authenticating", "authorizing", "authorized", "voiding", "voided"]


def test_the_biller_answers_failure_when_an_invoice_was_paid_meanwhile(world, customer, person, callbacks):
    """Two tabs on the same line: the second pays May first; the first then pays both, which the biller
    refuses (May is paid already): voided, released, nothing more paid."""
    biller = world["biller"]
    first_page = journey.to_gateway(person, journey.consult(person, biller))
    other = Browser()
    try:
        second_page = journey.to_gateway(other, journey.consult(other, biller))
        second_page = journey.defer(other, second_page, journey.REF_JUNE)
        assert journey.pay(other, second_page, VISA).title == "Reçu de paiement"
    finally:
        other.close()
    opening = journey.balance_of(CMI)

    landing = journey.pay(person, first_page, CMI)

    # The biller's answer and the customer's page.
    assert [(fields["oid"], answer) for _url, fields, answer in callbacks][1] == (
        PaymentOrder.objects.order_by("pk").first().oid, "FAILURE")
    assert (landing.url, landing.title) == (biller + "/paiement/echec", "Votre paiement n'a pas abouti")
    assert "Une des factures a déjà été réglée entre-temps ; aucun montant n'a été débité." in landing.visible_text
    assert "code 99" not in landing.visible_text
    # The biller: the first order failed, May paid once (by the second order), June unpaid, one receipt.
    first, second = PaymentOrder.objects.order_by("pk")
    assert (first.state, first.failure_code, second.state) == ("failed", "99", "paid")
    (payment,) = Payment.objects.all()
    assert (payment.order, payment.amount) == (second, Decimal("120.00"))
    assert Invoice.objects.get(reference=journey.REF_MAY).payment == payment
    assert journey.unpaid_refs() == [journey.REF_JUNE]
    # The receipt email: composed by the task worker after the settlement.
    journey.wait_for(lambda: Email.objects.filter(status=Email.Status.SENT).exists(), "the receipt email sent")
    assert Email.objects.count() == 1
    # The gateway: the first attempt voided at the biller's word.
    attempt = Attempt.objects.get(session__oid=first.oid)
    assert (journey.attempt_moves(attempt), attempt.callback_answer) == (VOIDED, CallbackAnswer.FAILURE)
    assert PaymentSession.objects.get(oid=first.oid).state == "failed"
    # The bank: the CMI card's hold released, its balance untouched; the Visa debited for May only.
    assert journey.holds_of(CMI) == [("released", Decimal("219.00"))]
    assert journey.balance_of(CMI) == opening == CMI.balance
    assert journey.holds_of(VISA) == [("captured", Decimal("120.00"))]
    assert journey.balance_of(VISA) == VISA.balance - Decimal("120.00")
    journey.assert_invariants()


def test_the_biller_unreachable_at_callback_time_voids_the_payment(world, customer, person, closed_port):
    """The biller's request, with its callbackUrl pointed at a closed port (registered with the gateway like any
    return host, and signed with the biller's store key): the callback cannot be delivered."""
    biller = world["biller"]
    merchant = services.merchant_register(
        client_id=settings.BILLER_CLIENT_ID, name=settings.BILLER_NAME,
        return_hosts=[biller.removeprefix("http://"), f"127.0.0.1:{closed_port}"]).merchant
    gateway_url, fields = journey.merchant_request(person, journey.consult(person, biller))
    fields.pop("hash")
    fields["callbackUrl"] = f"http://127.0.0.1:{closed_port}/paiement/callback"
    fields["hash"] = ver3_hash(fields, merchant.store_key)
    opening = journey.balance_of(VISA)

    pay_page = person.post(gateway_url, fields)
    landing = journey.pay(person, pay_page, VISA)

    assert (landing.url, landing.title) == (biller + "/paiement/echec", "Votre paiement n'a pas abouti")
    order = PaymentOrder.objects.get()
    assert (order.state, order.failure_code) == ("failed", "99")
    assert journey.unpaid_refs() == [journey.REF_MAY, journey.REF_JUNE]
    assert (Payment.objects.count(), Email.objects.count()) == (0, 0)
    attempt = Attempt.objects.get()
    assert (journey.attempt_moves(attempt), attempt.callback_answer) == (VOIDED, CallbackAnswer.UNREACHABLE)
    assert PaymentSession.objects.get().state == "failed"
    assert Authorization.objects.get().response_code == "00"
    assert journey.holds_of(VISA) == [("released", Decimal("219.00"))]
    assert journey.balance_of(VISA) == opening
    journey.assert_invariants()
