"""The sandbox cards: valid numbers of the right brand and bank, one per behaviour, listed by the CLI."""

import io
import json

from django.core.management import call_command

from tasdid.bank import sandbox
from tasdid.core.cards import DEFAULT_BIN_TABLE, brand_of, luhn_valid
from tasdid.core.phones import PhoneKind, parse_number

EXPECTED = [  # (brand, 3-D Secure, response code)
    ("VISA", "none", "00"), ("MASTERCARD", "challenge", "00"), ("CMI", "none", "00"), ("VISA", "frictionless", "00"),
    ("MASTERCARD", "none", "51"), ("VISA", "none", "54"), ("MASTERCARD", "none", "05"), ("VISA", "none", "41"),
    ("MASTERCARD", "none", "43"), ("CMI", "none", "N7"),
]


def test_one_card_per_behaviour():
    assert [(c.brand, c.three_d_secure, c.response_code) for c in sandbox.CARDS] == EXPECTED


def test_numbers_are_luhn_valid_of_their_brand_and_bank():
    numbers = [c.number for c in sandbox.CARDS]
    assert len(set(numbers)) == len(numbers)
    for card in sandbox.CARDS:
        assert len(card.number) == 16 and luhn_valid(card.number)
        assert brand_of(card.number, DEFAULT_BIN_TABLE) == card.brand
        assert any(card.number.startswith(p) for p in sandbox.BANKS_BY_CODE[card.bank].bin_prefixes)
    assert luhn_valid(sandbox.UNKNOWN_NUMBER) and sandbox.UNKNOWN_NUMBER not in numbers


def test_phones_are_distinct_moroccan_mobiles_outside_the_billers_ranges():
    phones = [c.phone for c in sandbox.CARDS]
    assert len(set(phones)) == len(phones)
    for phone in phones:
        assert parse_number(phone, PhoneKind.MOBILE) == phone
        assert phone.startswith("+2126620000")


def test_expiries_are_future_except_the_expired_card():
    for card in sandbox.CARDS:
        month, year = card.expiry.split("/")
        assert 1 <= int(month) <= 12 and int(year) >= 27, card
        if card.response_code != "54":
            assert card.bank_expiry == card.expiry
    expired = sandbox.card_by_outcome("54")
    assert (expired.bank_expiry, expired.expiry) == ("03/25", "03/29")


def test_short_names_fit_an_sms_sender():
    assert [(b.name, b.short_name) for b in sandbox.BANKS] == [("Banque Atlas", "BanqueAtlas"),
                                                               ("Crédit du Sahel", "CreditSahel")]
    assert all(len(b.short_name) <= 11 for b in sandbox.BANKS)


def test_wrong_cvv_card_documents_a_cvv_that_is_not_the_cards():
    card = sandbox.card_by_outcome("N7")
    assert card.cvv == "000" and card.bank_cvv == "101"


def test_sandbox_cards_json():
    out = io.StringIO()
    call_command("sandbox_cards", "--json", stdout=out)
    cards = json.loads(out.getvalue())
    assert len(cards) == len(sandbox.CARDS)
    assert cards[1] == {
        "bank": "Crédit du Sahel", "brand": "MASTERCARD", "brand_label": "MasterCard", "number": "5220110000000026",
        "expiry": "12/28", "cvv": "226", "phone": "+212662000002", "holder": "Youssef El Idrissi",
        "three_d_secure": "challenge", "outcome": "3-D Secure : code reçu par SMS, puis approuvée",
        "response_code": "00", "balance": "10000.00",
    }
    for card in cards:
        assert {"bank", "brand", "number", "expiry", "cvv", "phone", "holder", "three_d_secure", "outcome",
                "response_code"} <= set(card)


def test_sandbox_cards_table():
    out = io.StringIO()
    call_command("sandbox_cards", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:4] == ["Banque", "Type", "Numéro", "Exp."]
    assert len(lines) == 2 + len(sandbox.CARDS)
    assert "5220110000000026" in lines[3] and "06 62 00 00 02" in lines[3] and "challenge" in lines[3]


def test_the_cli_groups_sandbox_cards(capsys):
    from tasdid.cli import main

    main(["sandbox", "cards", "--json"])
    assert json.loads(capsys.readouterr().out)[0]["number"] == "4000110000000017"
