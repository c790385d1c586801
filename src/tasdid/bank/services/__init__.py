"""Writes of the sandbox bank, one module per role:

- ``issuing``: banks, accounts, cards;
- ``authorization``: the issuer's answers on the card rails (authorization and its hold, capture, release,
  refund), called by the issuer host (``tasdid.bank.issuer``) and the in-process acquirer alike;
- ``authentication``: 3-D Secure, the ACS (AReq answers, the SMS code challenge, the RReq) and the check of a
  CAVV presented with an authorization.

The names below are re-exported for the bank's views and admin; a test that replaces a function replaces it
in its module.
"""

from .authentication import (
    CAVV_LIFETIME,
    CHALLENGE_FAILURE_LIMIT,
    CHALLENGE_FAILURE_WINDOW,
    CREQ_LIFETIME,
    OTP_LENGTH,
    OTP_LIFETIME,
    OTP_LIFETIME_MINUTES,
    OTP_MAX_SENDS,
    OTP_MAX_TRIES,
    RREQ_ATTEMPTS,
    ChallengeNotFound,
    ChallengeStep,
    CReqReplayed,
    acs_url,
    areq_answer,
    challenge_cancel,
    challenge_open,
    challenge_resend_code,
    challenge_set_language,
    challenge_submit_code,
    cres_message,
    failed_challenges,
    remaining_sends,
    rreq_deliver,
    rreq_message,
)
from .authorization import (
    AuthorizationOutcome,
    RefundOutcome,
    SettlementOutcome,
    authorize,
    hold_capture,
    hold_void,
    message_time,
    refund,
    refund_reverse,
)
from .issuing import account_open, bank_register, card_issue

__all__ = [
    "CAVV_LIFETIME",
    "CHALLENGE_FAILURE_LIMIT",
    "CHALLENGE_FAILURE_WINDOW",
    "CREQ_LIFETIME",
    "OTP_LENGTH",
    "OTP_LIFETIME",
    "OTP_LIFETIME_MINUTES",
    "OTP_MAX_SENDS",
    "OTP_MAX_TRIES",
    "RREQ_ATTEMPTS",
    "AuthorizationOutcome",
    "CReqReplayed",
    "ChallengeNotFound",
    "ChallengeStep",
    "RefundOutcome",
    "SettlementOutcome",
    "account_open",
    "acs_url",
    "areq_answer",
    "authorize",
    "bank_register",
    "card_issue",
    "challenge_cancel",
    "challenge_open",
    "challenge_resend_code",
    "challenge_set_language",
    "challenge_submit_code",
    "cres_message",
    "failed_challenges",
    "hold_capture",
    "hold_void",
    "message_time",
    "refund",
    "refund_reverse",
    "remaining_sends",
    "rreq_deliver",
    "rreq_message",
]
