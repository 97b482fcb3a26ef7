"""A burst of Redis calls larger than the connection pool waits for connections;
none fails while Redis is up (a failure there would be an HTTP 503)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from shared import redis_store
from shared.infra import Infra
from shared.settings import CommonSettings

pytestmark = pytest.mark.integration


async def test_a_burst_past_the_pool_waits_for_connections(
    infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_store, "POOL_CONNECTIONS", 2)
    client = redis_store.connect(CommonSettings(REDIS_URL=infra.redis_url), service="pool-test")
    key = f"pool-test:{uuid.uuid4().hex}"
    try:
        # each call holds its connection for 0.2 s: ten at once need five turns of two
        answers = await asyncio.gather(*(client.blpop([key], timeout=0.2) for _ in range(10)))
        assert answers == [None] * 10
        assert client.connection_pool.max_connections == 2
    finally:
        await client.aclose()
