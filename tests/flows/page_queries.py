"""The customer's journeys of tests/flows/journey.py, each step filed in a QueryLog (tests.support.query_counts), for
the query-count tests of every party (tests/*/test_query_counts.py): each party's test runs the journeys that reach
its pages and holds the ceilings of its own."""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

from tasdid.bank import sandbox
from tasdid.billing.gateway_status import REDELIVER, STATUS, order_status
from tasdid.billing.models import PaymentOrder
from tests import factories
from tests.support.query_counts import QueryLog

from . import journey
from .browser import Browser, Page

VISA = sandbox.card_by_outcome("00", "none")
CHALLENGE = sandbox.card_by_outcome("00", "challenge")
NO_FUNDS = sandbox.card_by_outcome("51")


SECOND = "87654321"  # a second internet line (second_customer), for a second payment
SECOND_REFS = ("0000222996052017", "0000222996062017")


def second_customer() -> journey.Customer:
    return journey.customer_with_two_invoices(identifier=SECOND, refs=SECOND_REFS, name="M. Karim Bennani")


def to_hosted_page(log: QueryLog, person: Browser, biller: str, *, identifier: str = journey.IDENTIFIER) -> Page:
    """The internet way in, the consult page, « Payer en ligne » and the gateway's page."""
    with log.step("identification, internet"):
        consult = journey.consult(person, biller, identifier=identifier)
    with log.step("order"):
        redirect = person.press(consult, "Payer en ligne")
    with log.step("merchant request"):
        pay_page = person.follow(redirect)
    assert pay_page.status == 200 and "/paiement/" in pay_page.url, pay_page.visible_text[:2000]
    return pay_page


def pay_frictionless(log: QueryLog, person: Browser, biller: str) -> Page:
    """The hosted page, June deferred then restored, a frictionless card, the return: the receipt."""
    pay_page = to_hosted_page(log, person, biller)
    with log.step("defer"):
        pay_page = journey.defer(person, pay_page, journey.REF_JUNE)
    assert "Total à payer 120.00 DH" in pay_page.visible_text
    restore = next(f for f in pay_page.forms if dict(f.fields).get("action") == "restore")
    with log.step("restore"):
        pay_page = person.submit(restore)
    assert "Total à payer 219.00 DH" in pay_page.visible_text
    with log.step("card, frictionless"):
        to_merchant = journey.submit_card(person, pay_page, VISA)
    with log.step("return, paid"):
        receipt = person.follow(to_merchant)
    assert receipt.title == "Reçu de paiement", receipt.visible_text[:2000]
    with log.step("payment page again"):
        again = person.get(pay_page.url)
    assert again.title == "Cette commande a déjà été traitée"
    return receipt


def pay_with_challenge(log: QueryLog, person: Browser, biller: str, *, identifier: str = SECOND) -> Page:
    """A card the bank challenges (second_customer's invoices by default): its page, the code from the card's phone,
    back through the gateway."""
    pay_page = to_hosted_page(log, person, biller, identifier=identifier)
    with log.step("card, challenged"):
        to_bank = journey.submit_card(person, pay_page, CHALLENGE)
    assert to_bank.autosubmit_form.action.endswith("/acs/challenge")
    before = journey.last_sms_pk()
    with log.step("challenge page"):
        challenge = person.follow(to_bank)
    assert challenge.title == "Authentification du paiement", challenge.visible_text[:2000]
    code = journey.sms_code(CHALLENGE.phone, after_pk=before)
    with log.step("challenge code"):
        done = person.press(challenge, "Valider", code=code)
    with log.step("3-D Secure return"):
        to_merchant = person.follow(done)
    with log.step("return, paid"):
        receipt = person.follow(to_merchant)
    assert receipt.title == "Reçu de paiement", receipt.visible_text[:2000]
    return receipt


def card_up_to_the_bank(log: QueryLog, person: Browser, biller: str) -> None:
    """Two cards as far as the bank and the 3-D Secure directory see them: one frictionless (not yet concluded),
    then another customer's challenged to the receipt."""
    pay_page = to_hosted_page(log, person, biller)
    with log.step("card, frictionless"):
        journey.submit_card(person, pay_page, VISA)
    second_customer()
    pay_with_challenge(log, person, biller)


def pay_refused(log: QueryLog, person: Browser, biller: str) -> Page:
    """A card without funds: the gateway's answer, the biller's failure page."""
    pay_page = to_hosted_page(log, person, biller)
    with log.step("card, refused"):
        to_merchant = journey.submit_card(person, pay_page, NO_FUNDS)
    with log.step("return, failed"):
        failed = person.follow(to_merchant)
    assert failed.title == "Votre paiement n'a pas abouti", failed.visible_text[:2000]
    return failed


def cancel(log: QueryLog, person: Browser, biller: str) -> Page:
    """« Annuler » on the gateway's page, back to the biller's failure page."""
    pay_page = to_hosted_page(log, person, biller)
    with log.step("cancel"):
        back = person.press(pay_page, "Annuler")
    with log.step("return, cancelled"):
        failed = person.follow(back)
    assert failed.title == "Votre paiement n'a pas abouti", failed.visible_text[:2000]
    return failed


