"""The simulation's processes and wires: every HTTP call between the parties, the browser's requests and the card
rails run in this process, through here, where a seeded plan can refuse, lose, delay, duplicate or reorder them,
and a party can crash at a service boundary (``SimCrash``: what it had not committed is lost).

Nothing here sleeps or opens a socket: a party is its WSGI application called in process (httpx.WSGITransport), a
delayed message waits in ``in_flight`` until the scheduler delivers it, and time is time-machine's.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.urls import get_urlconf, set_urlconf
from django.utils import translation

PARTIES = ("biller", "gateway", "bank", "switch")  # web servers; the switch: its 3-D Secure directory
CALLBACK_RECORD = "gateway.services.attempt_record_callback"


class SimCrash(BaseException):
    """The process running this code dies here (a BaseException: no ``except Exception`` of the project's code
    catches it, as none would catch a kill -9). Transactions open at that moment roll back."""

    def __init__(self, process: str, where: str):
        super().__init__(f"{process} crashes {where}")
        self.process, self.where = process, where


@dataclass
class Faults:
    """How often each fault happens (probability per occasion)."""

    crash: float = 0.02  # at each service boundary crossed, before or after the call
    refuse: float = 0.05  # a party restarting refuses a connection (the message is not delivered)
    lose_request: float = 0.03  # sent, never arrives: the sender times out
    lose_answer: float = 0.04  # arrives and is handled, the answer is lost: the sender times out
    duplicate: float = 0.03  # arrives twice (the copy later, after other steps: reordered)
    delay: float = 0.03  # arrives later, after other steps; the sender times out meanwhile
    browser_lose_answer: float = 0.02  # the customer's page does not load although the party handled it
    # The ISO 8583 legs (gateway → switch → issuer host and back, tests/sim/rails.py), per message:
    iso_refuse: float = 0.03  # no connection to the switch: the request is not sent
    iso_lose_request: float = 0.03  # sent, never arrives: no answer in time
    iso_lose_answer: float = 0.03  # handled, the answer is lost
    iso_delay: float = 0.04  # the request, or its answer, arrives after the sender gave up
    iso_duplicate: float = 0.03  # arrives twice (the copy later)
    # The switch's last journal batch when it dies: written with this probability, else lost. The switch finds what
    # it forwarded (a reversal's original) in memory or in its journal: a forwarded 0100 whose batch is lost leaves
    # a hold that no reversal reaches (test_rails.py, the scripted "journal batch lost" case, marked xfail until
    # the switch records a forward before sending it). 1: the seeds play every other fault.
    journal_survives: float = 1.0
    # Targeted: the process sending the callback dies in the gap between the merchant's answer and its record
    # (the merchant recorded the payment, the gateway does not know it)…
    callback_gap: float = 0.2
    # … and then, with this probability, the biller goes down (connection refused) while the retries come.
    outage_after_gap: float = 0.75

    @classmethod
    def none(cls) -> Faults:
        return cls(crash=0, refuse=0, lose_request=0, lose_answer=0, duplicate=0, delay=0, browser_lose_answer=0,
                   callback_gap=0, outage_after_gap=0, iso_refuse=0, iso_lose_request=0, iso_lose_answer=0,
                   iso_delay=0, iso_duplicate=0)


@dataclass
class Delayed:
    """A message on its way: delivered by a later step of the scheduler (or at the end, before recovery)."""

    description: str
    deliver: Callable[[], Any]
    link: str | None = None  # an ISO 8583 connection, which keeps its messages in order (None: any order)


def party_urls() -> dict[str, str]:
    return {"biller": settings.BILLER_URL, "gateway": settings.GATEWAY_URL, "bank": settings.BANK_URL,
            "switch": settings.SWITCH_URL}


class Network:
    """The processes (biller, gateway and bank web servers, the task worker, the sweeps) and what links them."""

    def __init__(self, rng: random.Random, log: Callable[[str], None], faults: Faults):
        from django.core.handlers.wsgi import WSGIHandler

        from tasdid.wsgi import PartyApplication

        django_app = WSGIHandler()
        self.rng, self.log, self.faults = rng, log, faults
        self.enabled = True  # faults on; off during the final recovery
        self.down: dict[str, int] = {}  # process -> steps before it is restarted
        self.stack: list[str] = []  # processes running now, innermost last
        self.in_flight: list[Delayed] = []
        self.focus = 0  # steps left during which the scheduler favours the clock and the gateway's sweep
        hosts = {urlsplit(url).netloc: party for party, url in party_urls().items()}
        self._party_of_host = hosts
        self._transports = {party: httpx.WSGITransport(app=PartyApplication(django_app, party)) for party in PARTIES}
        from .rails import IsoRails

        self.rails = IsoRails(self)  # the card rails: the gateway's ISO 8583 client, the switch, the issuer host

    # --- processes ------------------------------------------------------------------------------------------

    @property
    def process(self) -> str:
        return self.stack[-1] if self.stack else "scheduler"

    def is_down(self, process: str) -> bool:
        return self.down.get(process, 0) > 0

    def take_down(self, process: str, *, steps: int, why: str) -> None:
        self.down[process] = max(self.down.get(process, 0), steps)
        self.log(f"  {process} is down for {steps} step(s) ({why})")
        self.rails.went_down(process)

    def tick(self) -> list[str]:
        """One scheduler step went by: the processes whose downtime ends now are restarted."""
        restarted = []
        self.focus = max(self.focus - 1, 0)
        for process, left in sorted(self.down.items()):
            if left > 0:
                self.down[process] = left - 1
                if left == 1:
                    restarted.append(process)
        return restarted

    def chance(self, p: float) -> bool:
        """A fault with probability ``p``; always drawn (the same draws whatever is enabled) when faults are on."""
        return self.enabled and p > 0 and self.rng.random() < p

    def maybe_crash(self, where: str) -> None:
        process = self.process
        if process == "scheduler" or not self.chance(self.faults.crash):
            return
        raise SimCrash(process, where)

    def crash_point(self, label: str, function: Callable) -> Callable:
        """``function`` with a possible crash of the running process just before and just after it."""

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if label == CALLBACK_RECORD:
                self.maybe_lose_callback_record(kwargs.get("answer"))
            self.maybe_crash(f"before {label}")
            result = function(*args, **kwargs)
            self.maybe_crash(f"after {label}")
            return result

        return wrapper

    def maybe_lose_callback_record(self, answer: str | None) -> None:
        """The conjunction of faults the callback must survive (issue 6, case 1), made frequent on purpose: the
        callback reached the merchant, which answered (it recorded the payment), and the process that sent it dies
        before recording the answer; the biller then refuses connections for a while, the clock and the gateway's
        sweep are favoured meanwhile, so that the next tries of the callback find it down. Always drawn in the
        same order when faults are on (the run stays a function of its seed)."""
        process = self.process
        if process == "scheduler" or answer in (None, "NOT_DELIVERED") or not self.chance(self.faults.callback_gap):
            return
        self.log(f"  {process} dies between the merchant's answer to the callback ({answer}) and its record")
        if self.chance(self.faults.outage_after_gap):
            self.take_down("biller", steps=self.rng.randint(4, 12), why="killed after answering the callback")
            self.focus = max(self.focus, self.down["biller"])
        raise SimCrash(process, f"before {CALLBACK_RECORD} (answer {answer} not recorded)")

    def run_as(self, process: str, work: Callable[[], Any]) -> Any:
        """Run ``work`` as ``process``; SimCrash of that process propagates to the caller (which decides what
        the death of that process means for it). The thread-local state of the Django request being served
        (URLconf, language) is the caller's again afterwards, as it would be in another process."""
        urlconf, language = get_urlconf(), translation.get_language()
        self.stack.append(process)
        try:
            return work()
        finally:
            self.stack.pop()
            set_urlconf(urlconf)
            translation.activate(language) if language else translation.deactivate()

    # --- HTTP between the parties -------------------------------------------------------------------------------

    def party_of(self, url: httpx.URL | str) -> str:
        host = httpx.URL(str(url)).netloc.decode("ascii")
        party = self._party_of_host.get(host)
        if party is None:
            raise httpx.ConnectError(f"no route to {host}")
        return party

    def serve(self, party: str, request: httpx.Request) -> httpx.Response:
        """``party``'s web server handles the request; if it crashes meanwhile, the connection drops and the party
        is down until restarted."""

        def handle() -> httpx.Response:
            response = self._transports[party].handle_request(request)
            response.read()
            return response

        try:
            return self.run_as(party, handle)
        except SimCrash as crash:
            if crash.process != party:
                raise
            self.log(f"  !! {crash}")
            self.take_down(party, steps=self.rng.randint(1, 6), why="crashed")
            raise httpx.RemoteProtocolError("server disconnected without sending a response") from None

    def describe(self, request: httpx.Request, party: str) -> str:
        return f"{self.process} → {party} {request.method} {request.url.path}"

    def send(self, request: httpx.Request) -> httpx.Response:
        """A server-to-server message (callback, AReq, RReq), with the seeded plan's faults."""
        party = self.party_of(request.url)
        what = self.describe(request, party)
        if self.is_down(party) or self.chance(self.faults.refuse):
            self.log(f"  {what}: connection refused")
            raise httpx.ConnectError("connection refused")
        if self.chance(self.faults.lose_request):
            self.log(f"  {what}: lost on the way (the sender times out)")
            raise httpx.ReadTimeout("timed out")
        if self.chance(self.faults.delay):
            self.log(f"  {what}: delayed (the sender times out; it arrives later)")
            self.in_flight.append(Delayed(what, functools.partial(self._late, party, request)))
            raise httpx.ReadTimeout("timed out")
        response = self.serve(party, request)
        if self.chance(self.faults.duplicate):
            self.log(f"  {what}: duplicated (a copy arrives later)")
            self.in_flight.append(Delayed(what + " (copy)", functools.partial(self._late, party, request)))
        if self.chance(self.faults.lose_answer):
            self.log(f"  {what}: answered HTTP {response.status_code}, the answer is lost (the sender times out)")
            raise httpx.ReadTimeout("timed out")
        return response

    def _late(self, party: str, request: httpx.Request) -> None:
        if self.is_down(party):
            self.log("  … refused: the party is down; the message is lost")
            return
        try:
            response = self.serve(party, request)
        except httpx.HTTPError:
            return
        self.log(f"  … answered HTTP {response.status_code} to nobody")

    def post(self, url: str, *, data: Any = None, content: Any = None, headers: Any = None, timeout: Any = None,
             **_kwargs) -> httpx.Response:
        """Stands in for ``httpx.post`` in the parties' code."""
        return self.send(httpx.Request("POST", url, data=data, content=content, headers=headers))

    def deliver_one_late(self) -> None:
        message = self.in_flight[self.rng.randrange(len(self.in_flight))]
        if message.link is not None:  # on a connection, the oldest message on its way arrives first
            message = next(m for m in self.in_flight if m.link == message.link)
        self.in_flight.remove(message)
        self.log(f"  late: {message.description}")
        self.run_as("network", message.deliver)


class BrowserTransport(httpx.BaseTransport):
    """A customer's browser: its requests reach the parties' web servers through the network (refused when the
    party is down; a page that does not load when the party crashes or, rarely, the answer is lost)."""

    def __init__(self, network: Network):
        self.network = network

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        net = self.network
        party = net.party_of(request.url)
        if net.is_down(party):
            net.log(f"  browser → {party} {request.method} {request.url.path}: connection refused")
            raise httpx.ConnectError("connection refused")
        response = net.serve(party, request)
        if net.chance(net.faults.browser_lose_answer):
            net.log(f"  browser → {party} {request.method} {request.url.path}: handled, the page never loads")
            raise httpx.ReadTimeout("timed out")
        return response


# The simulation being run (its fixture's teardown closes the rails' event loop).
CURRENT: Network | None = None
