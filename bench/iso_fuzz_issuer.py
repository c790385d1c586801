"""Fuzz of the issuer host: random and mutated ISO 8583 frames over TCP, 0 crashes and 0 wrong accepts.

``tasdid issuer`` runs as a real process on a fresh SQLite database (migrated, the sandbox banks seeded). Each
example opens a connection, sends a frame of a valid request (an authorization of an approved card, a capture
and a refund of payments that do not exist, an echo) with its bytes mutated (flipped, inserted, deleted, cut,
a length prefix changed, random bytes), closes its sending side and reads every answer until the host closes.

The oracle (``judge``), for each answer:

- the bytes are read as the host reads a stream (``expected``): frame after frame until a bad length, a cut
  frame or a message nobody can be answered for; each request of the profile is owed exactly one answer, each
  frame that breaks the profile but whose key can be read one 30, and nothing else may come;
- an approval (00) of a 0100 only when the request carries the approved card's own number, expiry and CVV,
  and never of a capture or a refund (no payment exists for them).

At the end: the host still answers an echo, its log has no traceback, and the bank's tables hold exactly one
hold per approval and no debit, no credit but the opening balances.

    .venv/bin/python bench/iso_fuzz_issuer.py --examples 20000 --seed 1

The short version runs in the test suite (tests/bank/test_issuer_fuzz.py, Hypothesis, same oracle).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from tasdid.bank import sandbox
from tasdid.core import iso8583 as iso

APPROVED_CARD = sandbox.card_by_outcome("00", "none")
MERCHANT = "600000001"
MUTATIONS = ("flip", "insert", "delete", "cut", "prefix", "random", "duplicate")


def bases(stan: int, now: dt.datetime) -> list[iso.Message]:
    """Valid requests to mutate; ``stan`` makes their keys unique within a run."""
    month, year = APPROVED_CARD.expiry.split("/")
    original = iso.OriginalData(mti="0100", stan=f"{(stan + 1) % 10**6:06d}", transmitted_at=now)
    key = {"stan": f"{stan % 10**6:06d}", "transmitted_at": now, "merchant_id": MERCHANT}
    return [
        iso.AuthorizationRequest(pan=APPROVED_CARD.number, expiry_yymm=year + month, amount_minor=100,
                                 currency="504", cvv=APPROVED_CARD.cvv, merchant_name="Fuzz", order_id="F-1", **key),
        iso.CompletionRequest(amount_minor=100, currency="504", rrn="999999999999", original=original, **key),
        iso.FinancialRequest(processing_code=iso.REFUND, amount_minor=100, currency="504", rrn="999999999999",
                             original=original, **key),
        iso.ReversalRequest(amount_minor=100, currency="504", original=original, **key),
        iso.NetworkRequest(stan=key["stan"], transmitted_at=now, network_code=iso.ECHO),
    ]


def mutate(frame: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    """``frame`` changed by each (kind, position, byte) in turn; positions wrap around the data."""
    data = bytearray(frame)
    for kind, position, value in ops:
        at = position % (len(data) + 1)
        if kind == "flip" and data:
            data[at % len(data)] ^= (value % 255) + 1
        elif kind == "insert":
            data[at:at] = bytes([value])
        elif kind == "delete" and data:
            del data[at % len(data)]
        elif kind == "cut":
            del data[at:]
        elif kind == "prefix" and len(data) >= 2:
            data[0:2] = (value * 257 + position).to_bytes(4, "big")[-2:]
        elif kind == "random":
            data = bytearray(random.Random(position * 256 + value).randbytes(position % 3000))
        elif kind == "duplicate":
            data += data[: at]
    return bytes(data)


def random_ops(rng: random.Random) -> list[tuple[str, int, int]]:
    return [(rng.choice(MUTATIONS), rng.randrange(4000), rng.randrange(256)) for _ in range(rng.randint(0, 4))]


def exchange(port: int, data: bytes, *, timeout: float = 60.0) -> list[bytes]:
    """Send ``data``, stop sending, and return the bodies of every frame received until the host closes."""
    bodies: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the host closed while we were sending: read what it said before
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    while len(received) >= 2:
        length = int.from_bytes(received[:2], "big")
        bodies.append(received[2:2 + length])
        received = received[2 + length:]
    if received:
        bodies.append(b"<partial frame>")
    return bodies


def read_stream(sent: bytes, start: int = 0) -> tuple[list[iso.Message], list[iso.Message], int, bool]:
    """``sent`` from ``start`` read as the host reads a stream: the requests to answer, the 30 refusals owed, where
    the reading ended and whether it stopped there for good (a bad length, an unanswerable message: the host closes)
    rather than for want of bytes."""
    requests: list[iso.Message] = []
    refusals: list[iso.Message] = []
    i = start
    while len(sent) - i >= 2:
        length = int.from_bytes(sent[i:i + 2], "big")
        body = sent[i + 2:i + 2 + length]
        if length == 0 or length > iso.MAX_FRAME:
            return requests, refusals, i, True
        if len(body) < length:
            break
        i += 2 + length
        try:
            message = iso.decode(body)
        except iso.MessageError as exc:
            refusal = iso.format_error_answer(exc)
            if refusal is None:
                return requests, refusals, i, True
            refusals.append(refusal)
            continue
        if message.MTI not in iso.REQUESTS:
            return requests, refusals, i, True
        requests.append(message)
    return requests, refusals, i, False


def expected(sent: bytes) -> tuple[list[iso.Message], list[iso.Message]]:
    """What the host owes for ``sent``, read as it reads a stream: the requests to answer and the 30 refusals,
    frame after frame until the first one that closes the connection (bad length, cut, unanswerable)."""
    requests, refusals, _end, _stopped = read_stream(sent)
    return requests, refusals


def _take(pending: list[iso.Message], answer: iso.Message) -> iso.Message | None:
    for candidate in pending:
        if iso.match_key(candidate) == iso.match_key(answer) and iso.RESPONSE_MTI.get(
                candidate.MTI, candidate.MTI) == answer.MTI:
            pending.remove(candidate)
            return candidate
    return None


def judge(sent: bytes, bodies: list[bytes], owed: tuple[list, list] | None = None) -> tuple[list[str], set[str]]:
    """What is wrong with these answers to ``sent`` (empty: nothing), and the RRNs of the 0100 approvals;
    ``owed``: ``expected(sent)`` when the caller has it already."""
    wrong: list[str] = []
    approved: set[str] = set()
    requests, refusals = (list(owed[0]), list(owed[1])) if owed is not None else expected(sent)
    month, year = APPROVED_CARD.expiry.split("/")
    for body in bodies:
        try:
            answer = iso.decode(body)
        except iso.MessageError as exc:
            wrong.append(f"the host sent bytes that are no message: {exc}")
            continue
        if answer.response_code == iso.rc.FORMAT_ERROR and _take(refusals, answer) is not None:
            continue
        request = _take(requests, answer)
        if request is None:
            wrong.append(f"a {answer.MTI} {answer.response_code} that answers nothing sent")
            continue
        if answer.response_code != iso.rc.APPROVED:
            continue
        if isinstance(request, iso.AuthorizationRequest):
            if (request.pan, request.expiry_yymm, request.cvv) != (APPROVED_CARD.number, year + month,
                                                                   APPROVED_CARD.cvv):
                wrong.append("a 0100 approved without the card's own data")
            approved.add(answer.rrn)
        elif isinstance(request, iso.CompletionRequest | iso.FinancialRequest):
            wrong.append(f"a {request.MTI} approved for a payment that does not exist")
    wrong += [f"a {m.MTI} never answered" for m in requests]
    wrong += [f"a 30 never sent for a {m.MTI}" for m in refusals]
    return wrong, approved


# --- The campaign ------------------------------------------------------------------------------------------------
#
# Three connections per example cannot reach a million. The campaign keeps a connection while the stream stays in
# step: it sends a batch of 1 to 32 examples (half of them damaged inside a frame framed to its new length, half
# damaged anywhere, the length prefix included), then an echo, and reads the answers owed; at the first frame after
# which the host closes (``read_stream``), it stops sending, shuts its side and reads until the host closes, as
# ``exchange`` does. ``judge`` checks each batch. Several connections run in parallel.


class Campaign:
    def __init__(self, port: int, *, examples: int, seed: int, connections: int = 4, timeout: float = 60.0,
                 progress: int = 0, minutes: float | None = None):
        self.port, self.examples, self.seed, self.connections = port, examples, seed, connections
        self.timeout, self.progress = timeout, progress
        self.lock = threading.Lock()
        self.claimed = 0
        self.counts: Counter[str] = Counter()
        self.violations: list[str] = []
        self.approvals: set[str] = set()
        self.stop = threading.Event()
        self.ends = None if minutes is None else time.monotonic() + minutes * 60
        self.keys = iter(range(0, 10**12, 2))  # STANs of the examples (even; their originals odd)

    def item(self, rng: random.Random) -> bytes:
        with self.lock:
            stan = next(self.keys)
        base = rng.choice(bases(stan, dt.datetime.now(dt.UTC).replace(microsecond=0)))
        if rng.random() < 0.5:
            ops = [op for op in random_ops(rng) if op[0] not in ("prefix", "cut")]
            return iso.frame(mutate(iso.encode(base), ops) or b"0")
        return mutate(iso.encode_frame(base), random_ops(rng))

    def worker(self, number: int) -> None:
        rng = random.Random(self.seed * 1000 + number)
        sock: socket.socket | None = None
        buffer = bytearray()
        try:
            while not self.stop.is_set() and (self.ends is None or time.monotonic() < self.ends):
                with self.lock:
                    n = max(0, min(rng.randint(1, 32), self.examples - self.claimed))
                    self.claimed += n
                if n == 0:
                    break
                data = bytearray()
                requests: list[iso.Message] = []
                refusals: list[iso.Message] = []
                position, stopped, sent_items = 0, False, 0
                for _ in range(n):
                    data += self.item(rng)
                    sent_items += 1
                    more, refused, position, stopped = read_stream(bytes(data), position)
                    requests += more
                    refusals += refused
                    if stopped:
                        break
                with self.lock:
                    self.claimed -= n - sent_items
                if not stopped:
                    echo = iso.NetworkRequest(stan=f"{rng.randrange(10**6):06d}",
                                              transmitted_at=dt.datetime.now(dt.UTC), network_code=iso.ECHO)
                    data += iso.encode_frame(echo)
                    more, refused, position, stopped = read_stream(bytes(data), position)
                    requests += more
                    refusals += refused
                goes_on = not stopped and position == len(data)
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
                    buffer.clear()
                bodies, trouble = self.exchange(sock, buffer, bytes(data), goes_on, len(requests) + len(refusals))
                if not goes_on or trouble:
                    sock.close()
                    sock = None
                wrong, approved = judge(bytes(data), bodies, (requests, refusals))
                wrong += [trouble] if trouble else []
                with self.lock:
                    self.counts["examples"] += sent_items
                    self.counts["valid"] += len(requests) - (not stopped)  # the echo left out
                    self.counts["answered 30"] += len(refusals)
                    self.counts["closed"] += not goes_on
                    self.counts["connections"] += not goes_on
                    self.approvals |= approved
                    self.violations += wrong
                    done = self.counts["examples"]
                if self.progress and done // self.progress != (done - sent_items) // self.progress:
                    print(f"{done} examples, {dict(self.counts)}, {len(self.violations)} violations", flush=True)
        except Exception as exc:
            with self.lock:
                self.violations.append(f"worker {number}: {type(exc).__name__}: {exc}")
            self.stop.set()
        finally:
            if sock is not None:
                sock.close()

    def exchange(self, sock: socket.socket, buffer: bytearray, data: bytes, goes_on: bool,
                 owed: int) -> tuple[list[bytes], str]:
        """Send ``data``; the bodies of the ``owed`` answers (the stream goes on) or of every frame until the host
        closes (``<partial frame>`` for bytes that end inside one)."""
        bodies: list[bytes] = []
        try:
            sock.sendall(data)
            if not goes_on:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the host closed while we were sending: read what it said before
        while True:
            while len(buffer) >= 2 and len(buffer) - 2 >= int.from_bytes(buffer[:2], "big"):
                length = int.from_bytes(buffer[:2], "big")
                bodies.append(bytes(buffer[2:2 + length]))
                del buffer[:2 + length]
            if goes_on and len(bodies) >= owed:
                return bodies, ""
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return bodies, f"{owed - len(bodies)} answers still owed after {self.timeout:.0f} s"
            except OSError:
                chunk = b""
            if not chunk:
                if buffer:
                    bodies.append(b"<partial frame>")
                return bodies, "the host closed a connection still in step" if goes_on else ""
            buffer += chunk

    def run(self, host: subprocess.Popen | None = None) -> None:
        threads = [threading.Thread(target=self.worker, args=(n,), daemon=True) for n in range(self.connections)]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            time.sleep(2.0)
            if not echo_answered(self.port) or (host is not None and host.poll() is not None):
                self.violations.append("the host stopped answering an echo"
                                       + ("" if host is None or host.poll() is None else f" (exit {host.returncode})"))
                self.stop.set()
                break


def echo_answered(port: int) -> bool:
    echo = iso.NetworkRequest(stan="999999", transmitted_at=dt.datetime.now(dt.UTC), network_code=iso.ECHO)
    try:
        return [iso.decode(b).response_code for b in exchange(port, iso.encode_frame(echo), timeout=30)] == ["00"]
    except (OSError, iso.MessageError):
        return False


def _environment(var: Path) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "tasdid.settings", "TASDID_SANDBOX": "1",
            "TASDID_VAR_DIR": str(var), "DATABASE_URL": f"sqlite:///{var / 'fuzz.sqlite3'}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--minutes", type=float, help="stop sending after this long (the checks still run)")
    parser.add_argument("--on-disk", action="store_true", help="the database in the temporary directory's disk")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: the host is stopped too (finally)
    tasdid = Path(sys.executable).with_name("tasdid")
    # The database in memory when the machine has a tmpfs: the bank's commits are not what is under test, and a
    # disk's fsync per commit (6.4 ms against 0.26 ms on a tmpfs here) slows every answer that writes.
    memory = "/dev/shm" if os.path.isdir("/dev/shm") and not args.on_disk else None
    with tempfile.TemporaryDirectory(prefix="iso-fuzz-", dir=memory) as tmp:
        var = Path(tmp)
        env = _environment(var)
        subprocess.run([str(tasdid), "migrate", "--no-input", "-v", "0"], env=env, check=True)
        subprocess.run([sys.executable, "-c", "import django; django.setup(); "
                        "from tasdid.bank.demo import seed_demo; seed_demo()"], env=env, check=True)
        log = (var / "issuer.log").open("w+")
        host = subprocess.Popen([str(tasdid), "issuer", "--port", "0"], env=env, stdout=subprocess.PIPE,
                                stderr=log, text=True)
        try:
            line = host.stdout.readline().strip()
            port = int(line.rsplit(":", 1)[1])
            campaign = Campaign(port, examples=args.examples, seed=args.seed, connections=args.connections,
                                progress=50_000, minutes=args.minutes)
            started = time.monotonic()
            campaign.run(host)
            if not echo_answered(port):
                campaign.violations.append("the host does not answer an echo at the end")
            elapsed = time.monotonic() - started
        finally:
            host.terminate()
            host.wait(timeout=60)
        violations, approvals, counts = campaign.violations, campaign.approvals, campaign.counts
        log.seek(0)
        if "Traceback" in (text := log.read()) and "Error" in text:
            violations.append("the host's log holds a traceback")
        with sqlite3.connect(var / "fuzz.sqlite3") as db:
            holds = db.execute("SELECT COUNT(*) FROM bank_hold").fetchone()[0]
            moves = db.execute("SELECT COUNT(*) FROM bank_ledgerentry WHERE hold_id IS NOT NULL OR kind = 'debit' "
                               "OR id IN (SELECT credit_id FROM bank_refund WHERE credit_id IS NOT NULL)"
                               ).fetchone()[0]
        if holds != len(approvals):
            violations.append(f"{holds} holds for {len(approvals)} approvals")
        if moves:
            violations.append(f"{moves} ledger movements (none expected)")
    examples = counts["examples"]
    print(f"{examples} examples in {elapsed:.1f} s ({examples / elapsed:.0f}/s), seed {args.seed}, "
          f"{args.connections} connections: {counts['valid']} requests of the profile answered, "
          f"{counts['answered 30']} answered 30, {counts['closed']} connections closed by the host, "
          f"{len(approvals)} approvals of the card's own data, {len(violations)} violations")
    for violation in violations[:50]:
        print("  " + violation)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
