"""The gateway's pages and endpoints: the merchant protocol (``/fim/est3Dgate``), the hosted payment page,
and the 3DS Server's endpoints (RReq from the ACS, the browser's return from the challenge)."""

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from tasdid.core import i18n, threeds
from tasdid.core.http import allow_form_action, autosubmit, client_ip, no_store, see_other, signed_json
from tasdid.core.signing import ver3_verify

from . import api, flow, protocol, selectors, services, threeds_server, xmlapi
from .forms import CardForm
from .models import AttemptState, Merchant, MerchantMode, PaymentSession, SessionState

logger = logging.getLogger(__name__)

# The random key, in the gateway's own browser session, that binds payment sessions to this browser.
BROWSER_KEY = "tasdid_gateway_browser"
FRAGMENT_HEADER = "X-Tasdid-Fragment"
# A refusal's reason in every language, signed into its language switch's links (/fim/refus), for an hour.
REFUSAL_SALT = "tasdid.gateway.refusal"
REFUSAL_SECONDS = 3600


def _posted_lang(request: HttpRequest) -> str | None:
    """The merchant request's ``lang`` as the refusal page reads it (before anything is checked): one of ours,
    French when it is anything else, None when the request has none."""
    values = [v for k, vs in request.POST.lists() if k.lower() == "lang" for v in vs]
    if not values or not isinstance(values[0], str) or not values[0].strip():
        return None
    return protocol.request_lang(values[0])


def _speak(request: HttpRequest, session: PaymentSession) -> str:
    """The hosted page speaks the session's language (the merchant's ``lang``); the customer's switch
    (``?lang=``) changes it for this session, so that the later pages and the bank's challenge follow it."""
    asked = i18n.chosen(request)
    if asked and asked != session.lang:
        services.session_set_lang(session_id=session.pk, lang=asked)
        session.lang = asked
    return i18n.use(request, session.lang)


def _refuse(request: HttpRequest, message: str, *, status: int = 400, switch: list[dict] | None = None) -> HttpResponse:
    return no_store(render(request, "gateway/refused.html", {"message": message, "switch_links": switch},
                           status=status))


# --- the merchant protocol ---------------------------------------------------------------------------


def _checked_request(request: HttpRequest) -> tuple[Merchant, protocol.MerchantRequest, dt.datetime | None]:
    """The merchant, its checked request and the date naming the store key that signed it
    (Merchant.store_keys_held), or RequestError saying what is wrong (nothing written)."""
    fields = protocol.collect_fields(request.POST.lists())
    client_id = protocol.check_envelope(fields)
    merchant = selectors.merchant_active(client_id)
    if merchant is None:
        raise protocol.RequestError(_("Marchand inconnu ou inactif : l'identifiant « clientid » n'est pas "
                                      "reconnu par la plateforme de paiement."))
    signed_by = [since for since, key in merchant.store_keys_held(timezone.now()) if ver3_verify(fields, key)]
    if not signed_by:
        raise protocol.RequestError(_("La signature « hash » de la demande de paiement est invalide."))
    if merchant.mode == MerchantMode.TEST and not settings.SANDBOX:
        raise protocol.RequestError(_("Ce marchand est en mode test : la plateforme de paiement n'accepte ses "
                                      "demandes qu'en bac à sable, avec les cartes de test."))
    return merchant, protocol.parse_request(fields, return_hosts=merchant.return_hosts), signed_by[0]


def _refuse_request(request: HttpRequest, exc: protocol.RequestError) -> HttpResponse:
    """The refusal of a merchant request, with a language switch that keeps the reason: the reason in every
    language (the same checks again, nothing written) travels signed in the switch's links to ``/fim/refus``."""
    reasons = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            try:
                _checked_request(request)
            except protocol.RequestError as again:
                reasons[code] = again.message
            else:  # refused when the session was opened: the order is being paid with other data
                reasons[code] = _("Cette commande est déjà en cours de paiement avec d'autres données.")
    return _refuse_with_switch(request, exc.message, reasons)


def _refuse_in_every_language(request: HttpRequest, reason: Callable[[], str], *, status: int = 400) -> HttpResponse:
    """A refusal whose reason does not depend on the request: ``reason()`` in each language for the switch."""
    reasons = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            reasons[code] = reason()
    return _refuse_with_switch(request, reason(), reasons, status=status)


def _refuse_with_switch(request: HttpRequest, message: str, reasons: dict[str, str], *,
                        status: int = 400) -> HttpResponse:
    token = signing.dumps(reasons, salt=REFUSAL_SALT, compress=True)
    return _refuse(request, message, status=status,
                   switch=_switch_links(reverse("gateway_refusal"), {"r": token}))


