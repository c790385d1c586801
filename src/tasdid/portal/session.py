"""What the portal keeps in the customer's session: the one line they identified, and for how long."""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

SESSION_KEY = "portal.identified"


@dataclass(frozen=True)
class IdentifiedLine:
    line_id: int
    kind: str  # ServiceLine.Kind value
    email: str  # the notification email the customer typed (for the payment order and the receipt)
    at: dt.datetime


def remember_line(request: HttpRequest, *, line_id: int, kind: str, email: str,
                  now: dt.datetime | None = None) -> None:
    """After a successful identification: a new session key (no fixation), then the line, replacing any other."""
    request.session.cycle_key()
    request.session[SESSION_KEY] = {"line_id": line_id, "kind": kind, "email": email,
                                    "at": (now or timezone.now()).isoformat()}


def identified_line(request: HttpRequest, now: dt.datetime | None = None) -> IdentifiedLine | None:
    """The line this browser identified, unless that was longer ago than SESSION_COOKIE_AGE."""
    data = request.session.get(SESSION_KEY)
    if not isinstance(data, dict):
        return None
    try:
        line = IdentifiedLine(line_id=int(data["line_id"]), kind=str(data["kind"]), email=str(data["email"]),
                              at=dt.datetime.fromisoformat(data["at"]))
    except (KeyError, TypeError, ValueError):
        return None
    if (now or timezone.now()) - line.at > dt.timedelta(seconds=settings.SESSION_COOKIE_AGE):
        forget_line(request)
        return None
    return line


def forget_line(request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)
