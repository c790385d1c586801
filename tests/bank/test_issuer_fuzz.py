"""A short fuzz of the issuer host over TCP (the long one: bench/iso_fuzz_issuer.py, same oracle): mutated and
random frames never crash it, never get a wrong answer, never approve what is not the card's own data."""

import datetime as dt

import pytest
from bench.iso_fuzz_issuer import MUTATIONS, bases, exchange, judge, mutate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasdid.bank.demo import seed_demo
from tasdid.bank.models import Hold, LedgerEntry, Refund
from tasdid.core import iso8583 as iso

from .iso_client import HostThread


@pytest.fixture(scope="module")
def fuzz_host(django_db_blocker):
    running = HostThread().start()
    yield running
    running.stop()


OPS = st.lists(st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 4000), st.integers(0, 255)), max_size=4)
counter = iter(range(0, 10**6, 2))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(base=st.integers(0, 4), ops=OPS)
def test_mutated_frames_get_no_wrong_answer(transactional_db, fuzz_host, base, ops):
    if not Hold.objects.exists() and not LedgerEntry.objects.exists():
        seed_demo()
    request = bases(next(counter), dt.datetime.now(dt.UTC).replace(microsecond=0))[base]
    sent = mutate(iso.encode_frame(request), ops)
    bodies = exchange(fuzz_host.port, sent)
    wrong, approved = judge(sent, bodies)
    assert wrong == []
    assert set(Hold.objects.filter(rrn__in=approved).values_list("rrn", flat=True)) == approved
    assert not LedgerEntry.objects.filter(kind="debit").exists()
    assert not Refund.objects.filter(response_code="00").exists()
    alive = [iso.decode(b) for b in exchange(fuzz_host.port, iso.encode_frame(
        iso.NetworkRequest(stan="999999", transmitted_at=dt.datetime.now(dt.UTC), network_code=iso.ECHO)))]
    assert [a.response_code for a in alive] == ["00"]


def test_a_short_campaign_of_streams_finds_nothing_wrong(transactional_db, fuzz_host):
    """The long run's loop (bench/iso_fuzz_issuer.py), bounded: 300 examples in batches on 2 connections."""
    from bench.iso_fuzz_issuer import Campaign

    seed_demo()
    campaign = Campaign(fuzz_host.port, examples=300, seed=5, connections=2)
    campaign.run()
    assert campaign.violations == []
    assert campaign.counts["examples"] == 300
    assert campaign.counts["valid"] and campaign.counts["answered 30"] and campaign.counts["closed"]
    assert set(Hold.objects.values_list("rrn", flat=True)) == campaign.approvals
    assert not LedgerEntry.objects.filter(kind="debit").exists()
    assert not Refund.objects.filter(response_code="00").exists()
