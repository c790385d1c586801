"""Settings for the test suite: sandbox mode, every party and the SMTP sink on this run's own free ports.

pytest-django imports this before any conftest, so the environment is in place when tasdid.settings reads it.
"""

import os
import tempfile
from pathlib import Path

from tests.support.ports import free_port

_run_dir = Path(tempfile.mkdtemp(prefix="tasdid-test-"))
_ports = {party: free_port() for party in ("biller", "gateway", "bank", "switch", "smtp")}
os.environ.update(
    {
        "TASDID_SANDBOX": "1",
        "TASDID_SECRET_KEY": "tasdid-tests-secret-key-not-for-production-000000",
        "TASDID_BILLER_URL": f"http://127.0.0.1:{_ports['biller']}",
        "TASDID_GATEWAY_URL": f"http://127.0.0.1:{_ports['gateway']}",
        "TASDID_BANK_URL": f"http://127.0.0.1:{_ports['bank']}",
        "TASDID_SWITCH_URL": f"http://127.0.0.1:{_ports['switch']}",
        "TASDID_EMAIL_HOST": "127.0.0.1",
        "TASDID_EMAIL_PORT": str(_ports["smtp"]),
        "TASDID_VAR_DIR": str(_run_dir),
        "TASDID_LOG_DIR": str(_run_dir / "log"),
        "DJANGO_ALLOW_ASYNC_UNSAFE": "true",
    }
)
if os.environ.get("TASDID_TEST_DATABASE_URL"):
    os.environ["DATABASE_URL"] = os.environ["TASDID_TEST_DATABASE_URL"]
else:
    os.environ.pop("DATABASE_URL", None)

from tasdid.settings import *  # noqa: E402, F403

TEST_RUN_DIR = _run_dir
TEST_PORTS = _ports

# Everything the parties log goes to a file too, so that tests can scan it for card data.
(_run_dir / "log").mkdir(parents=True, exist_ok=True)
LOGGING["handlers"]["file"] = {  # noqa: F405
    "class": "logging.FileHandler",
    "filename": str(_run_dir / "log" / "tasdid.log"),
    "formatter": "plain",
    "filters": ["card_data"],
}
LOGGING["root"]["handlers"] = ["console", "file"]  # noqa: F405
# The console is the process's own stderr, never the stand-in pytest's capsys puts in sys.stderr: tests run the
# `tasdid` command in process, which reconfigures logging (django.setup), and a handler bound to a capsys stream
# writes to a closed file in every later test ("--- Logging error ---" on the stderr that test reads).
LOGGING["handlers"]["console"]["stream"] = "ext://sys.__stderr__"  # noqa: F405
LOGGING["root"]["level"] = "DEBUG"  # noqa: F405 - scan everything the code could log
LOGGING["loggers"]["django.db.backends"] = {"level": "INFO"}  # noqa: F405 - SQL text would drown the log
# A new database connection per request here, as before TASDID_DB_CONN_MAX_AGE: the in-process parties of the tests
# (the card rails' event loops and their threads, the worker's thread) end with the test session, not with their
# process, and connections they kept would keep the test database in use when it is dropped. The parties started
# as processes (tests/kill, tests/bench) keep theirs, as in production.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
