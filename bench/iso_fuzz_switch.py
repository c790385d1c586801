"""Long fuzz of the switch: ``tasdid switch`` as a real process (its own SQLite database, migrated, the sandbox
routes to a fake issuer host in this process), and N random or damaged frames sent to it over TCP.

    nice -n 10 .venv/bin/python bench/iso_fuzz_switch.py --frames 500000 --seed 11 --connections 4

Several connections in parallel, each sending batches of 1 to 32 frames ended by an echo (the sentinel), and kept
while the stream stays in step; a fresh connection only after the switch closed one (a lost framing, a frame
nobody can be answered for). The oracle (tests/switch/fuzzing.py, ``read_stream`` and ``judge_answers``) reads
the bytes sent as the switch reads them and checks every answer: a 30 only to a damaged request whose key can be
read, any other code only to a request of the profile, every answer owed when the connection goes on; and the fake
issuer checks that nothing reaches it but requests that decode (their MTI, amount and merchant sent as such).
Every 2 s a fresh connection checks that the switch still answers an echo.

Prints the count of each outcome (valid, answered 30, closed, wrong accept, crash) and exits 1 unless there are 0
crashes, 0 wrong accepts and nothing else wrong. The short versions run in the test suite
(tests/switch/test_fuzz.py).
"""

import argparse
import datetime as dt
import os
import random
import shutil
import signal
import socket
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
from tests.switch.fuzzing import Frame, Outcome, alive, judge_answers, mutate, read_stream, samples  # noqa: E402

from tasdid.core import iso8583 as iso  # noqa: E402

TASDID = [sys.executable, "-m", "tasdid.cli"]
FINANCIAL = ("0100", "0200", "0220", "0400")


class Forwarded(list):
    """A fake issuer's ``received``: keeps the network messages, and checks every other one against what was
    sent to the switch in a form that decodes (a damaged frame must never be forwarded)."""

    def __init__(self):
        super().__init__()
        self.valid: set[tuple] = set()
        self.wrong: list[str] = []
        self.count = 0

    def sent(self, message: iso.Message) -> None:
        self.valid.add((message.MTI, message.amount_minor, message.merchant_id))

    def append(self, message: iso.Message) -> None:
        if message.MTI == "0800":
            if len(self) < 1000:
                super().append(message)
            return
        self.count += 1
        ids = {(mti, message.amount_minor, message.merchant_id) for mti in (message.MTI, "0100", "0200")}
        if message.MTI != "0400":  # the switch's own reversal follows a 0100 or 0200 sent
            ids = {(message.MTI, message.amount_minor, message.merchant_id)}
        if not ids & self.valid:
            self.wrong.append(f"{Outcome.WRONG_ACCEPT}: a {message.MTI} of {message.amount_minor} forwarded, never "
                              f"sent as a valid request")


