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
