"""Fuzzing the switch over TCP: one probe sends a frame (or raw bytes) and reads what comes back; shared by the
short Hypothesis test (test_fuzz.py) and the long run (bench/iso_fuzz_switch.py)."""

import datetime as dt
import random

from tasdid.core import iso8583 as iso

from .fakes import Acquirer, FakeIssuer, authorization

SENTINEL_STAN = "999999"


def samples(stan: int = 123, amount: int = 100) -> list[bytes]:
    """Valid request payloads to mutate (without the length prefix), with STANs from ``stan`` on and amounts from
    ``amount`` on (the long run makes each key and each amount its own)."""
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    original = iso.OriginalData(mti="0100", stan="000001", transmitted_at=at)

    def key(n: int) -> str:
        return f"{(stan + n) % 10**6:06d}"

    return [
        iso.encode(authorization(stan=key(0), at=at, amount=amount)),
        iso.encode(authorization("5220110000000026", stan=key(1), at=at, amount=amount + 1)),
        iso.encode(iso.CompletionRequest(amount_minor=amount + 2, currency="504", stan=key(2), transmitted_at=at,
                                         merchant_id="600000001", rrn="000000000001", original=original)),
        iso.encode(iso.ReversalRequest(amount_minor=amount + 3, currency="504", stan=key(3), transmitted_at=at,
                                       merchant_id="600000001", original=original)),
        iso.encode(iso.NetworkRequest(stan=key(4), transmitted_at=at, network_code="301")),
        iso.encode(iso.FinancialRequest(processing_code=iso.REFUND, amount_minor=amount + 5, currency="504",
                                        stan=key(5), transmitted_at=at, merchant_id="600000001",
                                        rrn="000000000001", original=original, order_id="ORDER-1-R1")),
    ]


def mutate(rng: random.Random, payload: bytes, *, start: int = 0) -> bytes:
    """A damaged copy of ``payload``: bytes changed, cut, inserted or repeated (from ``start`` on: the long run
    spares the head, MTI, bitmap and key, so that more damaged requests can be answered 30)."""
    data = bytearray(payload)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(4)
        i = rng.randrange(min(start, len(data) - 1), len(data)) if data else 0
        if kind == 0 and data:
            data[i] = rng.randrange(256) if rng.random() < 0.3 else rng.choice(b"0123456789ABCDEFZ +-")
        elif kind == 1:
            del data[i:i + rng.randint(1, 8)]
        elif kind == 2:
            data[i:i] = bytes(rng.choice(b"0123456789AZ ") for _ in range(rng.randint(1, 8)))
        else:
            data[i:i] = data[i:i + rng.randint(1, 12)]
    return bytes(data) or b"0"


class Outcome:
    VALID = "valid"  # the bytes were a message of the profile: handled as such
    ANSWERED_30 = "answered 30"
    CLOSED = "closed"
    WRONG_ACCEPT = "wrong accept"  # invalid bytes forwarded to the issuer or answered with another code
    CRASH = "crash"  # the switch no longer serves a good request


def probe(port: int, payload: bytes, issuer: FakeIssuer) -> str:
    """Send ``payload`` framed, then an echo as sentinel; classify what the switch did."""
    try:
        decoded = iso.decode(payload)
        valid = True
    except iso.MessageError:
        decoded, valid = None, False
    # A valid financial request is answered after the sentinel: wait for that answer too, so that what it sent to
    # the issuer is not counted against the next probe.
    awaited = decoded.stan if valid and decoded.MTI in ("0100", "0200", "0220", "0400") else None
    forwarded_before = len(issuer.received)
    client = Acquirer(port)
    client.sock.settimeout(10)
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    sentinel = iso.NetworkRequest(stan=SENTINEL_STAN, transmitted_at=at, network_code="301")
    answers: list[iso.Message] = []
    closed = False
    try:
        client.send_raw(iso.frame(payload) + iso.encode_frame(sentinel))
        sentinel_seen = False
        while not sentinel_seen or awaited is not None:
            message = client.receive()
            if message.MTI == "0810" and message.stan == SENTINEL_STAN:
                sentinel_seen = True
                continue
            if message.stan == awaited:
                awaited = None
            answers.append(message)
    except (ConnectionError, OSError, iso.MessageError):
        closed = True
    finally:
        client.close()
    if not alive(port):
        return Outcome.CRASH
    if valid:
        return Outcome.VALID
    forwarded = [m for m in issuer.received[forwarded_before:] if m.MTI != "0800"]
    if forwarded or any(getattr(a, "response_code", "") != iso.rc.FORMAT_ERROR for a in answers):
        return Outcome.WRONG_ACCEPT
    if answers:
        return Outcome.ANSWERED_30
    return Outcome.CLOSED if closed else Outcome.WRONG_ACCEPT  # invalid, unanswered and left open: not allowed


