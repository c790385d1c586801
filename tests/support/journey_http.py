"""A customer paying a bill over plain HTTP, as a browser does it: the biller's Internet form, « Payer en ligne »,
the auto-submitted request to the gateway's hosted page, the card form, the auto-submitted way back (through the
bank's 3-D Secure pages when they ask nothing of the customer) and the page the browser lands on.

No Django and no database here: the driver talks to the parties' web servers only, so it drives processes
started elsewhere (bench/kill_campaign.py) as well as the test suite's live servers. Every step's failure (a
refused connection, an HTTP 500, a page without the expected form) ends the journey with what was seen, never
with an exception: under faults a journey that could not finish is an outcome, not an error of the driver.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from tests.flows.browser import Browser, Page


@dataclass(frozen=True)
class Card:
    brand: str
    number: str
    expiry: str  # MM/YY
    cvv: str
    approved: bool

    def form_values(self) -> dict[str, str]:
        month, year = self.expiry.split("/")
        return {"card_type": self.brand, "card_number": self.number, "expiry_month": str(int(month)),
                "expiry_year": f"20{year}", "cvv": self.cvv, "terms": "on"}


# The sandbox bank's cards that ask nothing of the customer (no code by SMS): README's table of test cards.
APPROVED_CARDS = (
    Card("VISA", "4000110000000017", "09/29", "417", True),  # no 3-D Secure
    Card("CMI", "6061010000000036", "06/30", "336", True),  # no 3-D Secure
    Card("VISA", "4000110000000041", "03/30", "441", True),  # frictionless 3-D Secure
)
DECLINED_CARDS = (
    Card("MASTERCARD", "5220110000000075", "07/29", "775", False),  # 05 do not honour
    Card("VISA", "4000110000000082", "08/29", "882", False),  # 41 lost card
)


@dataclass
class Journey:
    """What one customer did and saw. ``outcome``: ``paid`` (the receipt), ``refused`` (the biller's failure
    page), ``nothing to pay`` (the invoices were already paid or in payment), or ``broken`` (a step failed:
    ``error`` says which and why)."""

    identifier: str
    email: str
    card: Card
    outcome: str = ""
    oid: str = ""
    landing_url: str = ""
    error: str = ""
    steps: list[str] = field(default_factory=list)
    started: float = 0.0
    seconds: float = 0.0


class StepFailed(Exception):
    pass


def _expect(page: Page, ok: bool, what: str) -> Page:
    if not ok:
        raise StepFailed(f"{what}: HTTP {page.status} at {page.url}: {page.visible_text[:300]}")
    return page


def _autosubmit(page: Page, what: str):
    forms = [f for f in page.forms if f.autosubmit]
    _expect(page, len(forms) == 1, f"{what} (no auto-submitted form)")
    return forms[0]


def pay_bill(biller_url: str, identifier: str, email: str, card: Card, *, timeout: float = 30.0) -> Journey:
    """One customer pays every unpaid invoice of an internet line with ``card``; returns what happened."""
    journey = Journey(identifier=identifier, email=email, card=card, started=time.time())
    browser = Browser()
    browser.client.timeout = httpx.Timeout(timeout)
    clock = time.monotonic()
    try:
        _walk(browser, biller_url, journey)
    except StepFailed as failure:
        journey.outcome, journey.error = "broken", str(failure)
    except httpx.HTTPError as failure:
        journey.outcome, journey.error = "broken", f"{type(failure).__name__}: {failure}"
    finally:
        browser.close()
        journey.seconds = time.monotonic() - clock
    return journey


def _walk(browser: Browser, biller: str, journey: Journey) -> None:
    journey.steps.append("internet form")
    form_page = browser.get(biller + "/internet")
    _expect(form_page, form_page.status == 200, "the biller's Internet form")
    journey.steps.append("consult")
    consult = browser.press(form_page, "Consultez et payer en ligne", payment_identifier=journey.identifier,
                            email=journey.email, terms="on")
    _expect(consult, consult.status == 200 and consult.url == biller + "/factures", "the invoices")
    if not any(text == "Payer en ligne" for f in consult.forms for _n, _v, text in f.buttons):
        journey.outcome = "nothing to pay"
        return
    journey.steps.append("payer en ligne")
    redirect = browser.press(consult, "Payer en ligne")
    if redirect.url.startswith(biller) and not any(f.autosubmit for f in redirect.forms):
        # The biller refused to open a second order for invoices already paid or in payment.
        journey.outcome, journey.landing_url = "nothing to pay", redirect.url
        return
    request = _autosubmit(redirect, "the request to the gateway")
    journey.oid = dict(request.fields).get("oid", "")
    journey.steps.append("hosted page")
    pay_page = browser.submit(request)
    _expect(pay_page, pay_page.status == 200 and "/paiement/" in pay_page.url, "the hosted payment page")
    journey.steps.append("card")
    card_forms = [f for f in pay_page.forms if any(text == "Valider pour payer" for _n, _v, text in f.buttons)]
    _expect(pay_page, len(card_forms) == 1, "the card form")
    step = browser.post(card_forms[0].action, card_forms[0].data(**journey.card.form_values()))
    # Auto-submitted forms until the browser lands on a page that has none: the bank's frictionless 3-D Secure
    # answer, the gateway's way back, the biller's return URL.
    for hop in range(6):
        forms = [f for f in step.forms if f.autosubmit]
        if not forms:
            break
        _expect(step, not forms[0].action.endswith("/acs/challenge"), "a 3-D Secure challenge (not expected)")
        journey.steps.append(f"auto-submit {hop + 1}")
        step = browser.submit(forms[0])
    journey.landing_url = step.url
    if step.status == 200 and step.url.startswith(biller + "/recu/") and step.title == "Reçu de paiement":
        journey.outcome = "paid"
    elif step.status == 200 and step.url.startswith(biller):
        journey.outcome = "refused"
    else:
        raise StepFailed(f"the landing page: HTTP {step.status} at {step.url}: {step.visible_text[:300]}")
