"""The three identification forms of the guide. They check the shape of what was typed (a Moroccan number of
the right kind, a code of the right form, emails that match, the terms ticked) and hand it to the
identification service, which decides; a refusal is shown next to the field it is about."""

import datetime as dt
import re

from django import forms
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tasdid.billing.clock import clock_text
from tasdid.billing.selectors.bills import BILL_LABELS
from tasdid.billing.services.identification import (
    Identification,
    Refusal,
    Refused,
    identify_fixed,
    identify_internet,
    identify_mobile,
)
from tasdid.core import digits
from tasdid.core.phones import PhoneError, PhoneKind, parse_number

REQUIRED = gettext_lazy("Ce champ est obligatoire.")


class CodeInput(forms.TextInput):
    """A code box that never shows back what was typed (a refused form comes back with it empty)."""

    def format_value(self, value):
        return None


class MoroccanPhoneField(forms.CharField):
    """A Moroccan number of one kind (mobile 06/07, fixed 05), cleaned to E.164."""

    def __init__(self, *, kind: PhoneKind, **kwargs):
        self.kind = kind
        kwargs.setdefault("max_length", 30)
        kwargs.setdefault("widget", forms.TextInput(attrs={"type": "tel", "autocomplete": "tel-national",
                                                           "inputmode": "tel"}))
        super().__init__(**kwargs)

    def clean(self, value):
        text = super().clean(value)
        try:
            return parse_number(text, self.kind)
        except PhoneError as exc:
            if exc.code == "wrong_kind" and self.kind == PhoneKind.MOBILE:
                message = _("Ce numéro n'est pas un numéro mobile : il commence par 06 ou 07.")
            elif exc.code == "wrong_kind":
                message = _("Ce numéro n'est pas un numéro fixe : il commence par 05.")
            elif self.kind == PhoneKind.MOBILE:
                message = _("Saisissez un numéro de téléphone mobile marocain valide, par exemple 06 12 34 56 78.")
            else:
                message = _("Saisissez un numéro de téléphone fixe marocain valide, par exemple 05 22 12 34 56.")
            raise forms.ValidationError(message, code=exc.code) from exc


def _without_spaces(text: str) -> str:
    """What was typed, without spaces, dots or dashes, any script's digits as ASCII ("٤٨٢١" -> "4821")."""
    return digits.normalize(text)


