"""A worker killed with SIGKILL while it sends an email: the task is taken again and the mailbox holds the email
exactly once (real ``tasdid worker`` processes, a real SMTP sink on loopback)."""

import asyncio
import threading

import pytest
from django_tasks_db.models import DBTaskResult

from tasdid.core.models import WorkerLease
from tasdid.messaging.models import Email, MailboxMessage
from tasdid.messaging.services import email_send, message_id_header
from tasdid.messaging.smtp_sink import MailboxHandler
from tests.support.ports import free_port
from tests.support.tasks import WorkerProcess, wait_until

LEASE = 1.5  # seconds; the demo's workers use 30


class StallingMailbox(MailboxHandler):
    """The demo's sink, which stores each message as soon as its data has arrived but, while ``stalling`` is
    set, keeps the client waiting for the "250" (at most 30 s): the sender is killed between the two."""

    def __init__(self):
        self.stalling = threading.Event()
        self.stored = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        self.stored.set()
        for _ in range(1500):
            if not self.stalling.is_set():
                break
            await asyncio.sleep(0.02)
        return answer


@pytest.fixture
def stalling_sink(transactional_db, settings):
    from aiosmtpd.controller import Controller

    handler = StallingMailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    handler.stalling.clear()
    controller.stop()


def test_a_worker_killed_mid_send_leaves_no_email_behind_and_none_twice(stalling_sink, tmp_path):
    sink, port = stalling_sink
    sink.stalling.set()
    email = email_send(to="khadija@example.ma", subject="Votre reçu de paiement R-7", body_text="Merci.")
    [task] = DBTaskResult.objects.filter(task_path="tasdid.messaging.tasks.deliver_email")
    env = {"TASDID_EMAIL_HOST": "127.0.0.1", "TASDID_EMAIL_PORT": str(port)}

    first = WorkerProcess(log=tmp_path / "first.log", lease=LEASE, env=env)
    try:
        wait_until(sink.stored.is_set, timeout=60, what="the sink received the email", log=first.output)
        first.kill()
    finally:
        if first.process.poll() is None:
            first.kill()
    # Killed between the SMTP data and the sink's answer: the mailbox has the email, the outbox does not know.
    email.refresh_from_db()
    task.refresh_from_db()
    assert (email.status, email.attempts) == ("sending", 1)
    assert task.status == "RUNNING" and len(task.worker_ids) == 1
    assert MailboxMessage.objects.count() == 1
    dead_worker = task.worker_ids[0]

    sink.stalling.clear()
    second = WorkerProcess(log=tmp_path / "second.log", lease=LEASE, env=env)
    try:
        wait_until(lambda: Email.objects.get(pk=email.pk).status == "sent", timeout=60,
                   what="the email is sent after the recovery", log=second.output)
        task.refresh_from_db()
        wait_until(lambda: DBTaskResult.objects.get(pk=task.pk).status == "SUCCESSFUL", timeout=30,
                   what="the task is recorded", log=second.output)
    finally:
        exit_code = second.stop()
    task.refresh_from_db()
    email.refresh_from_db()
    log = f"first worker:\n{first.output()}\nsecond worker:\n{second.output()}"
    assert (email.status, email.attempts, email.last_error) == ("sent", 2, ""), log
    assert len(task.worker_ids) == 2 and task.worker_ids[0] == dead_worker, log
    # The resend carried the same Message-ID; the sink accepted it and kept one copy.
    [received] = MailboxMessage.objects.all()
    assert received.message_id == message_id_header(email)
    assert received.subject == "Votre reçu de paiement R-7"
    assert f"task {task.pk} taken again" in second.output(), log
    assert not WorkerLease.objects.filter(worker_id=dead_worker).exists(), log
    # Ctrl-C stops the second worker cleanly and its lease goes with it.
    assert exit_code == 0, log
    assert not WorkerLease.objects.exists(), log
