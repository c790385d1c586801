"""The customer pages of the biller's site: the three ways in, the consult page and its bills as PDF, the terms
of use."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_safe

from tasdid.billing.documents import bill_pdf as render_bill_pdf
from tasdid.billing.selectors.bills import bill_document, line_bill_id
from tasdid.billing.selectors.invoices import line_unpaid_invoices
from tasdid.billing.services.identification import Identified
from tasdid.core.http import client_ip, no_store

from .forms import FixedForm, IdentificationForm, InternetForm, MobileForm
from .session import forget_line, identified_line, remember_line


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html")


def _identify(request: HttpRequest, form_class: type[IdentificationForm], *, title: str, intro: str) -> HttpResponse:
    form = form_class(request.POST if request.method == "POST" else None)
    if form.is_valid():
        result = form.identify(client_ip=client_ip(request))
        if isinstance(result, Identified):
            remember_line(request, line_id=result.line_id, email=form.cleaned_data["email"])
            return redirect("portal:invoices")
        form.show_refusal(result)
    return no_store(render(request, "portal/identify.html", {"form": form, "title": title, "intro": intro}))


@sensitive_post_parameters("fidelio_code")  # never in an error report
@require_http_methods(["GET", "POST"])
def mobile(request: HttpRequest) -> HttpResponse:
    return _identify(request, MobileForm, title=_("Paiement des factures mobile"),
                     intro=_("Renseignez votre numéro de téléphone mobile et le code fidelio reçu par SMS."))


@sensitive_post_parameters("payment_code")  # never in an error report
@require_http_methods(["GET", "POST"])
def fixed(request: HttpRequest) -> HttpResponse:
    return _identify(request, FixedForm, title=_("Paiement des factures fixe"),
                     intro=_("Renseignez votre numéro de téléphone fixe et le code de paiement figurant sur votre "
                             "facture."))


@require_http_methods(["GET", "POST"])
def internet(request: HttpRequest) -> HttpResponse:
    return _identify(request, InternetForm, title=_("Paiement des factures internet"),
                     intro=_("Renseignez l'identifiant de paiement figurant sur votre facture."))


def invoices(request: HttpRequest) -> HttpResponse:
    """The identified line's unpaid invoices; without an identification in this session, back to the start."""
    identified = identified_line(request)
    statement = line_unpaid_invoices(line_id=identified.line_id) if identified else None
    if statement is None:
        forget_line(request)
        return redirect("portal:home")
    return no_store(render(request, "portal/invoices.html", {"statement": statement, "email": identified.email}))


@require_safe
def bill_pdf(request: HttpRequest, reference: str) -> HttpResponse:
    """The monthly bill that holds the invoice ``reference``, as a PDF in the page's language; only when that
    invoice is the line identified in this session. Any other reference, or no identification, is a 404 that
    says nothing of whether the bill exists."""
    identified = identified_line(request)
    bill_id = line_bill_id(line_id=identified.line_id, reference=reference) if identified else None
    bill = bill_document(bill_id=bill_id) if bill_id is not None else None
    if bill is None:
        raise Http404
    response = HttpResponse(render_bill_pdf(bill, language=translation.get_language()),
                            content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{bill.filename}"'
    return no_store(response)


def conditions(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/conditions.html")
