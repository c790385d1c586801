"""The card-data scan the flows end with (tests.support.pci) finds what it must and only that."""

import pytest

from tests.support import pci
from tests.support.pci import card_data_findings, card_numbers_in

VISA = "4000110000000017"


@pytest.mark.parametrize("text", [
    VISA, f"pan={VISA}", f'{{"number": "{VISA}"}}', f"carte {VISA}.", f"\x00\x01{VISA}\x02",
    f"2026-11-26 19:47:24 INFO x {VISA}\n",
])
def test_a_card_number_standing_apart_is_found(text):
    assert card_numbers_in(text) == [VISA]


@pytest.mark.parametrize("text", [
    # An email's Message-ID and MIME boundary (random numbers of the email package).
    "Message-ID: <179571895920.1333.4958529770630152895@localhost>",
    "--===============4610496691024017948==",
    # Digests and UUIDs side by side (SQLite files), digits of a digest.
    "1ae47bbbd41747a680272f4050726714279941d5-26dd-4a09",
    f"e{VISA}", f"{VISA}f",
    # Masked numbers, too short or too long runs.
    "400011******0017", "400011000000", "40001100000000170000",
])
def test_what_is_not_a_card_number_is_left_alone(text):
    assert card_numbers_in(text) == []


def test_every_place_is_scanned_for_numbers_cvvs_and_secrets(monkeypatch):
    """(A card number is never written to the test database, even to show the scan finds it: its freed pages
    would keep it in the SQLite file for every later test.)"""
    monkeypatch.setattr(pci, "database_text", lambda: f"titulaire {VISA}")
    monkeypatch.setattr(pci, "database_files_text", lambda: '"cvv": "417"')
    monkeypatch.setattr(pci, "logs_text", lambda: "SECRET-CODE")
    assert card_data_findings(extra_secrets=("SECRET-CODE",)) == [
        "database: card number 400011…0017", "database files: CVV cvv…", "logs: secret SECR…"]


def test_in_the_database_files_a_known_card_is_found_and_joined_numbers_are_not(monkeypatch):
    """Columns side by side in a SQLite page: « 252 » then an invoice reference make a Luhn-valid 19-digit run
    (2520000400001102026) that is no card; a sandbox card number is found wherever it stands."""
    assert card_numbers_in("2520000400001102026") == ["2520000400001102026"]
    monkeypatch.setattr(pci, "database_text", lambda: "")
    monkeypatch.setattr(pci, "logs_text", lambda: "")
    monkeypatch.setattr(pci, "database_files_text", lambda: "x2520000400001102026y")
    assert card_data_findings() == []
    monkeypatch.setattr(pci, "database_files_text", lambda: f"\x00ab{VISA}99\x01")
    assert card_data_findings() == ["database files: secret 4000…"]


@pytest.mark.parametrize(("text", "found"), [
    ("cvv=123", True), ('"cvc": "417"', True), ("CVV2 1234", True), ("card_cvv: 226", True), ("cvv 417.", True),
    # A random token (the gateway's payment page token, a session key) that happens to hold the letters.
    ("/paiement/159NlE1wXXv2tuL3cvc217JdGlb6gqz1R24Foh3Mh9E", False), ("abcvv1234", False), ("cvc2175x", False),
])
def test_a_cvv_is_found_by_its_name_and_not_inside_a_random_token(text, found):
    assert bool(pci.CVV_NEAR_NAME.search(text)) is found
