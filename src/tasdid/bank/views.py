"""The sandbox bank's web side: the ACS's AReq endpoint (for the directory, the switch), the challenge pages, a
home page."""

import logging

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import translation
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tasdid.core import i18n, threeds
from tasdid.core.cards import ascii_digits, digits_only, is_digits
from tasdid.core.http import allow_form_action, autosubmit, no_store, signed_json
from tasdid.core.l10n import amount as written_amount
from tasdid.core.phones import national

from . import acs, selectors, services
from .models import AcsTransaction, Bank

logger = logging.getLogger(__name__)

SESSION_KEY = "bank_acs_challenges"
MAX_SESSION_DATA = 8192  # threeDSSessionData is the gateway's sealed blob; anything bigger is not one


LINK = threeds.LINK_DIRECTORY_ACS  # the ACS speaks to the directory (the switch) only


@csrf_exempt  # server-to-server: the AReq's HMAC signature (X-Tasdid-Signature) is checked instead of CSRF
@sensitive_variables()  # the AReq carries the card number
@require_POST
def areq(request: HttpRequest) -> HttpResponse:
    """The ACS: answer the directory's signed AReq with a signed ARes, or a signed Erro (HTTP 400)."""
    try:
        message = threeds.verify_body(request.body, request.headers.get(threeds.SIGNATURE_HEADER),
                                      message_type="AReq", link=LINK)
    except threeds.MessageError as exc:
        code = acs.ERR_SIGNATURE if isinstance(exc, threeds.SignatureError) else acs.ERR_MESSAGE_INVALID
        return signed_json(acs.erro(code=code, description="Message not accepted", detail=str(exc)), link=LINK,
                           status=400)
    try:
        return signed_json(services.areq_answer(message=message), link=LINK)
    except acs.AReqError as exc:
        trans_id = message.get("threeDSServerTransID")
        return signed_json(
            acs.erro(code=exc.code, description=exc.description, detail=exc.detail,
                     three_ds_server_trans_id=trans_id if isinstance(trans_id, str) else ""),
            link=LINK, status=400,
        )


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code reçu par SMS"),
        strip=True,
        error_messages={"required": gettext_lazy("Saisissez le code à 6 chiffres reçu par SMS.")},
    )

    @sensitive_variables()  # the code typed
    def clean_code(self) -> str:
        # The code as its holder means it: digits typed on an Arabic keyboard are its digits, and spaces
        # between groups do not count. Anything else is not a code and costs no try.
        code = digits_only(ascii_digits(self.cleaned_data["code"]))
        if not is_digits(code, services.OTP_LENGTH):
            raise forms.ValidationError(_("Le code comporte 6 chiffres."), code="invalid")
        return code


def _masked_phone(e164: str) -> str:
    """"06 •• •• •• 02": enough for the cardholder to recognise their phone."""
    groups = national(e164).split(" ")
    if len(groups) < 3:
        return groups[-1][-2:].rjust(6, "•")
    return " ".join([groups[0], *["••"] * (len(groups) - 2), groups[-1]])


def _language_form(record: AcsTransaction, session_data: str) -> dict:
    """The language switch of the challenge pages: reached by POST, they switch by POST too (the code typed so
    far is not kept; the language is, for this challenge and any code sent again)."""
    current = translation.get_language()
    return {
        "action": reverse("challenge_step", args=[record.acs_trans_id]),
        "session_data": session_data,
        "links": [{"code": code, "name": name, "current": code == current, "dir": "rtl" if i18n.is_rtl(code) else "ltr"}
                  for code, name in settings.LANGUAGES],
    }


def _page(request: HttpRequest, record: AcsTransaction, session_data: str, *, form: CodeForm | None = None,
          notice: str = "") -> HttpResponse:
    bank = record.card.bank
    response = render(
        request,
        "bank/challenge.html",
        {
            "bank": bank,
            "record": record,
            "form": form or CodeForm(),
            "session_data": session_data,
            "amount": written_amount(record.amount),
            "masked_pan": record.card.masked_pan,
            "phone": format_html('<bdi dir="ltr">{}</bdi>', _masked_phone(record.card.phone)),
            "notice": notice,
            "can_resend": services.remaining_sends(record) > 0,
            "code_minutes": services.OTP_LIFETIME_MINUTES,
            "max_tries": services.OTP_MAX_TRIES,
            "language_form": _language_form(record, session_data),
        },
    )
    return no_store(response)


