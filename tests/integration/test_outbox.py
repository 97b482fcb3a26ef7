"""The outbox relay on the real broker and Redis (shared/outbox.py): events are
published oldest first and leave the queue once acknowledged, and an event the
broker refuses for good is parked with its reason instead of holding up every
event behind it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared.infra import Infra
from shared.kafka import Outgoing, Publisher, ensure_topics
from shared.outbox import Outbox, epoch_ms
from shared.redis_store import Keys
from shared.settings import CommonSettings
from tests.support import TopicLog, plan_completed

pytestmark = pytest.mark.integration
NOW = datetime(2027, 3, 8, 16, tzinfo=UTC)


@pytest.fixture
async def parts(
    infra: Infra, namespace: str
) -> AsyncIterator[tuple[Outbox, Publisher, aioredis.Redis, Keys, TopicLog]]:
    settings = CommonSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers, REDIS_URL=infra.redis_url
    )
    await ensure_topics(infra.kafka_bootstrap_servers)
    publisher = Publisher(settings, client_id="outbox-test")
    await publisher.start()
    redis = aioredis.Redis.from_url(infra.redis_url, decode_responses=True)
    keys = Keys(namespace, f"outbox-test-{uuid.uuid4().hex[:6]}")
    log = await TopicLog(infra.kafka_bootstrap_servers).start()
    # no grace: the relay takes what a test staged at once
    yield Outbox(redis, keys, service="outbox-test", grace_ms=0), publisher, redis, keys, log
    await log.stop()
    await redis.aclose()
    await publisher.stop()


async def stage(redis: aioredis.Redis, outbox: Outbox, items: list[Outgoing]) -> list[Any]:
    async with redis.pipeline(transaction=True) as pipe:
        oldest = outbox.stage(pipe, items, now_ms=epoch_ms())
        return list((await pipe.execute())[oldest])


async def test_a_refused_event_is_parked_and_the_events_behind_it_are_published(
    parts: tuple[Outbox, Publisher, aioredis.Redis, Keys, TopicLog],
) -> None:
    outbox, publisher, redis, keys, log = parts
    client = str(uuid.uuid4())
    first, huge, last = (
        plan_completed(client),
        plan_completed(client, reason="x" * 1_200_000),
        plan_completed(client),
    )
    for item in (first, huge, last):  # three requests, one after another
        await stage(redis, outbox, [item])

    assert await outbox.relay_once(publisher, owner="relay-a") == 2

    published = await log.wait_for(lambda: len(log.events(subject=client)) >= 2 or None)
    assert published
    assert [e["id"] for e in log.events(subject=client)] == [
        first.envelope.id,
        last.envelope.id,
    ]
    assert await outbox.pending() == []
    parked = json.loads(await redis.hget(keys("outbox-refused"), huge.envelope.id))
    assert "MessageSizeTooLargeError" in parked["reason"]
    assert json.loads(parked["entry"])["key"] == client
    # another instance does not relay while the lease is held
    await stage(redis, outbox, [plan_completed(client)])
    assert await outbox.relay_once(publisher, owner="relay-b") == 0


async def test_a_stage_behind_waiting_events_leaves_them_all_to_the_relay_in_order(
    parts: tuple[Outbox, Publisher, aioredis.Redis, Keys, TopicLog],
) -> None:
    outbox, publisher, redis, _, log = parts
    client = str(uuid.uuid4())
    waiting, mine = plan_completed(client), plan_completed(client)
    await stage(redis, outbox, [waiting])  # left by a request while the broker was away
    oldest = await stage(redis, outbox, [mine])
    staged = Outbox.staged([mine], oldest)
    assert staged.behind
    # publishing now would put this client's newer event ahead of the older one
    assert not await outbox.publish_staged(publisher, [mine], staged, wait_s=5)
    assert await outbox.relay_once(publisher, owner="relay") == 2
    await log.wait_for(lambda: len(log.events(subject=client)) >= 2 or None)
    assert [e["id"] for e in log.events(subject=client)] == [waiting.envelope.id, mine.envelope.id]