class Campaign:
    """The fuzzing loop of one or several connections to ``port``; ``run`` returns the outcome counts."""

    def __init__(self, port: int, forwarded: Forwarded, *, frames: int, seed: int, connections: int = 4,
                 timeout: float = 15.0, progress: int = 0, minutes: float | None = None):
        self.port, self.forwarded, self.frames, self.seed = port, forwarded, frames, seed
        self.connections, self.timeout, self.progress = connections, timeout, progress
        self.counts: Counter[str] = Counter()
        self.problems: list[str] = []
        self.lock = threading.Lock()
        self.claimed = 0
        self.stop = threading.Event()
        self.ends = None if minutes is None else time.monotonic() + minutes * 60

    def claim(self, wanted: int) -> int:
        with self.lock:
            n = max(0, min(wanted, self.frames - self.claimed))
            self.claimed += n
            return n

    def item(self, rng: random.Random, bases: list[bytes]) -> bytes:
        """One frame's bytes: mostly a damaged request framed to its length, sometimes random bytes, a request as
        it is, or a frame whose length prefix is wrong (0, too long, off by a few bytes)."""
        r = rng.random()
        if r < 0.05:
            return iso.frame(rng.choice(bases))
        if r < 0.13:
            return iso.frame(rng.randbytes(rng.randint(1, 400)))
        if r < 0.96:
            base = rng.choice(bases)
            return iso.frame(mutate(rng, base, start=40 if rng.random() < 0.75 else 0))
        payload = mutate(rng, rng.choice(bases)) if rng.random() < 0.5 else rng.choice(bases)
        length = rng.choice((0, iso.MAX_FRAME + 1, 0xFFFF, max(1, len(payload) + rng.randint(-8, 8))))
        return length.to_bytes(2, "big") + payload

    def worker(self, number: int) -> None:
        rng = random.Random(self.seed * 1000 + number)
        sock: socket.socket | None = None
        buffer = bytearray()
        batch = 0
        try:
            while not self.stop.is_set() and (self.ends is None or time.monotonic() < self.ends):
                n = self.claim(rng.randint(1, 32))
                if n == 0:
                    break
                batch += 1
                stan = (number * 200_000 + batch * 6) % 10**6
                bases = samples(stan=stan, amount=(number * 10**7 + batch) * 10)
                data = bytearray()
                frames: list[Frame] = []
                position, in_step, sent_items = 0, True, 0
                for _ in range(n):
                    data += self.item(rng, bases)
                    sent_items += 1
                    read, position, in_step = read_stream(bytes(data), position)
                    frames += read
                    if not in_step:
                        break
                with self.lock:
                    self.claimed -= n - sent_items  # the rest of the batch, after a frame that ends the stream
                echo = None
                if in_step:
                    echo = iso.NetworkRequest(stan=f"{rng.randrange(10**6):06d}",
                                              transmitted_at=dt.datetime.now(dt.UTC), network_code=iso.ECHO)
                    data += iso.encode_frame(echo)
                    read, position, in_step = read_stream(bytes(data), position)
                    frames += read
                goes_on = in_step and position == len(data)
                if in_step and not goes_on:  # bytes short of a whole frame: the end of stream cuts it
                    frames.append(Frame(Outcome.CLOSED))
                for f in frames:
                    if f.outcome == Outcome.VALID and f.message.MTI in FINANCIAL:
                        self.forwarded.sent(f.message)
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
                    buffer.clear()
                answers, trouble = self.exchange(sock, buffer, bytes(data), goes_on,
                                                 sum(f.key is not None for f in frames))
                if not goes_on or trouble:
                    sock.close()
                    sock = None
                wrong = judge_answers(frames, answers, complete=goes_on and not trouble)
                wrong += [trouble] if trouble else []
                # Each item is one message sent; the outcomes are those of the frames the switch read (the same
                # count, but where a wrong length prefix joins or splits them), the sentinel left out.
                with self.lock:
                    self.counts["frames"] += sent_items
                    for f in frames:
                        if f.message is None or f.message is not echo_read(frames, echo):
                            self.counts[f.outcome] += 1
                    self.problems += wrong
                    done = self.counts["frames"]
                if self.progress and done // self.progress != (done - sent_items) // self.progress:
                    print(f"{done} frames, {self.summary()}", flush=True)
        except Exception as exc:
            with self.lock:
                self.problems.append(f"worker {number}: {type(exc).__name__}: {exc}")
            self.stop.set()
        finally:
            if sock is not None:
                sock.close()

    def exchange(self, sock: socket.socket, buffer: bytearray, data: bytes, goes_on: bool,
                 owed: int) -> tuple[list[iso.Message], str]:
        """Send ``data``; read ``owed`` answers (the connection goes on) or every answer until the switch closes."""
        answers: list[iso.Message] = []
        try:
            sock.sendall(data)
            if not goes_on:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the switch closed while we were sending: read what it said before
        while not goes_on or len(answers) < owed:
            while len(buffer) >= 2 and len(buffer) - 2 >= int.from_bytes(buffer[:2], "big"):
                length = int.from_bytes(buffer[:2], "big")
                body = bytes(buffer[2:2 + length])
                del buffer[:2 + length]
                try:
                    answers.append(iso.decode(body))
                except iso.MessageError as exc:
                    return answers, f"unexpected: the switch sent bytes that are no message ({exc})"
            if goes_on and len(answers) >= owed:
                break
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return answers, f"unanswered: {owed - len(answers)} answers still owed after {self.timeout:.0f} s"
            except OSError:
                chunk = b""
            if not chunk:
                if goes_on:
                    return answers, "unexpected: the switch closed a connection still in step"
                break
            buffer += chunk
        return answers, ""

    def summary(self) -> str:
        return ", ".join(f"{k} {self.counts[k]}" for k in (Outcome.VALID, Outcome.ANSWERED_30, Outcome.CLOSED)) + \
            f", forwarded {self.forwarded.count}, problems {len(self.problems) + len(self.forwarded.wrong)}"

    def run(self, check_alive=None) -> Counter:
        threads = [threading.Thread(target=self.worker, args=(n,), daemon=True) for n in range(self.connections)]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            time.sleep(2.0)
            if not alive(self.port) or (check_alive is not None and not check_alive()):
                self.counts[Outcome.CRASH] += 1
                self.stop.set()
        if not alive(self.port):
            self.counts[Outcome.CRASH] += 1
        self.problems += self.forwarded.wrong
        self.counts[Outcome.WRONG_ACCEPT] = sum(p.startswith(Outcome.WRONG_ACCEPT) for p in self.problems)
        return self.counts


