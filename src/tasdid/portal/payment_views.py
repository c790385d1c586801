"""The payment pages of the biller's site: start a payment at the gateway, the gateway's callback and the
browser's return, the receipt (page and PDF)."""

import logging
import re
from dataclasses import dataclass

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from tasdid.billing.receipts import is_receipt_number, receipt_token_matches
from tasdid.billing.selectors.payments import (
    CONSULT_PATH,
    Receipt,
    gateway_url,
    merchant_request,
    receipt_for,
)
from tasdid.billing.services import payments
from tasdid.core import response_codes as rc
from tasdid.core.http import autosubmit, no_store, see_other

from .receipt_pdf import receipt_pdf_filename, render_receipt_pdf
from .session import forget_line, identified_line

logger = logging.getLogger(__name__)

HOME_PATH = "/"

def _posted(request: HttpRequest) -> dict[str, str]:
    """The posted form as one value per name (the last one, as PHP reads it)."""
    return {name: request.POST.get(name, "") for name in request.POST}


@require_POST
def pay(request: HttpRequest) -> HttpResponse:
    """« Consultez et payer » on the consult page: create the order, then carry the browser to the gateway."""
    who = identified_line(request)
    if who is None:
        messages.error(request, _("Votre session a expiré. Identifiez de nouveau votre facture pour la payer."))
        return redirect(HOME_PATH)
    try:
        order = payments.payment_order_create(line_id=who.line_id, email=who.email,
                                              language=translation.get_language())
    except payments.NothingToPay:
        messages.info(request, _("Vous n'avez aucune facture à payer."))
        return redirect(CONSULT_PATH)
    except payments.UnknownLine:
        forget_line(request)
        messages.error(request, _("Votre session a expiré. Identifiez de nouveau votre facture pour la payer."))
        return redirect(HOME_PATH)
    return autosubmit(
        request,
        action=gateway_url(),
        fields=merchant_request(order=order),
        title=_("Paiement sécurisé"),
        message=_("Vous allez être redirigé vers la page de paiement sécurisé…"),
        button=_("Continuer vers le paiement"),
    )


@csrf_exempt  # server-to-server: the ver3 HASH over every field, keyed with the store key, replaces CSRF.
@require_POST
def payment_callback(request: HttpRequest) -> HttpResponse:
    result = payments.payment_callback(fields=_posted(request))
    response = HttpResponse(result.answer, content_type="text/plain; charset=utf-8")
    return no_store(response)


def _invalid_return(request: HttpRequest, reason: str) -> HttpResponse:
    logger.warning("payment return refused: %s", reason)
    return no_store(render(request, "portal/payment/invalid.html", status=400))


def _gateway_return(request: HttpRequest, *, failed: bool) -> payments.ReturnOutcome | HttpResponse:
    """The browser's return from the gateway, checked; or the page to answer at once: the consult page for a
    bare GET, an error page for a bad HASH, the receipt when the order is settled (on failUrl too: an earlier
    try on the same payment page may have paid it — the receipt is the truth)."""
    if request.method == "GET":
        return redirect(CONSULT_PATH)
    try:
        outcome = payments.payment_return(fields=_posted(request), failed=failed)
    except payments.GatewayMessageRefused as exc:
        return _invalid_return(request, exc.reason)
    if outcome.receipt_number:
        return see_other(outcome.receipt_path)
    return outcome


@csrf_exempt  # the browser's return from the gateway: verified by its ver3 HASH, not by a session.
@require_http_methods(["GET", "POST"])
def payment_ok(request: HttpRequest) -> HttpResponse:
    """The gateway's okUrl: the receipt when the callback settled the order, else "not confirmed"."""
    outcome = _gateway_return(request, failed=False)
    if isinstance(outcome, HttpResponse):
        return outcome
    return no_store(render(request, "portal/payment/not_confirmed.html", {"consult_url": CONSULT_PATH}))


# Why a payment failed, as the customer reads it (ISO 8583 response codes, DESIGN.md §5).
FAILURE_REASONS = {
    rc.INSUFFICIENT_FUNDS: gettext_lazy("Provision insuffisante"),
    rc.EXPIRED_CARD: gettext_lazy("Carte expirée"),
    rc.LOST_CARD: gettext_lazy("Carte déclarée perdue ou volée"),
    rc.STOLEN_CARD: gettext_lazy("Carte déclarée perdue ou volée"),
    rc.CVV_MISMATCH: gettext_lazy("Code de vérification incorrect"),
    rc.DO_NOT_HONOUR: gettext_lazy("Transaction refusée par votre banque"),
    # A well-formed number no bank issued (the gateway's form lets it through; the issuer answers 14).
    rc.INVALID_CARD_NUMBER: gettext_lazy("Numéro de carte inconnu de votre banque"),
}
THREEDS_FAILED = "0"  # mdStatus: the cardholder was not authenticated
# The gateway's code for a payment that ended without the bank's decline (says nothing more).
ERROR_CODE = rc.GATEWAY_ERROR
# The gateway's ErrMsg when the customer pressed « Annuler » on the payment page (code 99).
CANCELLED_BY_CUSTOMER = "Paiement annulé par le client"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
ERR_MSG_MAX = 200


