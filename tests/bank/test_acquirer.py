"""The in-process acquirer: core.acquiring dataclasses in and out, the bank behind it."""

import datetime as dt
import inspect
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from django.utils.module_loading import import_string

from tasdid.bank import sandbox, services
from tasdid.bank.acquirer import InProcessAcquirer
from tasdid.bank.models import Card, Hold, LedgerEntry
from tasdid.core.acquiring import (
    Acquirer,
    AcquirerUnavailable,
    Authentication,
    AuthorizationRequest,
    AuthorizationResult,
    CardData,
    RefundRequest,
    RefundResult,
    SettlementRequest,
    SettlementResult,
)
from tasdid.core.cards import fingerprint

from .conftest import areq_message

pytestmark = pytest.mark.django_db
VISA = sandbox.card_by_outcome("00", "none")
FRICTIONLESS = sandbox.card_by_outcome("00", "frictionless")


def card_data(card) -> CardData:
    month, year = card.expiry.split("/")
    return CardData(pan=card.number, expiry_yymm=year + month, cvv=card.cvv)


def request(card, *, stan="000001", when=None, amount_minor=28500, authentication=None) -> AuthorizationRequest:
    return AuthorizationRequest(
        card=card_data(card), amount_minor=amount_minor, currency="504", merchant_id="600000001",
        merchant_name="Tasdid Télécom", order_id="ORDER-7", stan=stan, transmitted_at=when or timezone.now(),
        authentication=authentication,
    )


def settlement(auth: AuthorizationRequest, result: AuthorizationResult, *, stan: str, rrn: str | None = None):
    return SettlementRequest(
        original_stan=auth.stan, original_transmitted_at=auth.transmitted_at, amount_minor=auth.amount_minor,
        currency="504", merchant_id=auth.merchant_id, order_id=auth.order_id, stan=stan,
        transmitted_at=timezone.now(), rrn=result.rrn if rrn is None else rrn, auth_code=result.auth_code,
    )


def test_settings_name_this_acquirer_and_it_has_the_protocol():
    acquirer = import_string(settings.GATEWAY_ACQUIRER)()
    assert isinstance(acquirer, InProcessAcquirer)
    for name in ("authorize", "capture", "void", "refund"):
        ours, protocol = inspect.signature(getattr(InProcessAcquirer, name)), inspect.signature(getattr(Acquirer, name))
        assert list(ours.parameters) == list(protocol.parameters)
        assert ours.return_annotation == protocol.return_annotation


def test_authorize_then_capture(banks):
    acquirer = InProcessAcquirer()
    auth = request(VISA)
    result = acquirer.authorize(auth)
    assert type(result) is AuthorizationResult
    assert result.approved and len(result.auth_code) == 6 and len(result.rrn) == 12
    captured = acquirer.capture(settlement(auth, result, stan="000002"))
    assert captured == SettlementResult("00") and captured.accepted
    assert acquirer.capture(settlement(auth, result, stan="000003")) == SettlementResult("00")
    assert LedgerEntry.objects.filter(kind="debit").count() == 1
    card = Card.objects.get(fingerprint=fingerprint(VISA.number))
    assert card.account.balance == VISA.balance - Decimal("285.00")


def refund_of(auth: AuthorizationRequest, result: AuthorizationResult, *, stan: str, amount_minor: int,
              when: dt.datetime) -> RefundRequest:
    return RefundRequest(rrn=result.rrn, original_stan=auth.stan, original_transmitted_at=auth.transmitted_at,
                         amount_minor=amount_minor, currency="504", merchant_id=auth.merchant_id,
                         order_id=auth.order_id, stan=stan, transmitted_at=when, merchant_name="Tasdid Télécom")


