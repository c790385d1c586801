"""What the biller's codes are bound to when hashed (tasdid.core.codes): a code is only right for its line."""

from tasdid.core.codes import code_digest, code_matches


def payment_code_scope(number_e164: str) -> str:
    """The "code de paiement fixe" of a fixed line, bound to its number (known before the line is saved)."""
    return f"payment-code:{number_e164}"


def payment_code_digest(number_e164: str, code: str) -> str:
    return code_digest(payment_code_scope(number_e164), code)


def payment_code_matches(number_e164: str, code: str, digest: str) -> bool:
    return code_matches(payment_code_scope(number_e164), code, digest)


def fidelio_scope(line_id: int) -> str:
    return f"fidelio:{line_id}"
