"""Per-API-key rate limiting, and the allowance of failed keys per client address, in
Redis with GCRA (the generic cell rate algorithm).

GCRA keeps one value per caller: the *theoretical arrival time* (TAT) at which the
caller's next request would be exactly on schedule. Each allowed request pushes the TAT
one emission interval (``60 s / per_minute``) further; a request is refused while the
TAT would run more than ``burst`` intervals ahead of now. Compared with the usual
alternatives:

* fixed windows allow twice the rate across a window edge; GCRA has no windows, so no
  edge bursts;
* sliding logs store one entry per request; GCRA stores one number per caller;
* a token bucket needs two fields and a refill step; GCRA is the same limit expressed
  as one timestamp, and it refills smoothly rather than in steps.

The whole decision is one Lua script, so concurrent requests from any number of service
instances are serialised by Redis. The script reads the clock with ``TIME`` so every
instance shares Redis's clock instead of trusting its own; Redis 7 replicates a script's
effects rather than the script, so a non-deterministic command before a write is fine.
The key carries a PX expiry equal to how far its TAT is ahead of now: once a caller has
been idle long enough to be back at full burst, its key is gone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import redis.asyncio as aioredis

# KEYS[1] the caller's TAT key
# ARGV[1] emission interval in microseconds (may be fractional)
# ARGV[2] burst (requests allowed at once)
# ARGV[3] '1' to spend a request, '0' to only ask whether one would be allowed
# returns {allowed 0|1, retry_after in microseconds (ceil), remaining}
_GCRA = """
local emission = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local spend = ARGV[3] == '1'
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
    tat = now
end

local new_tat = tat + emission
local allow_at = new_tat - burst * emission
if now < allow_at then
    return {0, math.ceil(allow_at - now), 0}
end
if not spend then
    return {1, 0, math.floor((now - allow_at) / emission)}
end

redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return {1, 0, math.floor((now - allow_at) / emission)}
"""


@dataclass(frozen=True)
class Limit:
    per_minute: int  # sustained rate
    burst: int  # requests allowed at once

    def __post_init__(self) -> None:
        if self.per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, got {self.per_minute}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {self.burst}")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: float  # 0 when allowed; else seconds until one request would be allowed
    remaining: int  # requests that could still be made right now


class RateLimiter:
    """Takes one request from a caller's allowance; one Redis round trip per call."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._script = redis.register_script(_GCRA)

    async def take(self, key: str, limit: Limit) -> Decision:
        """Spend one request of ``limit`` for ``key``, the full Redis key of the caller's TAT
        (build it with :class:`shared.redis_store.Keys` so deployments never share one)."""
        return await self._decide(key, limit, spend=True)

    async def peek(self, key: str, limit: Limit) -> Decision:
        """Whether ``take`` would allow a request now, spending nothing (for allowances
        spent only by some outcomes, such as failed API keys)."""
        return await self._decide(key, limit, spend=False)

    async def _decide(self, key: str, limit: Limit, *, spend: bool) -> Decision:
        emission_us = 60_000_000 / limit.per_minute
        allowed, retry_after_us, remaining = await self._script(
            keys=[key], args=[repr(emission_us), limit.burst, "1" if spend else "0"]
        )
        return Decision(
            allowed=bool(int(allowed)),
            retry_after_s=int(retry_after_us) / 1_000_000,
            remaining=int(remaining),
        )


def retry_after_header(decision: Decision) -> str:
    """The ``Retry-After`` value: whole seconds, rounded up, never less than 1."""
    return str(max(1, math.ceil(decision.retry_after_s)))
