"""The sandbox banks and their test cards, one per behaviour.

The card numbers live here and in the output of ``tasdid sandbox cards`` only: the bank's database keeps a
keyed fingerprint, the masked number and the last four digits, never the number nor the CVV.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext_lazy as _

from tasdid.core import response_codes as rc
from tasdid.core.cards import BRAND_LABELS


@dataclass(frozen=True)
class SandboxBank:
    code: str
    name: str
    short_name: str  # the SMS sender name (at most 11 characters)
    logo: str  # static path
    bin_prefixes: tuple[str, ...]


@dataclass(frozen=True)
class SandboxCard:
    bank: str  # SandboxBank.code
    brand: str  # core.cards brand code
    number: str
    expiry: str  # "MM/YY", what to type on the payment page
    cvv: str  # what to type on the payment page
    phone: str  # E.164; the 3-D Secure code arrives there
    holder: str
    three_d_secure: str  # none | challenge | frictionless
    outcome: str
    response_code: str
    balance: Decimal = Decimal("5000.00")
    status: str = "active"
    # What the bank holds when it differs from what is documented to type (the expired and wrong-CVV cards).
    issued_expiry: str = ""
    issued_cvv: str = ""

    @property
    def bank_expiry(self) -> str:
        return self.issued_expiry or self.expiry

    @property
    def bank_cvv(self) -> str:
        return self.issued_cvv or self.cvv

    def as_dict(self) -> dict[str, str]:
        return {
            "bank": BANKS_BY_CODE[self.bank].name,
            "brand": self.brand,
            "brand_label": BRAND_LABELS[self.brand],
            "number": self.number,
            "expiry": self.expiry,
            "cvv": self.cvv,
            "phone": self.phone,
            "holder": self.holder,
            "three_d_secure": self.three_d_secure,
            "outcome": str(self.outcome),
            "response_code": self.response_code,
            "balance": f"{self.balance:.2f}",
        }


ATLAS = SandboxBank(
    code="atlas",
    name="Banque Atlas",
    short_name="BanqueAtlas",
    logo="bank/logos/atlas.svg",
    bin_prefixes=("400011", "606101"),
)
SAHEL = SandboxBank(
    code="sahel",
    name="Crédit du Sahel",
    short_name="CreditSahel",
    logo="bank/logos/sahel.svg",
    bin_prefixes=("522011",),
)
BANKS = (ATLAS, SAHEL)
BANKS_BY_CODE = {b.code: b for b in BANKS}

CARDS = (
    SandboxCard(
        bank="atlas", brand="VISA", number="4000110000000017", expiry="09/29", cvv="417",
        phone="+212662000001", holder="Salma Bennani", three_d_secure="none",
        outcome=_("Approuvée sans 3-D Secure"), response_code=rc.APPROVED,
    ),
    SandboxCard(
        bank="sahel", brand="MASTERCARD", number="5220110000000026", expiry="12/28", cvv="226",
        phone="+212662000002", holder="Youssef El Idrissi", three_d_secure="challenge",
        outcome=_("3-D Secure : code reçu par SMS, puis approuvée"), response_code=rc.APPROVED,
        balance=Decimal("10000.00"),
    ),
    SandboxCard(
        bank="atlas", brand="CMI", number="6061010000000036", expiry="06/30", cvv="336",
        phone="+212662000003", holder="Khadija Alaoui", three_d_secure="none",
        outcome=_("Carte CMI approuvée"), response_code=rc.APPROVED, balance=Decimal("3000.00"),
    ),
    SandboxCard(
        bank="atlas", brand="VISA", number="4000110000000041", expiry="03/30", cvv="441",
        phone="+212662000004", holder="Omar Tazi", three_d_secure="frictionless",
        outcome=_("3-D Secure sans code (frictionless), puis approuvée"), response_code=rc.APPROVED,
    ),
    SandboxCard(
        bank="sahel", brand="MASTERCARD", number="5220110000000059", expiry="11/29", cvv="559",
        phone="+212662000005", holder="Nadia Chraibi", three_d_secure="none",
        outcome=_("Refusée : provision insuffisante (solde 50.00 DH)"), response_code=rc.INSUFFICIENT_FUNDS,
        balance=Decimal("50.00"),
    ),
    SandboxCard(
        bank="atlas", brand="VISA", number="4000110000000066", expiry="03/29", cvv="666",
        phone="+212662000006", holder="Hamza Berrada", three_d_secure="none",
        outcome=_("Refusée : carte expirée (la banque la tient pour expirée depuis 03/25 ; saisir 03/29)"),
        response_code=rc.EXPIRED_CARD, issued_expiry="03/25",
    ),
    SandboxCard(
        bank="sahel", brand="MASTERCARD", number="5220110000000075", expiry="07/29", cvv="775",
        phone="+212662000007", holder="Imane Fassi", three_d_secure="none",
        outcome=_("Refusée : ne pas honorer (carte bloquée)"), response_code=rc.DO_NOT_HONOUR, status="blocked",
    ),
    SandboxCard(
        bank="atlas", brand="VISA", number="4000110000000082", expiry="08/29", cvv="882",
        phone="+212662000008", holder="Rachid Amrani", three_d_secure="none",
        outcome=_("Refusée : carte déclarée perdue"), response_code=rc.LOST_CARD, status="lost",
    ),
    SandboxCard(
        bank="sahel", brand="MASTERCARD", number="5220110000000091", expiry="10/29", cvv="991",
        phone="+212662000009", holder="Leila Bouzid", three_d_secure="none",
        outcome=_("Refusée : carte déclarée volée"), response_code=rc.STOLEN_CARD, status="stolen",
    ),
    SandboxCard(
        bank="atlas", brand="CMI", number="6061010000000101", expiry="05/30", cvv="000",
        phone="+212662000010", holder="Mehdi Ouazzani", three_d_secure="none",
        outcome=_("Refusée : CVV erroné (000 n'est pas le CVV de la carte)"), response_code=rc.CVV_MISMATCH,
        issued_cvv="101",
    ),
)

# A Luhn-valid Visa number of Banque Atlas's BIN that no card carries: the bank answers 14.
UNKNOWN_NUMBER = "4000119999999998"


def card_by_outcome(response_code: str, three_d_secure: str | None = None) -> SandboxCard:
    """The first sandbox card with that expected answer (and 3-D Secure enrolment), for tests and docs."""
    for card in CARDS:
        if card.response_code == response_code and three_d_secure in (None, card.three_d_secure):
            return card
    raise LookupError(f"no sandbox card answering {response_code} ({three_d_secure})")
