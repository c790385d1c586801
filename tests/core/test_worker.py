"""tasdid.core.worker: the tasks of a dead worker are taken again, transient database errors are waited out
(a SQLite file locked past the busy timeout, a PostgreSQL table locked past the lock timeout), never fatal."""

import datetime as dt
import logging
import sqlite3
import threading

import pytest
from django.db import OperationalError, connection
from django.db.backends.signals import connection_created
from django.utils import timezone
from django_tasks import task
from django_tasks_db.models import DBTaskResult

from tasdid.core.models import WorkerLease
from tasdid.core.worker import MAX_CLAIMS, Backoff, Worker, recover_abandoned_tasks
from tasdid.messaging.models import Email
from tasdid.messaging.services import email_send

LEASE = dt.timedelta(seconds=30)
CALLS: list[str] = []


@task()
def locked_database(label: str) -> str:
    """A task whose database is busy on its first run only."""
    CALLS.append(label)
    if len(CALLS) == 1:
        raise OperationalError("database is locked")
    return label


@task()
def always_locked() -> None:
    raise OperationalError("database is locked")


def _claimed(*, worker_id: str, ago: dt.timedelta, claims: int = 1) -> DBTaskResult:
    email = email_send(to="a@example.ma", subject="Reçu", body_text="Merci.")
    row = DBTaskResult.objects.get(args_kwargs__kwargs__email_id=email.pk)
    DBTaskResult.objects.filter(pk=row.pk).update(
        status="RUNNING", started_at=timezone.now() - ago,
        worker_ids=[f"earlier-{n}" for n in range(claims - 1)] + [worker_id])
    row.refresh_from_db()
    return row


def _lease(worker_id: str, *, beat_ago: dt.timedelta) -> None:
    now = timezone.now()
    WorkerLease.objects.create(worker_id=worker_id, host="h", pid=1, started_at=now - dt.timedelta(hours=1),
                               beat_at=now - beat_ago)


@pytest.mark.django_db
def test_only_the_tasks_of_workers_whose_lease_expired_are_taken_again():
    _lease("alive", beat_ago=dt.timedelta(seconds=5))
    _lease("silent", beat_ago=dt.timedelta(seconds=31))
    of_alive = _claimed(worker_id="alive", ago=dt.timedelta(minutes=5))
    of_silent = _claimed(worker_id="silent", ago=dt.timedelta(minutes=5))
    of_vanished = _claimed(worker_id="vanished", ago=dt.timedelta(seconds=31))  # killed before its first beat
    just_claimed = _claimed(worker_id="starting", ago=dt.timedelta(seconds=2))  # its lease may not show yet
    spent = _claimed(worker_id="vanished", ago=dt.timedelta(minutes=5), claims=MAX_CLAIMS)

    recovered = recover_abandoned_tasks(lease=LEASE)

    assert sorted(recovered) == sorted(str(t.pk) for t in (of_silent, of_vanished, spent))
    states = {t.pk: DBTaskResult.objects.get(pk=t.pk) for t in (of_alive, of_silent, of_vanished, just_claimed, spent)}
    assert [states[t.pk].status for t in (of_alive, of_silent, of_vanished, just_claimed, spent)] == [
        "RUNNING", "READY", "READY", "RUNNING", "FAILED"]
    assert states[of_silent.pk].worker_ids == ["silent"]  # the claim stays in the history
    assert states[spent.pk].exception_class_path == "tasdid.core.worker.WorkerLost"
    assert list(WorkerLease.objects.values_list("worker_id", flat=True)) == ["alive"]
    # A second pass finds nothing more to do.
    assert recover_abandoned_tasks(lease=LEASE) == []


@pytest.mark.django_db
def test_the_worker_running_the_pass_never_takes_back_its_own_tasks():
    mine = _claimed(worker_id="me", ago=dt.timedelta(minutes=5))  # my heartbeat lags behind a busy database
    assert recover_abandoned_tasks(lease=LEASE, by="me") == []
    mine.refresh_from_db()
    assert mine.status == "RUNNING"


@pytest.mark.django_db
def test_a_task_that_met_a_transient_database_error_runs_again_later_not_failed(run_tasks):
    CALLS.clear()
    result = locked_database.enqueue("once")
    worker = Worker(queue_names=["*"], interval=0, batch=True, backend_name="default", startup_delay=False)
    row = DBTaskResult.objects.get(pk=result.id)
    row.claim(worker.worker_id)
    worker.run_task(row)
    row.refresh_from_db()
    assert (row.status, row.exception_class_path, row.worker_ids) == ("READY", "", [])  # the claim given back
    assert row.run_after > timezone.now()  # after a backoff
    DBTaskResult.objects.filter(pk=row.pk).update(run_after=timezone.now())
    assert run_tasks() == 1
    row.refresh_from_db()
    assert (row.status, row.return_value, len(row.worker_ids), CALLS) == ("SUCCESSFUL", "once", 1, ["once", "once"])


