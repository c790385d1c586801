"""Customers paying their bills in the simulation: each journey is a generator that makes one request of the
customer's browser per step (the scheduler interleaves the journeys with the worker, the sweeps and the faults).

A customer behaves as people do: picks a card (approved, declined, 3-D Secure with a code or frictionless),
sometimes defers an invoice, cancels, types a wrong code, presses back and posts a page again, retries a page that
did not load, or gives up. The journey asserts nothing: the invariants do (tests.sim.invariants).
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from tasdid.bank import sandbox
from tasdid.messaging.models import HandsetMessage
from tests import factories
from tests.flows.browser import Browser, Page
from tests.flows.journey import card_values
from tests.support.sms import code_in

from .network import BrowserTransport, Network

# The cards customers use, with how often: approved without 3-D Secure, with a code, frictionless, declined.
CARDS = (
    (sandbox.card_by_outcome("00", "none"), 30),
    (sandbox.card_by_outcome("00", "challenge"), 30),
    (sandbox.card_by_outcome("00", "frictionless"), 15),
    (sandbox.CARDS[2], 8),  # CMI, approved
    (sandbox.card_by_outcome("51"), 3),
    (sandbox.card_by_outcome("05"), 2),
    (sandbox.card_by_outcome("54"), 2),
    (sandbox.card_by_outcome("N7"), 2),
)  # mostly approvals: the faults that matter most hit an authorization and its callback


def _path(url: str) -> str:
    """The page's path without its random token, so that a replay prints the same line."""
    return re.sub(r"/[\w-]{20,}", "/…", urlsplit(url).path)


class GiveUp(Exception):
    """The customer closes the tab."""


@dataclass
class Customer:
    identifier: str
    refs: list[str]
    email: str


def new_customer(rng: random.Random, number: int) -> Customer:
    """An internet line with one to three unpaid invoices of varied amounts."""
    identifier = f"{rng.randrange(10**7, 10**8)}"
    owner = factories.customer(name=f"Client simulé {number}")
    line = factories.internet_line(identifier=identifier, owner=owner)
    refs = []
    for month in range(1, rng.randint(1, 3) + 1):
        amount_ht = f"{rng.randint(2000, 30000) / 100:.2f}"
        ref = f"{number:04d}{identifier}{month:04d}"
        factories.invoice(line=line, amount_ht=amount_ht, reference=ref, month=dt.date(2017, month, 1))
        refs.append(ref)
    return Customer(identifier=identifier, refs=refs, email=f"client{number}@example.ma")


