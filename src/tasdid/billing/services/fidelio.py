"""Codes fidelio: a mobile line asks for one by SMS ("code" to 1111) and gets it back by SMS.

The answer's language is decided here, never by whatever language happens to be active (a sandbox page, the SMPP
receiver): « رمز » (Arabic for "code") asks in Arabic and is answered in Arabic; otherwise the answer speaks the
language the line last used on the biller's site (its latest payment order's), French when it never paid here.

A code is 6 digits, kept only as a keyed digest bound to its line, valid FIDELIO_CODE_SECONDS, used once; a new
code replaces the older unused ones; a line may ask for FIDELIO_REQUEST_LIMIT codes per window.
"""

import datetime as dt
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from tasdid.billing.clock import clock_text
from tasdid.billing.codes import fidelio_scope
from tasdid.billing.models import FidelioCode, ServiceLine
from tasdid.billing.selectors.payments import line_language
from tasdid.core.codes import code_digest, generate_numeric, is_locked
from tasdid.messaging.services import sms_send

FIDELIO_SHORT_NUMBER = "1111"
FIDELIO_CODE_LENGTH = 6
KEYWORD = "code"
# Each keyword and the language of its answer (None: the line's own language, line_language).
KEYWORDS = {KEYWORD: None, "رمز": "ar"}


class FidelioReply(StrEnum):
    """What the biller answered to an SMS sent to 1111."""

    CODE_SENT = "code_sent"
    UNKNOWN_KEYWORD = "unknown_keyword"
    UNKNOWN_NUMBER = "unknown_number"
    TOO_MANY_REQUESTS = "too_many_requests"
    LINE_LOCKED = "line_locked"


def _keyword(text: str) -> str:
    return "".join((text or "").split()).casefold()


def is_code_request(text: str) -> bool:
    """ "code", in any case, with spaces anywhere (" Code ", "CODE", "co de"), or « رمز »."""
    return _keyword(text) in KEYWORDS


def reply_language(*, sender: str, text: str) -> str:
    """The language of the answer to ``text`` from ``sender``: Arabic for « رمز », else the line's (line_language)."""
    return KEYWORDS.get(_keyword(text)) or line_language(number=sender)


@sensitive_variables("text")  # the SMS may hold a code: hidden in error reports, here and in the frames below
def _reply(to: str, text: str, secrets: tuple[str, ...] = ()) -> None:
    sms_send(sender=FIDELIO_SHORT_NUMBER, to=to, text=text, secrets=secrets)


@transaction.atomic
def fidelio_sms_received(*, sender: str, text: str, now: dt.datetime | None = None) -> FidelioReply:
    """Answer an SMS that ``sender`` (E.164) sent to 1111; every answer is an SMS back to the sender, in the
    language reply_language decides."""
    now = now or timezone.now()
    with translation.override(reply_language(sender=sender, text=text)):
        if not is_code_request(text):
            _reply(sender, _("Message non reconnu. Pour recevoir votre code fidelio, envoyez « code » au 1111 "
                             "depuis le numéro mobile de la ligne à payer."))
            return FidelioReply.UNKNOWN_KEYWORD
        return fidelio_code_request(number=sender, now=now)


@transaction.atomic
def fidelio_code_request(*, number: str, now: dt.datetime | None = None) -> FidelioReply:
    """Send a new code fidelio by SMS to the mobile line ``number`` (E.164), within the limits."""
    now = now or timezone.now()
    line = (ServiceLine.objects.select_for_update()
            .filter(kind=ServiceLine.Kind.MOBILE, number=number).first())
    if line is None:
        _reply(number, _("Ce numéro ne correspond à aucune ligne mobile client. Pour obtenir un code fidelio, "
                         "envoyez « code » au 1111 depuis le numéro mobile de la ligne à payer."))
        return FidelioReply.UNKNOWN_NUMBER
    if is_locked(line.locked_until, now):
        until = clock_text(line.locked_until, now)
        _reply(number, _("Après plusieurs codes erronés, votre ligne est bloquée jusqu'à %(until)s. "
                         "Vous pourrez alors demander un nouveau code fidelio.") % {"until": until})
        return FidelioReply.LINE_LOCKED
    window_start = now - dt.timedelta(seconds=settings.FIDELIO_REQUEST_WINDOW_SECONDS)
    recent = list(FidelioCode.objects.filter(line=line, created_at__gt=window_start)
                  .order_by("created_at").values_list("created_at", flat=True))
    if len(recent) >= settings.FIDELIO_REQUEST_LIMIT:
        next_allowed = recent[-settings.FIDELIO_REQUEST_LIMIT] + dt.timedelta(
            seconds=settings.FIDELIO_REQUEST_WINDOW_SECONDS)
        _reply(number, _("Vous avez déjà demandé plusieurs codes fidelio. Merci de patienter : vous pourrez en "
                         "demander un nouveau à partir de %(at)s.") % {"at": clock_text(next_allowed, now)})
        return FidelioReply.TOO_MANY_REQUESTS
    # The new code replaces the older ones still valid: they expire now.
    FidelioCode.objects.filter(line=line, used_at__isnull=True, expires_at__gt=now).update(expires_at=now)
    code = generate_numeric(FIDELIO_CODE_LENGTH)
    minutes = settings.FIDELIO_CODE_SECONDS // 60
    FidelioCode.objects.create(line=line, digest=code_digest(fidelio_scope(line.pk), code), created_at=now,
                               expires_at=now + dt.timedelta(seconds=settings.FIDELIO_CODE_SECONDS))
    _reply(number, _("Votre code fidelio est %(code)s. Il est valable %(minutes)s minutes et ne sert qu'une fois. "
                     "Ne le communiquez à personne.") % {"code": code, "minutes": minutes}, secrets=(code,))
    return FidelioReply.CODE_SENT
