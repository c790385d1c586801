"""Background delivery of the outbox (django-tasks, database backend, run by ``tasdid worker``).

A task may run more than once (tasdid.core.worker takes again the tasks of a worker that died): the services
it calls are idempotent and send each message once (its message id, "sending" then "sent" marks)."""

from django_tasks import task

from . import services


@task()
def deliver_sms(sms_id: int) -> bool:
    return services.sms_deliver(sms_id=sms_id)


@task()
def deliver_email(email_id: int) -> bool:
    return services.email_deliver(email_id=email_id)
