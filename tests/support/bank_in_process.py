"""A test fake of the card rails: ``core.acquiring.Acquirer`` answered by the sandbox bank's services directly,
in the test's process, with no switch and no socket in between (the seeded simulation puts its own network
around it). The gateway itself only ever uses ``tasdid.gateway.rails.SwitchAcquirer``. Plain data goes in
and out (``core.acquiring`` dataclasses); nothing else of the bank is visible to the caller. It calls the very
functions the issuer host (``tasdid.bank.issuer``) calls for 0100, 0220, 0400 and 0200/20.
"""

import logging
from contextlib import contextmanager

from django.db import DatabaseError
from django.views.decorators.debug import sensitive_variables

from tasdid.bank.services import authorization
from tasdid.core.acquiring import (
    AcquirerUnavailable,
    AuthorizationRequest,
    AuthorizationResult,
    RefundRequest,
    RefundResult,
    SettlementRequest,
    SettlementResult,
)

logger = logging.getLogger(__name__)


class InProcessAcquirer:
    """The sandbox bank as the gateway's acquirer, without a network in between."""

    @sensitive_variables()  # the card
    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        auth = request.authentication
        with _bank_answers("authorization"):
            outcome = authorization.authorize(
                pan=request.card.pan,
                expiry_yymm=request.card.expiry_yymm,
                cvv=request.card.cvv,
                amount_minor=request.amount_minor,
                currency=request.currency,
                merchant_id=request.merchant_id,
                merchant_name=request.merchant_name,
                order_id=request.order_id,
                stan=request.stan,
                transmitted_at=request.transmitted_at,
                eci=auth.eci if auth else "",
                authentication_value=auth.authentication_value if auth else "",
                ds_trans_id=auth.ds_trans_id if auth else "",
                trans_status=auth.trans_status if auth else "",
            )
        return AuthorizationResult(response_code=outcome.response_code, auth_code=outcome.auth_code, rrn=outcome.rrn)

    def capture(self, request: SettlementRequest) -> SettlementResult:
        with _bank_answers("capture"):
            outcome = authorization.hold_capture(
                merchant_id=request.merchant_id,
                rrn=request.rrn,
                original_stan=request.original_stan,
                original_transmitted_at=request.original_transmitted_at,
                amount_minor=request.amount_minor,
                currency=request.currency,
            )
        return SettlementResult(response_code=outcome.response_code)

    def void(self, request: SettlementRequest) -> SettlementResult:
        with _bank_answers("void"):
            outcome = authorization.hold_void(
                merchant_id=request.merchant_id,
                rrn=request.rrn,
                original_stan=request.original_stan,
                original_transmitted_at=request.original_transmitted_at,
            )
        return SettlementResult(response_code=outcome.response_code)

    def refund(self, request: RefundRequest) -> RefundResult:
        with _bank_answers("refund"):
            outcome = authorization.refund(
                merchant_id=request.merchant_id,
                stan=request.stan,
                transmitted_at=request.transmitted_at,
                amount_minor=request.amount_minor,
                currency=request.currency,
                rrn=request.rrn,
                merchant_name=request.merchant_name,
            )
        return RefundResult(response_code=outcome.response_code, rrn=outcome.rrn)


@contextmanager
def _bank_answers(operation: str):
    """The issuer could not answer (database down or locked): a fault for the caller, never a refusal."""
    try:
        yield
    except DatabaseError as exc:
        logger.warning("in-process %s failed: %s", operation, type(exc).__name__)
        raise AcquirerUnavailable("the bank did not answer") from exc
