"""Deferring one of two invoices on the gateway's page (its trash icon, posted back without JavaScript): exactly
the kept invoice is paid, and one amount runs through every party (DESIGN.md §7.3); the deferred one is paid
later by a second order."""

import re
from decimal import Decimal

from tasdid.bank import sandbox
from tasdid.bank.models import Authorization
from tasdid.billing.models import Invoice, Payment, PaymentOrder
from tasdid.gateway.models import Attempt, Event, PaymentSession
from tasdid.messaging.selectors import mailbox_parts

from . import journey

CHALLENGE = sandbox.card_by_outcome("00", "challenge")
VISA = sandbox.card_by_outcome("00", "none")


def test_deferring_one_of_two_invoices_pays_exactly_the_kept_one(world, customer, person, callbacks):
    biller, bank = world["biller"], world["bank"]
    opening = journey.balance_of(CHALLENGE)
    pay_page = journey.to_gateway(person, journey.consult(person, biller))
    assert "Total à payer 219.00 DH" in pay_page.visible_text

    pay_page = journey.defer(person, pay_page, journey.REF_JUNE)

    text = pay_page.visible_text
    assert "Total à payer 120.00 DH" in text and "Montant à payer : 120.00 DH" in text
    assert f"Factures reportées {journey.REF_JUNE} — 99.00 DH" in text
    # The bank's page: its name, the merchant, the amount kept, the masked card.
    to_bank = journey.submit_card(person, pay_page, CHALLENGE)
    assert to_bank.autosubmit_form.action == bank + "/acs/challenge"
    before = journey.last_sms_pk()
    challenge = person.follow(to_bank)
    text = challenge.visible_text
    for shown in ("Crédit du Sahel", "Marchand Tasdid Télécom", "Montant 120.00 DH", "Carte 522011******0026"):
        assert shown in text, shown
    assert re.search(r'<img src="/static/bank/logos/sahel\.svg" alt="Logo Crédit du Sahel"', challenge.text)
    done = person.press(challenge, "Valider", code=journey.sms_code(CHALLENGE.phone, after_pk=before))
    landing = person.follow(person.follow(done))

    # The receipt: the kept invoice only.
    payment = Payment.objects.get()
    assert landing.title == "Reçu de paiement"
    assert f"Facture Internet n° {journey.REF_MAY} Mai 2017 120.00" in landing.visible_text
    assert "Total payé 120.00 DH" in landing.visible_text
    assert journey.REF_JUNE not in landing.text

    # The callback said so, and every party holds the same amount.
    ((url, fields, answer),) = callbacks
    assert (url, answer) == (biller + "/paiement/callback", "POSTAUTH")
    assert (fields["amount"], fields["paidAmount"], fields["paidItems"], fields["deferredItems"]) == (
        "219.00", "120.00", journey.REF_MAY, journey.REF_JUNE)
    order, attempt = PaymentOrder.objects.get(), Attempt.objects.get()
    assert (order.state, order.amount) == ("paid", Decimal("219.00"))
    assert journey.unpaid_refs() == [journey.REF_JUNE]
    assert Invoice.objects.get(reference=journey.REF_MAY).payment == payment
    assert (attempt.amount, attempt.paid_refs, attempt.deferred_refs, attempt.state) == (
        Decimal("120.00"), [journey.REF_MAY], [journey.REF_JUNE], "captured")
    assert Event.objects.filter(session=PaymentSession.objects.get(),
                                cause=f"facture {journey.REF_JUNE} reportée").count() == 1
    assert Authorization.objects.get().amount == Decimal("120.00")
    assert journey.holds_of(CHALLENGE) == [("captured", Decimal("120.00"))]
    assert journey.balance_of(CHALLENGE) == opening - Decimal("120.00")
    assert payment.amount == attempt.amount == Decimal("120.00")
    email_text = mailbox_parts(journey.delivered_email())["text"]
    assert "Total payé : 120.00 DH" in email_text and journey.REF_JUNE not in email_text
    journey.assert_invariants()

    # The deferred invoice stays to pay: a second order collects it, and only it.
    consult = journey.consult(person, biller)
    assert "Total à payer 99.00 DH" in consult.visible_text and journey.REF_MAY not in consult.text
    second = journey.pay(person, journey.to_gateway(person, consult), VISA)
    assert second.title == "Reçu de paiement" and "Total payé 99.00 DH" in second.visible_text
    assert journey.unpaid_refs() == []
    assert sorted(Payment.objects.values_list("amount", flat=True)) == [Decimal("99.00"), Decimal("120.00")]
    assert journey.holds_of(VISA) == [("captured", Decimal("99.00"))]
    journey.assert_invariants()


def test_the_last_invoice_cannot_be_deferred(world, customer, person):
    pay_page = journey.to_gateway(person, journey.consult(person, world["biller"]))
    pay_page = journey.defer(person, pay_page, journey.REF_JUNE)
    # No trash icon is left on the one invoice kept; posting its defer anyway keeps it.
    assert not [f for f in pay_page.forms if dict(f.fields).get("action") == "defer"]
    form = pay_page.form(button=f"Payer aussi la facture {journey.REF_JUNE}")
    again = person.submit(form, action="defer", ref=journey.REF_MAY)
    assert "Total à payer 120.00 DH" in again.visible_text
    assert PaymentSession.objects.get().deferred_refs == [journey.REF_JUNE]
