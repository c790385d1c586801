"""Writes of the payment side: payment orders, and the gateway's word on them (settle, record a failure), and
the expiry of the orders nobody finished.

An order moves created → paid or created → failed, and failed → paid when the customer's next try on the same
payment page is approved; an order still "created" when the payment page's time and a margin have passed is
abandoned: created → expired, and expired → paid should an approved callback still come (its invoices unpaid;
else the biller answers FAILURE as for any order). A paid order moves again only to voided, when reconciliation
finds that the gateway never captured it (services.reconciliation); a voided order never moves. Each move locks
the order, appends an event row and is a no-op when it already happened, so re-sent callbacks and returns change
nothing.
"""

import base64
import datetime as dt
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from tasdid.core import response_codes as rc
from tasdid.core.cards import mask
from tasdid.core.i18n import known
from tasdid.core.money import MAD_NUMERIC, AmountError, parse_amount
from tasdid.core.signing import ver3_verify_received

from ..models import Invoice, Payment, PaymentOrder, PaymentOrderEvent, PaymentOrderItem, ServiceLine
from ..receipts import receipt_number_allocate, receipt_path
from ..selectors.payments import PAYMENT_SESSION_SECONDS, order_invoices_paid_elsewhere, payable_invoices
from ..tasks import expire_order, send_receipt_email

logger = logging.getLogger(__name__)

State = PaymentOrder.State
TRANSITIONS: dict[str, frozenset[str]] = {
    State.CREATED: frozenset({State.PAID, State.FAILED, State.EXPIRED}),
    State.FAILED: frozenset({State.PAID}),
    State.EXPIRED: frozenset({State.PAID}),
    State.PAID: frozenset({State.VOIDED}),
    State.VOIDED: frozenset(),
}

# An order the gateway said nothing about this long after it was made is abandoned: the payment page's time
# (sessionTimeout), and a margin for a 3-D Secure challenge begun at its last minute and the callback after it.
ORDER_EXPIRY_MARGIN = dt.timedelta(minutes=15)
ORDER_EXPIRY = dt.timedelta(seconds=PAYMENT_SESSION_SECONDS) + ORDER_EXPIRY_MARGIN

# The merchant's answers to a callback (DESIGN.md §4).
ANSWER_CAPTURE = "ACTION=POSTAUTH"
ANSWER_ACKNOWLEDGED = "APPROVED"
ANSWER_VOID = "FAILURE"

APPROVED_CODE = rc.APPROVED


class PaymentError(Exception):
    """An expected refusal, to tell the customer."""


class NothingToPay(PaymentError):
    """The line has no unpaid invoice."""


class UnknownLine(PaymentError):
    """The identified line no longer exists."""


class GatewayMessageRefused(Exception):
    """A callback or return that cannot be trusted or does not match the order; ``reason`` says which check."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def new_oid() -> str:
    """An order id nobody can guess: "TSD" + 80 random bits in base32 (16 characters)."""
    return "TSD" + base64.b32encode(secrets.token_bytes(10)).decode("ascii")


def _move(order: PaymentOrder, to_state: str, *, cause: str, at) -> None:
    """Move a locked order to ``to_state`` and record the event (the caller checked the move is allowed)."""
    if to_state not in TRANSITIONS[order.state]:
        raise ValueError(f"order {order.oid}: {order.state} -> {to_state} is not allowed")
    from_state = order.state
    order.state, order.updated_at = to_state, at
    if to_state == PaymentOrder.State.PAID:
        # Reconciled earlier as unpaid (a late callback paid it since): the reconciliation must look at it again.
        order.reconciled_at = None
    order.save(update_fields=["state", "updated_at", "failure_code", "failure_message", "reconciled_at"])
    PaymentOrderEvent.objects.create(order=order, at=at, from_state=from_state, to_state=to_state, cause=cause[:255])


@transaction.atomic
def payment_order_create(*, line_id: int, email: str, language: str = "") -> PaymentOrder:
    """An order for every unpaid invoice of the line, amounts as they are now. NothingToPay if there is none.
    ``language``: the page's language (French when it is not one of ours), kept for the gateway and the receipt."""
    line = ServiceLine.objects.filter(pk=line_id).first()
    if line is None:
        raise UnknownLine(line_id)
    invoices = payable_invoices(line_id=line.pk)
    if not invoices:
        raise NothingToPay(line_id)
    now = timezone.now()
    order = PaymentOrder.objects.create(
        oid=new_oid(), line=line, email=email, amount=sum((inv.amount_ttc for inv in invoices), Decimal("0.00")),
        state=State.CREATED, created_at=now, updated_at=now, language=known(language) or settings.LANGUAGE_CODE,
    )
    PaymentOrderItem.objects.bulk_create(
        PaymentOrderItem(order=order, invoice=inv, amount=inv.amount_ttc) for inv in invoices
    )
    PaymentOrderEvent.objects.create(order=order, at=now, from_state="", to_state=State.CREATED,
                                     cause=f"commande créée depuis le portail ({len(invoices)} facture(s))")
    # Its expiry is watched from now on: the task row is written in this transaction (durable).
    expire_order.using(run_after=order.created_at + ORDER_EXPIRY).enqueue(order_id=order.pk)
    return order


