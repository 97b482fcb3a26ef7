"""The guard of a request that stores an intake (or an assessment): an
Idempotency-Key or a session's draft, held by one request at a time, on a lease
of a few seconds that the request renews while it is alive.

A request killed while holding its guard stored nothing (what it stores, it
stores with its answer, in one script), so its lease lapses within
``GUARD_LEASE_MS`` and a retry takes over. A request that is alive but slow keeps
its lease; should it stall past it and a retry take over, the script that stores
checks the guard again (``held_guard``, taking it back only when no one else
holds it): of the two, only the holder stores, so they never both publish.

Every guard names its holder (a token of the request), and is renewed, checked
and released only by that holder."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Protocol

import redis.asyncio as aioredis

GUARD_LEASE_MS = 3_000  # longer than a request's Redis work before it stores
RENEW_EVERY_S = GUARD_LEASE_MS / 3 / 1000

# Lua: take the guard, or check that this request still holds it; nil when it is
# this request's, else why not as the naming script answers it. A key ('key'): the
# pending record ``value`` (which names the holder) set with a lease of ``ms``,
# kept while it is this one, and set again when it lapsed and no one took it. A
# draft ('draft'): leased to ``holder`` for ``ms`` at the revision ``value`` when
# no live lease of another holder is on it; kept while the lease is this holder's.
GUARD_LUA = """
local function held_guard(kind, guard, value, ms, holder)
  if kind == 'key' then
    local stored = redis.call('GET', guard)
    if stored == value then return nil end
    if stored then return {'refused', 'taken', stored} end
    redis.call('SET', guard, value, 'PX', ms)
    return nil
  elseif kind == 'draft' then
    if redis.call('EXISTS', guard) == 0 then return {'refused', 'gone', ''} end
    local state = redis.call('HGET', guard, 'state')
    if state == 'submitted' then
      return {'refused', 'taken', redis.call('HGET', guard, 'submission') or ''}
    end
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    if state == 'submitting' then
      if redis.call('HGET', guard, 'holder') == holder then
        redis.call('HSET', guard, 'lease', now + ms)
        return nil
      end
      if tonumber(redis.call('HGET', guard, 'lease') or '0') > now then
        return {'refused', 'busy', ''}
      end
    end
    if (redis.call('HGET', guard, 'rev') or '0') ~= value then
      return {'refused', 'changed', ''}
    end
    redis.call('HSET', guard, 'state', 'submitting', 'lease', now + ms, 'holder', holder)
  end
  return nil
end
"""
# A script whose first five ARGV are the guard (``held_guard``'s, or '' for none) starts
# with this: it stores nothing unless the request still holds its guard.
GUARD_ARGV_LUA = (
    GUARD_LUA
    + """
if ARGV[1] ~= '' then
  local refusal = held_guard(ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5])
  if refusal then return refusal end
end
"""
)

# the lease moved on, only while the guard is still this holder's
_RENEW = """
local kind, guard, value, ms, holder = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
if kind == 'key' then
  if redis.call('GET', guard) == value then redis.call('PEXPIRE', guard, ms); return 1 end
elseif kind == 'draft' then
  if redis.call('HGET', guard, 'state') == 'submitting'
      and redis.call('HGET', guard, 'holder') == holder then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('HSET', guard, 'lease', now + ms)
    return 1
  end
end
return 0
"""


class Held(Protocol):
    def guard(self) -> tuple[str, str, str, int, str]:
        """Its kind ('key' or 'draft'), key, value, lease in ms and holder."""
        ...


def holder_token() -> str:
    return uuid.uuid4().hex


async def renew(redis: aioredis.Redis, held: Held) -> bool:
    """Move ``held``'s lease on if this request holds it; whether it did."""
    return bool(await redis.eval(_RENEW, 0, *held.guard()))


@contextlib.asynccontextmanager
async def renewing(
    redis: aioredis.Redis, held: Held, *, every_s: float = RENEW_EVERY_S
) -> AsyncIterator[None]:
    """Keep ``held``'s lease while the block runs (a guard not taken, or taken over,
    is left alone)."""

    done = asyncio.Event()

    async def keep() -> None:
        # ends when the block does, not by cancellation: a Redis call cancelled as its
        # own timeout expires may answer TimeoutError instead, which would be swallowed
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), every_s)
            if not done.is_set():
                with contextlib.suppress(Exception):  # the next round, or the lease, decides
                    await renew(redis, held)

    task = asyncio.create_task(keep())
    try:
        yield
    finally:
        done.set()
        await task
