"""How the pipeline bench sends intakes: a fixed number in flight (throughput), a
steady rate (latency through the pipeline), and an open-loop schedule (the API).

Open loop: request ``k`` of a pass is due at ``start + k / rate`` whether or not the
earlier ones were answered, and its latency counts from that due time, so a server
that falls behind shows its queue in the figures instead of slowing the sender
down (coordinated omission).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import aiohttp

Post = Callable[[aiohttp.ClientSession, int], Awaitable[str]]  # intake number -> its id


class Refused(Exception):
    """The API answered something other than 202."""


@dataclass(frozen=True)
class Accepted:
    intake_id: str
    sent_at: float
    accepted_at: float


@dataclass(frozen=True)
class OpenLoop:
    rate: float
    sent: int
    errors: int
    latencies_ms: list[float]


def session(connections: int = 1000) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections))


async def _one(http: aiohttp.ClientSession, post: Post, n: int) -> Accepted:
    sent = time.time()
    intake_id = await post(http, n)
    return Accepted(intake_id, sent, time.time())


async def in_flight(post: Post, numbers: Iterator[int], count: int, width: int) -> list[Accepted]:
    """Submit ``count`` intakes, ``width`` at a time; each answered one makes room for the next."""
    todo = itertools.islice(numbers, count)
    accepted: list[Accepted] = []
    async with session() as http:

        async def lane() -> None:
            for n in todo:  # the lanes share one iterator: each number is sent once
                accepted.append(await _one(http, post, n))

        await asyncio.gather(*(lane() for _ in range(width)))
    return accepted


async def steady(post: Post, numbers: Iterator[int], rate: float, seconds: float) -> list[Accepted]:
    """Submit intakes at ``rate`` per second for ``seconds``."""
    count = max(1, round(rate * seconds))
    async with session() as http:
        start = time.monotonic()

        async def due(k: int, n: int) -> Accepted:
            await asyncio.sleep(max(0.0, start + k / rate - time.monotonic()))
            return await _one(http, post, n)

        pairs = zip(range(count), numbers, strict=False)
        return list(await asyncio.gather(*(due(k, n) for k, n in pairs)))


async def open_loop(
    post: Post, numbers: Iterator[int], rate: float, seconds: float, timeout_s: float
) -> OpenLoop:
    """Send at ``rate`` per second for ``seconds`` on a fixed schedule; a non-202 answer
    or no answer within ``timeout_s`` of the due time is an error."""
    count = max(1, round(rate * seconds))
    latencies: list[float] = []
    errors = 0
    async with session() as http:
        start = time.monotonic()

        async def due(k: int, n: int) -> None:
            nonlocal errors
            scheduled = start + k / rate
            await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
            left = scheduled + timeout_s - time.monotonic()
            try:
                await asyncio.wait_for(post(http, n), timeout=max(left, 0.001))
            except (TimeoutError, Refused, aiohttp.ClientError, OSError):
                errors += 1
            else:
                latencies.append((time.monotonic() - scheduled) * 1000)

        await asyncio.gather(*(due(k, n) for k, n in zip(range(count), numbers, strict=False)))
    return OpenLoop(rate, count, errors, latencies)


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (nearest rank) of ``values``; ``None`` when there are none."""
    if not values:
        return None
    ranked = sorted(values)
    return ranked[max(0, math.ceil(q / 100 * len(ranked)) - 1)]
