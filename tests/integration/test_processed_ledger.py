"""The processed-event ledger (shared/redis_store.py ``ProcessedEvents``): marks kept
per day of the event's own time in small packed hashes, a redelivered record still
refused, marks of the earlier key-per-event layout still counted during the upgrade
window, every hash with its TTL, and what a mark costs in Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest
import redis.asyncio as aioredis

from shared.clock import parse_clock
from shared.codec import decode_envelope, encode, wrap
from shared.envelope import Envelope, Trace
from shared.events import EventData, PlanCompleted
from shared.infra import Infra
from shared.kafka import Outgoing
from shared.redis_store import (
    LEGACY_WINDOW,
    SEEN_TTL,
    Keys,
    ProcessedEvents,
    ledger_slot,
)
from shared.streams import RawRecord, StreamProcessor

pytestmark = pytest.mark.integration
PACIFIC = timezone(timedelta(hours=-8))
# a minute before midnight in Oregon: the next day already in UTC
LATE = datetime(2027, 3, 8, 23, 59, 30, tzinfo=PACIFIC)


@pytest.fixture
async def client(infra: Infra) -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.Redis.from_url(infra.redis_url, decode_responses=True)
    yield redis
    await redis.aclose()


@pytest.fixture
def keys() -> Keys:
    return Keys(f"ledger-test-{uuid.uuid4().hex[:8]}", "planner")


def completed(at: datetime = LATE, event_id: str | None = None) -> Envelope:
    data = PlanCompleted(
        plan_id="p-1",
        version=1,
        client_id="c-1",
        location_id="beaverton",
        reason="sessions done",
        completed_at=at,
    )
    trace = Trace(chainid="northwest-nmt", correlationid="i-1", locationid="beaverton")
    return wrap(
        data,
        event_id=event_id or str(uuid.uuid4()),
        service="t",
        subject="p-1",
        trace=trace,
        time=at,
    )


class Publisher:
    max_message_bytes = 1_048_576

    async def publish(self, items: Sequence[Outgoing]) -> None:
        return None

    async def publish_each(self, items: Sequence[Outgoing]) -> list[None]:
        return [None for _ in items]


def processor(processed: ProcessedEvents, calls: list[str]) -> StreamProcessor:
    async def handler(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        calls.append(envelope.id)
        return []

    return StreamProcessor(
        service="planner",
        chain_id="northwest-nmt",
        locations=["beaverton"],
        handlers={"plan.completed": handler},
        publisher=Publisher(),  # type: ignore[arg-type]
        processed=processed,
        clock=parse_clock("system"),
    )


def record(envelope: Envelope, offset: int) -> RawRecord:
    return RawRecord("clinic.plans", 0, offset, b"c-1", encode(envelope))


async def ledger_keys(client: aioredis.Redis, keys: Keys) -> list[str]:
    return [key async for key in client.scan_iter(match=keys("ledger", "*"), count=1000)]


def test_a_mark_lives_in_the_utc_day_of_the_event_time_whatever_its_offset() -> None:
    event_id = str(uuid.uuid4())
    day, shard, field = ledger_slot(event_id, LATE)
    assert day == "2027-03-09"
    assert ledger_slot(event_id, LATE.astimezone(UTC)) == (day, shard, field)
    assert len(field) == 15 and len(shard) == 2
    assert ledger_slot(str(uuid.uuid4()), LATE)[2] != field


async def test_a_redelivered_record_is_refused_from_its_day_bucket(
    client: aioredis.Redis, keys: Keys
) -> None:
    calls: list[str] = []
    consumer = processor(ProcessedEvents(client, keys), calls)
    event = completed()

    await consumer.process(record(event, 1))
    # the redelivery is decoded again from the same bytes, by another instance
    again = decode_envelope(encode(event))
    await processor(ProcessedEvents(client, keys), calls).process(record(again, 2))

    assert calls == [event.id]
    buckets = await ledger_keys(client, keys)
    assert len(buckets) == 1 and ":ledger:2027-03-09:" in buckets[0]
    assert not await client.exists(keys("processed", event.id))  # no key per event any more


async def test_another_event_on_another_day_is_handled_and_marked_apart(
    client: aioredis.Redis, keys: Keys
) -> None:
    calls: list[str] = []
    consumer = processor(ProcessedEvents(client, keys), calls)
    first, second = completed(), completed(LATE + timedelta(days=2))

    await consumer.process_batch([record(first, 1), record(second, 2), record(first, 3)])

    assert calls == [first.id, second.id]
    days = {key.split(":")[-2] for key in await ledger_keys(client, keys)}
    assert days == {"2027-03-09", "2027-03-11"}


async def test_a_mark_of_the_earlier_layout_still_counts_during_the_upgrade(
    client: aioredis.Redis, keys: Keys
) -> None:
    event = completed()
    # marked by an instance before the upgrade: a key per event
    await client.set(keys("processed", event.id), "1", ex=SEEN_TTL)
    calls: list[str] = []

    await processor(ProcessedEvents(client, keys), calls).process(record(event, 1))

    assert calls == []  # a duplicate, not handled again
    closes = int(await client.get(keys("ledger-legacy-until")) or 0)
    assert abs(closes - (time.time() + LEGACY_WINDOW.total_seconds())) < 60
    assert await client.ttl(keys("ledger-legacy-until")) == -1  # a restart does not reopen it


async def test_every_instance_reads_the_earlier_layout_until_the_first_one_started_plus_the_window(
    client: aioredis.Redis, keys: Keys
) -> None:
    first = ProcessedEvents(client, keys)
    await first.seen(completed())
    opened = int(await client.get(keys("ledger-legacy-until")) or 0)
    assert abs(opened - (time.time() + LEGACY_WINDOW.total_seconds())) < 60

    # a second instance later finds the window the first one opened, and keeps it
    await client.set(keys("ledger-legacy-until"), str(int(time.time()) - 1))
    old = completed()
    await client.set(keys("processed", old.id), "1", ex=SEEN_TTL)
    later = ProcessedEvents(client, keys)
    assert await later.seen_among([old]) == set()  # closed: the old keys are not read
    assert int(await client.get(keys("ledger-legacy-until")) or 0) < time.time()


async def test_every_day_bucket_has_the_seen_ttl_and_a_new_mark_renews_it(
    client: aioredis.Redis, keys: Keys
) -> None:
    processed = ProcessedEvents(client, keys)
    event = completed()
    await processed.mark_all([event])
    day, shard, _ = ledger_slot(event.id, event.time)
    bucket = keys("ledger", day, shard)
    await client.expire(bucket, 100)

    await processed.mark_all([completed(event_id=_same_shard(event, shard))])

    ttl = await client.ttl(bucket)
    assert SEEN_TTL.total_seconds() - 60 < ttl <= SEEN_TTL.total_seconds()
    assert await processed.seen(event)


def _same_shard(event: Envelope, shard: str) -> str:
    """Another event id whose mark falls in ``shard`` of ``event``'s day."""
    while True:
        candidate = str(uuid.uuid4())
        if ledger_slot(candidate, event.time)[1] == shard:
            return candidate


