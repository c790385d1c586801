"""Background work of the gateway (django-tasks, database backend): the watch on every attempt's deadline.
Everything overdue at once is swept by ``tasdid gateway-sweep`` (flow.sweep)."""

from django_tasks import task


@task()
def watch_attempt(attempt_id: int) -> str:
    """Look at an attempt at its deadline; if nothing moved it, take it over (flow.sweep_attempt)."""
    from .flow import sweep_attempt

    return sweep_attempt(attempt_id=attempt_id)
