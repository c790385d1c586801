"""Scripted runs through the simulation's machinery (the same parties, network, crash points and invariants as the
seeded runs, but each fault placed by hand): the conjunctions that matter most, played every time.

Issue 6, case 1: the gateway sends the callback, the biller records the payment and answers, the gateway dies
before recording the answer; the biller then refuses connections while the gateway's sweep and the worker try the
callback again. A try that may have been delivered must not be read as a first try: the authorization stands
(no void while the invoice is paid), and once the biller is back the payment is captured.
"""

import datetime as dt

import time_machine

from tasdid.bank import sandbox
from tasdid.bank.models import Hold
from tasdid.billing.models import Invoice, Payment
from tasdid.gateway.models import Attempt, AttemptState

from . import journeys
from .engine import START, Settings, Simulation, recovery
from .journeys import Journey, new_customer
from .network import Faults


def test_callback_answered_then_gateway_dies_then_biller_refuses_the_retries(sim_world, monkeypatch):
    # No random fault; the one placed: the first callback answered by the merchant is never recorded (the process
    # sending it dies right after the answer), and the biller goes down at that moment (callback_gap and
    # outage_after_gap at 1).
    faults = Faults.none()
    faults.callback_gap = faults.outage_after_gap = 1.0
    sim = Simulation(1, Settings(journeys=1, faults=faults))
    monkeypatch.setattr(journeys, "CARDS", ((sandbox.card_by_outcome("00", "none"), 1),))
    sim._install(monkeypatch)
    with time_machine.travel(START, tick=False) as clock:
        sim.clock = clock
        journey = Journey(1, new_customer(sim.rng, 1), sim.net, sim.rng, sim._log)
        sim.journeys = [journey]
        # 1. The customer pays until the gateway dies in the gap between the biller's answer and its record.
        while not sim.net.is_down("biller"):
            sim.step_number += 1
            sim._mark = len(sim.lines)
            assert journey.step(), "the journey ended before its callback was answered\n" + sim.report()
            clock.shift(dt.timedelta(seconds=2))
            sim._check(final=False)
        payment = Payment.objects.get()
        attempt = Attempt.objects.get(trans_id=payment.trans_id)
        assert sim.net.is_down("gateway"), sim.report()
        assert attempt.state == AttemptState.AUTHORIZED and not attempt.callback_answer, sim.report()
        assert attempt.callback_tries_begun >= 1 and attempt.callback_tries == 0, sim.report()

        # 2. The biller refuses connections; time passes beyond the exchange's grace; the gateway's sweep and
        #    the worker try the callback again, each meeting a refused connection.
        for _round in range(3):
            sim.step_number += 1
            clock.shift(dt.timedelta(minutes=3))
            sim._log("the clock moves 180 s")
            sim._cron("tasdid gateway-sweep", recovery()[1][1])
            sim._check(final=False)
            for result in sim._due_tasks():  # the worker runs what is due (the attempt's watch among it)
                sim.step_number += 1
                sim._worker_runs([result])
                sim._check(final=False)
        assert "connection refused" in sim.report() and "tasdid gateway-sweep → biller" in sim.report(), sim.report()
        attempt.refresh_from_db()
        assert attempt.state == AttemptState.AUTHORIZED, sim.report()  # not voided while the invoice is paid
        paid = Invoice.objects.filter(payment=payment)
        assert paid.exists() and all(i.status == Invoice.Status.PAID for i in paid)

        # 3. Every process back; recovery to quiescence, the full invariants checked at the end.
        sim._finish()
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.CAPTURED, sim.report()
    assert Hold.objects.get(rrn=attempt.rrn).state == Hold.State.CAPTURED
    assert Payment.objects.count() == 1
