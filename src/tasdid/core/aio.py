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