def _error(request: HttpRequest, *, title: str, message: str, status: int, bank: Bank | None = None,
           retry_for: AcsTransaction | None = None, session_data: str = "") -> HttpResponse:
    response = render(request, "bank/acs_error.html", {
        "title": title, "message": message, "bank": bank, "retry_for": retry_for, "session_data": session_data,
        "language_form": _language_form(retry_for, session_data) if retry_for is not None else None,
    }, status=status)
    if retry_for is not None:
        allow_form_action(response, [retry_for.notification_url])
    return no_store(response)


def _invalid(request: HttpRequest, *, status: int = 400) -> HttpResponse:
    return _error(request, status=status, title=_("Authentification impossible"), message=_(
        "Cette demande d'authentification est invalide ou a expiré. Aucun paiement n'a été effectué. "
        "Retournez sur le site du commerçant pour recommencer."))


_ENDINGS = {
    "authenticated": gettext_lazy("Code vérifié. Retour au site de paiement…"),
    "failed": gettext_lazy("Code incorrect trois fois : l'authentification a échoué. Retour au site de paiement…"),
    "expired": gettext_lazy("Le délai de saisie du code est dépassé : l'authentification a échoué. "
                            "Retour au site de paiement…"),
    "cancelled": gettext_lazy("Authentification annulée. Retour au site de paiement…"),
}


def _finish(request: HttpRequest, record: AcsTransaction, session_data: str, outcome: str) -> HttpResponse:
    """The challenge has ended: the RReq first (the authoritative result), then the browser back with the CRes."""
    if not services.rreq_deliver(acs_trans_id=str(record.acs_trans_id)):
        return _error(
            request, status=503, bank=record.card.bank, retry_for=record, session_data=session_data,
            title=_("Résultat non transmis"),
            message=_("Votre banque n'a pas pu transmettre le résultat de l'authentification au site de paiement. "
                      "Le paiement n'a pas été effectué. Vous pouvez réessayer dans un instant."),
        )
    message = _ENDINGS.get(outcome) or (
        _ENDINGS["authenticated"] if record.state == AcsTransaction.State.AUTHENTICATED
        else gettext_lazy("Authentification terminée. Retour au site de paiement…"))
    return autosubmit(
        request,
        action=record.notification_url,
        fields={"cres": threeds.encode_browser_message(services.cres_message(record)),
                "threeDSSessionData": session_data},
        title=_("Authentification terminée"),
        message=str(message),
    )


def _session_data(request: HttpRequest) -> str | None:
    value = request.POST.get("threeDSSessionData", "")
    if not value or len(value) > MAX_SESSION_DATA:
        return None
    return value


def _remember(request: HttpRequest, record: AcsTransaction) -> None:
    """This browser may act on this challenge (the next pages also carry the bank session's CSRF token)."""
    known = [k for k in request.session.get(SESSION_KEY, []) if k != str(record.acs_trans_id)]
    request.session[SESSION_KEY] = [*known[-4:], str(record.acs_trans_id)]


