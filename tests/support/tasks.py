"""Run the queued background tasks with django-tasks-db's own worker code, in the test's thread."""

from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult


def run_pending_tasks(*, max_tasks: int = 200) -> int:
    """Run every task that is ready (and those they enqueue), like ``db_worker --batch``; return how many ran.

    Works inside a test transaction too (the worker's own loop closes connections, which a test cannot allow).
    """
    worker = Worker(
        queue_names=["*"], interval=0, batch=True, backend_name="default", startup_delay=False,
        max_tasks=None, worker_id="test-worker", excluded_queue_names=[],
    )
    ran = 0
    while ran < max_tasks:
        result = DBTaskResult.objects.ready().filter(backend_name="default").order_by("enqueued_at").first()
        if result is None:
            return ran
        result.claim(worker.worker_id)
        worker.run_task(result)
        ran += 1
    raise AssertionError(f"more than {max_tasks} tasks: a task keeps enqueueing itself?")
