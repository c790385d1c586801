"""The system under measure, as production runs it: gunicorn per party (``tasdid serve``), the task worker, the
switch and the issuer host (``tasdid switch``, ``tasdid issuer``), the SMTP sink; over SQLite or a throwaway
PostgreSQL cluster of its own. Or a running system, found by its processes' command lines (``--attach``).

The processes' CPU is read from /proc/<pid>/stat: utime + stime of every live process of a party, plus the
cutime + cstime each holds for its children already reaped (a PostgreSQL backend that ended), in clock ticks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

TASDID = [sys.executable, "-m", "tasdid.cli"]
TICKS = os.sysconf("SC_CLK_TCK")
PGBIN = Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))
WEB_PARTIES = ("biller", "gateway", "bank", "switch")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, limit: float = 60.0, *, alive=lambda: True) -> None:
    ends = time.monotonic() + limit
    while time.monotonic() < ends:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if not alive():
            raise RuntimeError(f"the process meant to listen on {port} exited")
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {limit:.0f} s")


# --- CPU accounting -------------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, utime + stime + cutime + cstime in ticks) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return int(fields[1]), sum(int(v) for v in fields[11:15])


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent not idle (every process, this system's or not), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / TICKS  # user nice system idle iowait irq softirq steal


def _all_processes() -> dict[int, tuple[int, int]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                found[int(entry)] = stat
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def parts_by_tree(roots: dict[str, int | list[int]]) -> tuple[dict[int, str], dict[int, tuple[int, int]]]:
    """Which part each live process belongs to (the part's root processes and all their descendants), and every
    process."""
    processes = _all_processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _ticks) in processes.items():
        children.setdefault(ppid, []).append(pid)
    part_of: dict[int, str] = {}
    for name, root in roots.items():
        todo = list(root) if isinstance(root, list) else [root]
        while todo:
            pid = todo.pop()
            if pid in processes:
                part_of[pid] = name
                todo.extend(children.get(pid, ()))
    return part_of, processes


def cpu_by_tree(roots: dict[str, int | list[int]]) -> dict[str, float]:
    """Seconds of CPU of each named process and all its live descendants (with what they reaped)."""
    part_of, processes = parts_by_tree(roots)
    result = dict.fromkeys(roots, 0.0)
    for pid, name in part_of.items():
        result[name] += processes[pid][1] / TICKS
    return result


def party_of_cmdline(cmdline: str) -> str | None:
    """Which part of a running Tasdid a process is, from its command line (``--attach``)."""
    words = cmdline.split()
    for party in WEB_PARTIES:
        if f"tasdid.wsgi:{party}" in words:
            return party
    if "tasdid.cli" in cmdline or "/tasdid " in cmdline + " ":
        for word, part in (("worker", "worker"), ("switch", "switch-iso"), ("issuer", "issuer"),
                           ("smtp-sink", "smtp"), ("smtp_sink", "smtp")):
            if word in words:
                return part
    if words and (words[0].endswith("/postgres") or words[0].startswith("postgres:")):
        return "postgres"
    return None


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _same_database(pid: int, database_url: str, var_dir: str) -> bool:
    """Whether the process works on this system's database (another Tasdid may run on the same machine)."""
    env = _environ(pid)
    if database_url:
        return env.get("DATABASE_URL") == database_url
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return "DATABASE_URL" not in env and env.get("TASDID_VAR_DIR", str(Path(cwd) / "var")) == var_dir


def attached_roots(database_url: str, var_dir: str) -> dict[str, list[int]]:
    """The processes of the running Tasdid on this database, by part (the top process of each, whose descendants
    count with it), and the PostgreSQL server listening on the database's port."""
    from urllib.parse import urlsplit

    processes = _all_processes()
    found: dict[str, list[int]] = {}
    for pid, (ppid, _ticks) in processes.items():
        part = party_of_cmdline(_cmdline(pid))
        if part is None or part == "postgres" or not _same_database(pid, database_url, var_dir):
            continue
        if party_of_cmdline(_cmdline(ppid)) == part:  # a gunicorn worker: its master counts it
            continue
        found.setdefault(part, []).append(pid)
    url = urlsplit(database_url) if database_url.startswith("postgres") else None
    if url is not None and url.hostname in ("127.0.0.1", "localhost", "::1"):
        port = str(url.port or 5432)
        for pid, (ppid, _ticks) in processes.items():
            words = _cmdline(pid).split()
            if (words and words[0].endswith("/postgres") and party_of_cmdline(_cmdline(ppid)) != "postgres"
                    and (port in words[words.index("-p") + 1:words.index("-p") + 2] if "-p" in words
                         else port == "5432")):
                found.setdefault("postgres", []).append(pid)
    return found


# --- the system -----------------------------------------------------------------------------------------------


@dataclass
class System:
    """Where the parties answer, the environment their processes share, and how to read their CPU."""

    urls: dict[str, str]
    env: dict[str, str]
    database: str  # "sqlite" or "postgres"
    sql_count_dir: Path | None
    roots: dict[str, int] = field(default_factory=dict)  # part -> pid of its process, when started here
    attached_to: tuple[str, str] | None = None  # (DATABASE_URL, TASDID_VAR_DIR) of a running Tasdid

    def cpu(self) -> dict[str, float]:
        return cpu_by_tree(self.roots if self.attached_to is None else attached_roots(*self.attached_to))

    def process_counts(self) -> dict[str, int]:
        """How many live processes each part has (a gunicorn master and its workers; PostgreSQL's backends)."""
        part_of = parts_by_tree(self.roots if self.attached_to is None else attached_roots(*self.attached_to))[0]
        counts: dict[str, int] = {}
        for name in part_of.values():
            counts[name] = counts.get(name, 0) + 1
        return counts

    def sql_statements(self) -> dict[str, int] | None:
        """Statements counted so far by the processes (tasdid.core.bench) by part ("other": a process no longer
        there, or not started here), None when not counted."""
        if self.sql_count_dir is None:
            return None
        import json

        roots = self.roots if self.attached_to is None else attached_roots(*self.attached_to)
        part_of = parts_by_tree(roots)[0]
        counts: dict[str, int] = {}
        for path in self.sql_count_dir.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                record = json.loads(path.read_text())
                part = part_of.get(record["pid"], "other")
                counts[part] = counts.get(part, 0) + record["statements"]
        return counts


class PostgresCluster:
    """A throwaway PostgreSQL cluster on a free 127.0.0.1 port, as scripts/with-postgres starts one (fsync off
    unless durable)."""

    def __init__(self, *, durable: bool):
        self.dir = Path(tempfile.mkdtemp(prefix="journey-pg-"))  # its own: the server's user must reach it
        self.port = free_port()
        self.durable = durable
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []

    def start(self) -> str:
        if not (PGBIN / "initdb").exists():
            raise SystemExit(f"no PostgreSQL server in {PGBIN} (apt-get install postgresql-15)")
        if self.as_pg:
            shutil.chown(self.dir, "postgres")
        initdb = subprocess.run([*self.as_pg, str(PGBIN / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres",
                                 "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"], capture_output=True, text=True)
        if initdb.returncode:
            raise SystemExit(f"initdb failed:\n{initdb.stdout}{initdb.stderr}")
        fast = "" if self.durable else "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run([*self.as_pg, str(PGBIN / "pg_ctl"), "-D", str(self.dir / "data"), "-l",
                        str(self.dir / "server.log"), "-w", "-o",
                        f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.dir} {fast} "
                        "-c max_connections=200", "start"], check=True, capture_output=True)
        return f"postgres://postgres@127.0.0.1:{self.port}/tasdid"

    @property
    def pid(self) -> int:
        return int((self.dir / "data" / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        subprocess.run([*self.as_pg, str(PGBIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class Started:
    """Start every part of Tasdid in a work directory of its own; ``stop()`` ends them (and the cluster)."""

    def __init__(self, *, database: str = "sqlite", durable: bool = False, keep: bool = False,
                 extra_env: dict[str, str] | None = None, source: Path | None = None,
                 web_processes: int | None = None, web_threads: int | None = None):
        self.web_processes = web_processes
        self.web_threads = web_threads
        self.work = Path(tempfile.mkdtemp(prefix="journey-bench-"))
        self.keep = keep
        self.database = database
        self.cluster = PostgresCluster(durable=durable) if database == "postgres" else None
        self.processes: dict[str, subprocess.Popen] = {}
        self.ports = {party: free_port() for party in WEB_PARTIES}
        self.ports.update({"switch-iso": free_port(), "issuer": free_port(), "smtp": free_port()})
        self.urls = {party: f"http://127.0.0.1:{self.ports[party]}" for party in WEB_PARTIES}
        self.extra_env = extra_env or {}
        if source is not None:  # the servers run another checkout's code (a "before" measure)
            self.extra_env["PYTHONPATH"] = str(source)

    def environment(self, database_url: str) -> dict[str, str]:
        return {
            **os.environ, "TASDID_SANDBOX": "1", "DJANGO_SETTINGS_MODULE": "tasdid.settings",
            "DATABASE_URL": database_url, "TASDID_VAR_DIR": str(self.work), "TASDID_LOG_LEVEL": "WARNING",
            "TASDID_BILLER_URL": self.urls["biller"], "TASDID_GATEWAY_URL": self.urls["gateway"],
            "TASDID_BANK_URL": self.urls["bank"], "TASDID_SWITCH_URL": self.urls["switch"],
            "TASDID_SWITCH_HOST": "127.0.0.1", "TASDID_SWITCH_PORT": str(self.ports["switch-iso"]),
            "TASDID_ISSUER_HOST": "127.0.0.1", "TASDID_ISSUER_PORT": str(self.ports["issuer"]),
            "TASDID_EMAIL_HOST": "127.0.0.1", "TASDID_EMAIL_PORT": str(self.ports["smtp"]),
            "TASDID_SQL_COUNT_DIR": str(self.work / "sql-count"), "TASDID_BENCH_PING": "1",
            **self.extra_env,
        }

    def prepare(self) -> System:
        """The database (migrated), the environment; this process's Django set up on it. No process yet."""
        url = self.cluster.start() if self.cluster else f"sqlite:///{self.work / 'tasdid.sqlite3'}"
        if self.cluster:
            subprocess.run([*self.cluster.as_pg, str(PGBIN / "createdb"), "-h", "127.0.0.1", "-p",
                            str(self.cluster.port), "-U", "postgres", "tasdid"], check=True)
        env = self.environment(url)
        subprocess.run([*TASDID, "migrate", "--no-input", "-v", "0"], env=env, cwd=self.work, check=True)
        os.environ.update({k: v for k, v in env.items() if k.startswith(("TASDID_", "DATABASE_URL", "DJANGO_"))})
        # This process counts nothing: only the servers' statements are the system's.
        os.environ.pop("TASDID_SQL_COUNT_DIR")
        return System(urls=self.urls, env=env, database=self.database, sql_count_dir=self.work / "sql-count")

    def start(self, system: System) -> None:
        """Every process, each waited for on its port."""
        sizing = ([*(["--workers", str(self.web_processes)] if self.web_processes else []),
                   *(["--threads", str(self.web_threads)] if self.web_threads else [])])
        commands = {party: ["serve", party, "--port", str(self.ports[party]), *sizing] for party in WEB_PARTIES}
        commands.update({"issuer": ["issuer", "--port", str(self.ports["issuer"])],
                         "switch-iso": ["switch", "--port", str(self.ports["switch-iso"])],
                         "worker": ["worker"], "smtp": ["smtp-sink", "--port", str(self.ports["smtp"])]})
        (self.work / "log").mkdir(exist_ok=True)
        for name, argv in commands.items():
            with (self.work / "log" / f"{name}.log").open("ab") as log:
                self.processes[name] = subprocess.Popen(
                    [*TASDID, *argv], env=system.env, cwd=self.work, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)
        for name, port in self.ports.items():
            wait_port(port, alive=lambda n=name: self.processes[n].poll() is None)
        system.roots = {name: proc.pid for name, proc in self.processes.items()}
        if self.cluster:
            system.roots["postgres"] = self.cluster.pid

    def access_log(self, party: str) -> Path:
        return self.work / "log" / f"{party}.log"

    def stop(self) -> None:
        for proc in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for proc in self.processes.values():  # gunicorn workers that outlived their master
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self.cluster:
            self.cluster.stop()
        if not self.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def attached() -> System:
    """A running Tasdid, configured by this process's environment (the same as the servers': DATABASE_URL,
    TASDID_VAR_DIR, the parties' URLs); SQL statements counted when TASDID_SQL_COUNT_DIR is set for them."""
    from django.conf import settings

    count_dir = os.environ.pop("TASDID_SQL_COUNT_DIR", "")
    urls = {"biller": settings.BILLER_URL, "gateway": settings.GATEWAY_URL, "bank": settings.BANK_URL,
            "switch": settings.SWITCH_URL}
    engine = settings.DATABASES["default"]["ENGINE"]
    return System(urls=urls, env=dict(os.environ), database="postgres" if "postgres" in engine else "sqlite",
                  sql_count_dir=Path(count_dir) if count_dir else None,
                  attached_to=(os.environ.get("DATABASE_URL", ""), str(settings.VAR_DIR)))
