"""The gateway's view of the card rails: authorize, capture, void, refund, with plain data in and out.

An acquirer is whatever carries a card authorization to the card's bank: in the sandbox the bank in the same
process, later the ISO 8583 client of the centre monétique. The gateway only ever sees this interface.
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

from . import response_codes
from .cards import mask


@dataclass(frozen=True)
class CardData:
    """What the customer typed; lives in memory only, never stored or logged (its repr is masked)."""

    pan: str
    expiry_yymm: str
    cvv: str = field(repr=False)

    def __repr__(self) -> str:
        return f"CardData(pan={mask(self.pan)!r}, expiry_yymm={self.expiry_yymm!r})"


@dataclass(frozen=True)
class Authentication:
    """A 3-D Secure outcome carried into the authorization (DE48 EC/AV/DS/TS)."""

    eci: str
    authentication_value: str
    ds_trans_id: str
    trans_status: str


@dataclass(frozen=True)
class AuthorizationRequest:
    card: CardData
    amount_minor: int
    currency: str
    merchant_id: str
    merchant_name: str
    order_id: str
    stan: str  # six digits, unique per message for the day (DE11)
    transmitted_at: dt.datetime  # DE7
    authentication: Authentication | None = None


@dataclass(frozen=True)
class AuthorizationResult:
    response_code: str  # ISO 8583 DE39, a code of core.response_codes
    auth_code: str = ""  # DE38, empty when declined
    rrn: str = ""  # DE37 retrieval reference number (the callback's HostRefNum)

    @property
    def approved(self) -> bool:
        return response_codes.is_approved(self.response_code)


@dataclass(frozen=True)
class SettlementRequest:
    """A capture (completion) or a void (reversal) of an earlier authorization."""

    original_stan: str
    original_transmitted_at: dt.datetime
    amount_minor: int
    currency: str
    merchant_id: str
    order_id: str
    stan: str
    transmitted_at: dt.datetime
    rrn: str = ""  # empty when the authorization's answer never came
    auth_code: str = ""


@dataclass(frozen=True)
class SettlementResult:
    response_code: str

    @property
    def accepted(self) -> bool:
        return response_codes.is_approved(self.response_code)


@dataclass(frozen=True)
class RefundRequest:
    """A refund (ISO 8583 0200, processing code 20) of a captured payment: credited to the card's account,
    found by the payment's RRN (the gateway keeps no card number). ``stan`` and ``transmitted_at`` are the
    refund's own (the issuer answers the same message twice with the same answer, crediting once)."""

    rrn: str  # DE37 of the payment refunded
    original_stan: str
    original_transmitted_at: dt.datetime
    amount_minor: int  # up to what was captured, all refunds of the payment together
    currency: str
    merchant_id: str
    order_id: str
    stan: str
    transmitted_at: dt.datetime
    merchant_name: str = ""


@dataclass(frozen=True)
class RefundResult:
    response_code: str
    rrn: str = ""

    @property
    def accepted(self) -> bool:
        return response_codes.is_approved(self.response_code)


class AcquirerUnavailable(Exception):
    """The rails did not answer in time or at all: a fault to retry or reverse, not a refusal."""


class Acquirer(Protocol):
    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult: ...

    def capture(self, request: SettlementRequest) -> SettlementResult: ...

    def void(self, request: SettlementRequest) -> SettlementResult: ...

    def refund(self, request: RefundRequest) -> RefundResult: ...

