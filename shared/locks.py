"""A short-lived exclusive lock in Redis (one holder, released only by its holder)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@asynccontextmanager
async def redis_lock(
    client: aioredis.Redis, key: str, *, lease_s: float = 15.0, wait_s: float = 30.0
) -> AsyncIterator[None]:
    """Hold ``key`` exclusively; the lease bounds how long a crashed holder blocks others."""
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait_s
    while not await client.set(key, token, nx=True, px=int(lease_s * 1000)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"lock {key} still held after {wait_s:.0f} s")
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        await client.eval(_RELEASE, 1, key, token)
