"""The task worker behind ``tasdid worker``: django-tasks-db's worker, plus leases, recovery and patience.

django-tasks-db (0.13) runs a task by moving its row READY → RUNNING (``claim``, in an exclusive transaction)
and then to SUCCESSFUL or FAILED. It has no lease, heartbeat or recovery: a worker killed while a task runs
leaves that row RUNNING forever and no worker takes it again (django-tasks issue #46). A transient database
error ("database is locked" past SQLite's busy timeout, a dropped PostgreSQL connection) in its polling loop
or in its bookkeeping stops the worker. This module adds, without touching the library's tables:

- **A lease per worker process** (``tasdid.core.models.WorkerLease``: worker id, host, pid, last beat),
  written before the worker claims anything and renewed by a heartbeat thread every third of the lease
  (``--lease``, 30 s by default). A clean exit deletes it.
- **A recovery pass**, at start and then every half lease, in every worker: a RUNNING task claimed more than
  a lease ago by a worker whose lease has expired or is gone is put back READY (its ``worker_ids`` keep every
  claim). After ``MAX_CLAIMS`` claims the task is marked FAILED instead (a task that kills its worker every
  time must not kill every worker in turn). Each update is conditional on the claim it recovers
  (``started_at``), so two workers recovering at once, or a worker finishing late, change nothing twice.
  The same pass runs the sweeps named in ``settings.TASK_WORKER_SWEEPS`` (the outbox's: a message whose
  delivery task failed or vanished is marked failed, for staff to see and resend).
- **Conditional bookkeeping**: a worker records a task's outcome only while the row still holds its own claim;
  a worker that lost its lease (a stall longer than the lease) and finishes late changes nothing.
- **Patience**: a transient database error (``OperationalError``, ``InterfaceError``) while polling,
  recovering, beating or recording an outcome is logged and retried with exponential backoff (0.1 s doubling
  to 10 s, with jitter), never fatal. A task that itself fails on such an error is put back READY to run again
  after the backoff, not marked FAILED. A worker stopped by a signal in the middle of a task puts it back too.

So a task may run more than once: after its worker died, or after a transient error. Every task must be
idempotent (lock its row, return at once if the work is done); the outbox's tasks go further and never send
a message twice (tasdid.messaging.services). The lease must exceed the clock skew between the workers' hosts.
"""

import logging
import os
import random
import socket
import threading
import time
import traceback
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.db import InterfaceError, OperationalError, close_old_connections, connection, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.module_loading import import_string
from django_tasks_db.compat import TaskContext, TaskResultStatus, task_finished, task_started
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction

from .models import WorkerLease

logger = logging.getLogger(__name__)

# Errors that go away by themselves: a busy SQLite file, a PostgreSQL connection dropped or refused.
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)
DEFAULT_LEASE = 30.0
MAX_CLAIMS = 5


class WorkerLost(Exception):
    """Recorded on a task whose workers died under it ``MAX_CLAIMS`` times."""


class Backoff:
    """Exponential delays with jitter: 0.1 s, 0.2 s, 0.4 s … up to ``cap``; ``reset`` after a success."""

    def __init__(self, *, first: float = 0.1, cap: float = 10.0):
        self.first, self.cap, self.failures = first, cap, 0

    def next(self) -> float:
        delay = min(self.cap, self.first * 2 ** self.failures)
        self.failures += 1
        return delay * random.uniform(0.8, 1.2)  # spreads workers apart; no secret

    def reset(self) -> None:
        self.failures = 0


def retry_delay(claims: int) -> timedelta:
    """When a task that failed on a transient database error runs again, after its ``claims``-th claim."""
    return timedelta(seconds=min(60, 2 ** claims))


def _drop_connection() -> None:
    """Forget this thread's connection after an error: the next query opens a fresh one (not inside a
    transaction that a caller holds open, as a test does)."""
    if connection.in_atomic_block:
        return
    try:
        connection.close()
    except Exception:  # a connection already broken may fail to close; it is gone either way
        logger.debug("closing a broken database connection failed", exc_info=True)


@transaction.atomic
def recover_abandoned_tasks(*, lease: timedelta, now=None, by: str = "") -> list[str]:
    """Put back READY every task left RUNNING by a worker whose lease has expired (see the module's docstring);
    return the ids of the tasks recovered or, after ``MAX_CLAIMS`` claims, failed. Idempotent. The worker ``by``
    that runs the pass is alive whatever its lease says (its heartbeat may lag behind a busy database)."""
    now = now or timezone.now()
    cutoff = now - lease
    alive = {by, *WorkerLease.objects.filter(beat_at__gte=cutoff).values_list("worker_id", flat=True)}
    handled = []
    for task in DBTaskResult.objects.running().filter(started_at__lt=cutoff).only("id", "worker_ids", "started_at"):
        worker = task.worker_ids[-1] if task.worker_ids else None
        if worker in alive:
            continue
        claim = DBTaskResult.objects.filter(pk=task.pk, status=TaskResultStatus.RUNNING, started_at=task.started_at)
        if len(task.worker_ids) >= MAX_CLAIMS:
            changed = claim.update(
                status=TaskResultStatus.FAILED, finished_at=now, return_value=None,
                exception_class_path=f"{WorkerLost.__module__}.{WorkerLost.__qualname__}",
                traceback=f"WorkerLost: the worker died under this task {len(task.worker_ids)} times\n",
            )
            if changed:
                logger.error("task %s failed: its worker died under it %s times", task.pk, len(task.worker_ids))
        else:
            changed = claim.update(status=TaskResultStatus.READY)
            if changed:
                logger.warning("task %s taken again: its worker %s stopped renewing its lease", task.pk, worker)
        if changed:
            handled.append(str(task.pk))
    WorkerLease.objects.filter(beat_at__lt=cutoff).exclude(worker_id=by).delete()
    return handled


