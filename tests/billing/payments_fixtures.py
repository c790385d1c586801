"""Building blocks for the payment tests: a line with the guide's two invoices, and the gateway's messages
signed exactly as the gateway signs them (every request field echoed but ``hash``, the result fields, ``HASH``)."""

import datetime as dt
from decimal import Decimal

from django.conf import settings

from tasdid.billing.models import Invoice, Payment, PaymentOrder, ServiceLine
from tasdid.billing.receipts import receipt_path, receipt_url
from tasdid.billing.selectors.payments import merchant_request
from tasdid.billing.services.payments import payment_order_create
from tasdid.core.signing import ver3_hash
from tests import factories

JUNE = dt.date(2017, 6, 1)
JULY = dt.date(2017, 7, 1)
EMAIL = "client@example.ma"
MASKED = "400000******0002"


def line_with_two_invoices(*, number: str = "+212661000001") -> tuple[ServiceLine, Invoice, Invoice]:
    """A mobile line of « Mme Test Client » with 186.00 DH due for June 2017 and 99.00 DH for July 2017."""
    line = factories.mobile_line(number=number, owner=factories.customer(name="Mme Amina Test"))
    june = factories.invoice(line=line, amount_ht="155.00", month=JUNE, reference=f"0000{number[-6:]}062017")
    july = factories.invoice(line=line, amount_ht="82.50", month=JULY, reference=f"0000{number[-6:]}072017")
    return line, june, july


def new_order(line: ServiceLine, *, email: str = EMAIL, language: str = "") -> PaymentOrder:
    return payment_order_create(line_id=line.pk, email=email, language=language)


def sign(fields: dict[str, str], *, store_key: str | None = None) -> dict[str, str]:
    """``fields`` with a fresh ``HASH`` (ver3 over every other field)."""
    unsigned = {k: v for k, v in fields.items() if k.lower() != "hash"}
    return {**unsigned, "HASH": ver3_hash(unsigned, store_key or settings.BILLER_STORE_KEY)}


def gateway_message(
    order: PaymentOrder,
    *,
    code: str = "00",
    paid: list[str] | None = None,
    trans_id: str = "26101ABCD1234",
    auth_code: str = "P12345",
    md_status: str = "1",
    err_msg: str = "",
    callback: bool = True,
    extension: bool = True,
    **overrides: str,
) -> dict[str, str]:
    """The callback (or, ``callback=False``, the browser's return) for ``order``, signed with the store key.

    ``paid``: the references paid (default: all); the others are deferred. ``overrides`` replace or add fields
    before signing (use ``EXTRA_CARDBRAND`` for ``EXTRA.CARDBRAND``).
    """
    request = merchant_request(order=order)
    fields = {k: v for k, v in request.items() if k != "hash"}
    refs = [fields[f"item{n}Ref"] for n in range(1, int(fields["itemCount"]) + 1)]
    amounts = {fields[f"item{n}Ref"]: fields[f"item{n}Amount"] for n in range(1, int(fields["itemCount"]) + 1)}
    paid_refs = refs if paid is None else paid
    approved = code == "00"
    fields.update({
        "ProcReturnCode": code,
        "Response": "Approved" if approved else "Declined",
        "ErrMsg": err_msg,
        "AuthCode": auth_code if approved else "",
        "TransId": trans_id,
        "HostRefNum": "612345678901" if approved else "",
        "MaskedPan": MASKED,
        "EXTRA.CARDBRAND": "VISA",
        "EXTRA.TRXDATE": "20170719 14:32:10",
        "mdStatus": md_status,
        "eci": "05",
    })
    if callback:
        fields["callbackCall"] = "true"
    if extension:
        fields["paidAmount"] = f"{sum((Decimal(amounts[r]) for r in paid_refs if r in amounts), Decimal('0')):.2f}"
        fields["paidItems"] = ",".join(paid_refs)
        fields["deferredItems"] = ",".join(r for r in refs if r not in paid_refs)
    for name, value in overrides.items():
        fields[name.replace("EXTRA_", "EXTRA.")] = value
    return sign(fields)


def receipt_link(payment: Payment, *, absolute: bool = False) -> str:
    """The link to ``payment``'s receipt (its path, or the absolute URL that the email carries)."""
    identity = {"receipt_number": payment.receipt_number, "oid": payment.order.oid, "trans_id": payment.trans_id}
    return receipt_url(**identity) if absolute else receipt_path(**identity)
