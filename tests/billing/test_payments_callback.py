"""The gateway's callback: settle exactly what was paid, refuse (void) anything that does not check out."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tasdid.billing.models import Invoice, Payment, PaymentOrder, PaymentOrderEvent, ReceiptSequence
from tasdid.billing.services.payments import paid_references, payment_callback
from tasdid.messaging.models import Email
from tests.billing.payments_fixtures import EMAIL, MASKED, gateway_message, line_with_two_invoices, new_order, sign
from tests.support.pci import card_data_findings

pytestmark = pytest.mark.django_db


def receipt_email_tasks() -> list[dict]:
    """The receipt emails a settlement asked for (a task each, composed and queued after the commit)."""
    tasks = DBTaskResult.objects.filter(task_path="tasdid.billing.tasks.send_receipt_email").order_by("enqueued_at")
    return [row["kwargs"] for row in tasks.values_list("args_kwargs", flat=True)]


def state_of_the_world() -> dict:
    """Everything a callback may write, to assert that a refused one wrote nothing."""
    return {
        "invoices": list(Invoice.objects.order_by("pk").values_list("reference", "status", "payment_id", "paid_at")),
        "orders": list(PaymentOrder.objects.order_by("pk").values_list(
            "oid", "state", "failure_code", "failure_message", "updated_at")),
        "events": list(PaymentOrderEvent.objects.order_by("pk").values_list("order_id", "to_state", "cause")),
        "payments": list(Payment.objects.order_by("pk").values_list("receipt_number", "trans_id", "amount")),
        "emails": list(Email.objects.order_by("pk").values_list("to", "subject")),
        "receipt_email_tasks": receipt_email_tasks(),
        "sequences": list(ReceiptSequence.objects.order_by("year").values_list("year", "last_number")),
    }


def expected_receipt_number(n: int) -> str:
    return f"R{timezone.localtime().year}-{n:08d}"


def test_approved_callback_settles_every_invoice_captures_and_queues_the_receipt_email(run_tasks):
    line, june, july = line_with_two_invoices()
    order = new_order(line)
    before = timezone.now()

    result = payment_callback(fields=gateway_message(order, trans_id="26101ABCD1234", auth_code="P12345"))

    assert (result.answer, result.reason) == ("ACTION=POSTAUTH", "settled")
    payment = Payment.objects.get()
    assert payment.order_id == order.pk
    assert payment.receipt_number == expected_receipt_number(1)
    assert payment.amount == Decimal("285.00")
    assert payment.email == EMAIL
    assert payment.paid_at >= before
    assert (payment.trans_id, payment.auth_code, payment.host_ref) == ("26101ABCD1234", "P12345", "612345678901")
    assert (payment.masked_pan, payment.card_brand) == (MASKED, "VISA")
    assert payment.merchant_name == settings.BILLER_NAME
    for invoice in (june, july):
        invoice.refresh_from_db()
        assert (invoice.status, invoice.payment_id, invoice.paid_at) == ("paid", payment.pk, payment.paid_at)
    order.refresh_from_db()
    assert (order.state, order.failure_code) == ("paid", "")
    assert list(order.events.order_by("pk").values_list("from_state", "to_state", "cause")) == [
        ("", "created", "commande créée depuis le portail (2 facture(s))"),
        ("created", "paid", f"paiement accepté, transaction 26101ABCD1234, reçu {payment.receipt_number}"),
    ]
    assert receipt_email_tasks() == [{"payment_id": payment.pk}]
    assert Email.objects.count() == 0  # composed (its PDF too) after the settlement commits, not under its locks

    run_tasks()

    email = Email.objects.get()
    assert (email.to, email.subject, email.status) == (EMAIL, f"Votre reçu de paiement {payment.receipt_number}",
                                                      "sent")


def test_a_callback_read_as_cmis_merchant_kit_reads_it_settles():
    """A real CMI callback carries a trailing newline in a value its HASH does not cover, and HTML entities:
    the biller trims and decodes each value before hashing, as CMI's merchant kit does."""
    line, _june, _july = line_with_two_invoices()
    order = new_order(line)
    fields = gateway_message(order, trans_id="26101ABCD1234", BillToName="Ait Ali & Fils")
    fields.update({"ProcReturnCode": "00\n", "amount": fields["amount"] + "\r\n", "TransId": " 26101ABCD1234 ",
                   "BillToName": "Ait Ali &amp; Fils"})

    result = payment_callback(fields=fields)

    assert (result.answer, result.reason) == ("ACTION=POSTAUTH", "settled")
    payment = Payment.objects.get()
    assert (payment.amount, payment.trans_id) == (Decimal("285.00"), "26101ABCD1234")