def run_sweeps() -> None:
    """The sweeps named in ``settings.TASK_WORKER_SWEEPS`` (dotted paths: core imports no app). A sweep that
    fails for another reason than a transient database error is logged and skipped, never fatal."""
    for path in getattr(settings, "TASK_WORKER_SWEEPS", ()):
        try:
            import_string(path)()
        except TRANSIENT_DB_ERRORS:
            raise
        except Exception:
            logger.exception("sweep %s failed", path)


class Heartbeat:
    """Renews a worker's lease from a thread of its own, every third of the lease, until stopped."""

    def __init__(self, *, worker_id: str, lease: float):
        self.worker_id, self.lease = worker_id, lease
        self.started_at = timezone.now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{worker_id}", daemon=True)

    def beat(self) -> None:
        now = timezone.now()
        with transaction.atomic():
            # Checked inside the transaction: a beat that starts after ``release`` must not bring the lease back.
            if self._stop.is_set():
                return
            if not WorkerLease.objects.filter(worker_id=self.worker_id).update(beat_at=now):
                # A lease deleted by another worker's recovery pass (after a stall) comes back.
                WorkerLease.objects.create(worker_id=self.worker_id, host=socket.gethostname()[:255],
                                           pid=os.getpid(), started_at=self.started_at, beat_at=now)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.lease / 3):
                try:
                    self.beat()
                except TRANSIENT_DB_ERRORS as exc:
                    logger.warning("worker %s: lease not renewed (%s), trying again", self.worker_id, exc)
                    _drop_connection()
        finally:
            _drop_connection()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.lease)

    def release(self) -> None:
        """A clean exit: the lease goes, and any task still RUNNING under it is recoverable at once."""
        WorkerLease.objects.filter(worker_id=self.worker_id).delete()


def new_worker_id() -> str:
    return f"{socket.gethostname()[:30]}-{os.getpid()}-{get_random_string(8)}"


