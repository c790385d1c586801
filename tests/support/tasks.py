"""Background tasks in tests: run the queued ones in the test's thread, or run ``tasdid worker`` as a real
process over the test database."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from django.db import connection
from django_tasks_db.models import DBTaskResult

from tasdid.core.worker import Worker


def run_pending_tasks(*, max_tasks: int = 200) -> int:
    """Run every task that is ready (and those they enqueue), like ``tasdid worker --batch``; return how many ran.

    Works inside a test transaction too (the worker's own loop closes connections, which a test cannot allow).
    """
    worker = Worker(queue_names=["*"], interval=0, batch=True, backend_name="default", startup_delay=False,
                    worker_id="test-worker")
    ran = 0
    while ran < max_tasks:
        result = DBTaskResult.objects.ready().filter(backend_name="default").order_by("enqueued_at").first()
        if result is None:
            return ran
        result.claim(worker.worker_id)
        worker.run_task(result)
        ran += 1
    raise AssertionError(f"more than {max_tasks} tasks: a task keeps enqueueing itself?")


def database_url() -> str:
    """The test database (committed rows: transactional tests) as a DATABASE_URL for another process."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class WorkerProcess:
    """``tasdid worker`` as a process of its own over the test database (its output in ``log``)."""

    def __init__(self, *, log: Path, lease: float, env: dict[str, str] | None = None):
        self.log = log
        environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tasdid.settings", "DATABASE_URL": database_url(),
                       **(env or {})}
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tasdid.cli", "worker", "--interval", "0.05", "--lease", str(lease)],
                env=environment, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        """Ctrl-C, as a person stops it; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, log: Callable[[], str] = str) -> None:
    """Poll ``condition`` every 50 ms; fail (with ``log()``) when it still does not hold after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not true after {timeout} s\n{log()}")
        time.sleep(0.05)
