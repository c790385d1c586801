"""The public check of a receipt on the biller's site: by the link of its QR code, or by typing its number and
verification code. It says whether the receipt is genuine and shows nothing personal."""

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_safe

from tasdid.billing.receipts import normalize_receipt_number, normalize_verification_code
from tasdid.billing.services.receipt_checks import (
    Genuine,
    NotGenuine,
    ReceiptCheckOutcome,
    TooManyChecks,
    receipt_check,
)
from tasdid.core.http import client_ip, no_store

TEMPLATE = "portal/receipt/verify.html"


class ReceiptCheckForm(forms.Form):
    """The receipt's number and the verification code printed under its QR code, as people type them."""

    receipt_number = forms.CharField(
        label=gettext_lazy("N° de reçu"), max_length=64,
        help_text=gettext_lazy("Par exemple R2026-00000042, en haut du reçu."),
        error_messages={"required": gettext_lazy("Saisissez le n° de reçu.")},
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "dir": "ltr"}))
    code = forms.CharField(
        label=gettext_lazy("Code de vérification"), max_length=64,
        help_text=gettext_lazy("10 caractères imprimés sous le code QR du reçu, par exemple 7KQ2M-XD4TB."),
        error_messages={"required": gettext_lazy("Saisissez le code de vérification.")},
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "dir": "ltr"}))

    def clean_receipt_number(self) -> str:
        number = normalize_receipt_number(self.cleaned_data["receipt_number"])
        if not number:
            raise forms.ValidationError(gettext_lazy("Un n° de reçu s'écrit comme R2026-00000042."))
        return number

    def clean_code(self) -> str:
        code = normalize_verification_code(self.cleaned_data["code"])
        if not code:
            raise forms.ValidationError(gettext_lazy("Un code de vérification a 10 lettres et chiffres, comme "
                                                     "7KQ2M-XD4TB."))
        return code


def _answer(request: HttpRequest, *, form: ReceiptCheckForm, outcome: ReceiptCheckOutcome | None) -> HttpResponse:
    """The page with the check's answer. A forged or altered receipt is an answer too (200, like a genuine one);
    429 only when this address has made too many wrong checks and nothing was looked up."""
    context = {
        "form": form,
        "outcome": outcome,
        "genuine": outcome.receipt if isinstance(outcome, Genuine) else None,
        "not_genuine": isinstance(outcome, NotGenuine),
        "too_many": isinstance(outcome, TooManyChecks),
        "retry_minutes": outcome.retry_after_seconds // 60 if isinstance(outcome, TooManyChecks) else 0,
    }
    response = render(request, TEMPLATE, context, status=429 if isinstance(outcome, TooManyChecks) else 200)
    if isinstance(outcome, TooManyChecks):
        response["Retry-After"] = str(outcome.retry_after_seconds)
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return no_store(response)


@require_http_methods(["GET", "HEAD", "POST"])
def receipt_verify(request: HttpRequest) -> HttpResponse:
    """« Vérifier un reçu »: the form, and its answer."""
    if request.method != "POST":
        return _answer(request, form=ReceiptCheckForm(), outcome=None)
    form = ReceiptCheckForm(request.POST)
    if not form.is_valid():
        return _answer(request, form=form, outcome=None)
    outcome = receipt_check(receipt_number=form.cleaned_data["receipt_number"], code=form.cleaned_data["code"],
                            client_ip=client_ip(request))
    return _answer(request, form=form, outcome=outcome)


@require_safe
def receipt_verify_link(request: HttpRequest, receipt_number: str, code: str) -> HttpResponse:
    """The link in a receipt's QR code: the answer at once, the form (empty) below it."""
    outcome = receipt_check(receipt_number=receipt_number, code=code, client_ip=client_ip(request))
    return _answer(request, form=ReceiptCheckForm(), outcome=outcome)
