"""The SQL statements of each request the parties' live servers (tests.support.servers) serve, by page, and their
ceilings.

``QueryLog`` records, while it is open (``recording``), every request of every party: the party, the method, the
page's URL name and the statements its thread sent to the database while the view, the middleware and the
``on_commit`` work ran (a connection ``execute_wrapper``). Server-to-server calls made during a request (the
gateway's AReq to the directory, the directory's to the ACS, the callback to the biller) are requests of their own,
counted by the party that serves them. Each request is filed under the step the test is in (``log.step``), so that a
page has a readable id: ``"card, frictionless: gateway POST gateway_pay"``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections
from django.urls import Resolver404, resolve


@dataclass
class Served:
    step: str
    party: str
    method: str
    page: str
    path: str
    status: int
    statements: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.step}: {self.party} {self.method} {self.page}"


class QueryLog:
    def __init__(self) -> None:
        self.served: list[Served] = []
        self.current_step = ""
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def step(self, name: str):
        """The requests served until the block ends belong to the step ``name``."""
        self.current_step = name
        try:
            yield
        finally:
            self.current_step = ""

    def counts(self) -> dict[str, int]:
        """Statements per page id (the most, when a step requests the same page twice)."""
        counts: dict[str, int] = {}
        for served in self.served:
            counts[served.id] = max(counts.get(served.id, 0), len(served.statements))
        return counts

    def serve(self, party: str, app, environ, start_response):
        path = environ.get("PATH_INFO", "")
        try:
            page = resolve(path, urlconf=settings.PARTY_URLCONFS[party]).view_name
        except Resolver404:
            page = path
        served = Served(step=self.current_step, party=party, method=environ.get("REQUEST_METHOD", ""), page=page,
                        path=path, status=0)

        def record(execute, sql, params, many, context):
            served.statements.append(sql)
            return execute(sql, params, many, context)

        def start(status, headers, exc_info=None):
            served.status = int(status.split()[0])
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        with connections["default"].execute_wrapper(record):
            response = app(environ, start)
        with self._lock:
            self.served.append(served)
        return response


_log: QueryLog | None = None


@contextlib.contextmanager
def recording():
    """Record what the parties' live servers serve until the block ends."""
    global _log
    _log = QueryLog()
    try:
        yield _log
    finally:
        _log = None


class CountingApplication:
    """The party's WSGI application; counts each request's statements while a QueryLog records."""

    def __init__(self, app, party: str):
        self.app = app
        self.party = party

    def __call__(self, environ, start_response):
        log = _log
        if log is None:
            return self.app(environ, start_response)
        return log.serve(self.party, self.app, environ, start_response)


def over_ceilings(log: QueryLog, ceilings: dict[str, int], *, parties: tuple[str, ...]) -> list[str]:
    """What a regression looks like, one line per page id of ``parties``: a page over its ceiling (with its
    statements), a page served that has no ceiling, a page with a ceiling that was not served. With
    ``TASDID_QUERY_COUNTS=<file>`` in the environment, the counts measured are appended to that file (JSON)."""
    served = {s.id: s for s in sorted(log.served, key=lambda s: len(s.statements)) if s.party in parties}
    if os.environ.get("TASDID_QUERY_COUNTS"):  # a file to append the counts measured to, to set the ceilings again
        with open(os.environ["TASDID_QUERY_COUNTS"], "a") as out:
            out.write(json.dumps({page_id: len(s.statements) for page_id, s in served.items()}) + "\n")
    problems = []
    for page_id, s in served.items():
        ceiling = ceilings.get(page_id)
        if ceiling is None:
            problems.append(f"{page_id}: {len(s.statements)} statements, no ceiling (HTTP {s.status} {s.path})")
        elif len(s.statements) > ceiling:
            sql = "\n    ".join(s.statements)
            problems.append(f"{page_id}: {len(s.statements)} statements, ceiling {ceiling} (HTTP {s.status} "
                            f"{s.path})\n    {sql}")
    problems += [f"{page_id}: not served" for page_id in ceilings if page_id not in served]
    return problems
