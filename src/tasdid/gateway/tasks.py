"""Background work of the gateway (django-tasks, database backend): the watch on every attempt's deadline.
Everything overdue at once is swept by ``tasdid gateway-sweep`` (flow.sweep)."""

from django_tasks import task


@task()
def watch_attempt(attempt_id: int, at: str | None = None) -> str:
    """Look at an attempt at its deadline; if nothing moved it, take it over (flow.sweep_attempt); if its
    deadline moved later, watch again then (flow.watch_attempt). ``at``: when this watch was set to run."""
    from .flow import watch_attempt as watch

    return watch(attempt_id=attempt_id, at=at)
