"""The identification forms check the shape of what was typed, in French, before any service is called."""

import pytest

from tasdid.portal.forms import FixedForm, InternetForm, MobileForm

MOBILE_OK = {"number": "06 61 00 00 01", "fidelio_code": "123456", "email": "a@example.ma",
             "email_confirmation": "a@example.ma", "terms": "on"}
FIXED_OK = {"number": "05 22 00 00 01", "payment_code": "4821", "email": "a@example.ma", "terms": "on"}
INTERNET_OK = {"payment_identifier": "12 345 678", "email": "a@example.ma", "terms": "on"}


@pytest.mark.parametrize("typed", ["06 61 00 00 01", "0661000001", "+212661000001", "00212661000001",
                                   "06.61.00.00.01", "+212 6 61 00 00 01", " 0661-000001 "])
def test_mobile_numbers_are_cleaned_to_e164(typed):
    form = MobileForm({**MOBILE_OK, "number": typed})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["number"] == "+212661000001"


def test_07_numbers_are_mobile_numbers():
    form = MobileForm({**MOBILE_OK, "number": "0712345678"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["number"] == "+212712345678"


@pytest.mark.parametrize(("form_class", "data", "field", "message"), [
    (MobileForm, {**MOBILE_OK, "number": "0522000001"}, "number",
     "Ce numéro n'est pas un numéro mobile : il commence par 06 ou 07."),
    (MobileForm, {**MOBILE_OK, "number": "12"}, "number",
     "Saisissez un numéro de téléphone mobile marocain valide, par exemple 06 12 34 56 78."),
    (MobileForm, {**MOBILE_OK, "number": "+33612345678"}, "number",
     "Saisissez un numéro de téléphone mobile marocain valide, par exemple 06 12 34 56 78."),
    (MobileForm, {**MOBILE_OK, "number": "abc"}, "number",
     "Saisissez un numéro de téléphone mobile marocain valide, par exemple 06 12 34 56 78."),
    (MobileForm, {**MOBILE_OK, "number": ""}, "number", "Ce champ est obligatoire."),
    (FixedForm, {**FIXED_OK, "number": "0661000001"}, "number",
     "Ce numéro n'est pas un numéro fixe : il commence par 05."),
    (FixedForm, {**FIXED_OK, "number": "0522"}, "number",
     "Saisissez un numéro de téléphone fixe marocain valide, par exemple 05 22 12 34 56."),
])
def test_phone_numbers_of_the_wrong_kind_or_shape(form_class, data, field, message):
    form = form_class(data)
    assert not form.is_valid()
    assert form.errors[field] == [message]


def test_emails_must_match_case_aside():
    form = MobileForm({**MOBILE_OK, "email_confirmation": "b@example.ma"})
    assert not form.is_valid()
    assert form.errors == {"email_confirmation": ["Les deux adresses email ne correspondent pas."]}
    assert MobileForm({**MOBILE_OK, "email_confirmation": "A@Example.MA"}).is_valid()


@pytest.mark.parametrize("email", ["pas-un-email", "a@", "@example.ma", "a b@example.ma"])
def test_invalid_emails(email):
    form = FixedForm({**FIXED_OK, "email": email})
    assert not form.is_valid()
    assert form.errors == {"email": ["Saisissez une adresse email valide, par exemple nom@exemple.ma."]}


@pytest.mark.parametrize("form_class,data", [(MobileForm, MOBILE_OK), (FixedForm, FIXED_OK),
                                             (InternetForm, INTERNET_OK)])
def test_terms_must_be_accepted(form_class, data):
    form = form_class({k: v for k, v in data.items() if k != "terms"})
    assert not form.is_valid()
    assert form.errors == {"terms": ["Vous devez accepter les conditions générales d'utilisation pour continuer."]}


@pytest.mark.parametrize("code", ["12345", "1234567", "12345a", "12345²", "-"])
def test_fidelio_code_is_six_digits(code):
    form = MobileForm({**MOBILE_OK, "fidelio_code": code})
    assert not form.is_valid()
    assert form.errors == {"fidelio_code": ["Le code fidelio est composé de 6 chiffres."]}


def test_spaces_in_codes_and_identifiers_are_ignored():
    mobile = MobileForm({**MOBILE_OK, "fidelio_code": " 123 456 "})
    internet = InternetForm(INTERNET_OK)
    assert mobile.is_valid() and internet.is_valid()
    assert mobile.cleaned_data["fidelio_code"] == "123456"
    assert internet.cleaned_data["payment_identifier"] == "12345678"


@pytest.mark.parametrize(("typed", "clean"), [("١٢٣٤٥٦", "123456"), ("１２３４５６", "123456"), ("12-34.56", "123456")])
def test_digits_of_any_script_are_read_as_digits(typed, clean):
    form = MobileForm({**MOBILE_OK, "fidelio_code": typed})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["fidelio_code"] == clean


@pytest.mark.parametrize(("number", "code", "identifier"), [
    ("٠٥ ٢٢ ٠٠ ٠٠ ٠١", "٤٨٢١", "١٢ ٣٤٥ ٦٧٨"),
    ("۰۵.۲۲.۰۰.۰۰.۰۱", "۴۸۲۱", "۱۲-۳۴۵-۶۷۸"),
    ("０５ ２２ ００ ００ ０１", "４８２１", "１２\u00a0３４５\u00a0６７８"),
    ("+２１２ ５－２２－００－００－０１", "4８2１", "12３45６78"),
])
def test_numbers_codes_and_identifiers_in_any_script_s_digits_are_the_same_as_in_ascii(number, code, identifier):
    # One reading for every party (tasdid.core.digits): the import and the gateway's card form read them so too.
    fixed = FixedForm({**FIXED_OK, "number": number, "payment_code": code})
    internet = InternetForm({**INTERNET_OK, "payment_identifier": identifier})
    assert fixed.is_valid() and internet.is_valid(), (fixed.errors, internet.errors)
    assert (fixed.cleaned_data["number"], fixed.cleaned_data["payment_code"]) == ("+212522000001", "4821")
    assert internet.cleaned_data["payment_identifier"] == "12345678"


def test_identifier_is_digits():
    form = InternetForm({**INTERNET_OK, "payment_identifier": "ab cde fgh"})
    assert not form.is_valid()
    assert form.errors == {"payment_identifier": [
        "L'identifiant de paiement est composé de chiffres (format xx xxx xxx), tel qu'il figure sur votre facture."]}


def test_the_code_is_never_shown_back_but_the_rest_is():
    form = MobileForm({**MOBILE_OK, "fidelio_code": "654321", "email_confirmation": "x@example.ma"})
    assert not form.is_valid()
    html = str(form["fidelio_code"]) + str(form["number"]) + str(form["email"])
    assert "654321" not in html
    assert 'value="06 61 00 00 01"' in html and 'value="a@example.ma"' in html