def echo_read(frames: list[Frame], echo: iso.Message | None) -> iso.Message | None:
    """The sentinel as the switch read it: the last frame, when it is the echo sent."""
    if echo is not None and frames and frames[-1].message is not None and frames[-1].message.MTI == "0800" \
            and frames[-1].message.stan == echo.stan:
        return frames[-1].message
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--minutes", type=float, help="stop sending after this long (the checks still run)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: the switch is stopped too (finally)
    issuer = FakeIssuer().start()
    forwarded = issuer.received = Forwarded()
    port = free_port()
    var = Path(tempfile.mkdtemp(prefix="tasdid-fuzz-switch-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TASDID_", "DATABASE_URL", "DJANGO_"))},
        "TASDID_SANDBOX": "1", "TASDID_VAR_DIR": str(var), "TASDID_SWITCH_PORT": str(port),
        "TASDID_ISSUER_PORT": str(issuer.port), "TASDID_SWITCH_IDLE_SECONDS": "20", "TASDID_LOG_LEVEL": "ERROR",
    }
    subprocess.run([*TASDID, "migrate", "--no-input", "-v", "0"], env=env, cwd=var, check=True)
    switch = subprocess.Popen([*TASDID, "switch"], env=env, cwd=var, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(switch.stdout), daemon=True).start()
    started = time.monotonic()
    try:
        wait_until(lambda: any("ISO 8583 sur" in line for line in output), "the switch listening")
        wait_until(lambda: issuer.network("001"), "the sign-on")
        campaign = Campaign(port, forwarded, frames=args.frames, seed=args.seed, connections=args.connections,
                            progress=50_000, minutes=args.minutes)
        started = time.monotonic()
        counts = campaign.run(check_alive=lambda: switch.poll() is None)
        elapsed = time.monotonic() - started
        died = switch.poll() is not None
    finally:
        if switch.poll() is None:
            switch.send_signal(signal.SIGTERM)
            switch.wait(30)
        issuer.close()
        shutil.rmtree(var, ignore_errors=True)
    tracebacks = sum("Traceback" in line for line in output)
    print(f"{counts['frames']} frames in {elapsed:.1f} s ({counts['frames'] / elapsed:.0f}/s), seed {args.seed}, "
          f"{args.connections} connections:")
    for name in (Outcome.VALID, Outcome.ANSWERED_30, Outcome.CLOSED, Outcome.WRONG_ACCEPT, Outcome.CRASH):
        print(f"  {name}: {counts[name]}")
    print(f"  forwarded to the issuer: {forwarded.count}")
    print(f"  switch process died: {int(died)}; tracebacks in its log: {tracebacks}")
    print(f"  other problems: {len(campaign.problems) - counts[Outcome.WRONG_ACCEPT]}")
    for problem in campaign.problems[:30]:
        print("    " + problem)
    bad = counts[Outcome.CRASH] + died + tracebacks + len(campaign.problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
