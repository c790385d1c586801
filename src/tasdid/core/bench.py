"""What the end-to-end benchmark (bench/journey) reads from the servers it measures, off unless asked for.

``TASDID_SQL_COUNT_DIR``: every process counts the SQL statements it sends (a connection execute_wrapper) and
writes its count to ``<dir>/<pid>.json`` about twice a second, from a daemon thread of its own (started again in
a forked child: a gunicorn worker counts for itself). ``TASDID_BENCH_PING``: ``GET /_bench/ping`` answers
"pong" from loopback clients, at the end of the middleware stack: the ceiling of a party's web server, every
middleware run but no view's work.
"""

import ipaddress
import json
import os
import threading
import time
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden

PING_PATH = "/_bench/ping"
FLUSH_SECONDS = 0.5

_lock = threading.Lock()
_state = {"pid": 0, "statements": 0}


def _flusher(directory: Path, pid: int) -> None:
    path, written = directory / f"{pid}.json", -1
    while True:
        with _lock:
            count = _state["statements"] if _state["pid"] == pid else None
        if count is None:  # this thread was copied into a forked child: the child has its own
            return
        if count != written:
            partial = path.with_suffix(".tmp")
            try:
                partial.write_text(json.dumps({"pid": pid, "statements": count, "at": time.time()}))
                partial.replace(path)
            except OSError:  # the directory went away: nobody reads the count any more
                return
            written = count
        time.sleep(FLUSH_SECONDS)


def _count(execute, sql, params, many, context):
    pid = os.getpid()
    with _lock:
        if _state["pid"] != pid:  # first statement of this process (or of a forked child)
            _state["pid"], _state["statements"] = pid, 0
            threading.Thread(target=_flusher, args=(Path(settings.SQL_COUNT_DIR), pid), daemon=True,
                             name="sql-count").start()
        _state["statements"] += 1
    return execute(sql, params, many, context)


def count_statements(sender, connection, **kwargs) -> None:
    """connection_created receiver: count what this connection sends."""
    if _count not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count)


def install() -> None:
    """Called by the core app when the setting asks for counting."""
    if settings.SQL_COUNT_DIR:
        from django.db.backends.signals import connection_created

        Path(settings.SQL_COUNT_DIR).mkdir(parents=True, exist_ok=True)
        connection_created.connect(count_statements, dispatch_uid="tasdid.core.bench.count_statements")


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class PingMiddleware:
    """The last middleware when ``settings.BENCH_PING``: answers PING_PATH itself, to loopback clients only."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info != PING_PATH:
            return self.get_response(request)
        if not _loopback(request.META.get("REMOTE_ADDR", "")):
            return HttpResponseForbidden()
        return HttpResponse(b"pong", content_type="text/plain")
