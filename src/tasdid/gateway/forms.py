"""The hosted page's card form: the guide's fields, checked on the server (Luhn, card type by BIN, expiry,
CVV, terms). The card number and the CVV are never written back into a page."""

import datetime as dt
from collections.abc import Mapping, Sequence

from django import forms
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from tasdid.core import digits
from tasdid.core.acquiring import CardData
from tasdid.core.cards import (
    BRAND_LABELS,
    brand_of,
    is_digits,
    luhn_valid,
    mask,
    parse_expiry,
)

CARD_TYPES = [("CMI", "CMI"), ("MASTERCARD", BRAND_LABELS["MASTERCARD"]), ("VISA", BRAND_LABELS["VISA"])]
PAN_LENGTH = 16
YEARS_AHEAD = 15


class NoEchoInput(forms.TextInput):
    """A text input that never renders its value back: what was typed stays in the customer's browser."""

    def format_value(self, value):
        return None


class CardForm(forms.Form):
    card_type = forms.ChoiceField(
        label=_("Type de carte"),
        choices=[("", _("Choisissez le type de carte")), *CARD_TYPES],
        error_messages={"required": _("Choisissez le type de votre carte."),
                        "invalid_choice": _("Choisissez CMI, MasterCard ou Visa.")},
    )
    card_number = forms.CharField(
        label=_("Numéro de carte"),
        help_text=_("Les 16 chiffres gravés sur la face avant de votre carte."),
        max_length=40,
        strip=True,
        widget=NoEchoInput(attrs={"autocomplete": "cc-number", "inputmode": "numeric", "spellcheck": "false",
                                  "placeholder": "0000 0000 0000 0000"}),
        error_messages={"required": _("Saisissez le numéro de votre carte."),
                        "max_length": _("Le numéro de carte doit comporter 16 chiffres.")},
    )
    expiry_month = forms.TypedChoiceField(
        label=_("Mois"),
        coerce=int,
        choices=[("", _("Mois")), *((m, f"{m:02d}") for m in range(1, 13))],
        widget=forms.Select(attrs={"autocomplete": "cc-exp-month"}),
        error_messages={"required": _("Choisissez le mois d'expiration."),
                        "invalid_choice": _("Choisissez le mois d'expiration.")},
    )
    expiry_year = forms.IntegerField(
        label=_("Année"),
        widget=forms.Select(attrs={"autocomplete": "cc-exp-year"}),
        error_messages={"required": _("Choisissez l'année d'expiration."),
                        "invalid": _("Choisissez l'année d'expiration.")},
    )
    cvv = forms.CharField(
        label=_("Code de vérification (CVV)"),
        help_text=_("Les 3 chiffres au dos de votre carte."),
        max_length=8,
        strip=True,
        widget=NoEchoInput(attrs={"autocomplete": "cc-csc", "inputmode": "numeric",
                                  "spellcheck": "false"}),
        error_messages={"required": _("Saisissez le code de vérification à 3 chiffres."),
                        "max_length": _("Le code de vérification doit comporter 3 chiffres.")},
    )
    terms = forms.BooleanField(
        label=_("J'accepte les conditions générales d'utilisation"),
        error_messages={"required": _("Vous devez accepter les conditions générales d'utilisation.")},
    )

    def __init__(self, *args, today: dt.date, bin_table: Mapping[str, Sequence[str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today
        self.bin_table = bin_table
        years = [(y, str(y)) for y in range(today.year, today.year + YEARS_AHEAD + 1)]
        self.fields["expiry_year"].widget.choices = [("", _("Année")), *years]

    @staticmethod
    @sensitive_variables()
    def _typed_number(text: str) -> str:
        # Spaces, dots and dashes between groups are dropped; any script's digits mean ASCII digits.
        return digits.normalize(text)

    @sensitive_variables()
    def clean_card_number(self) -> str:
        number = self._typed_number(self.cleaned_data["card_number"])
        if not is_digits(number, PAN_LENGTH):
            raise forms.ValidationError(_("Le numéro de carte doit comporter 16 chiffres."), code="length")
        if not luhn_valid(number):
            raise forms.ValidationError(_("Ce numéro de carte n'est pas valide : vérifiez-le."), code="luhn")
        return number

    @sensitive_variables()
    def clean_cvv(self) -> str:
        cvv = digits.normalize(self.cleaned_data["cvv"])
        if not is_digits(cvv, 3):
            raise forms.ValidationError(_("Le code de vérification doit comporter 3 chiffres."), code="cvv")
        return cvv

    @sensitive_variables()
    def clean(self):
        data = super().clean()
        number, card_type = data.get("card_number"), data.get("card_type")
        if number and card_type and brand_of(number, self.bin_table) != card_type:
            self.add_error("card_number", forms.ValidationError(
                _("Ce numéro ne correspond pas au type de carte choisi (%(type)s).")
                % {"type": dict(CARD_TYPES)[card_type]}, code="brand"))
        month, year = data.get("expiry_month"), data.get("expiry_year")
        if month is not None and year is not None:
            try:
                expiry = parse_expiry(month, year)
            except ValueError:
                self.add_error("expiry_year", forms.ValidationError(_("Choisissez l'année d'expiration."),
                                                                    code="expiry"))
            else:
                if expiry.is_past(self.today):
                    self.add_error("expiry_month", forms.ValidationError(
                        _("La date d'expiration est dépassée : cette carte n'est plus valable."), code="expired"))
                else:
                    data["expiry"] = expiry
        return data

    @property
    @sensitive_variables()
    def masked_number(self) -> str:
        """The number as typed, masked (first 6 and last 4), to hint at a typing error; "" when too short."""
        raw = self._typed_number(self.data.get(self.add_prefix("card_number"), "") if self.is_bound else "")
        return mask(raw) if is_digits(raw) and 13 <= len(raw) <= 19 else ""

    @sensitive_variables()
    def card_data(self) -> CardData:
        data = self.cleaned_data
        return CardData(pan=data["card_number"], expiry_yymm=data["expiry"].yymm, cvv=data["cvv"])
