"""One virtual customer's complete payment over HTTP, as a browser makes it: its own cookies (one jar for every
party, as a browser on 127.0.0.1 has), keep-alive, the forms read from each page and posted as they are (CSRF
token included), the auto-submitted forms followed as their script would.

Ways in: the mobile number and the code fidelio asked for by SMS ("code" to 1111 from the sandbox phone, read
from the sandbox SMS outbox), the fixed number and its payment code, the internet payment identifier. Then the
consult page, « Payer en ligne » (the order), the gateway's page, perhaps an invoice deferred (its trash icon),
the card, the bank's 3-D Secure challenge with the code read from the outbox for a challenge card, the return
and the receipt.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from tests.flows.browser import Browser, Page

SMS_WAIT_SECONDS = 60
_CODE = re.compile(r"\b(\d{6})\b")


@dataclass(frozen=True)
class Identity:
    way: str  # "mobile", "fixed" or "internet"
    typed: str  # the number or the payment identifier, as printed
    payment_code: str  # fixed lines only
    refs: tuple[str, ...]  # its unpaid invoices, oldest first


@dataclass(frozen=True)
class BenchCard:
    number: str
    expiry: str  # MM/YY
    cvv: str
    phone: str
    three_d_secure: str  # "challenge" or "frictionless"
    brand: str = "VISA"


@dataclass(frozen=True)
class Plan:
    identity: Identity
    card: BenchCard
    defer: bool
    email: str


@dataclass
class Outcome:
    steps: list[tuple[str, float]] = field(default_factory=list)  # (step, seconds) of the steps done
    requests: int = 0
    error: str = ""
    failed_step: str = ""


class JourneyError(Exception):
    pass


class CustomerBrowser(Browser):
    """tests.flows.browser's Browser, keeping no history and counting the HTTP requests it makes."""

    def __init__(self) -> None:
        # A browser's keep-alive, closed after 1 s idle by the client, before gunicorn closes it (after 2 s): a
        # customer waiting for an SMS would otherwise send on a connection the server is closing.
        self.client = httpx.Client(follow_redirects=True, timeout=60, limits=httpx.Limits(keepalive_expiry=1.0),
                                   event_hooks={"response": [self._loopback_is_secure, self._count]})
        self.requests = 0

    def _count(self, response: httpx.Response) -> None:
        self.requests += 1

    def _page(self, response: httpx.Response) -> Page:
        return Page(url=str(response.url), status=response.status_code, text=response.text,
                    headers=response.headers)


def sms_code(phone: str, *, after_pk: int) -> str:
    """The 6-digit code of the first SMS the phone receives after ``after_pk`` (the worker delivers it)."""
    from tasdid.messaging.models import HandsetMessage

    deadline = time.monotonic() + SMS_WAIT_SECONDS
    while time.monotonic() < deadline:
        message = HandsetMessage.objects.filter(number=phone, pk__gt=after_pk).order_by("pk").first()
        if message is not None:
            match = _CODE.search(message.text)
            if match:
                return match.group(1)
            after_pk = message.pk
            continue
        time.sleep(0.02)
    raise JourneyError(f"no SMS code on {phone} within {SMS_WAIT_SECONDS} s")


def last_sms_pk(phone: str) -> int:
    from tasdid.messaging.models import HandsetMessage

    return HandsetMessage.objects.filter(number=phone).order_by("-pk").values_list("pk", flat=True).first() or 0


def _expect(condition: bool, what: str, page: Page) -> None:
    if not condition:
        text = page.visible_text[:300]
        raise JourneyError(f"{what} (HTTP {page.status} at {page.url}: {text})")


WAY_PAGES = {"mobile": "/mobile", "fixed": "/fixe", "internet": "/internet"}
SERVER_STEPS = ("identify-form", "sms-request", "identify", "order", "hosted-page", "defer", "card",
                "challenge-page", "challenge-code", "challenge-return", "return")
WAIT_STEPS = ("sms-wait",)  # waiting for the worker to deliver an SMS: no request


