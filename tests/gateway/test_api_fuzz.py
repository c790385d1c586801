"""A short fuzz of the merchant XML API (tests/gateway/api_fuzzing.py): valid operations and their repeats,
queries, invalid and malicious XML; no server error, no wrong accept or refusal, every repeat the same answer, and
the gateway's records the model's at the end. The long run is bench/api_fuzz.py."""

import random

import pytest

from .api_fuzzing import Model, Outcome, Run, check_money, gateway_client, setup_merchants, step

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fuzz_acquirer(settings):
    settings.GATEWAY_ACQUIRER = "tests.gateway.api_fuzzing.FuzzAcquirer"


def test_a_short_fuzz_of_the_xml_api():
    setup_merchants()
    run, model, rng, client = Run(), Model(), random.Random(20261207), gateway_client()
    for n in range(1500):
        step(run, model, rng, n, client=client)
    assert run.failures[:5] == []
    assert run.bad == 0 and check_money(model) == []
    # Every family was exercised: approvals, declines, repeats, refusals.
    assert run.counts[Outcome.APPROVED] > 200 and run.counts[Outcome.REFUSED] > 500
    assert run.counts.get(Outcome.DECLINED, 0) > 0
    assert any(k.startswith("repeat") for k in run.kinds) and any(k.startswith("malicious") for k in run.kinds)
