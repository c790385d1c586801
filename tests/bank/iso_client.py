"""The issuer host on a free loopback port in a thread of the test process, and a blocking ISO 8583 client over a
real socket (the codec of ``core.iso8583``, nothing mocked)."""

import asyncio
import datetime as dt
import itertools
import socket
import threading

from tasdid.bank import sandbox
from tasdid.bank.issuer import IssuerHost
from tasdid.core import iso8583 as iso

MERCHANT = "600000001"
_stans = itertools.count(1)


def next_stan() -> str:
    return f"{next(_stans) % 1_000_000:06d}"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class HostThread:
    """An ``IssuerHost`` running its own event loop in a daemon thread."""

    def __init__(self, **options):
        self.options = options
        self.loop = asyncio.new_event_loop()
        self.host: IssuerHost | None = None
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="issuer-host")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.host = IssuerHost(host="127.0.0.1", port=0, **self.options)
        self.loop.run_until_complete(self.host.start())
        self.started.set()
        self.loop.run_forever()

    def start(self) -> "HostThread":
        self.thread.start()
        assert self.started.wait(timeout=30), "the issuer host did not start"
        return self

    @property
    def port(self) -> int:
        return self.host.port

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.host.close(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)


class Client:
    """One TCP connection to the host: ``send`` a message or raw bytes, ``receive`` the next answer."""

    def __init__(self, port: int, timeout: float = 60.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, *messages: iso.Message) -> None:
        self.sock.sendall(b"".join(iso.encode_frame(m) for m in messages))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read(self, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            try:
                chunk = self.sock.recv(size - len(data))
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            data += chunk
        return data

    def receive(self) -> iso.Message | None:
        """The next answer; None when the host closed the connection."""
        head = self._read(2)
        if head is None:
            return None
        body = self._read(int.from_bytes(head, "big"))
        assert body is not None, "the host closed inside a frame"
        return iso.decode(body)

    def ask(self, message: iso.Message) -> iso.Message:
        self.send(message)
        answer = self.receive()
        assert answer is not None, "the host closed the connection instead of answering"
        assert iso.match_key(answer) == iso.match_key(message)
        return answer

    def closed_by_host(self) -> bool:
        """True when the host closes this connection without sending anything more."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def typed_expiry(card: sandbox.SandboxCard) -> str:
    month, year = card.expiry.split("/")
    return year + month


def authorization(card: sandbox.SandboxCard, *, amount_minor: int = 28500, stan: str | None = None,
                  at: dt.datetime | None = None, cvv: str | None = None, merchant: str = MERCHANT,
                  pan: str | None = None, **extra) -> iso.AuthorizationRequest:
    return iso.AuthorizationRequest(
        pan=pan or card.number, expiry_yymm=typed_expiry(card), amount_minor=amount_minor, currency="504",
        stan=stan or next_stan(), transmitted_at=at or now(), merchant_id=merchant, merchant_name="Tasdid Telecom",
        order_id="ORD-1", cvv=card.cvv if cvv is None else cvv, **extra)


def original_of(request: iso.Message) -> iso.OriginalData:
    return iso.OriginalData(mti=request.MTI, stan=request.stan, transmitted_at=request.transmitted_at)


def completion(request: iso.AuthorizationRequest, answer: iso.Message, *, amount_minor: int | None = None,
               stan: str | None = None) -> iso.CompletionRequest:
    return iso.CompletionRequest(
        amount_minor=request.amount_minor if amount_minor is None else amount_minor, currency="504",
        stan=stan or next_stan(), transmitted_at=now(), merchant_id=request.merchant_id, rrn=answer.rrn,
        original=original_of(request), auth_code=answer.auth_code)


def reversal(request: iso.AuthorizationRequest, *, rrn: str = "", stan: str | None = None,
             at: dt.datetime | None = None) -> iso.ReversalRequest:
    return iso.ReversalRequest(amount_minor=request.amount_minor, currency="504", stan=stan or next_stan(),
                               transmitted_at=at or now(), merchant_id=request.merchant_id,
                               original=original_of(request), rrn=rrn)


def refund(*, amount_minor: int, rrn: str = "", original: iso.OriginalData | None = None, pan: str = "",
           stan: str | None = None, at: dt.datetime | None = None, merchant: str = MERCHANT) -> iso.FinancialRequest:
    return iso.FinancialRequest(processing_code=iso.REFUND, amount_minor=amount_minor, currency="504",
                                stan=stan or next_stan(), transmitted_at=at or now(), merchant_id=merchant,
                                pan=pan, rrn=rrn, original=original)