def test_a_refund_credits_the_card_account_once_up_to_what_was_captured(banks):
    acquirer = InProcessAcquirer()
    auth = request(VISA)
    result = acquirer.authorize(auth)
    acquirer.capture(settlement(auth, result, stan="000002"))
    account = Card.objects.get(fingerprint=fingerprint(VISA.number)).account
    when = timezone.now()
    first = acquirer.refund(refund_of(auth, result, stan="000003", amount_minor=10000, when=when))
    assert type(first) is RefundResult
    assert first == RefundResult("00", result.rrn) and first.accepted
    assert acquirer.refund(refund_of(auth, result, stan="000003", amount_minor=10000, when=when)) == first
    assert acquirer.refund(refund_of(auth, result, stan="000004", amount_minor=18501, when=when)) == \
        RefundResult("13", "")
    account.refresh_from_db()
    assert account.balance == VISA.balance - Decimal("285.00") + Decimal("100.00")
    credit = LedgerEntry.objects.get(kind="credit", refund__isnull=False)
    assert credit.amount == Decimal("100.00") and "Tasdid Télécom" in credit.label


def test_a_refund_of_a_payment_never_captured_credits_nothing(banks):
    acquirer = InProcessAcquirer()
    auth = request(VISA)
    result = acquirer.authorize(auth)
    refused = acquirer.refund(refund_of(auth, result, stan="000002", amount_minor=100, when=timezone.now()))
    assert refused == RefundResult("12", "")
    assert not LedgerEntry.objects.filter(refund__isnull=False).exists()


def test_authorize_then_void_and_a_declined_card(banks):
    acquirer = InProcessAcquirer()
    auth = request(VISA)
    result = acquirer.authorize(auth)
    assert acquirer.void(settlement(auth, result, stan="000002")) == SettlementResult("00")
    assert Hold.objects.get().state == "released"
    assert acquirer.capture(settlement(auth, result, stan="000003")) == SettlementResult("12")
    lost = acquirer.authorize(request(sandbox.card_by_outcome("41"), stan="000004"))
    assert lost == AuthorizationResult("41", "", "")
    assert not lost.approved


def test_reversal_without_rrn_after_a_lost_answer(banks):
    acquirer = InProcessAcquirer()
    auth = request(VISA, when=dt.datetime(2026, 11, 26, 17, 0, 0, 123456, tzinfo=dt.UTC))
    acquirer.authorize(auth)  # its answer "never came back"
    reversal = settlement(auth, AuthorizationResult("91"), stan="000009", rrn="")
    assert acquirer.void(reversal) == SettlementResult("00")
    assert Hold.objects.get().state == "released"
    assert acquirer.void(reversal) == SettlementResult("00")


def test_authentication_travels_to_the_bank(banks):
    ares = services.areq_answer(message=areq_message(FRICTIONLESS, server_url="https://gw.example.ma"))
    authentication = Authentication(eci=ares["eci"], authentication_value=ares["authenticationValue"],
                                    ds_trans_id=ares["dsTransID"], trans_status="Y")
    acquirer = InProcessAcquirer()
    assert acquirer.authorize(request(FRICTIONLESS, stan="000010")).response_code == "05"
    assert acquirer.authorize(request(FRICTIONLESS, stan="000011", authentication=authentication)).approved


def test_a_database_fault_is_an_unavailable_acquirer_not_a_refusal(banks, monkeypatch):
    def broken(**kwargs):
        raise DatabaseError("database is locked")

    monkeypatch.setattr(services.authorization, "authorize", broken)
    monkeypatch.setattr(services.authorization, "hold_capture", broken)
    monkeypatch.setattr(services.authorization, "hold_void", broken)
    monkeypatch.setattr(services.authorization, "refund", broken)
    acquirer = InProcessAcquirer()
    auth = request(VISA)
    with pytest.raises(AcquirerUnavailable):
        acquirer.authorize(auth)
    with pytest.raises(AcquirerUnavailable):
        acquirer.capture(settlement(auth, AuthorizationResult("00", "1", "1"), stan="000002"))
    with pytest.raises(AcquirerUnavailable):
        acquirer.void(settlement(auth, AuthorizationResult("00", "1", "1"), stan="000003"))
    with pytest.raises(AcquirerUnavailable):
        acquirer.refund(refund_of(auth, AuthorizationResult("00", "1", "1"), stan="000004", amount_minor=1,
                                  when=timezone.now()))