async def test_a_mark_costs_a_fraction_of_a_key_per_event(
    client: aioredis.Redis, keys: Keys
) -> None:
    events = [completed(LATE + timedelta(seconds=n)) for n in range(10_000)]
    processed = ProcessedEvents(client, keys)
    for start in range(0, len(events), 1000):
        await processed.mark_all(events[start : start + 1000])
    old = Keys(keys.namespace, "earlier-layout")
    async with client.pipeline(transaction=False) as pipe:
        for event in events[:1000]:
            pipe.set(old("processed", event.id), "1", ex=SEEN_TTL)
        await pipe.execute()

    buckets = await ledger_keys(client, keys)
    new_bytes = sum([await client.memory_usage(key, samples=0) or 0 for key in buckets])
    old_bytes = sum(
        [await client.memory_usage(old("processed", e.id), samples=0) or 0 for e in events[:1000]]
    )
    per_event, per_event_before = new_bytes / len(events), old_bytes / 1000
    print(f"ledger: {per_event:.1f} bytes per event, {per_event_before:.1f} with a key per event")
    assert len(buckets) <= 256
    assert per_event < 40 < 100 < per_event_before
    assert await processed.seen_among(events[::1000]) == {e.id for e in events[::1000]}
    async with client.pipeline(transaction=False) as pipe:
        for key in [*buckets, *(old("processed", e.id) for e in events[:1000])]:
            pipe.delete(key)
        await pipe.execute()
