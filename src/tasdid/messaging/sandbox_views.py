"""The sandbox phone and mailbox (sandbox mode only): send an SMS from any number to a short number, read what a
number received, read the emails the demo's SMTP sink received."""

from functools import wraps

from csp.decorators import csp_replace
from django import forms
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from tasdid.core.http import no_store
from tasdid.core.phones import PhoneError, is_short_number, national, normalize_address

from .models import MailboxMessage
from .selectors import handset_inbox, mailbox, mailbox_attachment, mailbox_parts
from .services import sms_receive

REQUIRED = gettext_lazy("Ce champ est obligatoire.")
BAD_NUMBER = gettext_lazy("Saisissez un numéro de téléphone, par exemple 06 61 00 00 01 ou +212 6 61 00 00 01.")


def sandbox_only(view):
    """Sandbox pages do not exist outside sandbox mode (their URLs are not even routed there)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not settings.SANDBOX:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapped


class PhoneNumberField(forms.CharField):
    """Any phone number (E.164 once clean), as a handset has one."""

    def clean(self, value):
        text = super().clean(value)
        try:
            address = normalize_address(text)
        except PhoneError as exc:
            raise forms.ValidationError(BAD_NUMBER, code="invalid") from exc
        if is_short_number(address):
            raise forms.ValidationError(BAD_NUMBER, code="short")
        return address


class SendSmsForm(forms.Form):
    sender = PhoneNumberField(label=gettext_lazy("Numéro de l'expéditeur"), max_length=30,
                              error_messages={"required": REQUIRED},
                              widget=forms.TextInput(attrs={"type": "tel", "inputmode": "tel"}))
    recipient = forms.CharField(label=gettext_lazy("Numéro court du destinataire"), max_length=5, initial="1111",
                                error_messages={"required": REQUIRED})
    text = forms.CharField(label=gettext_lazy("Message"), max_length=160, initial="code",
                           error_messages={"required": REQUIRED})

    def clean_recipient(self) -> str:
        recipient = self.cleaned_data["recipient"].strip()
        if not is_short_number(recipient):
            raise forms.ValidationError(_("Envoyez à un numéro court de service (3 à 5 chiffres), par exemple 1111."))
        return recipient


class InboxForm(forms.Form):
    number = PhoneNumberField(label=gettext_lazy("Numéro du téléphone"), max_length=30,
                              error_messages={"required": REQUIRED},
                              widget=forms.TextInput(attrs={"type": "tel", "inputmode": "tel"}))


@sandbox_only
@require_http_methods(["GET", "POST"])
def phone(request: HttpRequest) -> HttpResponse:
    """POST sends an SMS as the handset ``sender``, then shows that handset's inbox; GET ?number= shows one."""
    inbox_form, inbox, number = InboxForm(), None, ""
    if request.method == "POST":
        send_form = SendSmsForm(request.POST)
        if send_form.is_valid():
            sms_receive(sender=send_form.cleaned_data["sender"], to=send_form.cleaned_data["recipient"],
                        text=send_form.cleaned_data["text"])
            query = urlencode({"number": send_form.cleaned_data["sender"], "sent": "1"})
            return redirect(f"{request.path}?{query}")
    else:
        send_form = SendSmsForm(initial={"sender": request.GET.get("number", "")})
        if "number" in request.GET:
            inbox_form = InboxForm(request.GET)
            if inbox_form.is_valid():
                number = inbox_form.cleaned_data["number"]
                inbox = list(handset_inbox(number=number))
    return no_store(render(request, "messaging/phone.html", {
        "send_form": send_form, "inbox_form": inbox_form, "inbox": inbox, "number": number,
        "number_display": national(number) if number else "", "sent": request.GET.get("sent") == "1",
    }))


@sandbox_only
@require_GET
def mail_list(request: HttpRequest) -> HttpResponse:
    to = request.GET.get("to", "").strip()[:254]
    return no_store(render(request, "messaging/mail_list.html", {"mails": mailbox(to=to or None), "to": to}))


@sandbox_only
@require_GET
def mail_detail(request: HttpRequest, message_id: int) -> HttpResponse:
    message = get_object_or_404(MailboxMessage, pk=message_id)
    return no_store(render(request, "messaging/mail_detail.html", {"message": message,
                                                                   "parts": mailbox_parts(message)}))


@sandbox_only
@require_GET
@csp_replace({"default-src": ["'none'"], "style-src": ["'unsafe-inline'"], "img-src": ["data:"],
              "script-src": ["'none'"], "form-action": ["'none'"], "sandbox": True})
def mail_html(request: HttpRequest, message_id: int) -> HttpResponse:
    """The HTML part as sent, in a sandboxed document: no script runs, no form posts, nothing loads."""
    message = get_object_or_404(MailboxMessage, pk=message_id)
    html = mailbox_parts(message)["html"]
    if not html:
        raise Http404
    return no_store(HttpResponse(html, content_type="text/html; charset=utf-8"))


@sandbox_only
@require_GET
def mail_attachment(request: HttpRequest, message_id: int, index: int) -> HttpResponse:
    """An attachment as sent (the receipt's PDF), to download: never shown inline."""
    message = get_object_or_404(MailboxMessage, pk=message_id)
    piece = mailbox_attachment(message, index)
    if piece is None:
        raise Http404
    filename, content_type, content = piece
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    return no_store(response)
