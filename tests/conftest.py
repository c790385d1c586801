"""Test-wide setup: sandbox settings on free loopback ports, the parties' live servers, an SMTP sink,
background tasks, and Playwright on Debian's Chromium."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.ports import free_port

# Before Django reads its settings: every party, the SMTP sink and the logs on this run's own ports/dirs.
_RUN_DIR = Path(tempfile.mkdtemp(prefix="tasdid-test-"))
_PORTS = {"biller": free_port(), "gateway": free_port(), "bank": free_port(), "smtp": free_port()}
os.environ.update(
    {
        "TASDID_SANDBOX": "1",
        "TASDID_SECRET_KEY": "tasdid-tests-secret-key-not-for-production-000000",
        "TASDID_BILLER_URL": f"http://127.0.0.1:{_PORTS['biller']}",
        "TASDID_GATEWAY_URL": f"http://127.0.0.1:{_PORTS['gateway']}",
        "TASDID_BANK_URL": f"http://127.0.0.1:{_PORTS['bank']}",
        "TASDID_EMAIL_HOST": "127.0.0.1",
        "TASDID_EMAIL_PORT": str(_PORTS["smtp"]),
        "TASDID_VAR_DIR": str(_RUN_DIR),
        "TASDID_LOG_DIR": str(_RUN_DIR / "log"),
        "DJANGO_ALLOW_ASYNC_UNSAFE": "true",
    }
)
if os.environ.get("TASDID_TEST_DATABASE_URL"):
    os.environ["DATABASE_URL"] = os.environ["TASDID_TEST_DATABASE_URL"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def run_dir() -> Path:
    return _RUN_DIR


@pytest.fixture(scope="session")
def _party_threads(django_db_setup, django_db_blocker):
    from tests.support.servers import start_party_server

    threads = {party: start_party_server(party, _PORTS[party]) for party in ("biller", "gateway", "bank")}
    yield threads
    for thread in threads.values():
        thread.terminate()


@pytest.fixture
def parties(_party_threads, transactional_db):
    """The biller, gateway and bank web servers on 127.0.0.1, over a committed (transactional) database."""
    return {party: thread.url for party, thread in _party_threads.items()}


@pytest.fixture(scope="session")
def _smtp_controller():
    from tasdid.messaging.smtp_sink import sink_controller

    controller = sink_controller(port=_PORTS["smtp"])
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def smtp_sink(_smtp_controller, transactional_db):
    """A real SMTP server on loopback that keeps what it receives (tasdid.messaging.selectors.mailbox)."""
    return _smtp_controller


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


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "locale": "fr-FR", "timezone_id": "Africa/Casablanca"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)
