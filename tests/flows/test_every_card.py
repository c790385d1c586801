"""Every sandbox card through the whole journey, over real HTTP between the live parties: the biller's order and
its signed request, the gateway's page and card form, the switch's 3-D Secure directory, the bank's challenge and
authorization, the callback to the biller, the capture; then what each party holds, exactly."""

import re
from decimal import Decimal

import pytest

from tasdid.bank import sandbox
from tasdid.bank.models import Authorization, Hold, LedgerEntry
from tasdid.billing.models import Invoice, Payment, PaymentOrder
from tasdid.core.cards import BRAND_LABELS, mask
from tasdid.gateway.models import Attempt, CallbackAnswer, PaymentSession
from tasdid.messaging.models import Email, MailboxMessage

from . import journey
from .browser import Browser

APPROVED = [c for c in sandbox.CARDS if c.response_code == "00"]
DECLINED = [c for c in sandbox.CARDS if c.response_code != "00"]

# The 3-D Secure path of each enrolment, as the gateway records it.
MOVES = {
    "none": ["authenticating", "authorizing", "authorized", "capturing", "captured"],
    "frictionless": ["authenticating", "authorizing", "authorized", "capturing", "captured"],
    "challenge": ["authenticating", "challenge", "authorizing", "authorized", "capturing", "captured"],
}
MD_STATUS = {"none": "2", "frictionless": "1", "challenge": "1"}
ECI = {("none", "VISA"): "07", ("none", "CMI"): "07", ("frictionless", "VISA"): "05",
       ("challenge", "MASTERCARD"): "02"}
# What the biller's failUrl page says, in French, for each refusal.
REASONS = {
    "51": "Provision insuffisante",
    "54": "Carte expirée",
    "05": "Transaction refusée par votre banque",
    "41": "Carte déclarée perdue ou volée",
    "43": "Carte déclarée perdue ou volée",
    "N7": "Code de vérification incorrect",
    "14": "Numéro de carte inconnu de votre banque",
}


def card_id(card: sandbox.SandboxCard) -> str:
    return f"{card.response_code}-{card.three_d_secure}-{card.brand.lower()}"


@pytest.mark.parametrize("card", APPROVED, ids=card_id)
def test_an_approved_card_pays_both_invoices(world, customer, person, card):
    biller = world["biller"]
    opening = journey.balance_of(card)
    pay_page = journey.to_gateway(person, journey.consult(person, biller))

    landing = journey.pay(person, pay_page, card)

    # The browser lands on the receipt.
    payment = Payment.objects.get()
    assert re.fullmatch(rf"{re.escape(biller)}/recu/{payment.receipt_number}/[\w-]{{20,}}", landing.url)
    assert (landing.status, landing.title) == (200, "Reçu de paiement")
    text = landing.visible_text
    for shown in (f"N° de reçu {payment.receipt_number}", f"Email du payeur {journey.EMAIL}",
                  f"Facture Internet n° {journey.REF_MAY} Mai 2017 120.00",
                  f"Facture Internet n° {journey.REF_JUNE} Juin 2017 99.00", "Total payé 219.00 DH",
                  f"Carte {mask(card.number)}", f"Type de carte {BRAND_LABELS[card.brand]}",
                  f"N° d'autorisation {payment.auth_code}", f"N° de transaction {payment.trans_id}",
                  "Marchand Tasdid Télécom"):
        assert shown in text, shown

    # The biller: both invoices paid by one payment, the order paid, the receipt emailed.
    order = PaymentOrder.objects.get()
    assert (order.state, order.amount, journey.order_moves(order)) == ("paid", Decimal("219.00"), ["created", "paid"])
    assert journey.unpaid_refs() == []
    assert set(Invoice.objects.values_list("payment_id", flat=True)) == {payment.pk}
    assert (payment.order_id, payment.amount, payment.email) == (order.pk, Decimal("219.00"), journey.EMAIL)
    assert (payment.masked_pan, payment.card_brand) == (mask(card.number), card.brand)
    email = journey.wait_for(lambda: Email.objects.filter(status=Email.Status.SENT).first(), "the receipt sent")
    assert (Email.objects.count(), email.to, email.subject) == (
        1, journey.EMAIL, f"Votre reçu de paiement {payment.receipt_number}")
    message = journey.delivered_email()
    assert journey.receipt_link(message) == landing.url

    # The gateway: one attempt, its 3-D Secure path, captured at the biller's word.
    session, attempt = PaymentSession.objects.get(), Attempt.objects.get()
    assert (session.oid, session.state, journey.session_moves(session)) == (
        order.oid, "succeeded", ["open", "processing", "succeeded"])
    assert journey.attempt_moves(attempt) == MOVES[card.three_d_secure]
    assert (attempt.amount, attempt.paid_refs, attempt.deferred_refs) == (
        Decimal("219.00"), [journey.REF_MAY, journey.REF_JUNE], [])
    assert (attempt.md_status, attempt.eci) == (MD_STATUS[card.three_d_secure], ECI[card.three_d_secure, card.brand])
    assert (attempt.callback_answer, attempt.trans_id, attempt.auth_code) == (
        CallbackAnswer.POSTAUTH, payment.trans_id, payment.auth_code)

    # The bank: one approval, its hold captured, the account debited by exactly the amount paid.
    (authorization,) = Authorization.objects.all()
    assert (authorization.response_code, authorization.amount, authorization.order_id) == (
        "00", Decimal("219.00"), order.oid)
    assert journey.holds_of(card) == [("captured", Decimal("219.00"))]
    assert journey.balance_of(card) == opening - Decimal("219.00")
    (entry,) = LedgerEntry.objects.filter(kind="debit")
    assert (entry.amount, entry.hold.rrn) == (Decimal("219.00"), payment.host_ref)

    # The email's link opens the same receipt in a browser that has never been here.
    stranger = Browser()
    try:
        again = stranger.get(journey.receipt_link(message))
    finally:
        stranger.close()
    assert (again.status, again.visible_text) == (200, landing.visible_text)
    journey.assert_invariants()