@dataclass(frozen=True)
class FailureNotice:
    """What the failure page says: why, what it means for the invoices, and the code to show beside the why."""

    reason: str
    detail: str
    code: str = ""


def failure_notice(*, code: str, md_status: str, err_msg: str, paid_elsewhere: bool) -> FailureNotice:
    """Why a payment failed, as precisely as the biller and the gateway know it (a pure decision).

    First what only the biller knows (an invoice paid meanwhile by another order), then the customer's own
    cancellation, 3-D Secure (no authorization followed), the bank's decline by its code, the gateway's message
    (« Session de paiement expirée »…), and last a generic reason. Code 99 is not shown: it says nothing.
    """
    retry = _("Aucun montant n'a été débité et vos factures restent à payer. Vous pouvez réessayer, avec la même "
              "carte ou une autre.")
    shown_code = "" if code == ERROR_CODE else code
    err_msg = " ".join(_CONTROL.sub(" ", err_msg or "").split())[:ERR_MSG_MAX]
    if paid_elsewhere:
        return FailureNotice(
            reason=_("Une des factures a déjà été réglée entre-temps ; aucun montant n'a été débité."),
            detail=_("Consultez de nouveau vos factures : celles qui restent à payer y figurent."))
    if code == ERROR_CODE and err_msg.casefold() == CANCELLED_BY_CUSTOMER.casefold():
        return FailureNotice(reason=_("Vous avez annulé le paiement. Vos factures restent à payer."),
                             detail=_("Aucun montant n'a été débité. Vous pouvez payer quand vous le souhaitez."))
    if md_status == THREEDS_FAILED:
        return FailureNotice(
            reason=_("Authentification 3-D Secure échouée : le code de vérification n'a pas été validé"),
            detail=retry, code=shown_code)
    if code in FAILURE_REASONS:
        return FailureNotice(reason=str(FAILURE_REASONS[code]), detail=retry, code=shown_code)
    return FailureNotice(reason=err_msg or _("Le paiement n'a pas pu aboutir"), detail=retry, code=shown_code)


@csrf_exempt  # the browser's return from the gateway: verified by its ver3 HASH, not by a session.
@require_http_methods(["GET", "POST"])
def payment_failed(request: HttpRequest) -> HttpResponse:
    """The gateway's failUrl: say why, the invoices stay unpaid, try again from the consult page."""
    outcome = _gateway_return(request, failed=True)
    if isinstance(outcome, HttpResponse):
        return outcome
    notice = failure_notice(code=outcome.code, md_status=outcome.md_status, err_msg=outcome.message,
                            paid_elsewhere=outcome.invoice_paid_elsewhere)
    return no_store(render(request, "portal/payment/failed.html", {"notice": notice, "consult_url": CONSULT_PATH}))


def _receipt_or_404(receipt_number: str, token: str) -> Receipt:
    """The receipt whose link this is: its number, and a token bound to its payment."""
    if not is_receipt_number(receipt_number):
        raise Http404  # junk is not looked up (a NUL byte, megabytes of it)
    receipt = receipt_for(receipt_number=receipt_number)
    if receipt is None or not receipt_token_matches(receipt_number=receipt.number, oid=receipt.oid,
                                                    trans_id=receipt.trans_id, token=token):
        raise Http404
    return receipt


def _private(response: HttpResponse) -> HttpResponse:
    """A receipt's address is its key: keep it out of referrers, shared caches and search engines."""
    response["Cache-Control"] = "private, no-cache"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@require_safe
def receipt(request: HttpRequest, receipt_number: str, token: str) -> HttpResponse:
    """« Reçu de paiement »: anyone with the link, no session needed."""
    data = _receipt_or_404(receipt_number, token)
    return _private(render(request, "portal/receipt/receipt.html", {"receipt": data}))


@require_safe
def receipt_pdf(request: HttpRequest, receipt_number: str, token: str) -> HttpResponse:
    """The same receipt as a PDF (WeasyPrint), to save or print."""
    data = _receipt_or_404(receipt_number, token)
    response = HttpResponse(render_receipt_pdf(receipt=data, request=request), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{receipt_pdf_filename(data)}"'
    return _private(response)