def journey(plan: Plan, urls: dict[str, str], *, on_step: Callable[[str, float], None] | None = None) -> Outcome:
    """The customer's journey from the biller's home page to the receipt; an error ends it (recorded)."""
    outcome = Outcome()
    browser = CustomerBrowser()
    biller = urls["biller"]
    step_name = ""

    def step(name: str, call):
        nonlocal step_name
        step_name = name
        started = time.perf_counter()
        result = call()
        seconds = time.perf_counter() - started
        outcome.steps.append((name, seconds))
        if on_step:
            on_step(name, seconds)
        return result

    identity = plan.identity
    try:
        form_page = step("identify-form", lambda: browser.get(biller + WAY_PAGES[identity.way]))
        _expect(form_page.status == 200, "the identification form", form_page)
        values = {"email": plan.email, "terms": "on"}
        if identity.way == "mobile":
            phone = "+212" + identity.typed.replace(" ", "")[1:]
            before = last_sms_pk(phone)
            phone_page = step("sms-request", lambda: _send_sms(browser, biller, identity.typed))
            _expect(phone_page.status == 200, "the sandbox phone", phone_page)
            code = step("sms-wait", lambda: sms_code(phone, after_pk=before))
            values.update(number=identity.typed, fidelio_code=code, email_confirmation=plan.email)
        elif identity.way == "fixed":
            values.update(number=identity.typed, payment_code=identity.payment_code)
        else:
            values.update(payment_identifier=identity.typed)
        consult = step("identify", lambda: browser.press(form_page, _identify_button(form_page), **values))
        _expect(consult.url == biller + "/factures", "the consult page", consult)
        redirect = step("order", lambda: browser.press(consult, "Payer en ligne"))
        _expect(redirect.autosubmit_form.action.endswith("/fim/est3Dgate"), "the merchant request", redirect)
        pay_page = step("hosted-page", lambda: browser.follow(redirect))
        _expect(pay_page.status == 200 and "/paiement/" in pay_page.url, "the hosted page", pay_page)
        if plan.defer and len(identity.refs) > 1:
            newest = identity.refs[-1]
            form = next((f for f in pay_page.forms if dict(f.fields).get("action") == "defer"
                         and dict(f.fields).get("ref") == newest), None)
            _expect(form is not None, f"the trash icon of {newest}", pay_page)
            pay_page = step("defer", lambda: browser.submit(form))
            _expect(pay_page.status == 200 and newest in pay_page.text, "the page after deferring", pay_page)
        card_form = pay_page.form(button="Valider pour payer")
        month, year = plan.card.expiry.split("/")
        data = card_form.data(card_type=plan.card.brand, card_number=plan.card.number, expiry_month=str(int(month)),
                              expiry_year=f"20{year}", cvv=plan.card.cvv, terms="on")
        before = last_sms_pk(plan.card.phone) if plan.card.three_d_secure == "challenge" else 0
        onward = step("card", lambda: browser.post(card_form.action, data))
        if onward.autosubmit_form.action.endswith("/acs/challenge"):
            challenge = step("challenge-page", lambda: browser.follow(onward))
            _expect(challenge.title == "Authentification du paiement", "the bank's challenge", challenge)
            code = step("sms-wait", lambda: sms_code(plan.card.phone, after_pk=before))
            done = step("challenge-code", lambda: browser.press(challenge, "Valider", code=code))
            onward = step("challenge-return", lambda: browser.follow(done))
        else:
            _expect(plan.card.three_d_secure != "challenge", "a challenge for a challenge card", onward)
        receipt = step("return", lambda: browser.follow(onward))
        _expect(receipt.title == "Reçu de paiement", "the receipt", receipt)
    except Exception as exc:  # any failure is the journey's error, reported with its step
        outcome.error = f"{type(exc).__name__}: {exc}"[:500]
        outcome.failed_step = step_name
    finally:
        outcome.requests = browser.requests
        browser.close()
    return outcome


def _identify_button(page: Page) -> str:
    form = next(f for f in page.forms if f.method == "post" and any(n in f.names for n in ("email",)))
    return form.buttons[-1][2]


def _send_sms(browser: CustomerBrowser, biller: str, typed: str) -> Page:
    """The sandbox phone: « code » to 1111 from the line's number."""
    phone = browser.get(biller + "/sandbox/phone?number=" + typed.replace(" ", ""))
    form = next(f for f in phone.forms if f.method == "post" and "recipient" in f.names)
    return browser.submit(form, sender=typed, recipient="1111", text="code")
