"""Background delivery of the outbox (django-tasks, database backend)."""

from django.utils import timezone
from django_tasks import task

from . import services


@task()
def deliver_sms(sms_id: int) -> bool:
    return services.sms_deliver(sms_id=sms_id)


@task()
def deliver_email(email_id: int) -> None:
    retry_in = services.email_deliver(email_id=email_id)
    if retry_in is not None:
        deliver_email.using(run_after=timezone.now() + retry_in).enqueue(email_id=email_id)
