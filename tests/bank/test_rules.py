"""The authorization decision as a pure function: every response code, the order of the checks, and that an
approval never spends more than the available balance."""

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasdid.bank.rules import Decision, Snapshot, decide, parse_typed_expiry

TODAY = dt.date(2026, 11, 26)

GOOD = Snapshot(
    amount=Decimal("285.00"), currency="504", card_known=True, today=TODAY, card_status="active",
    card_expiry=(2028, 12), typed_expiry=(2028, 12), cvv_matches=True, enrolment="none",
    authentication_valid=False, available_balance=Decimal("1000.00"),
)


def test_a_good_request_is_approved():
    assert decide(GOOD) == Decision("00", "approved")
    assert decide(GOOD).approved


@pytest.mark.parametrize(
    ("change", "code", "reason"),
    [
        ({"amount": Decimal("0.00")}, "13", "invalid amount"),
        ({"amount": Decimal("-1.00")}, "13", "invalid amount"),
        ({"amount": Decimal("10000000000.00")}, "13", "invalid amount"),
        ({"amount": Decimal("1.005")}, "13", "invalid amount"),
        ({"currency": "978"}, "57", "currency is not MAD"),
        ({"card_known": False, "card_status": "", "card_expiry": None}, "14", "unknown card number"),
        ({"card_status": "stolen"}, "43", "card reported stolen"),
        ({"card_status": "lost"}, "41", "card reported lost"),
        ({"card_status": "blocked"}, "05", "card blocked"),
        ({"card_expiry": (2025, 3), "typed_expiry": (2025, 3)}, "54", "card expired"),
        ({"typed_expiry": (2029, 12)}, "54", "typed expiry does not match the card"),
        ({"typed_expiry": None}, "54", "typed expiry does not match the card"),
        ({"cvv_matches": False}, "N7", "CVV does not match"),
        ({"enrolment": "challenge"}, "05", "3-D Secure authentication missing or invalid"),
        ({"enrolment": "frictionless"}, "05", "3-D Secure authentication missing or invalid"),
        ({"available_balance": Decimal("285.00") - Decimal("0.01")}, "51", "insufficient funds"),
    ],
)
def test_each_response_code(change, code, reason):
    assert decide(replace(GOOD, **change)) == Decision(code, reason)


def test_an_enrolled_card_with_a_valid_authentication_is_approved():
    assert decide(replace(GOOD, enrolment="challenge", authentication_valid=True)).response_code == "00"


def test_the_whole_balance_can_be_spent_and_the_card_is_valid_through_its_expiry_month():
    exact = replace(GOOD, available_balance=Decimal("285.00"), card_expiry=(2026, 11), typed_expiry=(2026, 11))
    assert decide(exact).response_code == "00"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        # The request itself before the card: an invalid amount on an unknown card is 13, not 14.
        ({"amount": Decimal("0"), "card_known": False}, "13"),
        ({"currency": "840", "card_known": False}, "57"),
        # The card's status before anything typed: a stolen card with a wrong CVV and expiry is still 43.
        ({"card_status": "stolen", "cvv_matches": False, "typed_expiry": (2030, 1)}, "43"),
        ({"card_status": "lost", "card_expiry": (2020, 1)}, "41"),
        # Expiry before CVV, CVV before authentication, authentication before funds.
        ({"card_expiry": (2025, 1), "cvv_matches": False}, "54"),
        ({"cvv_matches": False, "enrolment": "challenge"}, "N7"),
        ({"enrolment": "challenge", "available_balance": Decimal("0")}, "05"),
    ],
)
def test_order_of_the_checks(change, code):
    assert decide(replace(GOOD, **change)).response_code == code


def test_every_code_of_the_bank_is_a_known_response_code():
    from tasdid.core import response_codes

    for code in ("00", "05", "13", "14", "41", "43", "51", "54", "57", "N7"):
        assert response_codes.TABLE[code].on_rails


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2812", (2028, 12)), ("2901", (2029, 1)), ("2813", None), ("2800", None), ("281", None), ("ab12", None),
     ("", None), ("٢٨١٢", None), ("28١٢", None)],
)
def test_typed_expiry(text, expected):
    assert parse_typed_expiry(text) == expected


cents = st.integers(min_value=-10_000, max_value=5_000_000).map(lambda c: Decimal(c) / 100)


@given(
    amount=cents,
    available=cents,
    status=st.sampled_from(["active", "lost", "stolen", "blocked"]),
    enrolment=st.sampled_from(["none", "challenge", "frictionless"]),
    authenticated=st.booleans(),
    cvv=st.booleans(),
    expiry_matches=st.booleans(),
)
def test_an_approval_never_exceeds_the_available_balance(amount, available, status, enrolment, authenticated, cvv,
                                                         expiry_matches):
    snapshot = replace(GOOD, amount=amount, available_balance=available, card_status=status, enrolment=enrolment,
                       authentication_valid=authenticated, cvv_matches=cvv,
                       typed_expiry=GOOD.card_expiry if expiry_matches else (2031, 1))
    decision = decide(snapshot)
    if decision.approved:
        assert Decimal("0") < amount <= available
        assert status == "active" and cvv and expiry_matches
        assert enrolment == "none" or authenticated
    elif amount > 0 and status == "active" and cvv and expiry_matches and (enrolment == "none" or authenticated):
        assert decision.response_code == "51"
        assert amount > available