def test_a_value_changed_beyond_the_kits_reading_is_still_refused():
    line, _june, _july = line_with_two_invoices()
    order = new_order(line)
    fields = gateway_message(order)
    fields["amount"] = fields["amount"].replace(".", ",")
    before = state_of_the_world()

    result = payment_callback(fields=fields)

    assert result.reason == "bad_hash"
    assert state_of_the_world() == before


def test_deferred_invoice_stays_unpaid_and_the_payment_is_the_paid_part():
    line, june, july = line_with_two_invoices()
    order = new_order(line)

    result = payment_callback(fields=gateway_message(order, paid=[july.reference]))

    assert result.answer == "ACTION=POSTAUTH"
    payment = Payment.objects.get()
    assert payment.amount == Decimal("99.00")
    june.refresh_from_db()
    july.refresh_from_db()
    assert (june.status, june.payment_id) == ("unpaid", None)
    assert (july.status, july.payment_id) == ("paid", payment.pk)


def test_without_the_bill_extension_every_invoice_of_the_order_is_paid():
    line, *_ = line_with_two_invoices()
    order = new_order(line)

    result = payment_callback(fields=gateway_message(order, extension=False))

    assert result.answer == "ACTION=POSTAUTH"
    assert Payment.objects.get().amount == Decimal("285.00")
    assert Invoice.objects.filter(status="paid").count() == 2


def test_receipt_numbers_follow_each_other():
    line, *_ = line_with_two_invoices()
    other, *_ = line_with_two_invoices(number="+212661000002")
    payment_callback(fields=gateway_message(new_order(line), trans_id="T1"))
    payment_callback(fields=gateway_message(new_order(other), trans_id="T2"))
    assert list(Payment.objects.order_by("pk").values_list("receipt_number", flat=True)) == [
        expected_receipt_number(1), expected_receipt_number(2)]


def test_a_full_card_number_from_the_gateway_is_kept_masked_only():
    line, *_ = line_with_two_invoices()
    result = payment_callback(fields=gateway_message(new_order(line), MaskedPan="4000000000000002"))
    assert result.answer == "ACTION=POSTAUTH"
    assert Payment.objects.get().masked_pan == "400000******0002"
    assert card_data_findings() == []


def _tamper(fields: dict, **changes) -> dict:
    """Change fields and keep the old HASH (what an attacker without the store key can do)."""
    return {**fields, **changes}


