"""Reconciliation with the gateway: every case of what the biller recorded against what the gateway says it captured,
against a local gateway speaking the status query's contract over real HTTP with real ver3 signatures."""

import datetime as dt
import logging
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from tasdid.billing.models import Discrepancy, Invoice, Payment, PaymentOrder, PaymentOrderEvent
from tasdid.billing.selectors.payments import receipt_for
from tasdid.billing.services.payments import ORDER_EXPIRY, payment_callback, payment_order_expire
from tasdid.billing.services.reconciliation import Outcome, Step, reconcile, reconciliation_step
from tasdid.messaging.models import Email
from tests.billing.fake_gateway import FakeOrder
from tests.billing.payments_fixtures import gateway_message, line_with_two_invoices, new_order
from tests.support.tasks import run_pending_tasks

ALERT_TO = "controle@tasdid.example.ma"  # the sandbox default of TASDID_RECONCILE_ALERT_EMAIL


def later() -> dt.datetime:
    """A moment when every order made now is due for reconciliation (its payment page closed long ago)."""
    return timezone.now() + ORDER_EXPIRY + dt.timedelta(minutes=1)


def paid_order(*, number: str = "+212661000001", trans_id: str = "26101ABCD1234",
               paid: list[str] | None = None) -> tuple[PaymentOrder, dict[str, str]]:
    """An order the biller settled on the gateway's callback, and that callback."""
    line, _june, _july = line_with_two_invoices(number=number)
    order = new_order(line)
    callback = gateway_message(order, trans_id=trans_id, paid=paid)
    assert payment_callback(fields=callback).answer == "ACTION=POSTAUTH"
    run_pending_tasks()  # the worker composes and sends its receipt email
    order.refresh_from_db()
    return order, callback


def unpaid_order(*, number: str = "+212661000001", trans_id: str = "26101ABCD1234") -> tuple[PaymentOrder, dict]:
    """An order abandoned at the biller (expired), and the callback the gateway would have sent for it."""
    line, _june, _july = line_with_two_invoices(number=number)
    order = new_order(line)
    assert payment_order_expire(order_id=order.pk, now=later())
    order.refresh_from_db()
    return order, gateway_message(order, trans_id=trans_id)


def world() -> dict:
    """Everything reconciliation may write, to assert that a refused or repeated run wrote nothing."""
    return {
        "invoices": list(Invoice.objects.order_by("pk").values_list("reference", "status", "payment_id", "paid_at")),
        "orders": list(PaymentOrder.objects.order_by("pk").values_list("oid", "state", "reconciled_at",
                                                                       "updated_at")),
        "events": list(PaymentOrderEvent.objects.order_by("pk").values_list("order_id", "to_state", "cause")),
        "payments": list(Payment.objects.order_by("pk").values_list("receipt_number", "trans_id", "amount")),
        "discrepancies": list(Discrepancy.objects.order_by("pk").values_list("order_id", "kind")),
        "emails": list(Email.objects.order_by("pk").values_list("to", "subject")),
    }


# --- The decision, pure --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("paid", "status", "redelivered", "step"), [
    (True, "CAPTURED", False, Step.RECONCILE),
    (False, "CAPTURED", False, Step.RECORD),
    *[(True, s, False, Step.VOID) for s in ("VOIDED", "DECLINED", "FAILED", "EXPIRED", "CANCELLED")],
    (True, "UNKNOWN", False, Step.FLAG),
    *[(False, s, False, Step.AGREE_UNPAID) for s in ("VOIDED", "DECLINED", "FAILED", "EXPIRED", "CANCELLED",
                                                      "UNKNOWN")],
    (True, "AUTHORIZED", False, Step.REDELIVER),
    (False, "UNRESOLVED", False, Step.REDELIVER),
    (True, "AUTHORIZED", True, Step.WAIT),
    (False, "UNRESOLVED", True, Step.WAIT),
    (True, "OPEN", False, Step.WAIT),
    (False, "PROCESSING", False, Step.WAIT),
])
def test_the_step_follows_what_each_side_says(paid, status, redelivered, step):
    assert reconciliation_step(biller_paid=paid, status=status, redelivered=redelivered) == step


