"""The payment request endpoint fuzzed (tests/gateway/request_fuzzing.py): generated requests, valid or broken in
one way, each posted through the gateway; exactly the valid ones open a session for the amount signed, the
others get a refusal page and write nothing, none gets a server error. The long run is bench/request_fuzz.py."""

import itertools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasdid.gateway.models import PaymentSession

from .request_fuzzing import Outcome, Run, gateway_client, setup_merchants, step

ORDERS = itertools.count()


@pytest.fixture
def merchants(db):
    setup_merchants()


def test_a_fixed_run_meets_every_kind_of_request(merchants):
    run, rng, client = Run(), random.Random(2026), gateway_client()
    for _ in range(500):
        step(run, rng, next(ORDERS), client=client)
    assert run.failures == []
    assert run.bad == 0 and run.counts[Outcome.ACCEPTED] > 100 and run.counts[Outcome.REFUSED] > 300
    assert PaymentSession.objects.count() == run.sessions
    families = {kind.split(":")[0] for kind in run.kinds}
    assert families >= {"valid", "tampered", "dropped", "added after signing", "duplicated", "hash wrong",
                        "signed, invalid", "not UTF-8", "value too long", "name too long", "junk bytes",
                        "junk fields", "replay from another browser", "repost from the same browser"}


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_generated_requests_are_accepted_exactly_when_valid(merchants, seed):
    run, rng, client = Run(), random.Random(seed), gateway_client()
    before = PaymentSession.objects.count()
    for _ in range(5):
        step(run, rng, next(ORDERS), client=client)
    assert run.failures == []
    assert PaymentSession.objects.count() == before + run.sessions