@transaction.atomic
def payment_order_expire(*, order_id: int, now: dt.datetime | None = None) -> bool:
    """Close an order still waiting for the gateway's word once ORDER_EXPIRY has passed since it was made.
    Returns True when this call moved it; an order already answered, or not yet due, is left as it is."""
    now = now or timezone.now()
    order = PaymentOrder.objects.select_for_update().filter(pk=order_id).first()
    if order is None or order.state != State.CREATED or order.created_at + ORDER_EXPIRY > now:
        return False
    minutes = int(ORDER_EXPIRY.total_seconds() // 60)
    _move(order, State.EXPIRED, at=now,
          cause=f"abandonnée : aucune réponse de la page de paiement {minutes} minutes après sa création")
    return True


def payment_orders_expire(*, now: dt.datetime | None = None) -> int:
    """Expire every order overdue (``tasdid billing-sweep``: after an outage of the worker, or for orders made
    before their expiry was watched). One transaction per order. Returns how many moved."""
    now = now or timezone.now()
    overdue = PaymentOrder.objects.filter(state=State.CREATED, created_at__lte=now - ORDER_EXPIRY)
    return sum(payment_order_expire(order_id=pk, now=now) for pk in overdue.values_list("pk", flat=True))


# --- The gateway's messages: pure reading and checks ---------------------------------------------------------

_MASKED_PAN = re.compile(r"^\d{4,6}[*Xx]{3,9}\d{2,4}$")
_FULL_PAN = re.compile(r"^\d{13,19}$")


@dataclass(frozen=True)
class GatewayMessage:
    """A callback or a browser return, once its HASH and client id are verified. Field names are matched
    case-insensitively, as CMI does."""

    fields: Mapping[str, str]  # lower-cased names

    def get(self, name: str) -> str:
        return self.fields.get(name.lower(), "")

    def has(self, name: str) -> bool:
        return name.lower() in self.fields

    @property
    def oid(self) -> str:
        return self.get("oid").strip()

    @property
    def code(self) -> str:
        return self.get("ProcReturnCode").strip()

    @property
    def approved(self) -> bool:
        return self.code == APPROVED_CODE


def read_gateway_message(fields: Mapping[str, str], *, client_id: str, store_key: str) -> GatewayMessage:
    """Check a message from the gateway: its ver3 ``HASH`` over every other field (each value HTML-decoded and
    trimmed first, as CMI's merchant kit checks it: core.signing.ver3_verify_received), our client id, an oid."""
    if any(not isinstance(v, str) or "\x00" in v or "\x00" in k for k, v in fields.items()):
        raise GatewayMessageRefused("junk")
    read = ver3_verify_received(fields, store_key, hash_field="HASH")
    if read is None:
        raise GatewayMessageRefused("bad_hash")
    message = GatewayMessage({k.lower(): v for k, v in read.items()})
    if message.get("clientid") != client_id:
        raise GatewayMessageRefused("client_id")
    if not message.oid:
        raise GatewayMessageRefused("no_oid")
    return message


def _amount(message: GatewayMessage, name: str) -> Decimal:
    try:
        return parse_amount(message.get(name))
    except AmountError as exc:
        raise GatewayMessageRefused(f"bad_{name.lower()}") from exc


def _refs(text: str, name: str) -> list[str]:
    if not text.strip():
        return []
    refs = [part.strip() for part in text.split(",")]
    if not all(refs):
        raise GatewayMessageRefused(f"bad_{name.lower()}")
    return refs


def paid_references(message: GatewayMessage, amounts: Mapping[str, Decimal]) -> list[str]:
    """Which of the order's invoices (reference -> amount asked) the gateway says were paid.

    With the bill extension: ``paidItems`` is a non-empty part of the order, ``deferredItems`` exactly the rest,
    no reference twice, and ``paidAmount`` the sum of the paid invoices' amounts as the order has them. Without
    it (a gateway that ignores the extension, like CMI itself), every invoice was paid.
    """
    extension = [message.has(n) for n in ("paidItems", "deferredItems", "paidAmount")]
    if not any(extension):
        return list(amounts)
    paid = _refs(message.get("paidItems"), "paidItems")
    deferred = _refs(message.get("deferredItems"), "deferredItems")
    if not paid:
        raise GatewayMessageRefused("no_paid_items")
    if len(set(paid + deferred)) != len(paid) + len(deferred):
        raise GatewayMessageRefused("item_twice")
    if not set(paid) <= set(amounts):
        raise GatewayMessageRefused("unknown_item")
    if set(deferred) != set(amounts) - set(paid):
        raise GatewayMessageRefused("deferred_items")
    if _amount(message, "paidAmount") != sum((amounts[ref] for ref in paid), Decimal("0.00")):
        raise GatewayMessageRefused("paid_amount")
    return paid


def safe_masked_pan(value: str) -> str:
    """The card number as we may keep it: a masked form as sent, a full number masked here (never kept)."""
    value = value.strip()
    if _FULL_PAN.match(value):
        return mask(value)
    if _MASKED_PAN.match(value) and len(value) <= 19:
        return value
    raise GatewayMessageRefused("masked_pan")


def _text(message: GatewayMessage, name: str, *, max_length: int, required: bool = True) -> str:
    value = message.get(name).strip()
    if (required and not value) or len(value) > max_length:
        raise GatewayMessageRefused(f"bad_{name.lower().replace('.', '_')}")
    return value


# --- Moving orders on the gateway's word ----------------------------------------------------------------------

@dataclass(frozen=True)
class CallbackResult:
    answer: str  # what the gateway reads: capture, acknowledged or void
    reason: str  # why, for the logs and the tests

    def __str__(self) -> str:
        return self.answer


def _checked_order(message: GatewayMessage, *, lock: bool = True) -> PaymentOrder:
    """The order the message is about, locked; its amount and currency must be the order's."""
    orders = PaymentOrder.objects.select_for_update() if lock else PaymentOrder.objects
    order = orders.filter(oid=message.oid).first()
    if order is None:
        raise GatewayMessageRefused("unknown_oid")
    if _amount(message, "amount") != order.amount:
        raise GatewayMessageRefused("amount")
    if message.get("currency").strip() != MAD_NUMERIC:
        raise GatewayMessageRefused("currency")
    return order


@transaction.atomic
def _settle(message: GatewayMessage) -> CallbackResult:
    order = _checked_order(message)
    trans_id = _text(message, "TransId", max_length=64)
    if order.state == State.PAID:
        if Payment.objects.filter(order=order, trans_id=trans_id).exists():
            return CallbackResult(ANSWER_CAPTURE, "replay")
        raise GatewayMessageRefused("order_already_paid")
    if order.state == State.VOIDED:
        raise GatewayMessageRefused("order_voided")  # its payment was found never captured: staff took it over
    auth_code = _text(message, "AuthCode", max_length=16)
    host_ref = _text(message, "HostRefNum", max_length=32, required=False)
    masked_pan = safe_masked_pan(message.get("MaskedPan"))
    card_brand = _text(message, "EXTRA.CARDBRAND", max_length=16, required=False)
    if Payment.objects.filter(trans_id=trans_id).exists():
        raise GatewayMessageRefused("trans_id_used")

    items = list(order.items.values_list("invoice__reference", "invoice_id", "amount"))
    amounts = {reference: amount for reference, _, amount in items}
    paid = paid_references(message, amounts)
    paid_ids = [invoice_id for reference, invoice_id, _ in items if reference in paid]
    # Lock the invoices in one stable order, so two settlements sharing an invoice queue up, never deadlock.
    invoices = list(Invoice.objects.select_for_update().filter(pk__in=paid_ids).order_by("pk"))
    if len(invoices) != len(paid) or any(inv.status != Invoice.Status.UNPAID for inv in invoices):
        raise GatewayMessageRefused("invoice_already_paid")

    now = timezone.now()
    payment = Payment.objects.create(
        order=order, receipt_number=receipt_number_allocate(at=now),
        amount=sum((amounts[ref] for ref in paid), Decimal("0.00")), email=order.email, paid_at=now,
        trans_id=trans_id, auth_code=auth_code, host_ref=host_ref, masked_pan=masked_pan, card_brand=card_brand,
        merchant_name=settings.BILLER_NAME,
    )
    # The invoices locked and checked above, paid in one statement.
    Invoice.objects.filter(pk__in=[invoice.pk for invoice in invoices]).update(
        status=Invoice.Status.PAID, payment=payment, paid_at=now)
    order.failure_code, order.failure_message = "", ""
    _move(order, State.PAID, at=now, cause=f"paiement accepté, transaction {trans_id}, reçu {payment.receipt_number}")
    # Composed (its PDF too) and queued by a task after this commits: the settlement holds the year's receipt
    # counter locked, and a PDF is no work to do under it.
    send_receipt_email.enqueue(payment_id=payment.pk)
    return CallbackResult(ANSWER_CAPTURE, "settled")


def payment_settle(*, message: GatewayMessage) -> CallbackResult:
    """Record an approved payment from a verified message of the gateway (a callback, or reconciliation's signed
    status answer): the same checks, receipt and email as a callback; a replay changes nothing.
    GatewayMessageRefused when it does not check out (nothing written)."""
    if not message.approved:
        raise GatewayMessageRefused("not_approved")
    return _settle(message)


@transaction.atomic
def _fail(message: GatewayMessage, *, source: str) -> PaymentOrder:
    order = _checked_order(message)
    if order.state == State.CREATED:
        code = message.code[:8]
        order.failure_code, order.failure_message = code, message.get("ErrMsg").strip()[:255]
        md = message.get("mdStatus").strip()
        _move(order, State.FAILED, at=timezone.now(),
              cause=f"{source}: refusé, code {code or '-'}, mdStatus {md or '-'}")
    return order


def payment_callback(*, fields: Mapping[str, str]) -> CallbackResult:
    """The gateway's server-to-server callback: settle an approved payment (capture), record a decline
    (acknowledge), or refuse anything that does not check out (void), changing nothing."""
    try:
        message = read_gateway_message(fields, client_id=settings.BILLER_CLIENT_ID,
                                       store_key=settings.BILLER_STORE_KEY)
        if message.approved:
            result = _settle(message)
        elif message.code:
            _fail(message, source="rappel")
            result = CallbackResult(ANSWER_ACKNOWLEDGED, "declined")
        else:
            raise GatewayMessageRefused("no_code")
    except GatewayMessageRefused as exc:
        result = CallbackResult(ANSWER_VOID, exc.reason)
    except IntegrityError:
        # A concurrent settlement took the same transaction id or receipt first: the loser voids.
        result = CallbackResult(ANSWER_VOID, "conflict")
    log = logger.info if result.answer != ANSWER_VOID else logger.warning
    log("callback oid=%s answer=%s reason=%s", _safe_oid(fields), result.answer, result.reason)
    return result


def _safe_oid(fields: Mapping[str, str]) -> str:
    oid = next((v for k, v in fields.items() if k.lower() == "oid"), "")
    return repr(oid[:64]) if isinstance(oid, str) else "?"


@dataclass(frozen=True)
class ReturnOutcome:
    """Where the customer's browser came back to: the order as it stands, and what the gateway said."""

    order: PaymentOrder
    receipt_number: str | None  # set when the order is paid
    receipt_path: str | None  # the receipt's link (its path on the biller's site), when the order is paid
    code: str
    md_status: str
    message: str
    invoice_paid_elsewhere: bool  # one of its invoices was paid meanwhile by another order (so it cannot be)


def payment_return(*, fields: Mapping[str, str], failed: bool) -> ReturnOutcome:
    """The browser's return to okUrl (``failed=False``) or failUrl: verified like a callback. A verified
    failure is recorded on an order still waiting (the callback may not have come); GatewayMessageRefused
    when the message cannot be trusted."""
    message = read_gateway_message(fields, client_id=settings.BILLER_CLIENT_ID, store_key=settings.BILLER_STORE_KEY)
    if failed and not message.approved:
        order = _fail(message, source="retour navigateur")
    else:
        order = _checked_order(message, lock=False)
    payment = Payment.objects.filter(order=order).only("receipt_number", "trans_id").first()
    paid = payment is not None and order.state == State.PAID
    return ReturnOutcome(
        order=order,
        receipt_number=payment.receipt_number if paid else None,
        receipt_path=receipt_path(receipt_number=payment.receipt_number, oid=order.oid, trans_id=payment.trans_id)
        if paid else None,
        code=message.code,
        md_status=message.get("mdStatus").strip(),
        message=message.get("ErrMsg").strip(),
        invoice_paid_elsewhere=not paid and order_invoices_paid_elsewhere(order_id=order.pk),
    )
