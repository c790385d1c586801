"""After every kind of authorization, capture, void and 3-D Secure authentication, no bank table holds a card
number or a CVV (DESIGN.md §7.6): only fingerprints, masked numbers and keyed hashes."""

import pytest
from django.db import connection
from django.utils import timezone

from tasdid.bank import sandbox, services
from tasdid.bank.models import Hold
from tasdid.core.cards import find_card_numbers
from tests.support.pci import card_data_findings

from .conftest import areq_message, bank_rows

pytestmark = pytest.mark.django_db


def exercise_the_bank():
    for i, card in enumerate(sandbox.CARDS):
        month, year = card.expiry.split("/")
        extra = {}
        if card.three_d_secure != "none":
            ares = services.areq_answer(message=areq_message(card, server_url="https://gw.example.ma"))
            if card.three_d_secure == "challenge":
                services.challenge_open(acs_trans_id=ares["acsTransID"],
                                        three_ds_server_trans_id=ares["threeDSServerTransID"])
                services.challenge_cancel(acs_trans_id=ares["acsTransID"])
            else:
                extra = {"eci": ares["eci"], "authentication_value": ares["authenticationValue"],
                         "ds_trans_id": ares["dsTransID"], "trans_status": "Y"}
        outcome = services.authorize(
            pan=card.number, expiry_yymm=year + month, cvv=card.cvv, amount_minor=28500, currency="504",
            merchant_id="600000001", stan=f"{i + 1:06d}", transmitted_at=timezone.now(), **extra)
        if outcome.approved:
            hold = Hold.objects.get(rrn=outcome.rrn)
            if i % 2:
                services.hold_void(merchant_id="600000001", rrn=outcome.rrn, original_stan=hold.stan,
                                   original_transmitted_at=hold.transmitted_at)
            else:
                services.hold_capture(merchant_id="600000001", rrn=outcome.rrn, original_stan=hold.stan,
                                      original_transmitted_at=hold.transmitted_at, amount_minor=28500,
                                      currency="504")
    services.authorize(pan=sandbox.UNKNOWN_NUMBER, expiry_yymm="2912", cvv="123", amount_minor=100,
                       currency="504", merchant_id="600000001", stan="000999", transmitted_at=timezone.now())


def test_no_card_number_nor_cvv_in_any_bank_table(banks):
    exercise_the_bank()
    rows = bank_rows()
    tables = {table for table, _row in rows}
    assert {"bank_card", "bank_authorization", "bank_hold", "bank_acstransaction", "bank_ledgerentry"} <= tables
    numbers = {c.number for c in sandbox.CARDS} | {sandbox.UNKNOWN_NUMBER}
    cvvs = {c.cvv for c in sandbox.CARDS} | {c.bank_cvv for c in sandbox.CARDS}
    for table, row in rows:
        text = " ".join(str(v) for v in row)
        assert not any(n in text for n in numbers), table
        assert find_card_numbers(text) == [], table
        assert not any(isinstance(v, str) and v in cvvs for v in row), (table, row)
    # What the bank does keep to recognise a card: a fingerprint, the masked number, the last four digits.
    masked = {row[0] for row in bank_rows_of("SELECT masked_pan FROM bank_authorization")}
    assert "522011******0026" in masked and "400011******9998" in masked
    # And the project-wide scan: every table, the SQLite files, the logs.
    assert card_data_findings() == []


def bank_rows_of(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()
