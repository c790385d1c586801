"""Long fuzz of the switch: ``tasdid switch`` as a real process (its own SQLite database, migrated, the sandbox
routes to a fake issuer host), and N damaged or random frames sent to it over TCP, each on its own connection,
each followed by an echo; after each one a fresh connection checks that the switch still serves.

    .venv/bin/python bench/iso_fuzz_switch.py --count 20000 --seed 7

Prints the count of each outcome (tests/switch/fuzzing.py: valid, answered 30, closed, wrong accept, crash); exits
1 unless there are 0 crashes and 0 wrong accepts. The short version runs in the test suite (tests/switch/test_fuzz.py).
"""

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.ports import free_port  # noqa: E402
from tests.switch.fakes import FakeIssuer, wait_until  # noqa: E402
from tests.switch.fuzzing import Outcome, mutate, probe, samples  # noqa: E402

TASDID = [sys.executable, "-m", "tasdid.cli"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    issuer = FakeIssuer().start()
    port = free_port()
    var = Path(tempfile.mkdtemp(prefix="tasdid-fuzz-switch-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TASDID_", "DATABASE_URL", "DJANGO_"))},
        "TASDID_SANDBOX": "1", "TASDID_VAR_DIR": str(var), "TASDID_SWITCH_PORT": str(port),
        "TASDID_ISSUER_PORT": str(issuer.port), "TASDID_SWITCH_IDLE_SECONDS": "2", "TASDID_LOG_LEVEL": "ERROR",
    }
    subprocess.run([*TASDID, "migrate", "--no-input", "-v", "0"], env=env, cwd=var, check=True)
    switch = subprocess.Popen([*TASDID, "switch"], env=env, cwd=var, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(switch.stdout), daemon=True).start()
    counts: Counter[str] = Counter()
    started = time.monotonic()
    try:
        wait_until(lambda: any("ISO 8583 sur" in line for line in output), "the switch listening")
        wait_until(lambda: issuer.network("001"), "the sign-on")
        bases = samples()
        for i in range(args.count):
            payload = rng.randbytes(rng.randint(1, 400)) if rng.random() < 0.2 else mutate(rng, rng.choice(bases))
            outcome = probe(port, payload, issuer)
            counts[outcome] += 1
            if outcome in (Outcome.CRASH, Outcome.WRONG_ACCEPT):
                print(f"#{i}: {outcome}: {payload!r}", file=sys.stderr)
                if outcome == Outcome.CRASH:
                    break
            if (i + 1) % 1000 == 0:
                print(f"{i + 1} frames, {dict(counts)}", flush=True)
        counts["switch process died"] = int(switch.poll() is not None)
    finally:
        if switch.poll() is None:
            switch.send_signal(signal.SIGTERM)
            switch.wait(30)
        issuer.close()
    elapsed = time.monotonic() - started
    print(f"{sum(v for k, v in counts.items() if k != 'switch process died')} frames in {elapsed:.1f} s (seed "
          f"{args.seed}):")
    for name in (Outcome.VALID, Outcome.ANSWERED_30, Outcome.CLOSED, Outcome.WRONG_ACCEPT, Outcome.CRASH,
                 "switch process died"):
        print(f"  {name}: {counts[name]}")
    bad = counts[Outcome.WRONG_ACCEPT] + counts[Outcome.CRASH] + counts["switch process died"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
