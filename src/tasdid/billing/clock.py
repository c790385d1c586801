"""Times as the biller writes them to a customer (an SMS, a message beside a form field)."""

import datetime as dt

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from tasdid.core.l10n import digits


def clock_text(at: dt.datetime, now: dt.datetime) -> str:
    """A time as the customer reads it on their phone: "14:35", or "12/06/2025 à 14:35" on another day (in the
    active language, its digits as tasdid.core.l10n writes them)."""
    local = timezone.localtime(at)
    if local.date() == timezone.localtime(now).date():
        return digits(date_format(local, "H:i"))
    return _("%(day)s à %(time)s") % {"day": digits(date_format(local, "d/m/Y")),
                                      "time": digits(date_format(local, "H:i"))}