# --- Paid here ------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_paid_and_captured_is_reconciled_once(gateway):
    order, callback = paid_order()
    gateway.orders[order.oid] = FakeOrder("CAPTURED", callback, "285.00")
    now = later()

    report = reconcile(now=now)

    assert report.counts == {"reconciled": 1, "unpaid": 0, "recorded": 0, "discrepancy": 0, "pending": 0}
    assert [(r.oid, r.outcome, r.gateway_status) for r in report.results] == [(order.oid, "reconciled", "CAPTURED")]
    order.refresh_from_db()
    assert (order.state, order.reconciled_at) == ("paid", now)
    assert order.events.order_by("pk").last().cause == "rapproché : encaissé par la passerelle (285.00 DH)"
    assert gateway.actions() == [(order.oid, "status")]
    assert Discrepancy.objects.count() == 0
    assert not Email.objects.filter(to=ALERT_TO).exists()

    before = world()
    again = reconcile(now=now + dt.timedelta(hours=1))
    assert again.results == []
    assert world() == before
    assert len(gateway.requests) == 1


NOT_CAPTURED = ["VOIDED", "DECLINED", "FAILED", "EXPIRED", "CANCELLED", "UNKNOWN"]


@pytest.mark.django_db
@pytest.mark.parametrize("status", [s for s in NOT_CAPTURED if s != "UNKNOWN"])
def test_paid_but_never_captured_reopens_the_invoices_flags_and_alerts(gateway, caplog, status):
    order, callback = paid_order()
    payment = Payment.objects.get()
    gateway.orders[order.oid] = FakeOrder(status, callback)
    now = later()

    with caplog.at_level(logging.INFO, logger="tasdid.billing.services.reconciliation"):
        report = reconcile(now=now)

    refs = sorted(Invoice.objects.values_list("reference", flat=True))
    assert report.counts == {"reconciled": 0, "unpaid": 0, "recorded": 0, "discrepancy": 1, "pending": 0}
    [result] = report.results
    detail = (f"payé chez le facturier, non encaissé par la passerelle : reçu {payment.receipt_number} annulé, "
              f"285.00 DH, factures {refs[0]}, {refs[1]} rouvertes")
    assert (result.oid, result.outcome, result.gateway_status, result.detail) == (
        order.oid, Outcome.DISCREPANCY, status, detail)
    # The invoices are due again; the payment stays as history, its order voided (a move with its event).
    assert list(Invoice.objects.order_by("reference").values_list("status", "payment_id", "paid_at")) == [
        ("unpaid", None, None), ("unpaid", None, None)]
    assert Payment.objects.get() == payment
    order.refresh_from_db()
    assert (order.state, order.reconciled_at) == ("voided", now)
    assert list(order.events.order_by("pk").values_list("from_state", "to_state", "cause"))[-1] == (
        "paid", "voided", f"rapprochement : non encaissé ({status} à la passerelle), reçu {payment.receipt_number} "
                          "annulé, 2 facture(s) rouverte(s)")
    assert receipt_for(receipt_number=payment.receipt_number) is None  # no receipt says paid any more
    # Flagged: the admin list's row.
    discrepancy = Discrepancy.objects.get()
    assert (discrepancy.order_id, discrepancy.kind, discrepancy.found_at, discrepancy.gateway_status) == (
        order.pk, "not_captured", now, status)
    assert (discrepancy.amount, discrepancy.captured_amount) == (Decimal("285.00"), Decimal("0.00"))
    assert (discrepancy.receipt_number, discrepancy.trans_id) == (payment.receipt_number, "26101ABCD1234")
    assert (discrepancy.invoice_references, discrepancy.detail) == (",".join(refs), "2 facture(s) rouverte(s)")
    # Alerted: a log line at ERROR, and an email to the configured address.
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        f"reconciliation discrepancy oid={order.oid} kind=not_captured gateway_status={status} amount=285.00 "
        f"captured=0.00 receipt={payment.receipt_number} trans_id=26101ABCD1234 discrepancy_id={discrepancy.pk}"]
    alert = Email.objects.get(to=ALERT_TO)
    assert alert.subject == f"Écart de rapprochement : ordre {order.oid}"
    assert alert.body_text == (
        "Le rapprochement avec la passerelle de paiement a constaté un écart.\n\n"
        "Écart : payé chez le facturier, non encaissé par la passerelle\n"
        f"Ordre de paiement : {order.oid}\n"
        f"Statut à la passerelle : {status}\n"
        "Montant du facturier : 285.00 DH\n"
        "Montant encaissé : 0.00 DH\n"
        f"Reçu : {payment.receipt_number}\n"
        "Transaction : 26101ABCD1234\n"
        f"Factures : {refs[0]},{refs[1]}\n"
        "Détail : 2 facture(s) rouverte(s)\n"
        "Suite donnée : paiement annulé, factures rouvertes (de nouveau à payer) ; le client a reçu un reçu : "
        "à prévenir.\n\n"
        f"Les écarts : {settings.BILLER_URL}/admin/billing/discrepancy/{discrepancy.pk}/change/\n")
    assert "400000" not in alert.body_text  # not even the masked card

    # Idempotent: a second run asks nothing and changes nothing; the same callback again is refused (void).
    before = world()
    assert reconcile(now=now + dt.timedelta(hours=1)).results == []
    assert payment_callback(fields=callback).reason == "order_voided"
    assert world() == before


