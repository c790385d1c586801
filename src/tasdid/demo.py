"""``tasdid demo``: every party on loopback with demo data — the biller, the gateway, the bank and the switch web
servers, the card rails (the switch's ISO 8583 server and the banks' issuer host), the task worker and the SMTP
sink, each its own process — until Ctrl-C stops them all. A process that exits is started
again (with a growing pause if it keeps failing), and the demo says so."""

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SEEDERS = (
    "tasdid.billing.demo.seed_demo",
    "tasdid.bank.demo.seed_demo",
    "tasdid.gateway.demo.seed_demo",
    "tasdid.demo.seed_biller_api_user",
    "tasdid.demo.seed_example_shop",
    # Not data: the biller's periodic reconciliation with the gateway, carried out by the worker.
    "tasdid.billing.services.reconciliation.reconciliation_schedule_start",
)
DEMO_ADMIN = ("admin", "tasdid-demo")


def seed_biller_api_user() -> None:
    """At the gateway, the biller's user of the merchant XML API (its refunds), as the biller's settings name it
    (BILLER_GATEWAY_API_USER / _PASSWORD): created, or its password set again. The gateway's side of the demo: the
    biller only holds the name and password. Idempotent; after the gateway's seed (the merchant)."""
    from django.conf import settings

    from tasdid.gateway import services
    from tasdid.gateway.models import Merchant, MerchantApiUser

    user = MerchantApiUser.objects.filter(name=settings.BILLER_GATEWAY_API_USER).first()
    if user is None:
        services.api_user_create(merchant=Merchant.objects.get(client_id=settings.BILLER_CLIENT_ID),
                                 name=settings.BILLER_GATEWAY_API_USER, password=settings.BILLER_GATEWAY_API_PASSWORD)
    else:
        services.api_user_set_password(user_id=user.pk, password=settings.BILLER_GATEWAY_API_PASSWORD)


# The example shop of examples/cmi_shop (a merchant written as CMI's plugins are, on 127.0.0.1:8010): registered at
# the demo's gateway with public sandbox credentials, the same as the example's defaults.
EXAMPLE_SHOP = {"client_id": "600000002", "name": "Boutique exemple", "store_key": "EXAMPLE-SHOP-STORE-KEY",
                "return_host": "127.0.0.1:8010", "api_user": "boutique-exemple-api",
                "api_password": "EXAMPLE-SHOP-API-PASSWORD"}


def seed_example_shop() -> None:
    """At the gateway, the example shop (examples/cmi_shop) and its user of the merchant XML API, as
    ``tasdid merchant add`` and ``tasdid merchant api-user`` would register them. Idempotent."""
    from tasdid.gateway import services
    from tasdid.gateway.models import MerchantApiUser

    shop = EXAMPLE_SHOP
    merchant = services.merchant_register(client_id=shop["client_id"], name=shop["name"],
                                          store_key=shop["store_key"], return_hosts=[shop["return_host"]]).merchant
    user = MerchantApiUser.objects.filter(name=shop["api_user"]).first()
    if user is None:
        services.api_user_create(merchant=merchant, name=shop["api_user"], password=shop["api_password"])
    else:
        services.api_user_set_password(user_id=user.pk, password=shop["api_password"])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
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


# A child that exits is started again after a pause that doubles at each quick failure (a crash loop does not
# spin), back to the shortest once it has stayed up a while (a crash an hour later is a fresh incident).
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
BACKOFF_RESET_AFTER = 60.0

LABELS = {"biller": "facturier", "gateway": "passerelle", "bank": "banque", "switch": "centre monétique",
          "switch-iso": "centre monétique (ISO 8583)", "issuer": "hôte émetteur des banques (ISO 8583)",
          "worker": "tâches de fond", "smtp": "serveur SMTP"}


def next_backoff(previous: float | None, uptime: float) -> float:
    """Seconds to wait before starting again a child that ran ``uptime`` seconds and then exited."""
    if previous is None or uptime >= BACKOFF_RESET_AFTER:
        return BACKOFF_FIRST
    return min(previous * 2, BACKOFF_MAX)