class Worker(db_worker.Worker):
    """django-tasks-db's worker with a lease, recovery passes and patience (see the module's docstring)."""

    def __init__(self, *, lease: float = DEFAULT_LEASE, **kwargs: Any):
        kwargs.setdefault("worker_id", new_worker_id())
        kwargs.setdefault("excluded_queue_names", [])
        kwargs.setdefault("max_tasks", None)
        super().__init__(**kwargs)
        self.lease = lease
        self.backoff = Backoff()
        self.heartbeat = Heartbeat(worker_id=self.worker_id, lease=lease)

    # Patience ---------------------------------------------------------------------------------------------

    def _patiently(self, what: str, fn, *args, **kwargs):
        """``fn(*args, **kwargs)``, tried again after each transient database error while the worker runs.
        Returns (True, result), or (False, None) when the worker stopped first."""
        backoff = Backoff()
        while True:
            try:
                return True, fn(*args, **kwargs)
            except TRANSIENT_DB_ERRORS as exc:
                _drop_connection()
                if not self.running:
                    logger.warning("worker %s: %s failed while stopping (%s)", self.worker_id, what, exc)
                    return False, None
                delay = backoff.next()
                logger.warning("worker %s: %s failed (%s); trying again in %.1f s", self.worker_id, what, exc, delay)
                time.sleep(delay)

    # The loop ---------------------------------------------------------------------------------------------

    def _claim_next(self) -> DBTaskResult | None:
        tasks = DBTaskResult.objects.ready().filter(backend_name=self.backend_name)
        if not self.process_all_queues:
            tasks = tasks.filter(queue_name__in=self.queue_names)
        if self.excluded_queue_names:
            tasks = tasks.exclude(queue_name__in=self.excluded_queue_names)
        with exclusive_transaction(tasks.db):
            task_result = tasks.get_locked()
            if task_result is not None:
                task_result.claim(self.worker_id)
        return task_result

    def run(self) -> None:
        logger.info("Starting worker worker_id=%s queues=%s lease=%ss", self.worker_id, ",".join(self.queue_names),
                    self.lease)
        started, _ = self._patiently("writing the lease", self.heartbeat.beat)
        if not started:
            return
        self.heartbeat.start()
        next_recovery = 0.0
        try:
            while self.running:
                close_old_connections()
                try:
                    if time.monotonic() >= next_recovery:
                        recover_abandoned_tasks(lease=timedelta(seconds=self.lease), by=self.worker_id)
                        run_sweeps()
                        next_recovery = time.monotonic() + self.lease / 2
                    task_result = self._claim_next()
                except TRANSIENT_DB_ERRORS as exc:
                    _drop_connection()
                    delay = self.backoff.next()
                    logger.warning("worker %s: database unavailable while polling (%s); trying again in %.1f s",
                                   self.worker_id, exc, delay)
                    time.sleep(delay)
                    continue
                self.backoff.reset()
                if task_result is not None:
                    self.run_task(task_result)
                elif self.batch:
                    logger.info("No more tasks to run for worker_id=%s - exiting gracefully.", self.worker_id)
                    return
                if self.max_tasks is not None and self._run_tasks >= self.max_tasks:
                    return
                close_old_connections()
                if self.running and task_result is None:
                    time.sleep(self.interval)
        finally:
            self.heartbeat.stop()
            self._patiently_on_exit()

    def _patiently_on_exit(self) -> None:
        try:
            self.heartbeat.release()
        except TRANSIENT_DB_ERRORS as exc:  # the lease then expires by itself
            logger.warning("worker %s: lease not released (%s)", self.worker_id, exc)
        finally:
            _drop_connection()

    # One task ---------------------------------------------------------------------------------------------

    def _record(self, db_task_result: DBTaskResult, claimed_at, **fields) -> bool:
        """Write the task's outcome if the row still holds this worker's claim; True when it did."""
        changed = DBTaskResult.objects.filter(
            pk=db_task_result.pk, status=TaskResultStatus.RUNNING, started_at=claimed_at).update(**fields)
        for name, value in fields.items():
            setattr(db_task_result, name, value)
        if not changed:
            logger.warning("task %s finished by worker %s after another worker took it again: outcome not recorded",
                           db_task_result.pk, self.worker_id)
        return bool(changed)

    def _failed_fields(self, exc: BaseException) -> dict:
        return {"status": TaskResultStatus.FAILED, "finished_at": timezone.now(), "return_value": None,
                "exception_class_path": f"{type(exc).__module__}.{type(exc).__qualname__}",
                "traceback": "".join(traceback.format_exception(exc))}

    def run_task(self, db_task_result: DBTaskResult) -> None:
        """Run a claimed task, then record its outcome: SUCCESSFUL, FAILED, or READY again after a transient
        database error or an interruption (see the module's docstring)."""
        claimed_at = db_task_result.started_at
        self.running_task = True
        interrupted: BaseException | None = None
        try:
            try:
                task = db_task_result.task
                task_result = db_task_result.task_result
                task_started.send(sender=type(task.get_backend()), task_result=task_result)
                if task.takes_context:
                    value = task.call(TaskContext(task_result=task_result), *task_result.args, **task_result.kwargs)
                else:
                    value = task.call(*task_result.args, **task_result.kwargs)
                outcome = {"status": TaskResultStatus.SUCCESSFUL, "finished_at": timezone.now(), "return_value": value,
                           "exception_class_path": "", "traceback": ""}
            except TRANSIENT_DB_ERRORS as exc:
                # Never fatal: the task runs again later, and this claim is given back so that MAX_CLAIMS counts
                # only the workers that died under the task (a long-locked database is not the task's fault).
                _drop_connection()
                logger.warning("task %s met a transient database error (%s): it runs again later",
                               db_task_result.pk, exc)
                outcome = {"status": TaskResultStatus.READY, "worker_ids": db_task_result.worker_ids[:-1],
                           "run_after": timezone.now() + retry_delay(len(db_task_result.worker_ids))}
            except (KeyboardInterrupt, SystemExit) as exc:
                interrupted = exc  # a forced stop: the task is not at fault, another run finishes it
                outcome = {"status": TaskResultStatus.READY, "worker_ids": db_task_result.worker_ids[:-1]}
            except Exception as exc:  # the task's own failure is its outcome
                outcome = self._failed_fields(exc)
            try:
                self._patiently(f"recording task {db_task_result.pk}", self._record, db_task_result,
                                claimed_at, **outcome)
            except (TypeError, ValueError) as exc:  # a return value that JSON cannot hold
                self._patiently(f"recording task {db_task_result.pk}", self._record, db_task_result,
                                claimed_at, **self._failed_fields(exc))
            if interrupted is None and outcome["status"] != TaskResultStatus.READY:
                try:
                    task_finished.send(sender=type(db_task_result.task.get_backend()),
                                       task_result=db_task_result.task_result)
                except (ImportError, SuspiciousOperation):
                    logger.exception("Task id=%s failed unexpectedly", db_task_result.id)
        finally:
            self.running_task = False
            self._run_tasks += 1
        if interrupted is not None:
            raise interrupted