@pytest.mark.django_db
def test_the_alert_goes_to_the_configured_address(gateway, settings):
    settings.RECONCILE_ALERT_EMAIL = "tresorerie@operateur.example.ma"
    order, callback = paid_order()
    gateway.orders[order.oid] = FakeOrder("VOIDED", callback)

    reconcile(now=later())

    alert = Email.objects.exclude(subject__startswith="Votre reçu").get()
    assert alert.to == "tresorerie@operateur.example.ma"


@pytest.mark.django_db
def test_without_an_alert_address_the_discrepancy_is_still_flagged_and_logged(gateway, settings, caplog):
    settings.RECONCILE_ALERT_EMAIL = ""
    order, callback = paid_order()
    gateway.orders[order.oid] = FakeOrder("VOIDED", callback)

    report = reconcile(now=later())

    assert report.count(Outcome.DISCREPANCY) == 1
    assert Discrepancy.objects.count() == 1
    assert list(Email.objects.values_list("subject", flat=True)) == [
        f"Votre reçu de paiement {Payment.objects.get().receipt_number}"]
    assert any(r.levelno == logging.ERROR and order.oid in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_captured_under_another_transaction_is_flagged_and_the_payment_left_alone(gateway):
    order, callback = paid_order()
    gateway.orders[order.oid] = FakeOrder("CAPTURED", {**callback, "TransId": "OTHER-TRANS"}, "285.00")
    now = later()

    report = reconcile(now=now)

    [result] = report.results
    assert (result.outcome, result.detail) == (
        "discrepancy", "encaissé par la passerelle, montant ou transaction différents : encaissé 285.00 DH, "
                       "transaction OTHER-TRANS ; enregistré 285.00 DH, transaction 26101ABCD1234")
    assert set(Invoice.objects.values_list("status", flat=True)) == {"paid"}
    order.refresh_from_db()
    assert (order.state, order.reconciled_at) == ("paid", now)
    assert Discrepancy.objects.get().kind == "mismatch"
    assert Email.objects.filter(to=ALERT_TO).count() == 1


@pytest.mark.django_db
def test_a_payment_just_recorded_is_left_to_its_capture(gateway):
    order, callback = paid_order()
    gateway.orders[order.oid] = FakeOrder("VOIDED", callback)

    report = reconcile(now=timezone.now())  # seconds after the callback: the gateway may be capturing

    assert report.results == []
    assert gateway.requests == []


# --- Not paid here ------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_captured_but_not_recorded_is_recorded_from_the_gateways_data_once(gateway, caplog):
    order, callback = unpaid_order(trans_id="26101CAPTURED1")
    gateway.orders[order.oid] = FakeOrder("CAPTURED", callback, "285.00")
    now = later()

    with caplog.at_level(logging.INFO, logger="tasdid.billing.services.reconciliation"):
        report = reconcile(now=now)

    payment = Payment.objects.get()
    assert (payment.order_id, payment.amount, payment.trans_id, payment.auth_code, payment.masked_pan) == (
        order.pk, Decimal("285.00"), "26101CAPTURED1", "P12345", "400000******0002")
    assert set(Invoice.objects.values_list("status", "payment_id")) == {("paid", payment.pk)}
    [result] = report.results
    assert (result.outcome, result.detail) == (
        "recorded", f"reçu {payment.receipt_number}, 285.00 DH, transaction 26101CAPTURED1")
    order.refresh_from_db()
    assert (order.state, order.reconciled_at) == ("paid", now)
    assert list(order.events.order_by("pk").values_list("from_state", "to_state"))[-2:] == [
        ("expired", "paid"), ("paid", "paid")]
    # The receipt email, exactly one; no alert (the customer paid, the biller now knows it).
    run_pending_tasks()
    assert list(Email.objects.values_list("to", "subject")) == [
        ("client@example.ma", f"Votre reçu de paiement {payment.receipt_number}")]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"reconciliation recorded oid={order.oid}: {result.detail}"]

    before = world()
    assert reconcile(now=now + dt.timedelta(hours=1)).results == []
    assert world() == before


