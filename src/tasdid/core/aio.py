"""Asyncio helpers shared by the long-lived processes (switch, issuer host, gateway rails client, SMPP channel)."""

import asyncio
import os
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(seconds: float | None, awaitable: Awaitable[T]) -> T:
    """``await awaitable``, or TimeoutError after ``seconds``.

    Python 3.11's ``asyncio.wait_for`` swallows a cancellation that arrives as the awaited operation completes (it
    returns the result, or raises the operation's own error, instead of CancelledError; fixed in 3.12): a loop
    around it then outlives its task's ``cancel()`` and whoever stops it waits for ever. ``asyncio.timeout``
    never swallows a cancellation.
    """
    async with asyncio.timeout(seconds):
        return await awaitable


def run(main: Awaitable[T]) -> T:
    """``asyncio.run(main)`` on uvloop's event loop when uvloop is installed (a loop written in C: the switch and
    the issuer host spend much of their CPU in the loop and its transports), unless TASDID_UVLOOP=0; else on the
    standard loop. Either behaves the same for the code that runs on it."""
    if os.environ.get("TASDID_UVLOOP", "1").strip() != "0":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)


class BatchedWriter:
    """Frames for one stream, written together: what is written during one turn of the event loop leaves in one
    ``write`` (one system call) at the end of that turn, not one each. A server that answers a batch at once (the
    issuer host's group commit, the switch relaying it) then sends it as one segment, and its peer reads it in
    one. Nothing waits longer than the turn it was written in. ``drain`` returns once what was written is in the
    stream's hands, and applies the stream's flow control."""

    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self._parts: list[bytes] = []
        self._flushed: asyncio.Future | None = None

    def write(self, data: bytes) -> None:
        if not self._parts:
            loop = asyncio.get_running_loop()
            self._flushed = loop.create_future()
            loop.call_soon(self._flush)
        self._parts.append(data)

    def _flush(self) -> None:
        data, self._parts = b"".join(self._parts), []
        flushed, self._flushed = self._flushed, None
        if data and not self.writer.is_closing():
            self.writer.write(data)
        if flushed is not None and not flushed.done():
            flushed.set_result(None)

    async def drain(self) -> None:
        if self._flushed is not None:
            await asyncio.shield(self._flushed)  # a cancelled drain leaves the others' wait alone
        await self.writer.drain()
