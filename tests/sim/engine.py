"""The seeded scheduler: journeys, the task worker, the sweeps, the clock and the faults, one step at a time.

Everything the run does is drawn from one ``random.Random(seed)``, in a fixed order, so the same seed makes the
same steps. Each step is logged with its number; a violated invariant raises ``Violation`` with the whole log.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import random
import types
from collections.abc import Callable
from dataclasses import dataclass, field

import time_machine
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult, TaskResultStatus

from . import invariants, network, rails
from .journeys import Journey, new_customer
from .network import Faults, Network, SimCrash

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


class Violation(AssertionError):
    pass


@dataclass
class Settings:
    journeys: int = 4
    max_steps: int = 160
    clock_jumps: bool = True  # time may jump past the timers during the journeys (not only at the end)
    faults: Faults = field(default_factory=Faults)


def crash_points() -> list[tuple[object, str, str]]:
    """(module, function name, label): the service boundaries where a process may die, before or after the call.
    Patched on the module the callers look them up in (``services.x`` is looked up at each call)."""
    from tasdid.bank import services as bank
    from tasdid.bank.services import authorization as bank_authorization
    from tasdid.billing.services import payments
    from tasdid.gateway import flow
    from tasdid.gateway import services as gateway
    from tasdid.messaging import services as messaging

    points = [(gateway, name, f"gateway.services.{name}") for name in (
        "attempt_start", "attempt_challenge", "attempt_record_rreq", "attempt_begin_authorization",
        "attempt_record_authorization", "attempt_authorization_lost", "attempt_fail", "attempt_record_callback",
        "attempt_hold_expired", "attempt_record_settlement", "session_expire", "session_cancel", "session_open")]
    points += [(flow, "send_callback", "gateway.flow.send_callback")]
    points += [(payments, name, f"billing.payments.{name}") for name in (
        "_settle", "_fail", "payment_order_create", "payment_order_expire")]
    # The bank's views call the services through the package; the issuer host (tasdid.bank.issuer, behind the
    # switch) through the authorization module: the same functions, patched where each caller looks them up.
    points += [(bank, name, f"bank.services.{name}") for name in (
        "areq_answer", "challenge_open", "challenge_submit_code", "challenge_cancel", "rreq_deliver")]
    points += [(bank_authorization, name, f"bank.services.{name}") for name in (
        "authorize", "hold_capture", "hold_void")]
    points += [(messaging, name, f"messaging.{name}") for name in ("sms_deliver", "email_deliver")]
    return points


def recovery() -> list[tuple[str, Callable[[], object]]]:
    """What brings every party back to a settled state, in order: the worker (``tasdid worker --batch``: due tasks,
    and whatever recovery the worker does when it starts, the sweeps among it: the gateway's reversals owed to the
    switch), the gateway's and the biller's sweeps, the switch's reversal loop, and the
    biller's reconciliation with the gateway when the project has one."""
    from tasdid.billing.services.payments import payment_orders_expire
    from tasdid.gateway.flow import sweep

    steps: list[tuple[str, Callable[[], object]]] = [
        ("tasdid worker --batch", lambda: call_command("worker", batch=True, interval=0)),
        ("tasdid gateway-sweep", sweep),
        ("tasdid billing-sweep", payment_orders_expire),
        # The switch's reversal loop (the gateway's reversals go with the worker's sweeps).
        ("switch reversal loop", lambda: network.CURRENT.rails.switch_reversals()),
    ]
    try:
        reconciliation = importlib.import_module("tasdid.billing.services.reconciliation")
    except ModuleNotFoundError:
        reconciliation = None
    run = getattr(reconciliation, "reconcile", None) or getattr(reconciliation, "reconcile_payments", None)
    if run is not None:
        steps.append(("tasdid reconcile", run))
    return steps