@dataclass
class Journey:
    number: int
    customer: Customer
    network: Network
    rng: random.Random
    log: Callable[..., None]
    outcome: str = "not started"
    finished: bool = False
    history: list[Page] = field(default_factory=list)

    def __post_init__(self):
        self.browser = Browser.__new__(Browser)  # not its own client: no TLS set-up for a browser in process
        self.browser.history = []
        self.browser.client = httpx.Client(transport=BrowserTransport(self.network), follow_redirects=True,
                                           event_hooks={"response": [self.browser._loopback_is_secure]})
        self.steps = self._run()

    @property
    def name(self) -> str:
        return f"customer {self.number}"

    def step(self) -> bool:
        """Make the next request; False once the journey is over."""
        try:
            description = next(self.steps)
        except StopIteration:
            self.finished = True
            return False
        self.log(f"{self.name}: {description}", heading=True)
        return True

    def close(self) -> None:
        self.browser.client.close()

    # --- one request, retried as a person would ---------------------------------------------------------------

    def _request(self, what: str, send: Callable[[], Page]) -> Iterator[str]:
        for _try in range(3):
            try:
                page = send()
            except httpx.HTTPError as exc:
                yield f"{what}: the page does not load ({type(exc).__name__})"
                if self.rng.random() < 0.05:
                    raise GiveUp(what) from None
                continue
            yield f"{what} → HTTP {page.status} {page.title or _path(page.url)}"
            return page
        raise GiveUp(what)

    def _follow(self, what: str, page: Page) -> Iterator[str]:
        forms = [f for f in page.forms if f.autosubmit]
        if len(forms) != 1:
            raise GiveUp(f"{what}: no way on from {_path(page.url)} (HTTP {page.status})")
        form = forms[0]
        return (yield from self._request(what, lambda: self.browser.submit(form)))

    # --- the journey ------------------------------------------------------------------------------------------

    def _run(self) -> Iterator[str]:
        """Pay; a customer whose payment did not go through tries once more (a new order), or gives up."""
        try:
            for _round in range(2):
                try:
                    yield from self._pay()
                except GiveUp as exc:
                    self.outcome = f"gave up ({exc})"
                    yield f"gives up: {exc}"
                if self.outcome == "Reçu de paiement" or self.rng.random() < 0.3:
                    return
                yield "tries again"
        finally:
            self.finished = True
            self.close()

    def _pay(self) -> Iterator[str]:
        biller, b = settings.BILLER_URL, self.browser
        form_page = yield from self._request("opens the Internet form", lambda: b.get(biller + "/internet"))
        consult = yield from self._request("« Consultez et payer en ligne »", lambda: b.press(
            form_page, "Consultez et payer en ligne", payment_identifier=self.customer.identifier,
            email=self.customer.email, terms="on"))
        if not consult.url.endswith("/factures"):
            raise GiveUp(f"no invoices page ({_path(consult.url)})")
        if not any(text == "Payer en ligne" for f in consult.forms for _n, _v, text in f.buttons):
            # Paid meanwhile (an earlier round whose way back broke, another order, the reconciliation).
            raise GiveUp("nothing left to pay")
        to_gateway = yield from self._request("« Payer en ligne »", lambda: b.press(consult, "Payer en ligne"))
        pay_page = yield from self._follow("carried to the payment page", to_gateway)
        if "/paiement/" not in pay_page.url or pay_page.status != 200:
            raise GiveUp("no payment page")
        # The invoices the page offers to defer (an earlier round may have paid some of the customer's).
        deferrable = {dict(f.fields).get("ref"): f for f in pay_page.forms if dict(f.fields).get("action") == "defer"}
        if len(self.customer.refs) > 1 and self.rng.random() < 0.2 and deferrable:
            ref = self.rng.choice(sorted(deferrable))
            deferred = yield from self._request(f"defers invoice {ref}", lambda: b.submit(deferrable[ref]))
            if deferred.status == 200 and "/paiement/" in deferred.url:
                pay_page = deferred
        if self.rng.random() < 0.03:
            cancelled = yield from self._request("« Annuler »", lambda: b.press(pay_page, "Annuler"))
            yield from self._back_to_biller("back to the biller", cancelled)
            return
        card = self.rng.choices([c for c, _w in CARDS], weights=[w for _c, w in CARDS])[0]
        values = card_values(card)
        form = pay_page.form(button="Valider pour payer")
        step = yield from self._request(f"« Valider pour payer » with {card.brand} …{card.number[-4:]} "
                                        f"({card.three_d_secure}, expects {card.response_code})",
                                        lambda: b.post(form.action, form.data(**values)))
        if self.rng.random() < 0.08:  # the back button: the card form posted again
            yield from self._request("posts the card form again (back button)",
                                     lambda: b.post(form.action, form.data(**values)))
        forms = [f for f in step.forms if f.autosubmit]
        if forms and forms[0].action.endswith("/acs/challenge"):
            step = yield from self._challenge(step, card)
        yield from self._back_to_biller("back to the biller", step)

    def _challenge(self, to_bank: Page, card: sandbox.SandboxCard) -> Iterator[str]:
        before = HandsetMessage.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        challenge = yield from self._follow("at the bank's challenge page", to_bank)
        if challenge.title != "Authentification du paiement":
            return challenge
        code = ""
        for _wait in range(12):
            message = (HandsetMessage.objects.filter(number=card.phone, pk__gt=before)
                       .order_by("-received_at", "-pk").first())
            if message is not None:
                code = code_in(message.text)
                break
            yield "waits for the SMS code"
        roll = self.rng.random()
        if not code or roll < 0.05:
            done = yield from self._request("« Annuler » at the bank", lambda: self.browser.press(challenge, "Annuler"))
        else:
            if roll < 0.15:
                wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
                challenge = yield from self._request("types a wrong code", lambda: self.browser.press(
                    challenge, "Valider", code=wrong))
                if challenge.title != "Authentification du paiement":
                    return challenge
            done = yield from self._request("types the code, « Valider »",
                                            lambda: self.browser.press(challenge, "Valider", code=code))
        back = yield from self._follow("back at the gateway", done)
        if self.rng.random() < 0.08:  # the back button: the bank's answer posted again
            yield from self._follow("posts the bank's answer again (back button)", done)
        return back

    def _back_to_biller(self, what: str, page: Page) -> Iterator[str]:
        landing = yield from self._follow(what, page)
        self.outcome = landing.title or f"HTTP {landing.status}"
        if self.rng.random() < 0.1:  # the back button: the return posted to the biller again
            yield from self._follow("posts the return to the biller again (back button)", page)
        return landing
