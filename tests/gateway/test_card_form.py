"""The card form's server-side checks (no database): Luhn, card type by BIN, expiry, CVV, terms."""

import datetime as dt

import pytest

from tasdid.core.cards import DEFAULT_BIN_TABLE, luhn_complete
from tasdid.gateway.forms import CardForm

from .conftest import CMI, MASTERCARD, VISA

TODAY = dt.date(2026, 3, 15)


def form(table=DEFAULT_BIN_TABLE, **overrides) -> CardForm:
    data = {"card_type": "VISA", "card_number": VISA, "expiry_month": "3", "expiry_year": "2026", "cvv": "123",
            "terms": "on"}
    data.update({k: v for k, v in overrides.items() if v is not None})
    for k, v in overrides.items():
        if v is None:
            data.pop(k, None)
    return CardForm(data, today=TODAY, bin_table=table)


def errors(f: CardForm) -> dict[str, list[str]]:
    f.is_valid()
    return {k: list(v) for k, v in f.errors.items()}


@pytest.mark.parametrize(("card_type", "number"), [
    ("VISA", VISA), ("MASTERCARD", MASTERCARD), ("CMI", CMI), ("VISA", "4111 1111 1111 1111"),
    ("VISA", " 4111-1111-1111-1111 "), ("MASTERCARD", luhn_complete("222100000000000")),
])
def test_a_valid_card(card_type, number):
    f = form(card_type=card_type, card_number=number)
    assert f.is_valid(), f.errors
    card = f.card_data()
    assert card.pan == number.replace(" ", "").replace("-", "").strip()
    assert card.expiry_yymm == "2603"
    assert card.cvv == "123"


@pytest.mark.parametrize(("number", "cvv"), [
    ("٤١١١ ١١١١ ١١١١ ١١١١", "١٢٣"), ("۴۱۱۱-۱۱۱۱-۱۱۱۱-۱۱۱۱", "۱۲۳"), ("٤١١١1111۱۱۱۱١١١١", "1٢3"),
    ("４１１１ １１１１ １１１１ １１１１", "１２３"), ("4111.1111.1111.1111", "123"),
    ("４１１１－1111．١١١١\u00a0۱۱۱۱", "１23"),
])
def test_a_number_typed_in_any_script_s_digits_or_with_separators_is_the_same_card(number, cvv):
    # The same reading as the biller's portal and import (tasdid.core.digits): full-width digits too.
    f = form(card_number=number, cvv=cvv)
    assert f.is_valid(), f.errors
    assert (f.card_data().pan, f.card_data().cvv) == (VISA, "123")


@pytest.mark.parametrize(("number", "message"), [
    ("4111111111111112", "Ce numéro de carte n'est pas valide : vérifiez-le."),
    ("４１１１１１１１１１１１１１１", "Le numéro de carte doit comporter 16 chiffres."),
    ("411111111111111²", "Le numéro de carte doit comporter 16 chiffres."),
    ("411111111111111", "Le numéro de carte doit comporter 16 chiffres."),
    ("41111111111111111", "Le numéro de carte doit comporter 16 chiffres."),
    ("4111a11111111111", "Le numéro de carte doit comporter 16 chiffres."),
    ("", "Saisissez le numéro de votre carte."),
    ("4" * 41, "Le numéro de carte doit comporter 16 chiffres."),
])
def test_card_number_checks(number, message):
    assert errors(form(card_number=number)) == {"card_number": [message]}


@pytest.mark.parametrize(("card_type", "number", "label"), [
    ("MASTERCARD", VISA, "MasterCard"), ("VISA", MASTERCARD, "Visa"), ("CMI", VISA, "CMI"), ("VISA", CMI, "Visa"),
    ("VISA", luhn_complete("900000000000000"), "Visa"),
])
def test_the_number_must_match_the_chosen_card_type(card_type, number, label):
    assert errors(form(card_type=card_type, card_number=number)) == {
        "card_number": [f"Ce numéro ne correspond pas au type de carte choisi ({label})."]}


def test_the_bin_table_comes_from_configuration():
    table = {"VISA": ["4"], "MASTERCARD": ["51-55"], "CMI": ["411111"]}
    assert errors(form(table, card_type="CMI")) == {}
    assert "card_number" in errors(form(table, card_type="VISA"))


def test_card_type_must_be_one_of_the_three():
    assert errors(form(card_type="AMEX")) == {"card_type": ["Choisissez CMI, MasterCard ou Visa."]}
    assert errors(form(card_type=None)) == {"card_type": ["Choisissez le type de votre carte."]}


@pytest.mark.parametrize(("month", "year", "field", "message"), [
    ("2", "2026", "expiry_month", "La date d'expiration est dépassée : cette carte n'est plus valable."),
    ("12", "2025", "expiry_month", "La date d'expiration est dépassée : cette carte n'est plus valable."),
    ("13", "2027", "expiry_month", "Choisissez le mois d'expiration."),
    (None, "2027", "expiry_month", "Choisissez le mois d'expiration."),
    ("5", None, "expiry_year", "Choisissez l'année d'expiration."),
    ("5", "deux", "expiry_year", "Choisissez l'année d'expiration."),
    ("5", "3000", "expiry_year", "Choisissez l'année d'expiration."),
])
def test_expiry_checks(month, year, field, message):
    assert errors(form(expiry_month=month, expiry_year=year)) == {field: [message]}


def test_a_card_is_valid_through_its_expiry_month():
    assert errors(form(expiry_month="3", expiry_year="2026")) == {}


@pytest.mark.parametrize(("cvv", "message"), [
    ("12", "Le code de vérification doit comporter 3 chiffres."),
    ("1234", "Le code de vérification doit comporter 3 chiffres."),
    ("12a", "Le code de vérification doit comporter 3 chiffres."),
    ("12²", "Le code de vérification doit comporter 3 chiffres."),
    ("１２", "Le code de vérification doit comporter 3 chiffres."),
    ("", "Saisissez le code de vérification à 3 chiffres."),
])
def test_cvv_checks(cvv, message):
    assert errors(form(cvv=cvv)) == {"cvv": [message]}


def test_terms_must_be_ticked():
    assert errors(form(terms=None)) == {"terms": ["Vous devez accepter les conditions générales d'utilisation."]}


def test_the_form_never_renders_the_number_or_the_cvv_back_but_hints_the_masked_number():
    f = form(card_number="4111111111111112", cvv="987")
    assert not f.is_valid()
    html = str(f["card_number"]) + str(f["cvv"])
    assert "4111111111111112" not in html and "987" not in html
    assert 'value=' not in html
    assert f.masked_number == "411111******1112"
    assert form(card_number="4111").masked_number == ""
    assert form(card_number="٤١١١١١١١١١١١١١١٢").masked_number == "411111******1112"


def test_year_choices_start_this_year():
    f = CardForm(today=TODAY, bin_table=DEFAULT_BIN_TABLE)
    years = [value for value, _label in f.fields["expiry_year"].widget.choices if value]
    assert years[0] == 2026 and years[-1] == 2041
