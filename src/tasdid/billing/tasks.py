"""Background work of the biller (django-tasks, database backend): the watch on each payment order's expiry."""

from django_tasks import task


@task()
def expire_order(order_id: int) -> bool:
    """At an order's expiry, close it if the gateway never answered (services.payments.payment_order_expire)."""
    from .services.payments import payment_order_expire

    return payment_order_expire(order_id=order_id)
