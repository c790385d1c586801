"""A fake switch for the gateway's ISO 8583 client: a small asyncio server on 127.0.0.1 in a thread of its own.

It speaks the profile's codec (``core.iso8583``) and answers by a rule: ``rule(message) -> Reply`` (approve by
default), each answer after the reply's delay (so answers may come out of order), or never, or by closing the
connection. 0800 are answered 00 unless ``refuse_sign_on``. Everything received is kept in ``received``.
``restart()`` stops the server, closes its connections, and listens again on the same port.
"""

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

from tasdid.core import iso8583 as iso


@dataclass(frozen=True)
class Reply:
    code: str = "00"
    delay: float = 0.0
    silent: bool = False  # never answer
    drop: bool = False  # close the connection instead of answering
    rrn: str | None = None  # default for an approved 0100/0200: RRN + the STAN
    auth_code: str | None = None


def approve_all(message: iso.Message) -> Reply:
    return Reply()


class FakeSwitch:
    def __init__(self, rule: Callable[[iso.Message], Reply] = approve_all):
        self.rule = rule
        self.port = 0
        self.received: list[iso.Message] = []
        self.connections = 0  # connections accepted since the start
        self.refuse_sign_on = False
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fake-switch")
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()

    # --- from the test's thread --------------------------------------------------------------------------------

    def start(self) -> "FakeSwitch":
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        self._call(self._stop())

    def close(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def restart(self) -> None:
        self._call(self._stop())
        self._call(self._start())

    def drop_connections(self) -> None:
        self._call(self._drop())

    def messages(self, mti: str) -> list[iso.Message]:
        with self._lock:
            return [m for m in self.received if mti == m.MTI]

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    # --- in the loop ----------------------------------------------------------------------------------------------

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._drop()
            await self._server.wait_closed()
            self._server = None

    async def _drop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

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
                with self._lock:
                    self.received.append(message)
                task = asyncio.create_task(self._answer(message, writer))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except asyncio.CancelledError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, message: iso.Message, writer: asyncio.StreamWriter) -> None:
        if isinstance(message, iso.NetworkRequest):
            code = "96" if self.refuse_sign_on and message.network_code == iso.SIGN_ON else "00"
            reply = Reply(code=code)
        else:
            reply = self.rule(message)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.silent:
            return
        if reply.drop:
            writer.close()
            return
        kwargs = {}
        if message.MTI in ("0100", "0200") and reply.code == "00":
            kwargs["rrn"] = reply.rrn if reply.rrn is not None else f"RRN{message.stan:0>9}"
            kwargs["auth_code"] = reply.auth_code if reply.auth_code is not None else f"A{message.stan[-5:]}"
        elif message.MTI == "0100":
            kwargs["rrn"] = ""
        answer = iso.respond(message, reply.code, **kwargs)
        with contextlib.suppress(ConnectionError, OSError):
            writer.write(iso.encode_frame(answer))
            await writer.drain()
