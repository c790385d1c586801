"""Test-wide setup: sandbox settings on free loopback ports, the parties' live servers, an SMTP sink,
background tasks, and Playwright on Debian's Chromium."""

import os
import shutil

import pytest
from django.conf import settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# Hypothesis checks properties, not speed: no per-example deadline nor slowness check (the shared machine stalls
# any example now and then; speed targets live in bench/). Each test keeps its own max_examples.
hypothesis_settings.register_profile("tasdid", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("tasdid")


@pytest.fixture(scope="session")
def _party_threads(django_db_setup, django_db_blocker):
    from tests.support.servers import start_party_server

    threads = {party: start_party_server(party, settings.TEST_PORTS[party])
               for party in ("biller", "gateway", "bank", "switch")}
    yield threads
    for thread in threads.values():
        thread.terminate()


@pytest.fixture
def card_rails(transactional_db, settings):
    """The card rails for real: the issuer host (``tasdid.bank.issuer``) and the switch (``tasdid.switch.server``)
    on their own event loops and free 127.0.0.1 ports, and the gateway's ISO 8583 client pointed at that switch.
    Started for each test, so that no switch remembers a STAN of the test before (the database is flushed)."""
    from tests.support.card_rails import CardRails

    rails = CardRails(routes=None).start()  # the BIN routes of the switch's migration, as the demo has them
    rails.acquirer_settings(settings)
    yield rails
    rails.stop()


@pytest.fixture
def parties(_party_threads, card_rails):
    """The biller, gateway, bank and switch web servers on 127.0.0.1, over a committed (transactional) database,
    and the card rails (``card_rails``) between the gateway and the bank; the switch's BIN routes seeded as its
    migration does (each test starts from a flushed database)."""
    from tasdid.switch.services import routes_seed

    routes_seed()
    return {party: thread.url for party, thread in _party_threads.items()}


@pytest.fixture(scope="session")
def _smtp_controller():
    from tasdid.messaging.smtp_sink import sink_controller

    controller = sink_controller(port=settings.TEST_PORTS["smtp"])
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def smtp_sink(_smtp_controller, transactional_db, settings):
    """A real SMTP server on loopback that keeps what it receives (tasdid.messaging.selectors.mailbox), and
    the project's SMTP backend pointed at it (the test runner otherwise swaps in an in-memory outbox)."""
    settings.EMAIL_BACKEND = "tasdid.messaging.mail.SmtpBackend"
    return _smtp_controller


@pytest.fixture
def task_worker(transactional_db):
    """The worker loop of ``tasdid worker`` (tasdid.core.worker) in a background thread, as the demo runs it."""
    import threading

    from tasdid.core.worker import Worker

    worker = Worker(queue_names=["*"], interval=0.05, batch=False, backend_name="default", startup_delay=False,
                    worker_id="test-thread-worker")
    def run() -> None:
        from django.db import connections

        try:
            worker.run()
        finally:  # the thread's own connection, which would otherwise keep the test database in use
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield worker
    worker.running = False
    thread.join(timeout=10)


@pytest.fixture
def run_tasks():
    from tests.support.tasks import run_pending_tasks

    return run_pending_tasks


# Playwright (pytest-playwright): Debian's Chromium, which Playwright cannot download here.
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic",
        ],
    }


@pytest.fixture(scope="session", autouse=True)
def _patient_browser_expectations():
    """The machine is small and shared: wait up to 20 s for what a person would see, not Playwright's 5 s."""
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)


@pytest.fixture
def context(context):
    context.set_default_timeout(30_000)
    return context


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "locale": "fr-FR", "timezone_id": "Africa/Casablanca"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def playwright(playwright):
    """pytest-playwright's driver, whose event loop makes the main thread look asynchronous while it runs: Django
    then keeps this thread's database connections per context, apart from the ones opened before. Those are
    closed here, while the loop still runs, or they would keep the test database in use when it is dropped."""
    yield playwright
    from django.db import connections

    connections.close_all()
