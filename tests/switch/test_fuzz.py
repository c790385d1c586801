"""A short fuzz of the switch over TCP (the long one: bench/iso_fuzz_switch.py): damaged and random frames are
answered 30 or close their connection, never forwarded or approved, and the switch goes on serving."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .fuzzing import Outcome, mutate, probe, samples

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLES = samples()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(
    st.binary(min_size=1, max_size=300),
    st.tuples(st.sampled_from(SAMPLES), st.integers(0, 2**32)).map(lambda s: mutate(random.Random(s[1]), s[0])),
))
def test_fuzzed_frames_never_crash_or_get_accepted(switch, atlas, payload):
    outcome = probe(switch.port, payload, atlas)
    assert outcome not in (Outcome.CRASH, Outcome.WRONG_ACCEPT)


def test_a_short_campaign_of_streams_finds_nothing_wrong(switch, atlas):
    """The long run's loop (bench/iso_fuzz_switch.py), bounded: 400 frames in batches on 2 connections."""
    from bench.iso_fuzz_switch import Campaign, Forwarded

    forwarded = atlas.received = Forwarded()
    campaign = Campaign(switch.port, forwarded, frames=400, seed=5, connections=2)
    counts = campaign.run()
    assert campaign.problems == []
    assert counts["frames"] == 400
    assert counts[Outcome.CRASH] == counts[Outcome.WRONG_ACCEPT] == 0
    assert counts[Outcome.VALID] and counts[Outcome.ANSWERED_30] and counts[Outcome.CLOSED]
