"""Fuzzing the switch over TCP: one probe sends a frame (or raw bytes) and reads what comes back; shared by the
short Hypothesis test (test_fuzz.py) and the long run (bench/iso_fuzz_switch.py)."""

import datetime as dt
import random

from tasdid.core import iso8583 as iso

from .fakes import Acquirer, FakeIssuer, authorization

SENTINEL_STAN = "999999"


def samples() -> list[bytes]:
    """Valid request payloads to mutate (without the length prefix)."""
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    original = iso.OriginalData(mti="0100", stan="000001", transmitted_at=at)
    return [
        iso.encode(authorization(stan="000123", at=at)),
        iso.encode(authorization("5220110000000026", stan="000124", at=at)),
        iso.encode(iso.CompletionRequest(amount_minor=100, currency="504", stan="000125", transmitted_at=at,
                                         merchant_id="600000001", rrn="000000000001", original=original)),
        iso.encode(iso.ReversalRequest(amount_minor=100, currency="504", stan="000126", transmitted_at=at,
                                       merchant_id="600000001", original=original)),
        iso.encode(iso.NetworkRequest(stan="000127", transmitted_at=at, network_code="301")),
    ]


def mutate(rng: random.Random, payload: bytes) -> bytes:
    """A damaged copy of ``payload``: bytes changed, cut, inserted or repeated."""
    data = bytearray(payload)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(4)
        i = rng.randrange(len(data)) if data else 0
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