def receipt_pages(log: QueryLog, person: Browser, receipt: Page) -> None:
    """The receipt's PDF, the check of its verification code by the form and by the link of its QR code."""
    with log.step("receipt PDF"):
        pdf = person.get(urljoin(receipt.url, receipt.link("Télécharger (PDF)")))
    assert (pdf.status, pdf.headers["content-type"]) == (200, "application/pdf")
    verify_link = re.search(r'href="([^"]*/verifier/[^"]+)"', receipt.text).group(1)
    number, code = verify_link.rstrip("/").split("/")[-2:]
    with log.step("verification form"):
        form_page = person.get(urljoin(receipt.url, "/verifier"))
    with log.step("verification"):
        answer = person.press(form_page, form_page.form(action="/verifier").buttons[-1][2], receipt_number=number,
                              code=code)
    assert answer.status == 200, answer.visible_text[:2000]
    with log.step("verification link"):
        linked = person.get(urljoin(receipt.url, verify_link))
    assert linked.status == 200, linked.visible_text[:2000]


def status_queries(log: QueryLog) -> None:
    """The biller asks the gateway for its paid order's status, then for its callback once more."""
    order = PaymentOrder.objects.filter(state="paid").earliest("pk")
    with log.step("order status"):
        journey.wait_for(lambda: order_status(oid=order.oid, order_amount=order.amount, action=STATUS).status
                         == "CAPTURED", "the capture at the gateway")
    with log.step("callback again"):
        order_status(oid=order.oid, order_amount=order.amount, action=REDELIVER)


def refund(log: QueryLog) -> None:
    """The biller refunds the paid order's May invoice through the gateway's XML API (a Credit, then the order's
    history to check it)."""
    from tasdid.billing import gateway_api

    order = PaymentOrder.objects.filter(state="paid").earliest("pk")
    with log.step("refund"):
        answer = gateway_api.credit(order_id=order.oid, amount=journey.AMOUNT_MAY, idempotency_key="refund-may-1")
    assert answer.approved, answer
    with log.step("order history"):
        history = gateway_api.read_answer(gateway_api._post(gateway_api.history_request(
            order_id=order.oid, **gateway_api._credentials())))
    assert history.approved, history


MOBILE, MOBILE_TYPED = "+212661000001", "0661000001"
FIXED, FIXED_TYPED, PAYMENT_CODE = "+212522000001", "0522000001", "4821"


def mobile_and_fixed_lines(customer: journey.Customer) -> None:
    """A mobile line and a fixed line of the customer, one unpaid invoice each."""
    owner = customer.may.line.customer
    mobile = factories.mobile_line(number=MOBILE, owner=owner)
    fixed = factories.fixed_line(number=FIXED, payment_code=PAYMENT_CODE, owner=owner)
    june = customer.june.bill
    factories.invoice(line=mobile, amount_ht="100.00", reference="0000333997062017", on_bill=june)
    factories.invoice(line=fixed, amount_ht="155.00", reference="0000333995062017", on_bill=june)


def _identify(log: QueryLog, person: Browser, biller: str, way: str, path: str, **values: str) -> Page:
    with log.step(f"identification form, {way}"):
        form_page = person.get(biller + path)
    form = next(f for f in form_page.forms if f.method == "post" and "email" in f.names)
    with log.step(f"identification, {way}"):
        consult = person.press(form_page, form.buttons[-1][2], email=journey.EMAIL, terms="on", **values)
    assert consult.url == biller + "/factures", consult.visible_text[:2000]
    return consult


def identify_every_way(log: QueryLog, person: Browser, biller: str) -> Page:
    """The three ways in (mobile with a code fidelio from the sandbox phone, fixed, internet), each to the consult
    page; the last, internet, is left open."""
    before = journey.last_sms_pk()
    with log.step("sandbox phone"):
        phone = person.get(biller + "/sandbox/phone?number=" + MOBILE_TYPED)
    with log.step("sandbox phone, code"):
        person.submit(next(f for f in phone.forms if f.method == "post" and "recipient" in f.names),
                      sender=MOBILE_TYPED, recipient="1111", text="code")
    code = journey.sms_code(MOBILE, after_pk=before)
    _identify(log, person, biller, "mobile", "/mobile", number=MOBILE_TYPED, fidelio_code=code,
              email_confirmation=journey.EMAIL)
    _identify(log, person, biller, "fixed", "/fixe", number=FIXED_TYPED, payment_code=PAYMENT_CODE)
    consult = _identify(log, person, biller, "internet", "/internet", payment_identifier=journey.IDENTIFIER)
    bill = re.search(r'href="(/factures/[^"]+/pdf[^"]*)"', consult.text).group(1)
    with log.step("bill PDF"):
        pdf = person.get(biller + html.unescape(bill))
    assert (pdf.status, pdf.headers["content-type"]) == (200, "application/pdf"), pdf.text[:2000]
    return consult
