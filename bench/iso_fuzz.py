"""Long fuzz of the ISO 8583 codec (core.iso8583): the properties of tests/core/test_iso8583.py, with many
more examples than the test suite runs.

1. round trips: random messages of every type encode, decode to an equal message, and encode to the same bytes;
2. hostile bytes: random bytes, and valid messages with bytes changed, cut or inserted, either decode to a
   message that encodes back to the very same bytes, or raise MessageError (and nothing else); the errors are
   counted by element;
3. hostile frames: the same through decode_frame, length prefixes included.

    .venv/bin/python bench/iso_fuzz.py                 # 10,000 examples per property (about 10 minutes)
    .venv/bin/python bench/iso_fuzz.py --examples 200000

Prints the examples run, the time taken and what the errors were about. Exits 1 on the first counterexample
(Hypothesis prints it, shrunk).
"""

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.core.test_iso8583 import NOW, any_message, drift, mutations, raw_frame

from tasdid.core import iso8583 as iso


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000, help="examples per property")
    args = parser.parse_args()
    fuzz = settings(max_examples=args.examples, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
    errors: collections.Counter[str] = collections.Counter()
    decoded = collections.Counter()

    @fuzz
    @given(message=any_message, data=st.data())
    def round_trip(message, data):
        now = message.transmitted_at + data.draw(drift)
        payload = iso.encode(message)
        assert iso.decode(payload, now=now) == message
        assert iso.encode(iso.decode(payload, now=now)) == payload

    @fuzz
    @given(payload=st.one_of(st.binary(max_size=400), mutations(), mutations()))
    def hostile_bytes(payload):
        try:
            message = iso.decode(payload, now=NOW)
        except iso.MessageError as error:
            errors[error.where] += 1
            return
        decoded[message.MTI] += 1
        assert iso.encode(message) == payload

    @fuzz
    @given(data=st.one_of(st.binary(max_size=400), mutations().map(raw_frame), mutations().map(raw_frame)))
    def hostile_frames(data):
        try:
            iso.decode_frame(data, now=NOW)
        except iso.MessageError as error:
            errors["frame" if error.stream_lost else "frame: " + error.where] += 1

    for name, prop in (("round trips", round_trip), ("hostile bytes", hostile_bytes),
                       ("hostile frames", hostile_frames)):
        started = time.perf_counter()
        prop()
        print(f"{name}: {args.examples} examples, {time.perf_counter() - started:.1f} s")
    print("decoded after mutation:", dict(decoded.most_common()))
    print("MessageError by element:", dict(errors.most_common(25)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
