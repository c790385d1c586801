"""The end-to-end benchmark's probes (tasdid.core.bench), off unless asked for: the trivial page answers loopback
clients only, after every other middleware; the statement counter counts what a connection sends and writes its
count to a file named after the process."""

import json
import os
import time

from django.db import connection
from django.test import Client

from tasdid.core import bench


def test_the_trivial_page_answers_loopback_clients_only(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tasdid.core.bench.PingMiddleware"]
    loopback = Client(REMOTE_ADDR="127.0.0.1")
    response = loopback.get(bench.PING_PATH)
    assert (response.status_code, response.content) == (200, b"pong")
    # The stack ran: the headers of the middlewares before it are there.
    assert "Content-Security-Policy" in response and response["X-Frame-Options"] == "DENY"
    assert Client(REMOTE_ADDR="192.0.2.7").get(bench.PING_PATH).status_code == 403
    assert Client(REMOTE_ADDR="::1").get(bench.PING_PATH).status_code == 200


def test_the_trivial_page_is_not_there_unless_asked_for(settings):
    assert "tasdid.core.bench.PingMiddleware" not in settings.MIDDLEWARE
    assert Client(REMOTE_ADDR="127.0.0.1").get(bench.PING_PATH).status_code == 404


def test_statements_are_counted_into_a_file_per_process(settings, tmp_path, db):
    settings.SQL_COUNT_DIR = str(tmp_path)
    connection.ensure_connection()
    bench.count_statements(sender=None, connection=connection)
    bench.count_statements(sender=None, connection=connection)  # installed once
    try:
        with connection.cursor() as cursor:
            for _ in range(3):
                cursor.execute("SELECT 1")
        path = tmp_path / f"{os.getpid()}.json"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if path.exists() and json.loads(path.read_text())["statements"] >= 3:
                break
            time.sleep(0.1)
        assert json.loads(path.read_text())["statements"] >= 3
        assert connection.execute_wrappers.count(bench._count) == 1
    finally:
        connection.execute_wrappers.remove(bench._count)