def _switch_links(path: str, query: dict[str, str]) -> list[dict]:
    current = translation.get_language()
    return [{"code": code, "name": name, "current": code == current, "dir": "rtl" if i18n.is_rtl(code) else "ltr",
             "url": f"{path}?{urlencode({**query, i18n.PARAM: code})}"} for code, name in settings.LANGUAGES]


@never_cache
@require_http_methods(["GET"])
def refusal(request: HttpRequest) -> HttpResponse:
    """A refusal page in another language (its switch's links): the reason comes signed in ``r``."""
    try:
        reasons = signing.loads(request.GET.get("r", ""), salt=REFUSAL_SALT, max_age=REFUSAL_SECONDS)
        message = reasons[translation.get_language()]
    except (signing.BadSignature, KeyError, TypeError):
        return no_store(render(request, "gateway/not_found.html", status=404))
    return _refuse(request, str(message), status=200)


def _log_refusal(request: HttpRequest, reason: str) -> None:
    """The audit line of a refused merchant request: which client and order said to be (as posted, quoted)."""
    def posted(name: str) -> str:
        return next((v for k, v in request.POST.items() if k.lower() == name), "")[:64]

    logger.info("gateway: payment request refused (clientid %r, oid %r): %s", posted("clientid"), posted("oid"),
                reason)


@csrf_exempt  # the merchant's request is verified by its ver3 hash (store key), which replaces CSRF
@never_cache
def est3dgate(request: HttpRequest) -> HttpResponse:
    """A merchant's payment request (CMI 3D_PAY_HOSTING, hash ver3): refused with a French page and nothing
    started, or a payment session opened for this browser and the customer sent to the hosted page. The refusal
    speaks the request's ``lang`` when it has one (French when it is not ours)."""
    i18n.use(request, i18n.chosen(request) or _posted_lang(request) or getattr(request, "LANGUAGE_CODE", None))
    if request.method != "POST":
        return _refuse_in_every_language(
            request, lambda: _("Cette adresse reçoit les demandes de paiement envoyées par les sites marchands."),
            status=405)
    try:
        merchant, checked, key_since = _checked_request(request)
        key = request.session.get(BROWSER_KEY) or secrets.token_urlsafe(32)
        session = services.session_open(merchant=merchant, request=checked, browser_key=key, key_since=key_since)
    except protocol.RequestError as exc:
        _log_refusal(request, exc.message)
        return _refuse_request(request, exc)
    except services.SessionElsewhere as exc:
        _log_refusal(request, "demande rejouée depuis un autre navigateur")
        services.session_note(session_id=exc.session_id,
                              cause="demande du marchand rejouée depuis un autre navigateur : refusée")
        return _refuse_in_every_language(request, lambda: _(
            "Cette commande est déjà en cours de paiement dans un autre navigateur. Seul le navigateur qui a ouvert "
            "la page de paiement peut la poursuivre : terminez le paiement dans celui-ci, ou revenez au site du "
            "marchand une fois la session de paiement expirée."), status=409)
    if session.state != SessionState.OPEN:
        i18n.use(request, session.lang)
        return _status_page(request, session, status=409, offer_return=False)
    request.session[BROWSER_KEY] = key
    return see_other(reverse("gateway_pay", args=[session.token]))


@csrf_exempt  # server to server: the query is verified by its ver3 HASH (the merchant's store key)
@never_cache
@require_POST
def order_status(request: HttpRequest) -> HttpResponse:
    """A merchant asks for an order's status (``action=status``), or for its callback once more
    (``action=redeliver``); the answer is form-encoded and signed like a callback (docs/gateway.md). An unknown
    client or a wrong HASH is refused (403) before anything is read or moved. Server to server: French."""
    i18n.use(request, "fr")
    try:
        fields = protocol.collect_fields(request.POST.lists())
    except protocol.RequestError as exc:
        return _plain(exc.message, status=400)
    client_id = protocol.field(fields, "clientid")
    merchant = selectors.merchant_active(client_id) if client_id else None
    signed_by = [] if merchant is None else [
        key for key in merchant.store_keys_accepted(timezone.now()) if ver3_verify(fields, key, hash_field="HASH")]
    if not signed_by:
        logger.warning("gateway: order status query refused (client %r unknown or HASH wrong)", client_id[:32])
        return _plain(_("Demande refusée : marchand inconnu ou signature « HASH » invalide."), status=403)
    try:
        query = protocol.parse_status_query(fields)
    except protocol.RequestError as exc:
        return _plain(exc.message, status=400)
    answer = flow.order_status(merchant=merchant, query=query, store_key=signed_by[0])
    return HttpResponse(urlencode(answer), content_type="application/x-www-form-urlencoded; charset=utf-8")