def alive(port: int) -> bool:
    try:
        client = Acquirer(port)
        client.sock.settimeout(10)
        at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        answer = client.ask(iso.NetworkRequest(stan="000001", transmitted_at=at, network_code="301"))
        client.close()
        return answer.MTI == "0810" and answer.response_code == iso.rc.APPROVED
    except (TimeoutError, OSError, iso.MessageError):
        return False


# --- Streams: many frames per connection ------------------------------------------------------------------------
#
# The long run (bench/iso_fuzz_switch.py) cannot afford three connections per frame. It sends batches of frames on
# one connection, each batch ended by an echo (the sentinel), and keeps the connection while the stream stays in
# step; ``read_stream`` reads the bytes as the switch reads them, so the oracle knows, frame by frame, what is owed:
# an answer (any code) to each request of the profile, a 30 to each damaged request whose key can be read, nothing
# to a response, and the end of the connection at the first frame nobody can answer or whose framing is lost.


class Frame:
    """One frame as the switch reads it: its outcome (an ``Outcome`` name) and the answer key it is owed, if any."""

    __slots__ = ("key", "message", "outcome")

    def __init__(self, outcome: str, key: tuple | None = None, message: iso.Message | None = None):
        self.outcome, self.key, self.message = outcome, key, message


def answer_key(message: iso.Message) -> tuple[str, str, str]:
    return (message.MTI, message.stan, iso.de7(message.transmitted_at))


def read_stream(data: bytes, start: int = 0) -> tuple[list[Frame], int, bool]:
    """The frames of ``data`` from ``start`` as the switch reads them: (frames, where the reading stopped, whether
    the stream is still in step there). Reading stops at a lost framing, at a frame nobody can be answered for,
    or at bytes that do not yet make a whole frame (then still in step: more bytes may complete it)."""
    frames: list[Frame] = []
    i = start
    while len(data) - i >= 2:
        length = int.from_bytes(data[i:i + 2], "big")
        if length == 0 or length > iso.MAX_FRAME:
            frames.append(Frame(Outcome.CLOSED))
            return frames, i, False
        if len(data) - i - 2 < length:
            break
        payload = data[i + 2:i + 2 + length]
        i += 2 + length
        try:
            message = iso.decode(payload)
        except iso.MessageError as exc:
            refusal = iso.format_error_answer(exc)
            if refusal is None:
                frames.append(Frame(Outcome.CLOSED))
                return frames, i, False
            frames.append(Frame(Outcome.ANSWERED_30, answer_key(refusal)))
            continue
        owed = None
        if message.MTI in iso.RESPONSE_MTI:
            owed = (iso.RESPONSE_MTI[message.MTI], message.stan, iso.de7(message.transmitted_at))
        frames.append(Frame(Outcome.VALID, owed, message))
    return frames, i, True


def judge_answers(frames: list[Frame], answers: list[iso.Message], *, complete: bool) -> list[str]:
    """What is wrong with ``answers`` to ``frames`` (empty: nothing). A 30 must answer a damaged request; any other
    code only a request of the profile; with ``complete`` (the connection went on) every frame owed is answered."""
    refusals: dict[tuple, int] = {}
    requests: dict[tuple, int] = {}
    for f in frames:
        if f.key is not None:
            owed = refusals if f.outcome == Outcome.ANSWERED_30 else requests
            owed[f.key] = owed.get(f.key, 0) + 1
    wrong = []
    for answer in answers:
        key = answer_key(answer)
        code = getattr(answer, "response_code", "")
        if code == iso.rc.FORMAT_ERROR and refusals.get(key):
            refusals[key] -= 1
        elif requests.get(key):
            requests[key] -= 1
        elif refusals.get(key):
            wrong.append(f"{Outcome.WRONG_ACCEPT}: a {answer.MTI} {code} to a damaged request")
        else:
            wrong.append(f"unexpected: a {answer.MTI} {code} that answers nothing sent")
    if complete:
        wrong += [f"unanswered: a {key[0]} owed" for owed in (refusals, requests) for key, n in owed.items()
                  for _ in range(n)]
    return wrong
