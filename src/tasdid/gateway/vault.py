"""threeDSSessionData: the card data sealed for its trip through the customer's browser during a 3-D Secure
challenge — the only place the card number and CVV survive between two requests, encrypted (Fernet, under
a key derived from the "vault" key) and short-lived."""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from django.views.decorators.debug import sensitive_variables

from tasdid.core.acquiring import CardData
from tasdid.core.keys import secret_key

SEAL_SECONDS = 10 * 60
MAX_LENGTH = 1024  # EMV 3DS: threeDSSessionData is at most 1024 characters


class VaultError(ValueError):
    """Sealed data that is forged, damaged or expired."""


@dataclass(frozen=True)
class Sealed:
    attempt_id: int
    threeds_server_trans_id: str
    card: CardData


def _fernet() -> Fernet:
    derived = hmac.new(secret_key("vault"), b"tasdid.gateway.threeDSSessionData", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


@sensitive_variables()
def seal(*, attempt_id: int, threeds_server_trans_id: str, card: CardData) -> str:
    payload = {"a": attempt_id, "t": threeds_server_trans_id, "p": card.pan, "e": card.expiry_yymm, "c": card.cvv}
    token = _fernet().encrypt(json.dumps(payload, separators=(",", ":")).encode()).decode("ascii")
    if len(token) > MAX_LENGTH:  # pragma: no cover - a card and two ids are far below
        raise VaultError("sealed data too long")
    return token


@sensitive_variables()
def unseal(token: str, *, ttl: int = SEAL_SECONDS) -> Sealed:
    if not token or len(token) > MAX_LENGTH:
        raise VaultError("no sealed data")
    try:
        payload = json.loads(_fernet().decrypt(token.encode("ascii"), ttl=ttl))
        return Sealed(attempt_id=int(payload["a"]), threeds_server_trans_id=str(payload["t"]),
                      card=CardData(pan=str(payload["p"]), expiry_yymm=str(payload["e"]), cvv=str(payload["c"])))
    except (InvalidToken, ValueError, KeyError, TypeError, UnicodeError) as exc:
        raise VaultError("sealed data is forged, damaged or expired") from exc