@pytest.mark.django_db
def test_transient_database_errors_never_fail_a_task_however_many():
    """A database locked for long (an import on SQLite) must not spend the claims kept for dead workers."""
    result = always_locked.enqueue()
    worker = Worker(queue_names=["*"], interval=0, batch=True, backend_name="default", startup_delay=False)
    for _run in range(MAX_CLAIMS + 2):
        row = DBTaskResult.objects.get(pk=result.id)
        row.claim(worker.worker_id)
        worker.run_task(row)
        row.refresh_from_db()
        assert (row.status, row.worker_ids) == ("READY", [])


@pytest.mark.django_db
def test_a_worker_that_lost_its_claim_records_nothing_over_the_new_one():
    row = _claimed(worker_id="slow", ago=dt.timedelta(minutes=5))
    worker = Worker(queue_names=["*"], interval=0, batch=True, backend_name="default", startup_delay=False,
                    worker_id="slow")
    stale = DBTaskResult.objects.get(pk=row.pk)
    # Meanwhile its lease expired and another worker took the task again.
    DBTaskResult.objects.filter(pk=row.pk).update(started_at=timezone.now(), worker_ids=["slow", "other"])
    worker.run_task(stale)
    row.refresh_from_db()
    assert (row.status, row.worker_ids) == ("RUNNING", ["slow", "other"])


def test_backoff_doubles_up_to_its_cap_and_starts_over_after_a_success():
    backoff = Backoff(first=0.1, cap=1.0)
    delays = [backoff.next() for _ in range(6)]
    for delay, nominal in zip(delays, [0.1, 0.2, 0.4, 0.8, 1.0, 1.0], strict=True):
        assert nominal * 0.8 <= delay <= nominal * 1.2
    backoff.reset()
    assert 0.08 <= backoff.next() <= 0.12


# A busy database while the worker polls -------------------------------------------------------------------

WORKER_THREAD = "worker-under-test"


def _impatient(sender, connection, **kwargs):
    """The worker's connections give up on a lock after 0.1 s (the demo's wait 30 s): the lock below outlasts it."""
    if not threading.current_thread().name.startswith((WORKER_THREAD, "heartbeat-")):
        return
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA busy_timeout = 100")
        else:
            cursor.execute("SET lock_timeout = '100ms'")


class WriteLock:
    """Another process's long write: the whole SQLite file, or the task table on PostgreSQL."""

    def __enter__(self):
        db = connection.settings_dict
        if connection.vendor == "sqlite":
            self.conn = sqlite3.connect(db["NAME"], timeout=10, isolation_level=None)
            self.conn.execute("BEGIN EXCLUSIVE")
        else:
            import psycopg

            self.conn = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                                        password=db["PASSWORD"] or None, dbname=db["NAME"])
            self.conn.execute(f"LOCK TABLE {DBTaskResult._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        return self

    def __exit__(self, *exc):
        self.conn.rollback() if connection.vendor != "sqlite" else self.conn.execute("ROLLBACK")
        self.conn.close()


def test_a_database_locked_longer_than_the_timeout_does_not_stop_the_worker(transactional_db, smtp_sink, caplog):
    from django.db import connections

    connection_created.connect(_impatient)
    worker = Worker(queue_names=["*"], interval=0.05, batch=False, backend_name="default", startup_delay=False,
                    lease=30)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:  # what would have stopped `tasdid worker`
            failures.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name=WORKER_THREAD, daemon=True)
    try:
        with caplog.at_level(logging.WARNING, logger="tasdid.core.worker"):
            thread.start()
            _wait(lambda: WorkerLease.objects.filter(worker_id=worker.worker_id).exists(), "the worker started")
            with WriteLock():
                _wait(lambda: _busy_warnings(caplog) >= 3, "the worker met the lock several times", timeout=30)
            assert thread.is_alive() and not failures
            email = email_send(to="a@example.ma", subject="Reçu", body_text="Merci.")
            _wait(lambda: Email.objects.get(pk=email.pk).status == "sent", "the email is sent after the lock")
    finally:
        worker.running = False
        thread.join(timeout=15)
        connection_created.disconnect(_impatient)
    assert not failures and not thread.is_alive()
    assert _busy_warnings(caplog) >= 3


def _busy_warnings(caplog) -> int:
    return sum("database unavailable while polling" in r.getMessage() for r in caplog.records)


def _wait(condition, what: str, *, timeout: float = 30) -> None:
    from tests.support.tasks import wait_until

    wait_until(condition, timeout=timeout, what=what)
