"""A customer on the biller's portal, over real HTTP, again and again: the internet form (GET), the
identification (POST: an identification attempt and a session written), the consult page (GET). Every request
is timed, so that the import benchmark and the import-while-paying test can say how long the portal made
anyone wait while an import ran.

    probe = PortalProbe("http://127.0.0.1:8000")  # after importing write_seed(path)
    probe.start(); ...; probe.stop()
    probe.samples  # (started at, seconds, request, HTTP status or the error, what was wrong or "")
"""

import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

# The probing customer's internet line and invoice, imported before the import under test. Its keys are outside
# the ranges bench/generate_bills.py uses (client numbers 3…, identifiers and references from its counter).
PROBE_LINE, PROBE_INVOICE = "12 345 678", "0000111996072017"
SEED = {"format": "tasdid-bills", "version": 1, "customers": [{
    "client_number": "200000001", "name": "Mme Khadija Alaoui",
    "lines": [{"kind": "internet", "payment_identifier": PROBE_LINE, "label": "Menara ADSL illimité 4 Mb/s"}],
    "bills": [{"month": "2017-06", "due_date": "2017-07-19", "total_ht": "82.50", "total_vat": "16.50",
               "total_ttc": "99.00", "loyalty_points": 150, "loyalty_balance": 196, "invoices": [{
                   "reference": PROBE_INVOICE, "line": PROBE_LINE, "amount_ht": "82.50", "amount_vat": "16.50",
                   "amount_ttc": "99.00", "lines": [{
                       "section": "Abonnement", "label": "Menara ADSL illimité 4 Mb/s", "period_start": "2017-07-01",
                       "period_end": "2017-07-31", "amount_ht": "82.50"}]}]}]}]}


def write_seed(path: Path) -> Path:
    path.write_text(json.dumps(SEED, ensure_ascii=False), encoding="utf-8")
    return path


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic() when the request was sent
    seconds: float
    request: str  # "GET /internet", "POST /internet", "GET /factures"
    status: int | str  # the HTTP status, or the exception's name
    wrong: str  # what was not as expected, "" when all was


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


class PortalProbe:
    """Runs journeys in a thread until stopped; ``pause`` seconds between journeys (keep the load modest)."""

    def __init__(self, base_url: str, *, payment_identifier: str = PROBE_LINE, reference: str = PROBE_INVOICE,
                 pause: float = 0.02,
                 timeout: float = 60.0):
        self.base_url = base_url
        self.payment_identifier = payment_identifier
        self.reference = reference
        self.pause = pause
        self.timeout = timeout
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="portal-probe")

    def start(self) -> "PortalProbe":
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 5)
        return self.samples

    def journeys(self) -> int:
        return sum(1 for s in self.samples if s.request == "GET /factures")

    def _run(self) -> None:
        while not self._stop.is_set():
            # A new client per journey: a new customer, a new session, a new CSRF cookie.
            with httpx.Client(base_url=self.base_url, timeout=self.timeout, follow_redirects=False) as client:
                self.journey(client)
            self._stop.wait(self.pause)

    def _timed(self, client: httpx.Client, method: str, path: str, **kwargs) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.samples.append(Sample(started, time.monotonic() - started, f"{method} {path}", type(exc).__name__,
                                       str(exc) or type(exc).__name__))
            return None
        self._last = Sample(started, time.monotonic() - started, f"{method} {path}", response.status_code, "")
        return response

    def _record(self, wrong: str = "") -> None:
        last = self._last
        self.samples.append(Sample(last.at, last.seconds, last.request, last.status, wrong))

    def journey(self, client: httpx.Client) -> None:
        page = self._timed(client, "GET", "/internet")
        if page is None:
            return
        token = CSRF.search(page.text)
        self._record("" if page.status_code == 200 and token else "no form")
        if page.status_code != 200 or not token:
            return
        posted = self._timed(client, "POST", "/internet", data={
            "csrfmiddlewaretoken": token.group(1), "payment_identifier": self.payment_identifier,
            "email": "client@example.ma", "terms": "on"})
        if posted is None:
            return
        identified = posted.status_code == 302 and posted.headers.get("location", "").endswith("/factures")
        self._record("" if identified else "not identified")
        if not identified:
            return
        consult = self._timed(client, "GET", "/factures")
        if consult is None:
            return
        self._record("" if consult.status_code == 200 and self.reference in consult.text else "invoice not shown")