def exit_cause(returncode: int) -> str:
    """How a child ended, in French: its exit code or the signal that killed it."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return f"tué par le signal {name}"
    return f"code de sortie {returncode}"


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    started: float = 0.0
    backoff: float | None = None
    restart_at: float | None = None  # set while the child is down and waits for its restart


class Supervisor:
    """Start child processes in their own process groups; start again, with backoff, one that exits; stop them
    all on a signal."""

    def __init__(self, log_dir: Path, out=None):
        self.log_dir = log_dir
        self.out = out or sys.stderr
        self.children: dict[str, Child] = {}
        self.logs: dict[str, Path] = {}
        self.stopping = False

    def start(self, name: str, argv: list[str]) -> None:
        self.children[name] = Child(name, argv)
        self._spawn(self.children[name])

    def _spawn(self, child: Child) -> None:
        if child.proc is not None:
            # What is left of the previous run (a web server's workers whose master was killed) would hold the
            # port. Linux does not hand out a pid still used as a process group id: this group is only ours.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.proc.pid, signal.SIGKILL)
        log = self.log_dir / f"{child.name}.log"
        self.logs[child.name] = log
        with log.open("ab") as out:
            child.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                child.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        child.started = time.monotonic()
        child.restart_at = None

    def _say(self, text: str) -> None:
        print(f"tasdid demo : {text}", file=self.out, flush=True)

    def supervise(self) -> None:
        """One round: note the children that exited and schedule their restart; start those whose pause is over."""
        now = time.monotonic()
        for child in self.children.values():
            if self.stopping:
                return
            if child.restart_at is None and child.proc.poll() is not None:
                child.backoff = next_backoff(child.backoff, now - child.started)
                child.restart_at = now + child.backoff
                tail = self.tail(child.name)
                self._say(f"le processus « {child.name} » ({LABELS.get(child.name, child.name)}) s'est arrêté "
                          f"({exit_cause(child.proc.returncode)}) ; redémarrage dans {child.backoff:g} s."
                          + (f"\n  Dernières lignes de {self.logs[child.name]} :\n" + _indent(tail) if tail else ""))
            elif child.restart_at is not None and now >= child.restart_at:
                self._spawn(child)
                self._say(f"le processus « {child.name} » a redémarré (pid {child.proc.pid}).")

    def stop(self, timeout: float = 10) -> None:
        self.stopping = True
        running = [c.proc for c in self.children.values() if c.proc is not None and c.proc.poll() is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # A web server's workers may outlive a master killed with SIGKILL: clear every group we started (see
        # _spawn on why the group ids are still ours).
        for child in self.children.values():
            if child.proc is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.proc.pid, signal.SIGKILL)

    def tail(self, name: str, lines: int = 15) -> str:
        try:
            return "\n".join(self.logs[name].read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


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
        "switch": party_port("switch"),  # its admin and 3-D Secure directory
        "switch-iso": settings.SWITCH_PORT,  # the card rails: the gateway's ISO 8583 client → the switch
        "issuer": settings.ISSUER_PORT,  # → the issuer host of every sandbox bank
        "smtp": settings.EMAIL_PORT,
    }
    supervisor = Supervisor(log_dir)
    stop_signal: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stop_signal.append(signum))
    try:
        for party in ("biller", "gateway", "bank", "switch"):
            supervisor.start(party, [*tasdid, "serve", party, "--port", str(ports[party])])
        supervisor.start("issuer", [*tasdid, "issuer", "--port", str(ports["issuer"])])
        supervisor.start("switch-iso", [*tasdid, "switch", "--port", str(ports["switch-iso"])])
        supervisor.start("worker", [*tasdid, "worker"])
        supervisor.start("smtp", [*tasdid, "smtp-sink", "--port", str(ports["smtp"])])
        deadline = time.monotonic() + 60
        waiting = dict(ports)
        while waiting and not stop_signal:
            supervisor.supervise()
            waiting = {name: port for name, port in waiting.items() if not _listening(port)}
            if waiting and time.monotonic() > deadline:
                name, port = next(iter(waiting.items()))
                print(f"tasdid demo : {name} ne répond pas sur 127.0.0.1:{port}\n{supervisor.tail(name)}",
                      file=sys.stderr)
                return 1
            time.sleep(0.1)
        if stop_signal:
            return 0
        print(BANNER.format(biller=settings.BILLER_URL, gateway=settings.GATEWAY_URL, bank=settings.BANK_URL,
                            switch=settings.SWITCH_URL, switch_iso=f"{settings.SWITCH_HOST}:{ports['switch-iso']}",
                            issuer=f"{settings.ISSUER_HOST}:{ports['issuer']}", smtp=ports["smtp"], logs=log_dir,
                            user=DEMO_ADMIN[0], password=DEMO_ADMIN[1]),
              flush=True)
        while not stop_signal:
            supervisor.supervise()
            time.sleep(0.2)
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
  Centre monétique (ISO 8583)   : {switch_iso}  (annuaire 3-D Secure : {switch}/3ds/areq)
  Hôte émetteur des banques     : {issuer}  (ISO 8583)
  Administration                : {biller}/admin/  {gateway}/admin/  {bank}/admin/  {switch}/admin/
                                  (utilisateur « {user} », mot de passe « {password} »)
  Serveur SMTP local            : 127.0.0.1:{smtp}
  Boutique exemple (marchand)   : python3 examples/cmi_shop/walkthrough.py --gateway {gateway}
  Journaux                      : {logs}

Cartes de test : tasdid sandbox cards
"""
