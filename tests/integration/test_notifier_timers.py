"""The notifier's durable timers in Redis: each due notification is claimed by one
sender only, and a claim whose sender died comes back after its lease."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from services.notifier.store import NotificationStore
from shared.infra import Infra
from shared.redis_store import Keys

pytestmark = pytest.mark.integration


@pytest.fixture
async def stores(infra: Infra) -> AsyncIterator[list[NotificationStore]]:
    keys = Keys(f"test-timers-{uuid.uuid4().hex[:8]}", "notifier")
    clients = [aioredis.Redis.from_url(infra.redis_url, decode_responses=True) for _ in range(2)]
    yield [NotificationStore(client, keys) for client in clients]
    for client in clients:
        await client.aclose()


def notification(n: int) -> dict[str, object]:
    return {"notification_id": f"n-{n}", "client_id": "c-1", "location_id": "beaverton"}


async def test_concurrent_senders_claim_each_due_notification_once(
    stores: list[NotificationStore],
) -> None:
    for n in range(200):
        assert await stores[0].schedule(notification(n), due_epoch=1000 + n)
    assert not await stores[1].schedule(notification(0), due_epoch=5)  # redelivery: no second timer

    async def drain(store: NotificationStore) -> list[str]:
        claimed: list[str] = []
        while batch := await store.claim_due(now_epoch=1150, lease_s=30, limit=7):
            claimed += batch
            await asyncio.sleep(0)
        return claimed

    first, second = await asyncio.gather(drain(stores[0]), drain(stores[1]))
    assert not set(first) & set(second)
    assert sorted(first + second, key=lambda i: int(i[2:])) == [f"n-{n}" for n in range(151)]
    assert await stores[0].next_due_epoch() == 1151  # not yet due stays armed


async def test_an_expired_claim_returns_to_the_due_queue(stores: list[NotificationStore]) -> None:
    await stores[0].schedule(notification(1), due_epoch=10)
    assert await stores[0].claim_due(now_epoch=10, lease_s=30) == ["n-1"]
    assert await stores[1].recover_expired() == 0  # its sender is alive: nobody else gets it
    assert await stores[1].claim_due(now_epoch=10, lease_s=30) == []

    await stores[0].schedule(notification(2), due_epoch=10)
    assert await stores[0].claim_due(now_epoch=10, lease_s=0.05) == ["n-2"]  # then dies
    deadline = asyncio.get_running_loop().time() + 5
    while not (reclaimed := await stores[1].claim_due(now_epoch=10, lease_s=30)):
        assert asyncio.get_running_loop().time() < deadline, "the claim never came back"
        await stores[1].recover_expired()
        await asyncio.sleep(0.02)
    assert reclaimed == ["n-2"]
