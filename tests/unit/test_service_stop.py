"""A background task that swallows a cancellation still lets its service stop."""

from __future__ import annotations

import asyncio

from shared.service import stopped


async def test_a_task_that_swallows_one_cancellation_is_cancelled_again_until_it_ends() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed == 0:  # as a library caught at the wrong moment would
                    swallowed += 1
                    asyncio.current_task().uncancel()  # type: ignore[union-attr]
                    continue
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait_for(stopped(task, every_s=0.05), timeout=5)
    assert task.cancelled() and swallowed == 1