@csrf_exempt  # server to server: each request carries its API user's Name and Password (checked, rate-limited)
@never_cache
@sensitive_variables()  # the body holds the API user's password
def merchant_api(request: HttpRequest) -> HttpResponse:
    """The merchant XML API (Nestpay's ``CC5Request``): every answer a ``CC5Response`` with HTTP 200, as Nestpay
    answers, its ``Response`` Approved, Declined or Error (``tasdid.gateway.api``)."""
    if request.method != "POST":
        body = xmlapi.serialize(xmlapi.error("METHOD", protocol.errmsg(
            "Cette adresse reçoit les demandes CC5Request envoyées par POST.")))
        response = HttpResponse(body, status=405, content_type="text/xml; charset=utf-8")
        response["Allow"] = "POST"
        return response
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > xmlapi.MAX_BODY:  # not read at all
        body = xmlapi.serialize(xmlapi.error("TOO_LARGE", protocol.errmsg(
            f"Demande trop volumineuse : au plus {xmlapi.MAX_BODY} octets.")))
    else:
        body = api.answer(request.read(xmlapi.MAX_BODY + 1), request.content_type or "", address=client_ip(request))
    return HttpResponse(body, content_type="text/xml; charset=utf-8")


def _plain(message: str, *, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


# --- the hosted payment page -------------------------------------------------------------------------


def _card_form(data=None) -> CardForm:
    return CardForm(data, today=timezone.localdate(), bin_table=selectors.bin_table())


def _page_context(request: HttpRequest, session: PaymentSession, *, error: str = "") -> dict:
    return {
        "session": session,
        "merchant": session.merchant,
        "invoices": selectors.invoices_of(session),
        "page_url": reverse("gateway_pay", args=[session.token]),
        "error": error,
    }


def _page(request: HttpRequest, session: PaymentSession, form: CardForm, *, status: int = 200) -> HttpResponse:
    context = {**_page_context(request, session), "form": form}
    return no_store(render(request, "gateway/pay.html", context, status=status))


@sensitive_variables()  # every frame below holds the card: Django forms keep what was typed in locals
@sensitive_post_parameters("card_number", "cvv")
@require_http_methods(["GET", "POST"])
def pay(request: HttpRequest, token: str) -> HttpResponse:
    """The hosted payment page: the invoices (defer / restore) on the left, the card form on the right.
    The card number and CVV pass through this view's memory only: never a session, a row or a log.
    The page speaks the session's language; ``?lang=`` changes it for the session (_speak)."""
    session = selectors.session_for_browser(token, request.session.get(BROWSER_KEY))
    if session is None:
        return no_store(render(request, "gateway/not_found.html", status=404))
    _speak(request, session)
    if session.state == SessionState.OPEN and session.expires_at <= timezone.now():
        session = services.session_expire(session_id=session.pk)
    if session.state != SessionState.OPEN:
        # A submit or a defer on an order already being paid or processed: nothing happens twice.
        return _status_page(request, session, status=200 if request.method == "GET" else 409)
    if request.method == "GET":
        return _page(request, session, _card_form())

    action = request.POST.get("action", "")
    if action in ("defer", "restore"):
        return _defer_or_restore(request, session, action)
    if action == "cancel":
        return _cancel(request, session)
    if action != "pay":
        return _page(request, session, _card_form(), status=400)
    form = _card_form(request.POST)
    if form.is_valid():
        try:
            step = flow.submit_card(session=session, card=form.card_data(), brand=form.cleaned_data["card_type"],
                                    selection=request.POST.get("selection"))
        except services.SessionBusy as exc:
            return _status_page(request, exc.session, status=409)
        except services.SelectionChanged:
            session.refresh_from_db()
            form.add_error(None, _("La liste des factures a changé entre-temps : vérifiez le montant à payer puis "
                                   "validez à nouveau."))
        else:
            return _step(request, step)
    return _page(request, session, form)


def _cancel(request: HttpRequest, session: PaymentSession) -> HttpResponse:
    """« Annuler »: back to the merchant's failUrl, nothing paid."""
    try:
        step = flow.cancel(session_id=session.pk)
    except services.SessionBusy as exc:
        return _status_page(request, exc.session, status=409)
    return autosubmit(request, action=step.action, fields=step.fields, title=_("Paiement annulé"),
                      message=_("Paiement annulé. Retour au site marchand en cours…"),
                      button=_("Retour au site marchand"))


def _defer_or_restore(request: HttpRequest, session: PaymentSession, action: str) -> HttpResponse:
    ref = request.POST.get("ref", "")[:64]
    error = ""
    try:
        if action == "defer":
            session = services.session_defer(session_id=session.pk, ref=ref)
        else:
            session = services.session_restore(session_id=session.pk, ref=ref)
    except protocol.DeferError as exc:
        error = exc.message
    except services.SessionBusy as exc:
        return _status_page(request, exc.session, status=409)
    if request.headers.get(FRAGMENT_HEADER) == "invoices":
        # The page's script replaces the invoices in place: the card form keeps what was typed.
        context = _page_context(request, session, error=error)
        return no_store(render(request, "gateway/_invoices.html", context, status=400 if error else 200))
    if error:
        messages.error(request, error)
    return see_other(reverse("gateway_pay", args=[session.token]))


def _step(request: HttpRequest, step: flow.BrowserStep) -> HttpResponse:
    if step.kind == "challenge":
        return autosubmit(request, action=step.action, fields=step.fields, title=_("Authentification 3-D Secure"),
                          message=_("Vous allez être redirigé vers la page de votre banque pour confirmer le "
                                    "paiement…"))
    if step.kind == "merchant":
        return autosubmit(request, action=step.action, fields=step.fields, title=_("Retour au site marchand"),
                          message=_("Paiement traité. Retour au site marchand en cours…"),
                          button=_("Retour au site marchand"))
    return _status_page(request, step.session, status=409)


def _status_page(request: HttpRequest, session: PaymentSession, *, status: int = 200,
                 offer_return: bool = True) -> HttpResponse:
    """The order is being paid, was already processed, or its time ran out: say so, and offer the way back
    to the merchant when there is one."""
    attempt = selectors.latest_attempt(session)
    awaiting_merchant = attempt is not None and services.callback_pending(attempt)
    back = None
    if offer_return and attempt is not None and (
            session.state in (SessionState.SUCCEEDED, SessionState.FAILED) or awaiting_merchant):
        back = flow.merchant_return(attempt_id=attempt.pk)
    elif offer_return and session.state in (SessionState.EXPIRED, SessionState.CANCELLED):
        back = flow.closed_return(session=session)
    context = {
        "session": session,
        "merchant": session.merchant,
        "attempt": attempt,
        "in_challenge": attempt is not None and attempt.state == AttemptState.CHALLENGE,
        "awaiting_merchant": awaiting_merchant,
        "back": back,
        "back_fields": list(back.fields.items()) if back else [],
        "page_url": reverse("gateway_pay", args=[session.token]),
    }
    response = no_store(render(request, "gateway/status.html", context, status=status))
    return allow_form_action(response, [back.action]) if back else response


def home(request: HttpRequest) -> HttpResponse:
    """Who this server is, for a person who types its address: the page opens from the biller's site."""
    return render(request, "gateway/home.html")


def conditions(request: HttpRequest) -> HttpResponse:
    return render(request, "gateway/conditions.html")


# --- 3-D Secure: the 3DS Server's endpoints ----------------------------------------------------------


@csrf_exempt  # server to server: the body is verified by its HMAC-SHA256 signature (the directory link's key)
@require_http_methods(["POST"])
def rreq(request: HttpRequest) -> HttpResponse:
    """The ACS's result of a challenge (RReq), relayed by the directory, answered by a signed RRes. A re-sent
    RReq changes nothing."""
    link = threeds.LINK_SERVER_DIRECTORY
    try:
        message = threeds.verify_body(request.body, request.headers.get(threeds.SIGNATURE_HEADER),
                                      message_type="RReq", link=link)
    except threeds.MessageError as exc:
        return signed_json(threeds_server.build_error(code="203", description=str(exc)), link=link, status=400)
    if message.get("transStatus") not in ("Y", "N", "A", "U", "R") or not isinstance(
            message.get("threeDSServerTransID"), str):
        return signed_json(threeds_server.build_error(code="203", description="invalid transStatus or transaction",
                                                       rreq=message), link=link, status=400)
    outcome = services.attempt_record_rreq(rreq=message)
    if outcome.attempt is None:
        return signed_json(threeds_server.build_error(code="301", description="transaction not found",
                                                       rreq=message), link=link, status=404)
    return signed_json(threeds_server.build_rres(message), link=link)


@csrf_exempt  # posted by the ACS's page: the CRes proves nothing (no key), threeDSSessionData is sealed by us
@sensitive_post_parameters("threeDSSessionData")
def notification(request: HttpRequest) -> HttpResponse:
    """The browser is back from the bank's challenge page: authorize on the RReq's result, or fail. The pages
    that follow speak the payment session's language."""
    if request.method != "POST":
        return _refuse_in_every_language(
            request, lambda: _("Cette adresse reçoit le retour de l'authentification 3-D Secure."), status=405)
    try:
        step = flow.complete_challenge(cres_text=request.POST.get("cres", ""),
                                       session_data=request.POST.get("threeDSSessionData", ""))
    except flow.ChallengeError:
        return _refuse_in_every_language(request, lambda: _(
            "Le retour de l'authentification 3-D Secure est invalide ou ne correspond à aucun paiement en cours."))
    if step.session is not None:
        i18n.use(request, step.session.lang)
    return _step(request, step)