@pytest.mark.django_db
def test_captured_but_an_invoice_was_paid_meanwhile_is_flagged_not_recorded(gateway):
    order, callback = unpaid_order()
    # The same line paid from another order in the meantime: the captured money settles nothing.
    second = PaymentOrder.objects.create(oid="TSDOTHERORDER000", line=order.line, email="x@example.ma",
                                         amount=order.amount, state="created", created_at=order.created_at,
                                         updated_at=order.created_at)
    for item in order.items.all():
        second.items.create(invoice=item.invoice, amount=item.amount)
    assert payment_callback(fields=gateway_message(second, trans_id="26101FIRST")).answer == "ACTION=POSTAUTH"
    gateway.orders[order.oid] = FakeOrder("CAPTURED", callback, "285.00")
    gateway.orders[second.oid] = FakeOrder("CAPTURED", gateway_message(second, trans_id="26101FIRST"), "285.00")
    now = later()

    report = reconcile(now=now)

    by_oid = {r.oid: r for r in report.results}
    assert (by_oid[order.oid].outcome, by_oid[order.oid].detail) == (
        "discrepancy", "encaissé par la passerelle, impossible à enregistrer : 285.00 DH, données refusées "
                       "(invoice_already_paid)")
    assert by_oid[second.oid].outcome == "reconciled"
    assert Payment.objects.count() == 1
    order.refresh_from_db()
    assert (order.state, order.reconciled_at) == ("expired", now)
    discrepancy = Discrepancy.objects.get()
    assert (discrepancy.kind, discrepancy.captured_amount, discrepancy.receipt_number, discrepancy.trans_id) == (
        "not_recorded", Decimal("285.00"), "", "26101ABCD1234")
    assert Email.objects.get(to=ALERT_TO).subject == f"Écart de rapprochement : ordre {order.oid}"


@pytest.mark.django_db
@pytest.mark.parametrize("status", NOT_CAPTURED)
def test_unpaid_on_both_sides_is_reconciled_without_a_word(gateway, status):
    order, callback = unpaid_order()
    if status != "UNKNOWN":
        gateway.orders[order.oid] = FakeOrder(status, callback)
    now = later()

    report = reconcile(now=now)

    assert [(r.outcome, r.detail) for r in report.results] == [("unpaid", "285.00 DH non payés")]
    order.refresh_from_db()
    assert (order.state, order.reconciled_at) == ("expired", now)
    assert (Payment.objects.count(), Discrepancy.objects.count(), Email.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["OPEN", "PROCESSING"])
def test_a_payment_page_still_busy_is_left_for_the_next_run(gateway, status):
    order, callback = unpaid_order()
    gateway.orders[order.oid] = FakeOrder(status, callback)
    before = world()

    report = reconcile(now=later())

    assert [(r.outcome, r.gateway_status, r.detail) for r in report.results] == [
        ("pending", status, f"{status} à la passerelle")]
    assert world() == before
    gateway.orders[order.oid].status = "EXPIRED"
    assert reconcile(now=later()).count(Outcome.UNPAID) == 1  # asked again, settled then


