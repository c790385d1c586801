"""The ways back from the gateway to the biller besides the payment itself: the payment page opened again after
paying (the back button, a bookmark), a payment page whose time ran out, and « Annuler » on the payment page."""

import datetime as dt

from django.utils import timezone

from tasdid.bank import sandbox
from tasdid.bank.models import Authorization
from tasdid.billing.models import Payment, PaymentOrder
from tasdid.gateway.models import Attempt, PaymentSession
from tasdid.messaging.models import Email

from . import journey

VISA = sandbox.card_by_outcome("00", "none")


def test_the_payment_page_opened_again_after_paying_leads_back_to_the_receipt(world, customer, person):
    biller = world["biller"]
    pay_page = journey.to_gateway(person, journey.consult(person, biller))
    receipt = journey.pay(person, pay_page, VISA)
    journey.delivered_email()
    before = journey.snapshot()

    again = person.get(pay_page.url)

    assert (again.status, again.title) == (200, "Cette commande a déjà été traitée")
    assert "Le paiement de cette commande a déjà été effectué" in again.visible_text
    back = person.press(again, "Retour au site marchand")
    assert (back.url, back.visible_text) == (receipt.url, receipt.visible_text)
    assert journey.snapshot() == before


def test_an_expired_payment_page_pays_nothing_and_the_biller_hears_of_it(world, customer, person):
    biller = world["biller"]
    opening = journey.balance_of(VISA)
    pay_page = journey.to_gateway(person, journey.consult(person, biller))
    # The customer lets the page's time run out (the biller asked for 30 minutes) before paying.
    PaymentSession.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    expired = journey.submit_card(person, pay_page, VISA)

    assert (expired.status, expired.title) == (409, "Session de paiement expirée")
    assert "Aucun paiement n'a été effectué." in expired.visible_text
    landing = person.press(expired, "Retour au site marchand")
    assert (landing.url, landing.title) == (biller + "/paiement/echec", "Votre paiement n'a pas abouti")
    assert "Session de paiement expirée" in landing.visible_text and "code 99" not in landing.visible_text
    order = PaymentOrder.objects.get()
    assert (order.state, order.failure_code) == ("failed", "99")
    assert journey.unpaid_refs() == [journey.REF_MAY, journey.REF_JUNE]
    assert (Payment.objects.count(), Email.objects.count()) == (0, 0)
    assert PaymentSession.objects.get().state == "expired"
    assert (Attempt.objects.count(), Authorization.objects.count()) == (0, 0)
    assert journey.balance_of(VISA) == opening
    journey.assert_invariants()


def test_annuler_on_the_payment_page_pays_nothing_and_the_biller_records_the_cancel(world, customer, person, callbacks):
    biller = world["biller"]
    opening = journey.balance_of(VISA)
    pay_page = journey.to_gateway(person, journey.consult(person, biller))

    leaving = person.press(pay_page, "Annuler")
    assert leaving.autosubmit_form.action == biller + "/paiement/echec"
    landing = person.follow(leaving)

    assert (landing.url, landing.title) == (biller + "/paiement/echec", "Votre paiement n'a pas abouti")
    assert "Vous avez annulé le paiement. Vos factures restent à payer." in landing.visible_text
    order = PaymentOrder.objects.get()
    assert (order.state, order.failure_code, order.failure_message) == ("failed", "99", "Paiement annulé par le client")
    # The biller heard it first by the gateway's failure callback, and acknowledged it.
    ((_url, fields, answer),) = callbacks
    assert (fields["oid"], fields["ProcReturnCode"], fields["ErrMsg"], answer) == (
        order.oid, "99", "Paiement annulé par le client", "APPROVED")
    assert journey.unpaid_refs() == [journey.REF_MAY, journey.REF_JUNE]
    assert (Payment.objects.count(), Email.objects.count()) == (0, 0)
    assert PaymentSession.objects.get().state == "cancelled"
    assert (Attempt.objects.count(), Authorization.objects.count()) == (0, 0)
    assert journey.balance_of(VISA) == opening
    # The payment page opened again says so; paying from it is no longer possible.
    again = person.get(pay_page.url)
    assert (again.status, again.title) == (200, "Paiement annulé")
    assert journey.submit_card(person, pay_page, VISA).status == 409
    assert Attempt.objects.count() == 0
    journey.assert_invariants()
