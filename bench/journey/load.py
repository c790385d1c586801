"""The load: warm-up journeys, then the measured ones from N threads at once (one virtual customer each, with its
own pair of cards), the system left to finish what the payments gave its worker, and the ceiling."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from collections import defaultdict

import httpx

from .customer import SERVER_STEPS, WAIT_STEPS, Plan, journey
from .seed import bench_cards, bench_customers, seed_parties
from .system import System, machine_busy_seconds

PING_PATH = "/_bench/ping"
IDLE_SECONDS = 3.0  # the system at rest, before the load: what its processes spend doing nothing


def run(target: System, args, started) -> dict:
    from django.db import connections

    from . import __main__ as cli

    seed_parties()
    warmup = args.customers if args.warmup is None else args.warmup
    cards = bench_cards(args.customers)
    ways = bench_customers(warmup + args.journeys + 3)
    if started is not None:
        started.start(target)
    connections.close_all()

    queues = {way: iter(identities) for way, identities in ways.items()}
    order = itertools.cycle(("internet", "fixed", "mobile"))
    plans = []
    for j in range(warmup + args.journeys):
        identity = next(queues[next(order)])
        plans.append((identity, args.challenge_every > 0 and j % args.challenge_every == 1 % args.challenge_every,
                      args.defer_every > 0 and j % args.defer_every == args.defer_every - 1))
    plans_warm, plans_measured = plans[:warmup], plans[warmup:]

    if plans_warm:
        drive(target, plans_warm, cards, args.customers)
        settle()
    idle_started = snapshot(target, started)
    idle_wall = time.perf_counter()
    time.sleep(IDLE_SECONDS)
    before = snapshot(target, started)
    idle_wall = time.perf_counter() - idle_wall
    idle = {part: round((before["cpu"].get(part, 0.0) - idle_started["cpu"].get(part, 0.0)) * 1000 / idle_wall, 1)
            for part in before["cpu"]}
    idle["total"] = round(sum(idle.values()), 1)
    cpu_started, machine_started, own_started = target.cpu(), machine_busy_seconds(), _own_cpu()
    wall_started = time.perf_counter()
    outcomes = drive(target, plans_measured, cards, args.customers)
    wall = time.perf_counter() - wall_started
    cpu_ended, machine_ended, own_ended = target.cpu(), machine_busy_seconds(), _own_cpu()
    processes = target.process_counts()
    settled = settle()
    after = snapshot(target, started)

    completed = sum(1 for o in outcomes if not o.error)
    per = max(completed, 1)
    cpu = {part: (after["cpu"].get(part, 0.0) - before["cpu"].get(part, 0.0)) for part in cli.PARTS
           if part in after["cpu"]}
    cpu_ms = {part: round(seconds * 1000 / per, 1) for part, seconds in cpu.items()}
    cpu_ms["total"] = round(sum(cpu.values()) * 1000 / per, 1)
    steps: dict[str, list[float]] = defaultdict(list)
    for o in outcomes:
        for name, seconds in o.steps:
            steps[name].append(seconds)
    customer_requests = sum(o.requests for o in outcomes)
    http = {"customer_per_payment": customer_requests / per}
    if before["served"] is not None:
        served = {p: after["served"][p] - before["served"][p] for p in after["served"]}
        http.update(served_by_party={p: round(n / per, 2) for p, n in served.items()},
                    server_per_payment=sum(served.values()) / per,
                    server_to_server_per_payment=(sum(served.values()) - customer_requests) / per)
    sql = sql_parts = None
    if before["sql"] is not None:
        sql_parts = {part: round((after["sql"].get(part, 0) - before["sql"].get(part, 0)) / per, 1)
                     for part in after["sql"]}
        sql = sum(sql_parts.values())
    errors = [o for o in outcomes if o.error]
    # What each part kept busy while the customers paid (CPU seconds per wall second: 1.0 is a whole core), the
    # system's in all, the load generator's (this process: the customers' threads) and the machine's (this system,
    # the load generator and any other work on it).
    busy = {part: round((cpu_ended.get(part, 0.0) - cpu_started.get(part, 0.0)) / wall, 2) for part in cli.PARTS
            if part in cpu_ended} if wall else {}
    busy["total"] = round(sum(busy.values()), 2)
    busy["load-generator"] = round((own_ended - own_started) / wall, 2) if wall else 0.0
    busy["machine"] = round((machine_ended - machine_started) / wall, 2) if wall else 0.0
    server_times = [sum(s for n, s in o.steps if n not in WAIT_STEPS) for o in outcomes if not o.error]
    report = {
        "label": args.label, "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": cli.machine(), "database": target.database, "durable": bool(args.durable),
        "customers": args.customers, "journeys": len(outcomes), "completed": completed, "warmup": warmup,
        "wall_seconds": round(wall, 2), "settle_seconds": round(settled, 2),
        "payments_per_second": completed / wall if wall else 0.0,
        "steps": {name: {"p50_ms": cli.ms(cli.percentile(v, 0.50)), "p95_ms": cli.ms(cli.percentile(v, 0.95)),
                         "p99_ms": cli.ms(cli.percentile(v, 0.99)), "count": len(v),
                         "server": name not in WAIT_STEPS}
                  for name in (*SERVER_STEPS, *WAIT_STEPS) if (v := steps.get(name))},
        "journey_p50_ms": cli.ms(cli.percentile([sum(s for _n, s in o.steps) for o in outcomes if not o.error], 0.5)),
        "journey_server_ms": {f"p{round(q * 100)}": cli.ms(cli.percentile(server_times, q))
                              for q in (0.50, 0.95, 0.99)} if server_times else None,
        "web": {"processes": None if started is None else args.web_processes or _web_default("TASDID_WEB_WORKERS", 2),
                "threads": None if started is None else args.web_threads or _web_default("TASDID_WEB_THREADS", 4),
                "processes_by_part": processes},
        "cpu_ms_per_payment": cpu_ms, "idle_cpu_ms_per_second": idle, "cores_busy": busy,
        "http": {k: (round(v, 2) if isinstance(v, float) else v) for k, v in http.items()},
        "sql_statements_per_payment": None if sql is None else round(sql, 1),
        "sql_statements_per_payment_by_part": sql_parts,
        "errors": {"count": len(errors), "by_step": dict(_count(o.failed_step for o in errors)),
                   "samples": [{"step": o.failed_step, "error": o.error} for o in errors[:5]]},
    }
    if args.ceiling_seconds > 0:
        report["ceiling"] = ceiling(target, args.customers, args.ceiling_seconds)
        report["ratio_to_ceiling"] = round(cpu_ms["total"] / report["ceiling"]["cpu_ms_per_request"], 1)
    return report


def _own_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _web_default(name: str, default: int) -> int | None:
    """What ``tasdid serve`` takes when not told."""
    import os

    return int(os.environ.get(name, default))


def _count(values) -> dict[str, int]:
    counted: dict[str, int] = defaultdict(int)
    for v in values:
        counted[v] += 1
    return counted


def drive(target: System, plans: list, cards: dict, customers: int) -> list:
    """The journeys of ``plans`` from ``customers`` threads; each thread pays with its own cards."""
    from django.db import connections

    outcomes: list = []
    pending = iter(enumerate(plans))
    lock = threading.Lock()

    def customer(slot: int) -> None:
        try:
            while True:
                with lock:
                    item = next(pending, None)
                if item is None:
                    return
                j, (identity, challenge, defer) = item
                card = cards["challenge" if challenge else "frictionless"][slot]
                plan = Plan(identity=identity, card=card, defer=defer, email=f"client{j}@bench.example.ma")
                outcome = journey(plan, target.urls)
                with lock:
                    outcomes.append(outcome)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=customer, args=(slot,), name=f"customer-{slot}") for slot in range(customers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def settle(limit: float = 120.0) -> float:
    """Wait until the worker has run every task due (the receipt emails, the callbacks' follow-ups); the gateway's
    deadline watches, due later, are left for later. Returns the seconds waited."""
    from django.db import connections
    from django_tasks_db.models import DBTaskResult

    started = time.monotonic()
    quiet = 0
    while time.monotonic() - started < limit:
        busy = DBTaskResult.objects.ready().exists() or DBTaskResult.objects.running().exists()
        quiet = 0 if busy else quiet + 1
        if quiet >= 3:
            break
        time.sleep(0.2)
    connections.close_all()
    return time.monotonic() - started


def snapshot(target: System, started) -> dict:
    time.sleep(1.2)  # the statement counts are written twice a second
    served = None
    if started is not None:
        served = {}
        for party in ("biller", "gateway", "bank", "switch"):
            text = started.access_log(party).read_text(errors="replace")
            served[party] = sum(1 for line in text.splitlines() if line.startswith(f"{party} "))
    return {"cpu": target.cpu(), "sql": target.sql_statements(), "served": served}


def ceiling(target: System, customers: int, seconds: float) -> dict:
    """``GET /_bench/ping`` on the biller's server from ``customers`` keep-alive clients for ``seconds``: requests
    per second and the biller server's CPU per request."""
    url = target.urls["biller"] + PING_PATH
    with httpx.Client() as probe:
        if probe.get(url).status_code != 200:
            return {}
    counts = [0] * customers
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        with httpx.Client() as http:
            while time.monotonic() < stop:
                http.get(url).raise_for_status()
                counts[i] += 1

    before = target.cpu()
    wall = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(customers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall
    after = target.cpu()
    requests = sum(counts)
    cpu = after.get("biller", 0.0) - before.get("biller", 0.0)
    return {"path": PING_PATH, "requests": requests, "requests_per_second": round(requests / wall, 1),
            "cpu_ms_per_request": round(cpu * 1000 / max(requests, 1), 3)}
