"""Fakes for the switch's tests: an event loop in a thread, fake issuer hosts that answer, delay, drop, hold and
answer out of order, or die, and a blocking acquirer client that speaks the codec over a real socket."""

import asyncio
import datetime as dt
import socket
import threading
import time
from collections.abc import Callable

from tasdid.core import iso8583 as iso

BOUND = 30.0  # seconds: how long a test waits for something before it fails (never a speed assertion)


class LoopThread:
    """An asyncio loop running in a daemon thread; ``call`` runs a coroutine there and waits for its result."""

    def __init__(self, name: str):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(BOUND)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(BOUND)
        self.loop.close()


def wait_until(predicate: Callable[[], object], what: str = "condition"):
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise AssertionError(f"still waiting for: {what}")


class FakeIssuer:
    """An issuer host on 127.0.0.1: ``decide(message)`` says what to do with each financial request:
    ``("answer", code)``, ``("delay", seconds, code)``, ``("drop",)`` or ``("hold",)`` (kept until ``release``).
    Network requests are answered 00 while ``answer_network`` is true."""

    def __init__(self, port: int = 0):
        self.port = port
        self.received: list[iso.Message] = []
        self.decide: Callable[[iso.Message], tuple] = lambda message: ("answer", iso.rc.APPROVED)
        self.answer_network = True
        self.connections = 0
        self.held: list[tuple[asyncio.StreamWriter, iso.Message]] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = LoopThread("fake-issuer")
        self._server: asyncio.base_events.Server | None = None

    def start(self) -> "FakeIssuer":
        self._thread.call(self._start())
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def die(self) -> None:
        """Stop listening and cut every connection, as a crashed host."""
        self._thread.call(self._die())

    async def _die(self) -> None:
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    def revive(self) -> None:
        self._thread.call(self._start())

    def close(self) -> None:
        self.die()
        self._thread.close()

    def requests(self, mti: str) -> list[iso.Message]:
        return [m for m in list(self.received) if mti == m.MTI]

    def network(self, code: str) -> list[iso.Message]:
        return [m for m in self.requests("0800") if m.network_code == code]

    def release(self, *, reverse: bool = True, code: str = iso.rc.APPROVED) -> None:
        self._thread.call(self._release(reverse, code))

    async def _release(self, reverse: bool, code: str) -> None:
        held, self.held = self.held, []
        for writer, message in reversed(held) if reverse else held:
            await self._answer(writer, message, code)

    async def _answer(self, writer: asyncio.StreamWriter, message: iso.Message, code: str) -> None:
        extra = {"rrn": f"{int(message.stan):012d}", "auth_code": "A" + message.stan[1:]} \
            if message.MTI == "0100" and code == iso.rc.APPROVED else {}
        try:
            writer.write(iso.encode_frame(iso.respond(message, code, **extra)))
            await writer.drain()
        except (ConnectionError, OSError):
            pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                try:
                    message = await iso.read_message(reader)
                except (iso.MessageError, ConnectionError, OSError):
                    return
                if message is None:
                    return
                self.received.append(message)
                if isinstance(message, iso.NetworkRequest):
                    if self.answer_network:
                        await self._answer(writer, message, iso.rc.APPROVED)
                    continue
                action = self.decide(message)
                if action[0] == "answer":
                    await self._answer(writer, message, action[1])
                elif action[0] == "delay":
                    asyncio.get_running_loop().call_later(
                        action[1], lambda m=message, c=action[2]: asyncio.ensure_future(self._answer(writer, m, c)))
                elif action[0] == "hold":
                    self.held.append((writer, message))
        finally:
            self._writers.discard(writer)
            writer.close()


class Acquirer:
    """A blocking acquirer client: one TCP connection to the switch, framed ISO 8583 both ways."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=BOUND)

    def send(self, message: iso.Message) -> None:
        self.sock.sendall(iso.encode_frame(message))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self) -> iso.Message:
        head = self._exactly(2)
        return iso.decode(self._exactly(int.from_bytes(head, "big")))

    def ask(self, message: iso.Message) -> iso.Message:
        self.send(message)
        return self.receive()

    def closed_by_peer(self) -> bool:
        """True when the switch closed this connection (read returns end of stream or a reset)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def _exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError(f"closed after {len(data)} of {size} bytes")
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()


_stans = iter(range(1, 1_000_000))


def next_stan() -> str:
    return f"{next(_stans):06d}"


def authorization(pan: str = "4000110000000017", *, stan: str | None = None, amount: int = 28500,
                  at: dt.datetime | None = None, merchant: str = "600000001") -> iso.AuthorizationRequest:
    return iso.AuthorizationRequest(
        pan=pan, expiry_yymm="2909", amount_minor=amount, currency="504", stan=stan or next_stan(),
        transmitted_at=at or dt.datetime.now(dt.UTC).replace(microsecond=0), merchant_id=merchant, cvv="417",
        order_id="ORDER-1")
