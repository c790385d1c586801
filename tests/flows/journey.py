"""The customer's journey across the real parties, step by step over HTTP, and what each party holds after it.

The biller's data comes from tests.factories; the gateway knows the biller as a merchant (gateway.demo) and the
sandbox bank holds its test cards (bank.demo), as in the demo.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from decimal import Decimal

from tasdid.bank import sandbox
from tasdid.bank.models import Account, Authorization, Card, Hold, HoldEvent, LedgerEntry
from tasdid.billing.models import Invoice, Payment, PaymentOrder, PaymentOrderEvent, ReceiptSequence
from tasdid.core.cards import fingerprint
from tasdid.gateway.models import Attempt, AttemptState, Event, PaymentSession
from tasdid.messaging.models import Email, HandsetMessage, MailboxMessage
from tests import factories
from tests.support.sms import code_in

from .browser import Browser, Page

IDENTIFIER = "12345678"
EMAIL = "client@example.ma"
REF_MAY, REF_JUNE = "0000111996052017", "0000111996062017"
AMOUNT_MAY, AMOUNT_JUNE = Decimal("120.00"), Decimal("99.00")
TOTAL = AMOUNT_MAY + AMOUNT_JUNE
WAIT_SECONDS = 60  # the task worker on a loaded machine: a bound, never a timing assertion


@dataclass(frozen=True)
class Customer:
    """An internet line with two unpaid invoices: May 2017 (120.00 DH TTC) and June 2017 (99.00 DH TTC)."""

    identifier: str
    may: Invoice
    june: Invoice


def customer_with_two_invoices(*, identifier: str = IDENTIFIER, refs: tuple[str, str] = (REF_MAY, REF_JUNE),
                               name: str = "Mme Samira Alaoui") -> Customer:
    owner = factories.customer(name=name)
    line = factories.internet_line(identifier=identifier, owner=owner)
    may = factories.invoice(line=line, amount_ht="100.00", reference=refs[0], month=dt.date(2017, 5, 1))
    june = factories.invoice(line=line, amount_ht="82.50", reference=refs[1], month=dt.date(2017, 6, 1))
    assert (may.amount_ttc, june.amount_ttc) == (AMOUNT_MAY, AMOUNT_JUNE)
    return Customer(identifier=identifier, may=may, june=june)


# --- the biller's pages ------------------------------------------------------------------------------------


def consult(browser: Browser, biller: str, *, identifier: str = IDENTIFIER, email: str = EMAIL) -> Page:
    """Internet: the payment identifier, the email and the terms, « Consultez et payer en ligne »."""
    form_page = browser.get(biller + "/internet")
    page = browser.press(form_page, "Consultez et payer en ligne", payment_identifier=identifier, email=email,
                         terms="on")
    assert page.url == biller + "/factures", page.visible_text[:2000]
    return page


def to_gateway(browser: Browser, consult_page: Page) -> Page:
    """« Payer en ligne »: the biller creates the order and the browser carries its request to the gateway."""
    redirect = browser.press(consult_page, "Payer en ligne")
    assert redirect.autosubmit_form.action.endswith("/fim/est3Dgate")
    page = browser.follow(redirect)
    assert page.status == 200 and "/paiement/" in page.url, (page.status, page.visible_text[:2000])
    return page


def merchant_request(browser: Browser, consult_page: Page) -> tuple[str, dict[str, str]]:
    """« Payer en ligne » without following: the gateway's address and the biller's signed request."""
    redirect = browser.press(consult_page, "Payer en ligne")
    form = redirect.autosubmit_form
    return form.action, form.as_dict()


def defer(browser: Browser, pay_page: Page, ref: str) -> Page:
    form = next(f for f in pay_page.forms if dict(f.fields).get("action") == "defer"
                and dict(f.fields).get("ref") == ref)
    return browser.submit(form)


def card_values(card: sandbox.SandboxCard, *, number: str | None = None, cvv: str | None = None) -> dict[str, str]:
    month, year = card.expiry.split("/")
    return {"card_type": card.brand, "card_number": number or card.number, "expiry_month": str(int(month)),
            "expiry_year": f"20{year}", "cvv": cvv or card.cvv, "terms": "on"}


def card_form_data(pay_page: Page, card: sandbox.SandboxCard, **kwargs) -> tuple[str, dict[str, str]]:
    form = pay_page.form(button="Valider pour payer")
    return form.action, form.data(**card_values(card, **kwargs))


def submit_card(browser: Browser, pay_page: Page, card: sandbox.SandboxCard, **kwargs) -> Page:
    """« Valider pour payer »: what comes back is an auto-submitted form (the bank's page or the merchant)."""
    action, data = card_form_data(pay_page, card, **kwargs)
    return browser.post(action, data)


def sms_code(phone: str, *, after_pk: int = 0) -> str:
    """The newest 6-digit code the phone received (the task worker delivers it in the background)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        message = (HandsetMessage.objects.filter(number=phone, pk__gt=after_pk)
                   .order_by("-received_at", "-pk").first())
        if message is not None:
            return code_in(message.text)
        time.sleep(0.05)
    raise AssertionError(f"no SMS on {phone} within {WAIT_SECONDS} s")


def last_sms_pk() -> int:
    return HandsetMessage.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def pass_challenge(browser: Browser, to_bank: Page, card: sandbox.SandboxCard) -> Page:
    """At the bank: read the code on the card's phone, type it, « Valider »; back through the gateway."""
    before = last_sms_pk()
    challenge = browser.follow(to_bank)
    assert challenge.title == "Authentification du paiement", challenge.visible_text[:2000]
    done = browser.press(challenge, "Valider", code=sms_code(card.phone, after_pk=before))
    back_at_gateway = browser.follow(done)
    return back_at_gateway


def pay(browser: Browser, pay_page: Page, card: sandbox.SandboxCard, **kwargs) -> Page:
    """The card through to the biller's page the browser lands on (receipt, failure page…)."""
    step = submit_card(browser, pay_page, card, **kwargs)
    if step.autosubmit_form.action.endswith("/acs/challenge"):
        step = pass_challenge(browser, step, card)
    return browser.follow(step)


# --- what each party holds ---------------------------------------------------------------------------------


def wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {WAIT_SECONDS} s")


def delivered_email(to: str = EMAIL) -> MailboxMessage:
    """The email as the SMTP sink received it (the task worker sends it once the settlement commits), and its
    outbox row marked sent: the sink has it a moment before the worker records that the SMTP server took it."""
    message = wait_for(lambda: MailboxMessage.objects.filter(rcpt_to__icontains=to).first(), f"an email to {to}")
    wait_for(lambda: not Email.objects.filter(to__iexact=to, status=Email.Status.SENDING).exists(),
             f"the email to {to} marked sent")
    return message


def attempt_moves(attempt: Attempt) -> list[str]:
    """The attempt's states, in order (messages recorded without a move left out)."""
    return [e.to_state for e in Event.objects.filter(attempt=attempt, subject="attempt").order_by("pk")
            if e.from_state != e.to_state]


def session_moves(session: PaymentSession) -> list[str]:
    return [e.to_state for e in Event.objects.filter(session=session, subject="session").order_by("pk")
            if e.from_state != e.to_state]


def order_moves(order: PaymentOrder) -> list[str]:
    return list(order.events.order_by("pk").values_list("to_state", flat=True))


def card_row(card: sandbox.SandboxCard) -> Card | None:
    return Card.objects.filter(fingerprint=fingerprint(card.number)).first()


def balance_of(card: sandbox.SandboxCard) -> Decimal:
    row = card_row(card)
    return Account.objects.get(pk=row.account_id).balance


def holds_of(card: sandbox.SandboxCard) -> list[tuple[str, Decimal]]:
    row = card_row(card)
    if row is None:
        return []
    return [(h.state, h.amount) for h in Hold.objects.filter(card=row).order_by("pk")]


def unpaid_refs() -> list[str]:
    return sorted(Invoice.objects.filter(status=Invoice.Status.UNPAID).values_list("reference", flat=True))


def snapshot() -> dict[str, list]:
    """Everything the journey could have changed, in every party."""
    rows = lambda model, *fields: list(model.objects.order_by("pk").values_list(*fields))  # noqa: E731
    return {
        "invoices": rows(Invoice, "reference", "status", "payment_id", "paid_at"),
        "orders": rows(PaymentOrder, "oid", "state", "failure_code", "updated_at"),
        "order events": rows(PaymentOrderEvent, "pk"),
        "payments": rows(Payment, "receipt_number", "amount", "trans_id"),
        "receipt numbers": rows(ReceiptSequence, "year", "last_number"),
        "emails": rows(Email, "pk", "status"),
        "mailbox": rows(MailboxMessage, "pk"),
        "sessions": rows(PaymentSession, "state", "updated_at"),
        "attempts": rows(Attempt, "state", "callback_answer", "updated_at"),
        "gateway events": rows(Event, "pk"),
        "authorizations": rows(Authorization, "pk"),
        "holds": rows(Hold, "state", "amount"),
        "hold events": rows(HoldEvent, "pk"),
        "ledger": rows(LedgerEntry, "pk"),
        "balances": rows(Account, "balance"),
    }


def _spaced(number: str) -> str:
    return " ".join(number[i:i + 4] for i in range(0, len(number), 4))


# Literal card numbers to look for at rest, as typed and as printed ("4000 1100 0000 0017"). The CVVs, three
# digits, would match any amount or digest: the scan finds them by their name instead (tests.support.pci).
SECRETS = tuple(s for n in (*(c.number for c in sandbox.CARDS), sandbox.UNKNOWN_NUMBER) for s in (n, _spaced(n)))


def receipt_link(message: MailboxMessage) -> str:
    """The receipt's link in the email's text."""
    from tasdid.messaging.selectors import mailbox_parts

    match = re.search(r"https?://\S+/recu/\S+", mailbox_parts(message)["text"])
    assert match, mailbox_parts(message)["text"]
    return match.group(0)


def assert_invariants() -> None:
    """DESIGN.md §7 across the parties: an invoice is paid once and only with a captured authorization (1);
    every approved authorization ends captured or reversed (2); one amount everywhere (3)."""
    for attempt in Attempt.objects.filter(response_code="00"):
        assert attempt.state in (AttemptState.CAPTURED, AttemptState.VOIDED), (attempt.trans_id, attempt.state)
    for hold in Hold.objects.all():
        assert hold.state in (Hold.State.CAPTURED, Hold.State.RELEASED), (hold.rrn, hold.state)
    captured = {h.rrn: h for h in Hold.objects.filter(state=Hold.State.CAPTURED)}
    assert len(captured) == Payment.objects.count()
    for payment in Payment.objects.select_related("order"):
        attempt = Attempt.objects.get(trans_id=payment.trans_id)
        hold = captured[attempt.rrn]
        paid = list(Invoice.objects.filter(payment=payment))
        kept = sum((i.amount for i in payment.order.items.filter(invoice__in=paid)), Decimal("0.00"))
        assert attempt.state == AttemptState.CAPTURED
        assert payment.amount == kept == attempt.amount == hold.amount, (payment.amount, kept, attempt.amount,
                                                                          hold.amount)
        assert sorted(i.reference for i in paid) == sorted(attempt.paid_refs)
        assert (payment.auth_code, payment.host_ref) == (hold.auth_code, hold.rrn)
    assert not Invoice.objects.filter(status=Invoice.Status.PAID, payment__isnull=True).exists()