class IdentificationForm(forms.Form):
    """What the three forms share: the notification email and the terms of use."""

    email = forms.EmailField(
        label=gettext_lazy("Adresse email de notification"), max_length=254,
        help_text=gettext_lazy("Votre justificatif de règlement vous sera envoyé à cette adresse."),
        error_messages={"required": REQUIRED,
                        "invalid": gettext_lazy("Saisissez une adresse email valide, par exemple nom@exemple.ma.")},
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    terms = forms.BooleanField(
        label=gettext_lazy("J'accepte les conditions générales d'utilisation"),
        error_messages={"required": gettext_lazy(
            "Vous devez accepter les conditions générales d'utilisation pour continuer.")},
    )

    line_field = ""  # the field a refusal about the line goes next to
    code_field = ""  # the field a wrong code goes next to

    def identify(self, *, client_ip: str) -> Identification:
        raise NotImplementedError

    def unknown_line_message(self) -> str:
        raise NotImplementedError

    def wrong_code_message(self) -> str:
        raise NotImplementedError

    def show_refusal(self, refused: Refused, *, now: dt.datetime | None = None) -> None:
        """Put the service's refusal next to the field it is about, in French."""
        now = now or timezone.now()
        if refused.reason == Refusal.UNKNOWN_LINE:
            self.add_error(self.line_field, self.unknown_line_message())
        elif refused.reason == Refusal.WRONG_CODE:
            self.add_error(self.code_field, self.wrong_code_message())
        elif refused.reason == Refusal.LINE_LOCKED:
            self.add_error(self.line_field, _(
                "Trop de codes erronés : cette ligne est bloquée jusqu'à %(until)s. Réessayez ensuite."
            ) % {"until": clock_text(refused.locked_until, now)})
        else:
            self.add_error(None, _("Trop de tentatives depuis votre connexion. Réessayez dans quelques minutes."))


class MobileForm(IdentificationForm):
    number = MoroccanPhoneField(kind=PhoneKind.MOBILE, label=gettext_lazy("Numéro de téléphone mobile"),
                                error_messages={"required": REQUIRED})
    fidelio_code = forms.CharField(
        label=gettext_lazy("Code fidelio"), max_length=20,
        help_text=gettext_lazy("Pour obtenir votre code fidelio, envoyez « code » par SMS au 1111."),
        error_messages={"required": REQUIRED},
        widget=CodeInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    email_confirmation = forms.EmailField(
        label=gettext_lazy("Confirmation de l'adresse email"), max_length=254,
        error_messages={"required": REQUIRED,
                        "invalid": gettext_lazy("Saisissez une adresse email valide, par exemple nom@exemple.ma.")},
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    field_order = ["number", "fidelio_code", "email", "email_confirmation", "terms"]
    line_field, code_field = "number", "fidelio_code"

    def clean_fidelio_code(self) -> str:
        code = _without_spaces(self.cleaned_data["fidelio_code"])
        if not re.fullmatch(r"[0-9]{6}", code):
            raise forms.ValidationError(_("Le code fidelio est composé de 6 chiffres."), code="shape")
        return code

    def clean(self):
        cleaned = super().clean()
        email, confirmation = cleaned.get("email"), cleaned.get("email_confirmation")
        if email and confirmation and email.casefold() != confirmation.casefold():
            self.add_error("email_confirmation", _("Les deux adresses email ne correspondent pas."))
        return cleaned

    def identify(self, *, client_ip: str) -> Identification:
        return identify_mobile(number=self.cleaned_data["number"], fidelio_code=self.cleaned_data["fidelio_code"],
                               client_ip=client_ip)

    def unknown_line_message(self) -> str:
        return _("Aucune ligne mobile ne correspond à ce numéro.")

    def wrong_code_message(self) -> str:
        return _("Code fidelio incorrect ou expiré. Envoyez « code » au 1111 pour en recevoir un nouveau.")


class FixedForm(IdentificationForm):
    number = MoroccanPhoneField(kind=PhoneKind.FIXED, label=gettext_lazy("Numéro de téléphone fixe"),
                                error_messages={"required": REQUIRED})
    payment_code = forms.CharField(
        label=gettext_lazy("Code de paiement fixe"), max_length=40,
        # The label as the bill in the page's language prints it (« رمز أداء الهاتف الثابت » on an Arabic bill).
        help_text=format_lazy(gettext_lazy("Il figure sur votre facture, à la ligne « {label} »."),
                              label=BILL_LABELS["fixed_payment_code"]),
        error_messages={"required": REQUIRED},
        widget=CodeInput(attrs={"autocomplete": "off"}),
    )
    field_order = ["number", "payment_code", "email", "terms"]
    line_field, code_field = "number", "payment_code"

    def clean_payment_code(self) -> str:
        code = _without_spaces(self.cleaned_data["payment_code"])
        if not re.fullmatch(r"[0-9A-Za-z]{1,16}", code):
            raise forms.ValidationError(
                _("Saisissez le code de paiement fixe tel qu'il figure sur votre facture (chiffres et lettres)."),
                code="shape")
        return code

    def identify(self, *, client_ip: str) -> Identification:
        return identify_fixed(number=self.cleaned_data["number"], payment_code=self.cleaned_data["payment_code"],
                              client_ip=client_ip)

    def unknown_line_message(self) -> str:
        return _("Aucune ligne fixe ne correspond à ce numéro.")

    def wrong_code_message(self) -> str:
        return _("Code de paiement incorrect. Vérifiez le code imprimé sur votre facture.")


class InternetForm(IdentificationForm):
    payment_identifier = forms.CharField(
        label=gettext_lazy("Identifiant de paiement"), max_length=30,
        help_text=format_lazy(gettext_lazy("Il figure sur votre facture, à la ligne « {label} » (format xx xxx xxx)."),
                              label=BILL_LABELS["internet_payment_identifier"]),
        error_messages={"required": REQUIRED},
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}),
    )
    field_order = ["payment_identifier", "email", "terms"]
    line_field = code_field = "payment_identifier"

    def clean_payment_identifier(self) -> str:
        identifier = _without_spaces(self.cleaned_data["payment_identifier"])
        if not re.fullmatch(r"[0-9]{4,16}", identifier):
            raise forms.ValidationError(
                _("L'identifiant de paiement est composé de chiffres (format xx xxx xxx), tel qu'il figure sur "
                  "votre facture."), code="shape")
        return identifier

    def identify(self, *, client_ip: str) -> Identification:
        return identify_internet(payment_identifier=self.cleaned_data["payment_identifier"], client_ip=client_ip)

    def unknown_line_message(self) -> str:
        return _("Aucune ligne internet ne correspond à cet identifiant de paiement.")

    def wrong_code_message(self) -> str:  # pragma: no cover - an internet line has no code besides its identifier
        return self.unknown_line_message()
