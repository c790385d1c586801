"""The response codes (ISO 8583 DE39) of the whole project: one name, one meaning and one outcome per code.

Every party spells a code through this table: the bank's decision (``bank.rules``), the gateway's answer to
the merchant (``ProcReturnCode``, ``Response``), the biller's failure page, the switch and its codec
(``core.iso8583``). DESIGN.md §5 lists the codes; ``N7`` is Visa's code for a CVV2 mismatch, and ``99`` is
the merchant protocol's own code (CMI's ``ProcReturnCode`` for a payment that ended without the bank's
answer): it never travels on the card rails (``on_rails`` is False).

The meaning is French text for people (staff, logs, docs/iso8583.md); what a customer reads is the business
of each party's pages (the gateway's ``protocol.err_msg_for``, the portal's ``FAILURE_REASONS``), translated.

Pure: no Django, nothing but the standard library.
"""

import enum
from dataclasses import dataclass


class Outcome(enum.StrEnum):
    """What a code means for whoever receives it."""

    APPROVED = "approved"  # the operation was done
    DECLINED = "declined"  # refused by a party that decided: say why; the same request gets the same answer
    RETRY = "retry"  # nobody decided (the issuer or the network failed): reverse any hold, try again later
    ERROR = "error"  # the gateway's own failure, before or without the bank's answer


@dataclass(frozen=True)
class ResponseCode:
    code: str
    name: str  # the constant's name in this module
    meaning: str  # French, for people
    outcome: Outcome
    on_rails: bool = True  # False: a merchant-protocol code, never sent in DE39


APPROVED = "00"
DO_NOT_HONOUR = "05"
INVALID_TRANSACTION = "12"
INVALID_AMOUNT = "13"
INVALID_CARD_NUMBER = "14"
FORMAT_ERROR = "30"
LOST_CARD = "41"
STOLEN_CARD = "43"
INSUFFICIENT_FUNDS = "51"
EXPIRED_CARD = "54"
INCORRECT_PIN = "55"
NOT_PERMITTED = "57"
EXCEEDS_AMOUNT_LIMIT = "61"
RESTRICTED_CARD = "62"
ISSUER_UNAVAILABLE = "91"
NO_ROUTE = "92"
DUPLICATE_TRANSMISSION = "94"
SYSTEM_MALFUNCTION = "96"
CVV_MISMATCH = "N7"
GATEWAY_ERROR = "99"

_D, _R = Outcome.DECLINED, Outcome.RETRY

TABLE: dict[str, ResponseCode] = {
    rc.code: rc
    for rc in (
        ResponseCode(APPROVED, "APPROVED", "Approuvée", Outcome.APPROVED),
        ResponseCode(DO_NOT_HONOUR, "DO_NOT_HONOUR", "Ne pas honorer (refus de la banque)", _D),
        ResponseCode(INVALID_TRANSACTION, "INVALID_TRANSACTION", "Transaction invalide", _D),
        ResponseCode(INVALID_AMOUNT, "INVALID_AMOUNT", "Montant invalide", _D),
        ResponseCode(INVALID_CARD_NUMBER, "INVALID_CARD_NUMBER", "Numéro de carte invalide ou inconnu", _D),
        ResponseCode(FORMAT_ERROR, "FORMAT_ERROR", "Erreur de format du message", _D),
        ResponseCode(LOST_CARD, "LOST_CARD", "Carte déclarée perdue", _D),
        ResponseCode(STOLEN_CARD, "STOLEN_CARD", "Carte déclarée volée", _D),
        ResponseCode(INSUFFICIENT_FUNDS, "INSUFFICIENT_FUNDS", "Provision insuffisante", _D),
        ResponseCode(EXPIRED_CARD, "EXPIRED_CARD", "Carte expirée", _D),
        ResponseCode(INCORRECT_PIN, "INCORRECT_PIN", "Code confidentiel incorrect", _D),
        ResponseCode(NOT_PERMITTED, "NOT_PERMITTED", "Transaction non permise au porteur", _D),
        ResponseCode(EXCEEDS_AMOUNT_LIMIT, "EXCEEDS_AMOUNT_LIMIT", "Montant limite de la carte dépassé", _D),
        ResponseCode(RESTRICTED_CARD, "RESTRICTED_CARD", "Carte soumise à restriction", _D),
        ResponseCode(ISSUER_UNAVAILABLE, "ISSUER_UNAVAILABLE", "Banque émettrice indisponible ou sans réponse", _R),
        ResponseCode(NO_ROUTE, "NO_ROUTE", "Aucune banque émettrice pour ce numéro de carte", _D),
        ResponseCode(DUPLICATE_TRANSMISSION, "DUPLICATE_TRANSMISSION", "Transmission en double", _D),
        ResponseCode(SYSTEM_MALFUNCTION, "SYSTEM_MALFUNCTION", "Dysfonctionnement du système", _R),
        ResponseCode(CVV_MISMATCH, "CVV_MISMATCH", "CVV2 incorrect", _D),
        ResponseCode(GATEWAY_ERROR, "GATEWAY_ERROR", "Erreur de la passerelle : paiement sans réponse de la banque",
                     Outcome.ERROR, on_rails=False),
    )
}

UNKNOWN_MEANING = "Code inconnu"


def lookup(code: str) -> ResponseCode:
    """The table's row for ``code``; a code outside the table is a decline of unknown meaning."""
    found = TABLE.get(code)
    if found is not None:
        return found
    return ResponseCode(code, "", UNKNOWN_MEANING, Outcome.DECLINED, on_rails=True)


def outcome(code: str) -> Outcome:
    return lookup(code).outcome


def is_approved(code: str) -> bool:
    return code == APPROVED
