"""The issuer's authorization decision: a pure function of a plain snapshot, no database.

The codes are ``core.response_codes`` names (one table for the project).

Order of the checks (the first that fails answers):

1. ``13`` invalid amount — the amount is not positive or exceeds what an account can hold;
2. ``57`` transaction not permitted — the currency is not the dirham (504);
   (1 and 2 judge the request itself: a malformed request learns nothing about the card);
3. ``14`` unknown card number — no card of this bank carries that number;
4. ``43`` stolen, 5. ``41`` lost, 6. ``05`` blocked — the card's status comes before any check of what was
   typed: a stolen card is reported as such even when its thief gets the CVV wrong;
7. ``54`` expired — the card is past its expiry month, or the typed expiry is not the card's;
8. ``N7`` CVV mismatch;
9. ``05`` do not honour — a card enrolled in 3-D Secure without a valid authentication result of this bank
   (a CAVV it issued for this card and amount, not used before);
10. ``51`` insufficient funds — last, so that nobody learns about the balance without the card's data and,
    for an enrolled card, its holder's authentication;
11. ``00`` approved.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from tasdid.core import response_codes as rc
from tasdid.core.cards import is_digits
from tasdid.core.money import MAD_NUMERIC, MAX_AMOUNT

# Card statuses and 3-D Secure enrolments as the snapshot carries them (the model's choices use the same values).
ACTIVE, LOST_STATUS, STOLEN_STATUS, BLOCKED = "active", "lost", "stolen", "blocked"
NOT_ENROLLED = "none"


@dataclass(frozen=True)
class Snapshot:
    """Everything the decision needs, as plain values read under the account's lock."""

    amount: Decimal
    currency: str
    card_known: bool
    today: dt.date
    card_status: str = ""
    card_expiry: tuple[int, int] | None = None  # (year, month) the bank holds
    typed_expiry: tuple[int, int] | None = None  # (year, month) the customer typed; None when unreadable
    cvv_matches: bool = False
    enrolment: str = NOT_ENROLLED
    authentication_valid: bool = False
    available_balance: Decimal = Decimal("0.00")


@dataclass(frozen=True)
class Decision:
    response_code: str
    reason: str

    @property
    def approved(self) -> bool:
        return rc.is_approved(self.response_code)


def decide(s: Snapshot) -> Decision:
    """The response code (ISO 8583 DE39) and a short reason for the bank's records."""
    if s.amount <= 0 or s.amount > MAX_AMOUNT or s.amount != s.amount.quantize(Decimal("0.01")):
        return Decision(rc.INVALID_AMOUNT, "invalid amount")
    if s.currency != MAD_NUMERIC:
        return Decision(rc.NOT_PERMITTED, "currency is not MAD")
    if not s.card_known:
        return Decision(rc.INVALID_CARD_NUMBER, "unknown card number")
    if s.card_status == STOLEN_STATUS:
        return Decision(rc.STOLEN_CARD, "card reported stolen")
    if s.card_status == LOST_STATUS:
        return Decision(rc.LOST_CARD, "card reported lost")
    if s.card_status != ACTIVE:
        return Decision(rc.DO_NOT_HONOUR, "card blocked")
    if s.card_expiry is None or s.card_expiry < (s.today.year, s.today.month):
        return Decision(rc.EXPIRED_CARD, "card expired")
    if s.typed_expiry != s.card_expiry:
        return Decision(rc.EXPIRED_CARD, "typed expiry does not match the card")
    if not s.cvv_matches:
        return Decision(rc.CVV_MISMATCH, "CVV does not match")
    if s.enrolment != NOT_ENROLLED and not s.authentication_valid:
        return Decision(rc.DO_NOT_HONOUR, "3-D Secure authentication missing or invalid")
    if s.amount > s.available_balance:
        return Decision(rc.INSUFFICIENT_FUNDS, "insufficient funds")
    return Decision(rc.APPROVED, "approved")


def parse_typed_expiry(yymm: str) -> tuple[int, int] | None:
    """DE14 "YYMM" as (year, month), or None when it is not a valid month."""
    if not is_digits(yymm, 4):
        return None
    year, month = 2000 + int(yymm[:2]), int(yymm[2:])
    if not 1 <= month <= 12:
        return None
    return (year, month)