@pytest.mark.django_db
def test_only_the_orders_that_may_differ_are_asked_about(gateway):
    now = later()
    fresh = new_order(line_with_two_invoices(number="+212661000002")[0])  # made just now... at ``now``'s scale
    fresh.created_at = fresh.updated_at = now - dt.timedelta(minutes=5)  # its payment page may still be open
    fresh.save(update_fields=["created_at", "updated_at"])
    old = new_order(line_with_two_invoices(number="+212661000003")[0])
    old.created_at = now - dt.timedelta(days=settings.RECONCILE_DAYS, minutes=1)
    old.save(update_fields=["created_at"])
    due, _ = unpaid_order(number="+212661000004")

    reconcile(now=now)

    assert gateway.actions() == [(due.oid, "status")]


# --- What the biller refuses -----------------------------------------------------------------------------------

def _tampered_status(fields):
    return {**fields, "OrderStatus": "VOIDED"}


def _unsigned(fields):
    return {k: v for k, v in fields.items() if k != "HASH"}


def _resigned(**changes):
    from tasdid.core.signing import ver3_hash

    def spoil(fields):
        spoiled = {**{k: v for k, v in fields.items() if k != "HASH"}, **changes}
        return {**spoiled, "HASH": ver3_hash(spoiled, settings.BILLER_STORE_KEY)}
    return spoil


def _other_key(fields):
    from tasdid.core.signing import ver3_hash

    unsigned = {k: v for k, v in fields.items() if k != "HASH"}
    return {**unsigned, "OrderStatus": "VOIDED", "HASH": ver3_hash({**unsigned, "OrderStatus": "VOIDED"}, "OTHER")}


@pytest.mark.django_db
@pytest.mark.parametrize(("tamper", "reason"), [
    (_tampered_status, "réponse de la passerelle non signée ou mal signée : refusée"),
    (_unsigned, "réponse de la passerelle non signée ou mal signée : refusée"),
    (_other_key, "réponse de la passerelle non signée ou mal signée : refusée"),
    (_resigned(rnd="an-older-answer-replayed-0000"), "réponse refusée (rnd)"),
    (_resigned(oid="TSDANOTHERORDER0"), "réponse refusée (oid)"),
    (_resigned(clientid="600000099"), "réponse refusée (client_id)"),
    (_resigned(amount="1.00"), "réponse refusée (amount)"),
    (_resigned(currency="978"), "réponse refusée (currency)"),
    (_resigned(capturedAmount="900.00"), "réponse refusée (captured_amount)"),
    (_resigned(OrderStatus="VOIDED", capturedAmount="285.00"), "réponse refusée (captured_amount)"),
    (_resigned(OrderStatus="REFUNDED"), "réponse refusée (order_status)"),
    (_resigned(capturedAmount="lots"), "réponse refusée (bad_capturedamount)"),
])
def test_an_answer_that_does_not_check_out_changes_nothing(gateway, tamper, reason):
    order, callback = paid_order()
    unpaid, unpaid_callback = unpaid_order(number="+212661000002", trans_id="26101OTHER")
    gateway.orders[order.oid] = FakeOrder("CAPTURED", callback, "285.00")
    gateway.orders[unpaid.oid] = FakeOrder("CAPTURED", unpaid_callback, "285.00")
    gateway.tamper = tamper
    before = world()

    report = reconcile(now=later())

    assert [(r.oid, r.outcome, r.gateway_status, r.detail) for r in report.results] == [
        (order.oid, "pending", "", reason), (unpaid.oid, "pending", "", reason)]
    assert world() == before


@pytest.mark.django_db
@pytest.mark.parametrize(("refuse_with", "reason"), [(403, "réponse refusée (http_403)"),
                                                     (500, "réponse refusée (http_500)")])
def test_a_query_the_gateway_refuses_changes_nothing(gateway, refuse_with, reason):
    paid_order()
    gateway.refuse_with = refuse_with
    before = world()

    report = reconcile(now=later())

    assert [(r.outcome, r.detail) for r in report.results] == [("pending", reason)]
    assert world() == before


@pytest.mark.django_db
def test_a_gateway_that_does_not_know_our_key_refuses_us(gateway, settings):
    order, callback = paid_order()
    gateway.orders[order.oid] = FakeOrder("CAPTURED", callback, "285.00")
    settings.BILLER_STORE_KEY = "NOT-THE-STORE-KEY"  # our query's hash is wrong for the gateway

    report = reconcile(now=later())

    assert [(r.outcome, r.detail) for r in report.results] == [("pending", "réponse refusée (http_403)")]


