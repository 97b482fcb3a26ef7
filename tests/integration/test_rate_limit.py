"""GCRA rate limiting against a real Redis: bursts, refusal, recovery, isolation, atomicity."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from shared.ratelimit import Decision, Limit, RateLimiter, retry_after_header

pytestmark = pytest.mark.integration
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        yield redis
    finally:
        await redis.aclose()


@pytest.fixture
async def prefix(client: aioredis.Redis) -> AsyncIterator[str]:
    value = f"test-ratelimit-{uuid.uuid4().hex}:"
    yield value
    keys = [key async for key in client.scan_iter(match=f"{value}*")]
    if keys:
        await client.delete(*keys)


async def test_burst_is_allowed_then_refused(client: aioredis.Redis, prefix: str) -> None:
    limiter = RateLimiter(client)
    limit = Limit(per_minute=60, burst=5)
    key = prefix + "api-key"

    decisions = [await limiter.take(key, limit) for _ in range(limit.burst)]
    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0]
    assert all(d.retry_after_s == 0 for d in decisions)

    refused = await limiter.take(key, limit)
    assert not refused.allowed
    assert refused.remaining == 0
    assert 0 < refused.retry_after_s <= 1.0  # one emission interval at 60/min
    assert retry_after_header(refused) == "1"

    # idle keys disappear: the expiry is at most the time to refill the whole burst
    ttl_ms = await client.pttl(key)
    assert 0 < ttl_ms <= limit.burst * 1000


async def test_recovers_after_waiting(client: aioredis.Redis, prefix: str) -> None:
    limiter = RateLimiter(client)
    limit = Limit(per_minute=600, burst=3)  # one request every 0.1 s
    key = prefix + "api-key"

    for _ in range(limit.burst):
        assert (await limiter.take(key, limit)).allowed
    refused = await limiter.take(key, limit)
    assert not refused.allowed and refused.retry_after_s > 0

    deadline = time.monotonic() + 5.0
    while not (decision := await limiter.take(key, limit)).allowed:
        assert time.monotonic() < deadline, f"still refused after 5 s: {decision}"
        await asyncio.sleep(min(decision.retry_after_s, 0.05))
    assert decision.retry_after_s == 0


async def test_keys_are_independent(client: aioredis.Redis, prefix: str) -> None:
    limiter = RateLimiter(client)
    limit = Limit(per_minute=1, burst=2)
    first, second = prefix + "first", prefix + "second"

    for _ in range(limit.burst):
        assert (await limiter.take(first, limit)).allowed
    assert not (await limiter.take(first, limit)).allowed

    fresh = await limiter.take(second, limit)
    assert fresh.allowed
    assert fresh.remaining == limit.burst - 1


async def test_concurrent_takes_allow_exactly_the_burst(
    client: aioredis.Redis, prefix: str
) -> None:
    limiter = RateLimiter(client)
    limit = Limit(per_minute=1, burst=10)  # nothing refills during the test
    key = prefix + "api-key"

    decisions = await asyncio.gather(*(limiter.take(key, limit) for _ in range(50)))
    assert sum(d.allowed for d in decisions) == 10
    assert all(d.retry_after_s > 0 for d in decisions if not d.allowed)


def test_retry_after_header_rounds_up_to_whole_seconds() -> None:
    assert retry_after_header(Decision(allowed=False, retry_after_s=0.001, remaining=0)) == "1"
    assert retry_after_header(Decision(allowed=False, retry_after_s=1.0, remaining=0)) == "1"
    assert retry_after_header(Decision(allowed=False, retry_after_s=1.2, remaining=0)) == "2"
    assert retry_after_header(Decision(allowed=True, retry_after_s=0.0, remaining=3)) == "1"


@pytest.mark.parametrize(("per_minute", "burst"), [(0, 1), (1, 0), (-5, 3)])
def test_limit_rejects_nonsense(per_minute: int, burst: int) -> None:
    with pytest.raises(ValueError):
        Limit(per_minute=per_minute, burst=burst)
