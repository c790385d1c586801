"""``tasdid demo``: every party on loopback with demo data — the biller, the gateway and the bank web
servers, the task worker and the SMTP sink — until Ctrl-C stops them all."""

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SEEDERS = (
    "tasdid.billing.demo.seed_demo",
    "tasdid.bank.demo.seed_demo",
    "tasdid.gateway.demo.seed_demo",
    # Not data: the biller's periodic reconciliation with the gateway, carried out by the worker.
    "tasdid.billing.services.reconciliation.reconciliation_schedule_start",
)
DEMO_ADMIN = ("admin", "tasdid-demo")


def _wait_for_port(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def prepare() -> None:
    """Database schema, demo data for every party, and a staff account member of every party's staff, so that
    it opens the three admin sites."""
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.utils.module_loading import import_string

    from tasdid.core.http import PARTIES
    from tasdid.core.staff import staff_grant

    call_command("migrate", verbosity=0)
    for path in SEEDERS:
        import_string(path)()
    user, _ = User.objects.get_or_create(username=DEMO_ADMIN[0], defaults={"email": "admin@tasdid.example.ma"})
    user.is_staff = user.is_superuser = True
    user.set_password(DEMO_ADMIN[1])
    user.save()
    staff_grant(username=user.username, parties=PARTIES)


class Supervisor:
    """Start child processes in their own process groups; stop them all when one dies or on a signal."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.children: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.stopping = False

    def start(self, name: str, argv: list[str]) -> None:
        log = self.log_dir / f"{name}.log"
        self.logs[name] = log
        with log.open("ab") as out:
            self.children[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def dead(self) -> str | None:
        return next((n for n, p in self.children.items() if p.poll() is not None), None)

    def stop(self, timeout: float = 10) -> None:
        self.stopping = True
        for proc in self.children.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.children.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def tail(self, name: str, lines: int = 15) -> str:
        try:
            return "\n".join(self.logs[name].read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tasdid demo", description=__doc__)
    parser.add_argument("--no-seed", action="store_true", help="do not (re)create the demo data")
    args = parser.parse_args(argv)

    os.environ.setdefault("TASDID_SANDBOX", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tasdid.settings")
    import django

    django.setup()
    from django.conf import settings

    from tasdid.core.management.commands.serve import party_port

    if not settings.SANDBOX:
        print("tasdid demo: la démo ne tourne qu'en mode bac à sable (TASDID_SANDBOX=1).", file=sys.stderr)
        return 2
    Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
    log_dir = Path(settings.LOG_DIR)
    log_dir.mkdir(parents=True, exist_ok=True)
    if not args.no_seed:
        print("Préparation de la base et des données de démonstration…", flush=True)
        prepare()

    tasdid = [sys.executable, "-m", "tasdid.cli"]
    ports = {
        "biller": party_port("biller"),
        "gateway": party_port("gateway"),
        "bank": party_port("bank"),
        "smtp": settings.EMAIL_PORT,
    }
    supervisor = Supervisor(log_dir)
    stop_signal: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stop_signal.append(signum))
    try:
        for party in ("biller", "gateway", "bank"):
            supervisor.start(party, [*tasdid, "serve", party, "--port", str(ports[party])])
        supervisor.start("worker", [*tasdid, "worker"])
        supervisor.start("smtp", [*tasdid, "smtp-sink", "--port", str(ports["smtp"])])
        deadline = time.monotonic() + 60
        for name, port in ports.items():
            if not _wait_for_port(port, deadline) or stop_signal:
                if stop_signal:
                    return 0
                print(f"tasdid demo: {name} ne répond pas sur 127.0.0.1:{port}\n{supervisor.tail(name)}",
                      file=sys.stderr)
                return 1
        print(BANNER.format(biller=settings.BILLER_URL, gateway=settings.GATEWAY_URL, bank=settings.BANK_URL,
                            smtp=ports["smtp"], logs=log_dir, user=DEMO_ADMIN[0], password=DEMO_ADMIN[1]),
              flush=True)
        while not stop_signal:
            name = supervisor.dead()
            if name:
                print(f"tasdid demo: le processus {name} s'est arrêté ; arrêt de la démo.\n{supervisor.tail(name)}",
                      file=sys.stderr)
                return 1
            time.sleep(0.3)
        print("Arrêt de la démo…", flush=True)
        return 0
    finally:
        supervisor.stop()


BANNER = """
Tasdid tourne (mode bac à sable). Ctrl-C arrête tout.

  Paiement en ligne (facturier) : {biller}/
  Téléphone bac à sable (SMS)   : {biller}/sandbox/phone
  Boîte mail bac à sable        : {biller}/sandbox/mail
  Page de paiement (passerelle) : {gateway}/
  Banque (3-D Secure)           : {bank}/
  Administration                : {biller}/admin/  {gateway}/admin/  {bank}/admin/
                                  (utilisateur « {user} », mot de passe « {password} »)
  Serveur SMTP local            : 127.0.0.1:{smtp}
  Journaux                      : {logs}

Cartes de test : tasdid sandbox cards
"""