@pytest.mark.django_db
def test_a_paid_order_the_gateway_does_not_know_is_flagged_and_nothing_reopened(gateway):
    """The gateway signed the callback that paid it: UNKNOWN says the gateway lost its data, not that nothing was
    captured. Staff are alerted; the customer is not asked to pay again."""
    order, _callback = paid_order()  # the fake gateway has no such order: UNKNOWN
    payment = Payment.objects.get()
    invoices_before = list(Invoice.objects.order_by("pk").values_list("status", "payment_id"))

    report = reconcile(now=later())

    [result] = report.results
    assert (result.outcome, result.gateway_status) == (Outcome.DISCREPANCY, "UNKNOWN")
    assert list(Invoice.objects.order_by("pk").values_list("status", "payment_id")) == invoices_before
    assert invoices_before == [("paid", payment.pk), ("paid", payment.pk)]
    order.refresh_from_db()
    assert order.state == "paid" and order.reconciled_at is not None
    assert list(Discrepancy.objects.values_list("order_id", "kind", "gateway_status")) == [
        (order.pk, "mismatch", "UNKNOWN")]
    assert Email.objects.filter(to=ALERT_TO).count() == 1
    before = world()
    reconcile(now=later())
    assert world() == before


@pytest.mark.django_db
def test_an_order_reconciled_unpaid_is_looked_at_again_once_a_late_callback_pays_it(gateway):
    order, callback = unpaid_order()
    reconcile(now=later())  # the gateway does not know it yet: agreed unpaid
    order.refresh_from_db()
    assert (order.state, order.reconciled_at is not None) == ("expired", True)

    assert payment_callback(fields=callback).answer == "ACTION=POSTAUTH"  # a late payment settles it

    order.refresh_from_db()
    assert (order.state, order.reconciled_at) == ("paid", None)
    gateway.orders[order.oid] = FakeOrder("VOIDED", callback)  # ... but the gateway voided it
    [result] = reconcile(now=later()).results
    assert (result.oid, result.outcome) == (order.oid, Outcome.DISCREPANCY)
    order.refresh_from_db()
    assert order.state == "voided"


@pytest.mark.django_db
def test_an_unreachable_gateway_ends_the_run_at_the_first_order(settings, closed_port):
    settings.GATEWAY_URL = f"http://127.0.0.1:{closed_port}"
    paid_order()
    paid_order(number="+212661000002", trans_id="26101ABCD9999")
    before = world()

    report = reconcile(now=later())

    assert [(r.outcome, r.detail) for r in report.results] == [("pending", "passerelle injoignable")]
    assert world() == before


@pytest.mark.django_db
def test_an_unreachable_gateway_changes_nothing(settings, closed_port):
    settings.GATEWAY_URL = f"http://127.0.0.1:{closed_port}"
    order, _callback = paid_order()
    before = world()

    report = reconcile(now=later())

    assert [(r.oid, r.outcome, r.detail) for r in report.results] == [
        (order.oid, "pending", "passerelle injoignable")]
    assert world() == before


@pytest.mark.django_db
def test_staff_see_the_discrepancies_in_the_admin_and_cannot_edit_them(gateway, django_assert_max_num_queries):
    from tests.support.staff import signed_in, staff_account

    order, callback = paid_order()
    gateway.orders[order.oid] = FakeOrder("VOIDED", callback)
    reconcile(now=later())
    discrepancy = Discrepancy.objects.get()
    staff_account("staff", parties=["biller"])
    staff = signed_in("biller", "staff")

    with django_assert_max_num_queries(12):
        page = staff.get("/admin/billing/discrepancy/")
    assert page.status_code == 200
    assert [d.pk for d in page.context["cl"].result_list] == [discrepancy.pk]
    html = page.content.decode()
    assert "payé chez le facturier, non encaissé par la passerelle" in html and order.oid in html
    assert staff.get("/admin/billing/discrepancy/", {"q": order.oid}).context["cl"].result_count == 1
    assert staff.get("/admin/billing/paymentorder/", {"state": "voided"}).context["cl"].result_count == 1
    assert staff.post(f"/admin/billing/discrepancy/{discrepancy.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Discrepancy.objects.count() == 1