class Simulation:
    def __init__(self, seed: int, settings: Settings | None = None):
        self.seed = seed
        self.settings = settings or Settings()
        self.rng = random.Random(seed)
        self.lines: list[str] = []
        self.step_number = 0
        # How hard this seed is hit: crashes from half to three times as often as the settings say.
        self.intensity = intensity = self.rng.choice((0.5, 1, 2, 3))
        faults = dataclasses.replace(self.settings.faults, crash=self.settings.faults.crash * intensity)
        self.net = Network(self.rng, self._log, faults)
        self.journeys: list[Journey] = []
        self.watch = invariants.Watch()
        self._mark = 0

    # --- log ----------------------------------------------------------------------------------------------

    def _log(self, line: str, *, heading: bool = False) -> None:
        """Add a line; ``heading``: the step's own line, before what happened within it (logged meanwhile)."""
        line = line if line.startswith(" ") else f"{self.step_number:4d}. {line}"
        if heading:
            self.lines.insert(self._mark, line)
        else:
            self.lines.append(line)

    def report(self) -> str:
        return f"seed {self.seed} ({len(self.lines)} lines):\n" + "\n".join(self.lines)

    # --- the run ------------------------------------------------------------------------------------------

    def run(self, monkeypatch) -> Simulation:
        self._install(monkeypatch)
        with time_machine.travel(START + dt.timedelta(days=self.seed % 97), tick=False) as clock:
            self.clock = clock
            self.journeys = [Journey(n, new_customer(self.rng, n), self.net, self.rng, self._log)
                             for n in range(1, self.settings.journeys + 1)]
            self._log(f"seed {self.seed}: crashes {self.intensity}× as often, {len(self.journeys)} customers, "
                      + ", ".join(f"{j.name} owes {len(j.customer.refs)} invoice(s)" for j in self.journeys))
            self._check(final=False)
            while self.step_number < self.settings.max_steps and self._active():
                self.step_number += 1
                self._mark = len(self.lines)
                self._step()
                for process in self.net.tick():
                    self._restart(process)
                self._check(final=False)
            self._finish()
        self._log("card rails: " + ", ".join(f"{k} {v}" for k, v in sorted(self.net.rails.figures.items())))
        return self

    def _install(self, monkeypatch) -> None:
        from tasdid.bank.services import authentication as bank_acs
        from tasdid.gateway import flow

        network.CURRENT = self.net
        rails.install(monkeypatch, self.net.rails)
        monkeypatch.setattr("httpx.post", self.net.post)
        # The parties' calls to each other go through their process's client (tasdid.core.http.party_client).
        monkeypatch.setattr("tasdid.core.http.party_client", lambda: types.SimpleNamespace(post=self.net.post))
        # Pauses between tries: nobody waits in a simulation (time moves only when the scheduler moves it).
        no_sleep = types.SimpleNamespace(sleep=lambda _s: None, monotonic=__import__("time").monotonic)
        monkeypatch.setattr(flow, "time", no_sleep)
        monkeypatch.setattr(bank_acs, "time", no_sleep)  # the ACS's pauses between RReq tries
        for module, name, label in crash_points():
            monkeypatch.setattr(module, name, self.net.crash_point(label, getattr(module, name)))

    def _active(self) -> bool:
        return any(not j.finished for j in self.journeys) or bool(self.net.in_flight)

    def _step(self) -> None:
        rng, net = self.rng, self.net
        running = [j for j in self.journeys if not j.finished]
        due = self._due_tasks()
        actions: list[tuple[float, str, Callable[[], None]]] = []
        actions += [(6.0, j.name, j.step) for j in running]
        if due and not net.is_down("worker"):
            actions.append((4.0, "worker", lambda: self._worker_runs(due)))
        if net.in_flight:
            actions.append((2.0, "late message", net.deliver_one_late))
        # The switch's reversal loop (every second in production) and the gateway's sweep of the reversals it owes
        # (the task worker's, every pass).
        actions.append((0.6, "switch reversals",
                        lambda: self._cron("switch reversal loop", net.rails.switch_reversals)))
        actions.append((0.3, "gateway reversals", lambda: self._cron("tasdid gateway reversals",
                                                                       net.rails.gateway_reversals)))
        # After a targeted fault (network.maybe_lose_callback_record), time passes and the sweep comes more often,
        # so that the callback's next tries meet the biller while it is down.
        focus = 8.0 if net.focus else 1.0
        if self.settings.clock_jumps:
            actions.append((1.0 * focus, "clock", self._clock_moves))
        if self.settings.faults.crash:
            actions.append((0.4, "outage", self._outage))
        actions.append((0.3 * focus, "gateway sweep", lambda: self._cron("tasdid gateway-sweep", recovery()[1][1])))
        actions.append((0.2, "billing sweep", lambda: self._cron("tasdid billing-sweep", recovery()[2][1])))
        _weight, _name, act = rng.choices(actions, weights=[a[0] for a in actions])[0]
        self.clock.shift(dt.timedelta(seconds=rng.randint(1, 4)))
        act()

    def _due_tasks(self) -> list[DBTaskResult]:
        ready = DBTaskResult.objects.ready().filter(backend_name="default")
        return sorted(ready, key=lambda r: (r.run_after or START, r.task_path, str(r.args_kwargs)))

    def _worker_runs(self, due: list[DBTaskResult]) -> None:
        """The worker takes one due task (claims it: RUNNING, committed) and runs it; if it dies meanwhile, the
        row stays as the dead worker left it."""
        result = due[0] if self.rng.random() < 0.7 else self.rng.choice(due)
        self._log(f"worker runs {result.task_path.rsplit('.', 1)[-1]}{result.args_kwargs.get('kwargs', '')}")
        result.claim("sim-worker")
        try:
            value = self.net.run_as("worker", lambda: result.task.call(*result.task_result.args,
                                                                       **result.task_result.kwargs))
        except SimCrash as crash:
            self._log(f"  !! {crash}: the task row stays {DBTaskResult.objects.get(pk=result.pk).status}")
            self.net.take_down("worker", steps=self.rng.randint(1, 8), why="crashed")
            return
        except Exception as exc:  # the task failed: recorded as the worker records it
            result.set_failed(exc)
            self._log(f"  task failed: {type(exc).__name__}: {exc}")
            return
        result.set_successful(value)
        self._log(f"  → {value!r}")

    def _cron(self, name: str, run: Callable[[], object]) -> None:
        self._log(f"{name}")
        try:
            value = self.net.run_as(name, run)
        except SimCrash as crash:
            self._log(f"  !! {crash}")
            return
        self._log(f"  → {value!r}")

    def _clock_moves(self) -> None:
        """Time passes: a little, or past one of the timers (callback retries, settlement retries, the payment
        page's and the order's expiry, the hold's end)."""
        seconds = self.rng.choice((10, 20, 45, 70, 70, 130, 130, 250, 500, 950, 1900, 3000))
        delta = dt.timedelta(seconds=seconds)
        self.clock.shift(delta)
        self._log(f"the clock moves {int(delta.total_seconds())} s")

    def _outage(self) -> None:
        """One process killed, or several at once (the host they share restarts), each back after its own time."""
        processes = ["biller", "gateway", "bank", "worker", "switch", "issuer"]
        hit = [p for p in processes if self.rng.random() < 0.35] or [self.rng.choice(processes)]
        self._log(f"outage: {', '.join(hit)}", heading=True)
        for process in hit:
            self.net.take_down(process, steps=self.rng.randint(1, 10), why="killed")

    def _restart(self, process: str) -> None:
        self._log(f"{process} restarts")
        if process == "worker":  # a worker starting runs what is due (and its recovery, if it has one); its
            # own crashes are the single-task steps' business (db_worker would record a crash as a failed task)
            self.net.enabled = False
            try:
                self._cron("tasdid worker --batch (restarted)", recovery()[0][1])
            finally:
                self.net.enabled = True

    # --- the end: what is in flight arrives, every party is up, recovery until nothing moves ---------------

    def _finish(self) -> None:
        for journey in self.journeys:
            journey.close()
        self.step_number += 1
        self._log("end of the faults: what is in flight arrives, every process is up")
        self.net.enabled = False
        self.net.down.clear()
        while self.net.in_flight:
            self.net.deliver_one_late()
        self._check(final=False)
        # Time runs on by steps up to the longest timer (an authorization kept a day) and a grace; recovery after
        # each: what must be closed is closed by then.
        for minutes in (1, 5, 20, 40, 90, 24 * 60 + 60, 90):
            self.step_number += 1
            self.clock.shift(dt.timedelta(minutes=minutes))
            self._log(f"recovery, {minutes} min later")
            for name, run in recovery():
                value = self.net.run_as(name, run)
                self._log(f"  {name} → {value!r}")
            self._check(final=False)
        self._check(final=True)

    def _check(self, *, final: bool) -> None:
        problems = self.watch.check(final=final)
        if problems:
            raise Violation(f"invariant violated at step {self.step_number}: " + "; ".join(problems) + "\n"
                            + self.report() + f"\nreplay: TASDID_SIM_SEED={self.seed} .venv/bin/python -m pytest "
                            "tests/sim -q -n 0")


def _task_states() -> dict[str, int]:  # pragma: no cover - for debugging a seed
    return {s: DBTaskResult.objects.filter(status=s).count() for s in TaskResultStatus.values}
