"""core.aio.within: a timeout that never swallows its task's cancellation (asyncio.wait_for does on 3.11)."""

import asyncio
import concurrent.futures

import pytest

from tasdid.core.aio import within


def _run(coroutine_function):
    """asyncio.run in a thread of its own: a browser test earlier in this process leaves Playwright's loop running
    in the main thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine_function()).result(timeout=60)


def _cancelled_as_it_completes(wait) -> str:
    """A loop that retries on OSError, cancelled in the same loop turn as its connection attempt fails."""

    async def main():
        attempt = asyncio.get_running_loop().create_future()

        async def reconnecting():
            while True:
                try:
                    await wait(5, attempt)
                except OSError:
                    return "went on retrying"

        task = asyncio.create_task(reconnecting())
        await asyncio.sleep(0)  # the task waits on the attempt
        attempt.set_exception(ConnectionRefusedError())
        task.cancel()
        try:
            return await task
        except asyncio.CancelledError:
            return "stopped"

    return _run(main)


def test_within_lets_the_cancellation_through_when_the_operation_ends_in_the_same_turn():
    assert _cancelled_as_it_completes(within) == "stopped"


def test_within_times_out_and_returns_results():
    async def main():
        assert await within(1, asyncio.sleep(0, result="ok")) == "ok"
        with pytest.raises(TimeoutError):
            await within(0.01, asyncio.Event().wait())

    _run(main)