@csrf_exempt  # the CReq is no secret (base64url JSON under no key): services.challenge_open decides what it is worth
@sensitive_variables()
@sensitive_post_parameters("threeDSSessionData")  # the gateway's sealed card data
@require_http_methods(["GET", "POST"])
def challenge_start(request: HttpRequest) -> HttpResponse:
    """Step 3: the browser arrives with ``creq`` and ``threeDSSessionData``; the SMS code is sent, in the
    customer's language (the AReq's ``browserLanguage``), and the page speaks it. The CReq opens its challenge
    once: posted again by the browser that opened it (a reload), the page is shown again and nothing is sent;
    from any other browser, it is refused and changes nothing. A GET (a link, the language switch of an error
    page) is answered 405 with the error page, in the language asked."""
    if request.method != "POST":
        return _invalid(request, status=405)
    session_data = _session_data(request)
    try:
        creq = threeds.decode_browser_message(request.POST.get("creq", ""), message_type="CReq")
    except threeds.MessageError:
        return _invalid(request)
    if session_data is None:
        return _invalid(request)
    try:
        step = services.challenge_open(acs_trans_id=creq["acsTransID"],
                                       three_ds_server_trans_id=creq["threeDSServerTransID"])
    except services.CReqReplayed as replayed:
        record = replayed.transaction
        if str(record.acs_trans_id) not in request.session.get(SESSION_KEY, []):
            logger.warning("ACS: CReq for %s posted again from another browser: refused", record.acs_trans_id)
            return _invalid(request)
        i18n.use(request, record.language)
        return _page(request, record, session_data) if not record.ended else _finish(
            request, record, session_data, "ended")
    except services.ChallengeNotFound:
        return _invalid(request)
    _remember(request, step.transaction)
    i18n.use(request, step.transaction.language)
    if step.outcome == "open":
        return _page(request, step.transaction, session_data)
    return _finish(request, step.transaction, session_data, step.outcome)


@sensitive_variables()  # the code typed
@sensitive_post_parameters("code", "threeDSSessionData")
@require_http_methods(["GET", "POST"])
def challenge_step(request: HttpRequest, acs_trans_id) -> HttpResponse:
    """Every later step of the challenge page: Valider, Renvoyer le code, Annuler, the language switch (CSRF of
    the bank session). The pages speak the challenge's language."""
    if request.method != "POST":
        return _invalid(request, status=405)
    key = str(acs_trans_id)
    session_data = _session_data(request)
    record = selectors.acs_transaction(acs_trans_id=key)
    if record is None or not record.is_challenge or session_data is None:
        return _invalid(request)
    i18n.use(request, record.language)
    if key not in request.session.get(SESSION_KEY, []):
        return _error(request, status=403, bank=record.card.bank, title=_("Session expirée"), message=_(
            "Cette page d'authentification n'est plus valable dans ce navigateur. Aucun paiement n'a été "
            "effectué. Retournez sur le site du commerçant pour recommencer."))

    action = request.POST.get("action", "")
    if action == "language" and (chosen := i18n.known(request.POST.get("lang"))):
        services.challenge_set_language(acs_trans_id=key, language=chosen)
        record.language = chosen
    i18n.use(request, record.language)
    if action == "validate":
        form = CodeForm(request.POST)
        if not form.is_valid():
            if record.ended:
                return _finish(request, record, session_data, "ended")
            return _page(request, record, session_data, form=form)
        step = services.challenge_submit_code(acs_trans_id=key, code=form.cleaned_data["code"])
        if step.outcome == "wrong":
            form.add_error("code", ngettext("Code incorrect. Il vous reste %(count)s essai.",
                                            "Code incorrect. Il vous reste %(count)s essais.", step.remaining_tries)
                           % {"count": step.remaining_tries})
            return _page(request, step.transaction, session_data, form=form)
    elif action == "resend":
        step = services.challenge_resend_code(acs_trans_id=key)
        if step.outcome == "resent":
            return _page(request, step.transaction, session_data,
                         notice=_("Un nouveau code vous a été envoyé par SMS. Le précédent n'est plus valable."))
        if step.outcome == "resend_limit":
            return _page(request, step.transaction, session_data,
                         notice=_("Vous avez atteint le nombre maximal d'envois du code."))
    elif action == "cancel":
        step = services.challenge_cancel(acs_trans_id=key)
    else:  # « Réessayer » after an RReq that did not go through, or a page posted again
        if not record.ended:
            return _page(request, record, session_data)
        step = services.ChallengeStep("ended", record)
    return _finish(request, step.transaction, session_data, step.outcome)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Who this server is: the sandbox banks and their BIN ranges (the test cards: ``tasdid sandbox cards``)."""
    banks = [{"name": b.name, "logo": static(b.logo), "bins": ", ".join(b.bin_prefixes)}
             for b in Bank.objects.order_by("name")]
    return render(request, "bank/home.html", {"banks": banks, "sandbox": settings.SANDBOX})
