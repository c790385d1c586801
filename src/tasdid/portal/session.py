"""What the portal keeps in the customer's session: the one line they identified, and for how long.

Keys: ``tasdid.line_id`` (ServiceLine id, int), ``tasdid.email`` (the notification email typed with it) and
``tasdid.identified_at`` (ISO 8601, for the session's age).
"""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

LINE_KEY = "tasdid.line_id"
EMAIL_KEY = "tasdid.email"
AT_KEY = "tasdid.identified_at"
KEYS = (LINE_KEY, EMAIL_KEY, AT_KEY)


@dataclass(frozen=True)
class IdentifiedLine:
    line_id: int
    email: str  # the notification email the customer typed (for the payment order and the receipt)
    at: dt.datetime


def remember_line(request: HttpRequest, *, line_id: int, email: str, now: dt.datetime | None = None) -> None:
    """After a successful identification: a new session key (no fixation), then the line, replacing any other."""
    request.session.cycle_key()
    request.session.update({LINE_KEY: line_id, EMAIL_KEY: email, AT_KEY: (now or timezone.now()).isoformat()})


def identified_line(request: HttpRequest, now: dt.datetime | None = None) -> IdentifiedLine | None:
    """The line this browser identified, unless that was longer ago than SESSION_COOKIE_AGE."""
    session = request.session
    line_id, email, at = (session.get(key) for key in KEYS)
    if not isinstance(line_id, int) or isinstance(line_id, bool) or not isinstance(email, str) or not email:
        return None
    try:
        line = IdentifiedLine(line_id=line_id, email=email, at=dt.datetime.fromisoformat(at))
    except (TypeError, ValueError):
        return None
    if (now or timezone.now()) - line.at > dt.timedelta(seconds=settings.SESSION_COOKIE_AGE):
        forget_line(request)
        return None
    return line


def forget_line(request: HttpRequest) -> None:
    for key in KEYS:
        request.session.pop(key, None)