REFUSALS = {
    # name: (how to build the callback from the order, the refusal's reason)
    "amount changed, old hash": (lambda o, r: _tamper(gateway_message(o), amount="1.00"), "bad_hash"),
    "paid items changed, old hash": (lambda o, r: _tamper(gateway_message(o), paidItems=r[0]), "bad_hash"),
    "no hash": (lambda o, r: {k: v for k, v in gateway_message(o).items() if k != "HASH"}, "bad_hash"),
    "signed with another key": (lambda o, r: sign(gateway_message(o), store_key="OTHER-KEY"), "bad_hash"),
    "other client id": (lambda o, r: gateway_message(o, clientid="600000999"), "client_id"),
    "unknown oid": (lambda o, r: gateway_message(o, oid="TSDAAAAAAAAAAAAAAAA"), "unknown_oid"),
    "empty oid": (lambda o, r: gateway_message(o, oid=""), "no_oid"),
    "other amount": (lambda o, r: gateway_message(o, amount="200.00"), "amount"),
    "amount not a number": (lambda o, r: gateway_message(o, amount="285,00"), "bad_amount"),
    "other currency": (lambda o, r: gateway_message(o, currency="840"), "currency"),
    "no return code": (lambda o, r: gateway_message(o, ProcReturnCode=""), "no_code"),
    "paid item not in the order": (lambda o, r: gateway_message(o, paidItems=f"{r[0]},9999999999999999"),
                                   "unknown_item"),
    "paid item twice": (lambda o, r: gateway_message(o, paidItems=f"{r[0]},{r[0]},{r[1]}"), "item_twice"),
    "item paid and deferred": (lambda o, r: gateway_message(o, deferredItems=r[1]), "item_twice"),
    "deferred items not the rest": (lambda o, r: gateway_message(o, paid=[r[0]], deferredItems=""), "deferred_items"),
    "nothing paid": (lambda o, r: gateway_message(o, paid=[]), "no_paid_items"),
    "empty reference": (lambda o, r: gateway_message(o, paidItems=f"{r[0]},,{r[1]}"), "bad_paiditems"),
    "paid amount not the paid invoices'": (lambda o, r: gateway_message(o, paidAmount="284.00"), "paid_amount"),
    "paid amount missing": (lambda o, r: sign({k: v for k, v in gateway_message(o).items() if k != "paidAmount"}),
                            "bad_paidamount"),
    "no transaction id": (lambda o, r: gateway_message(o, TransId=""), "bad_transid"),
    "transaction id too long": (lambda o, r: gateway_message(o, TransId="T" * 65), "bad_transid"),
    "no authorization code": (lambda o, r: gateway_message(o, AuthCode=""), "bad_authcode"),
    "masked card is junk": (lambda o, r: gateway_message(o, MaskedPan="<script>"), "masked_pan"),
    "card brand too long": (lambda o, r: gateway_message(o, EXTRA_CARDBRAND="X" * 17), "bad_extra_cardbrand"),
    "nul byte": (lambda o, r: gateway_message(o, ErrMsg="a\x00b"), "junk"),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_a_callback_that_does_not_check_out_is_voided_and_changes_nothing(case):
    line, june, july = line_with_two_invoices()
    order = new_order(line)
    build, reason = REFUSALS[case]
    fields = build(order, [june.reference, july.reference])
    before = state_of_the_world()

    result = payment_callback(fields=fields)

    assert (result.answer, result.reason) == ("FAILURE", reason)
    assert state_of_the_world() == before


def test_field_names_are_matched_case_insensitively():
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    fields = gateway_message(order)
    renamed = {k.upper() if k in {"ProcReturnCode", "TransId", "oid"} else k: v for k, v in fields.items()}
    assert payment_callback(fields=sign(renamed)).answer == "ACTION=POSTAUTH"


def test_resent_callback_changes_nothing_and_captures_again():
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    fields = gateway_message(order, trans_id="T-REPLAY")
    assert payment_callback(fields=fields).answer == "ACTION=POSTAUTH"
    before = state_of_the_world()

    again = payment_callback(fields=fields)

    assert (again.answer, again.reason) == ("ACTION=POSTAUTH", "replay")
    assert state_of_the_world() == before
    assert Payment.objects.count() == 1
    assert len(receipt_email_tasks()) == 1


def test_same_order_with_another_transaction_is_voided():
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    payment_callback(fields=gateway_message(order, trans_id="T-FIRST"))
    before = state_of_the_world()

    result = payment_callback(fields=gateway_message(order, trans_id="T-SECOND"))

    assert (result.answer, result.reason) == ("FAILURE", "order_already_paid")
    assert state_of_the_world() == before


def test_an_invoice_paid_by_another_order_makes_the_later_one_fail():
    line, *_ = line_with_two_invoices()
    first, second = new_order(line), new_order(line)
    assert payment_callback(fields=gateway_message(first, trans_id="T-A")).answer == "ACTION=POSTAUTH"
    before = state_of_the_world()

    result = payment_callback(fields=gateway_message(second, trans_id="T-B"))

    assert (result.answer, result.reason) == ("FAILURE", "invoice_already_paid")
    assert state_of_the_world() == before
    second.refresh_from_db()
    assert second.state == "created"


def test_a_transaction_id_already_settled_elsewhere_is_voided():
    line, *_ = line_with_two_invoices()
    other, *_ = line_with_two_invoices(number="+212661000002")
    payment_callback(fields=gateway_message(new_order(line), trans_id="T-SAME"))
    later = new_order(other)
    before = state_of_the_world()

    result = payment_callback(fields=gateway_message(later, trans_id="T-SAME"))

    assert (result.answer, result.reason) == ("FAILURE", "trans_id_used")
    assert state_of_the_world() == before
    later.refresh_from_db()
    assert later.state == "created" and later.events.count() == 1
    assert Invoice.objects.filter(line=other, status="paid").count() == 0


def test_declined_callback_records_the_failure_and_is_acknowledged():
    line, *_ = line_with_two_invoices()
    order = new_order(line)

    result = payment_callback(fields=gateway_message(order, code="51", err_msg="Insufficient funds"))

    assert (result.answer, result.reason) == ("APPROVED", "declined")
    order.refresh_from_db()
    assert (order.state, order.failure_code, order.failure_message) == ("failed", "51", "Insufficient funds")
    assert list(order.events.order_by("pk").values_list("from_state", "to_state", "cause"))[1:] == [
        ("created", "failed", "rappel: refusé, code 51, mdStatus 1")]
    assert Payment.objects.count() == 0
    assert Invoice.objects.filter(status="paid").count() == 0
    assert Email.objects.count() == 0


def test_a_decline_after_the_payment_changes_nothing():
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    payment_callback(fields=gateway_message(order))
    before = state_of_the_world()

    result = payment_callback(fields=gateway_message(order, code="05", trans_id="T-LATE"))

    assert result.answer == "APPROVED"
    assert state_of_the_world() == before


def test_an_approval_after_a_decline_on_the_same_payment_page_settles():
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    payment_callback(fields=gateway_message(order, code="51", trans_id="T-DECLINED"))

    result = payment_callback(fields=gateway_message(order, trans_id="T-APPROVED"))

    assert result.answer == "ACTION=POSTAUTH"
    order.refresh_from_db()
    assert (order.state, order.failure_code) == ("paid", "")
    assert list(order.events.order_by("pk").values_list("to_state", flat=True)) == ["created", "failed", "paid"]


def test_a_second_decline_leaves_the_first_recorded():
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    payment_callback(fields=gateway_message(order, code="51"))
    before = state_of_the_world()

    assert payment_callback(fields=gateway_message(order, code="54")).answer == "APPROVED"
    assert state_of_the_world() == before


def test_paid_references_is_a_pure_decision():
    from tasdid.billing.services.payments import GatewayMessage, GatewayMessageRefused

    amounts = {"A": Decimal("186.00"), "B": Decimal("99.00")}

    def message(**fields):
        return GatewayMessage({k.lower(): v for k, v in fields.items()})

    assert paid_references(message(), amounts) == ["A", "B"]
    assert paid_references(message(paidItems="B", deferredItems="A", paidAmount="99.00"), amounts) == ["B"]
    assert paid_references(message(paidItems=" A , B ", deferredItems="", paidAmount="285"), amounts) == ["A", "B"]
    with pytest.raises(GatewayMessageRefused, match="paid_amount"):
        paid_references(message(paidItems="B", deferredItems="A", paidAmount="186.00"), amounts)
    with pytest.raises(GatewayMessageRefused, match="deferred_items"):
        paid_references(message(paidItems="B", paidAmount="99.00"), amounts)
