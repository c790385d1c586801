"""Background work of the biller (django-tasks, database backend): the watch on each payment order's expiry, the
receipt email of each payment, the periodic reconciliation with the gateway, a refund's email to the customer and
the sending again of a refund left without an answer."""

from django_tasks import task


@task()
def expire_order(order_id: int) -> bool:
    """At an order's expiry, close it if the gateway never answered (services.payments.payment_order_expire)."""
    from .services.payments import payment_order_expire

    return payment_order_expire(order_id=order_id)


@task()
def send_receipt_email(payment_id: int) -> bool:
    """Compose a payment's receipt email (its PDF attached) and queue it in the outbox, once
    (emails.receipt_email_queue)."""
    from .emails import receipt_email_queue

    return receipt_email_queue(payment_id=payment_id)


@task()
def reconcile_payments(token: str) -> dict[str, int]:
    """One periodic run of reconciliation: first enqueue the next run of this chain (unless a newer chain replaced
    it), then reconcile (services.reconciliation). Returns the counts per outcome."""
    from .services.reconciliation import reconcile, reconciliation_schedule_next

    if not reconciliation_schedule_next(token=token):
        return {}
    return reconcile().counts


@task()
def send_refund_email(refund_id: int) -> bool:
    """Compose the email telling the customer of an approved refund and queue it in the outbox, once
    (emails.refund_email_queue)."""
    from .emails import refund_email_queue

    return refund_email_queue(refund_id=refund_id)


@task()
def send_refund_again(refund_id: int) -> str:
    """Send again a refund left without an answer (services.refunds.refund_send_again): its state after."""
    from .services.refunds import refund_send_again

    refund = refund_send_again(refund_id=refund_id)
    return refund.state if refund is not None else ""