@pytest.mark.parametrize("card", DECLINED, ids=card_id)
def test_a_declined_card_pays_nothing(world, customer, person, card):
    biller = world["biller"]
    opening = journey.balance_of(card)
    pay_page = journey.to_gateway(person, journey.consult(person, biller))

    landing = journey.pay(person, pay_page, card)

    # The browser lands on the biller's failure page, which says why in French and offers to try again.
    assert (landing.url, landing.status, landing.title) == (
        biller + "/paiement/echec", 200, "Votre paiement n'a pas abouti")
    assert f"{REASONS[card.response_code]} (code {card.response_code})" in landing.visible_text
    assert "vos factures restent à payer" in landing.visible_text
    retry = person.get(landing.link("Réessayer"))
    assert (retry.url, retry.title) == (biller + "/factures", "Vos factures à payer")
    assert "Total à payer 219.00 DH" in retry.visible_text
    _assert_refused(card, opening=opening, code=card.response_code, moves=[
        "authenticating", "authorizing", "declined"])
    assert Authorization.objects.get().response_code == card.response_code


def test_an_unknown_card_number_is_refused_by_the_bank(world, customer, person):
    """A Luhn-valid Visa number of Banque Atlas's range that no card carries: the form lets it through, the
    directory cannot route it (3-D Secure U), the bank answers 14."""
    biller = world["biller"]
    pay_page = journey.to_gateway(person, journey.consult(person, biller))
    visa = sandbox.card_by_outcome("00", "none")

    landing = journey.pay(person, pay_page, visa, number=sandbox.UNKNOWN_NUMBER)

    assert (landing.url, landing.title) == (biller + "/paiement/echec", "Votre paiement n'a pas abouti")
    assert f"{REASONS['14']} (code 14)" in landing.visible_text
    _assert_refused(None, opening=None, code="14", moves=["authenticating", "authorizing", "declined"])
    (authorization,) = Authorization.objects.all()
    assert (authorization.card, authorization.response_code, authorization.masked_pan) == (
        None, "14", mask(sandbox.UNKNOWN_NUMBER))


def _assert_refused(card, *, opening, code: str, moves: list[str]) -> None:
    # The biller: nothing paid, the order failed with the bank's code, no receipt, no email.
    order = PaymentOrder.objects.get()
    assert (order.state, order.failure_code, journey.order_moves(order)) == ("failed", code, ["created", "failed"])
    assert journey.unpaid_refs() == [journey.REF_MAY, journey.REF_JUNE]
    assert Payment.objects.count() == 0
    assert (Email.objects.count(), MailboxMessage.objects.count()) == (0, 0)
    # The gateway: the attempt declined, the session failed, the biller told (it acknowledged).
    session, attempt = PaymentSession.objects.get(), Attempt.objects.get()
    assert (session.state, journey.session_moves(session)) == ("failed", ["open", "processing", "failed"])
    assert journey.attempt_moves(attempt) == moves
    assert (attempt.response_code, attempt.proc_return_code, attempt.callback_answer) == (
        code, code, CallbackAnswer.APPROVED)
    # The bank: no hold, the balance as it was.
    assert Hold.objects.count() == 0
    if card is not None:
        assert journey.balance_of(card) == opening == card.balance
    assert LedgerEntry.objects.filter(kind="debit").count() == 0
    journey.assert_invariants()


def test_a_challenge_failed_three_times_authorizes_nothing(world, customer, person):
    """The challenge card with a wrong code three times: the bank's RReq says N, no authorization follows."""
    biller = world["biller"]
    card = sandbox.card_by_outcome("00", "challenge")
    opening = journey.balance_of(card)
    pay_page = journey.to_gateway(person, journey.consult(person, biller))
    before = journey.last_sms_pk()
    page = person.follow(journey.submit_card(person, pay_page, card))
    wrong = f"{(int(journey.sms_code(card.phone, after_pk=before)) + 1) % 1_000_000:06d}"
    for left in (2, 1):
        page = person.press(page, "Valider", code=wrong)
        assert f"Code incorrect. Il vous reste {left} essai{'s' if left > 1 else ''}." in page.visible_text
    done = person.press(page, "Valider", code=wrong)
    landing = person.follow(person.follow(done))

    assert (landing.url, landing.title) == (biller + "/paiement/echec", "Votre paiement n'a pas abouti")
    assert "Authentification 3-D Secure échouée" in landing.visible_text
    order = PaymentOrder.objects.get()
    assert (order.state, order.failure_code) == ("failed", "99")
    assert journey.unpaid_refs() == [journey.REF_MAY, journey.REF_JUNE]
    assert (Payment.objects.count(), Email.objects.count()) == (0, 0)
    attempt = Attempt.objects.get()
    assert journey.attempt_moves(attempt) == ["authenticating", "challenge", "failed"]
    assert (attempt.rreq_trans_status, attempt.md_status) == ("N", "0")
    assert (Authorization.objects.count(), Hold.objects.count()) == (0, 0)
    assert journey.balance_of(card) == opening
    journey.assert_invariants()
