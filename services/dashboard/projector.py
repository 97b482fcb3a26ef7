"""Reads every public topic into the dashboard's read model.

The dashboard is not a consumer group member: it assigns itself every partition
and keeps its own offsets in Redis, in the same transaction as the counts
(``store.py``). One instance projects at a time (a lease in Redis); any number
serve pages. ``rebuild`` is ``clinicflow replay``: the same fold from offset 0
into a new generation, made current once it reached the end the topics had
when it began.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.dashboard.projection import observe
from services.dashboard.store import DashboardStore, LeaseLost, Positioned, minute_of
from shared.clock import Clock
from shared.settings import CommonSettings
from shared.topics import PUBLIC_TOPICS

log = logging.getLogger(__name__)

LEASE_S = 15.0
BATCH_RECORDS = 1000
# fetches a rebuild makes past the end offsets it started with; the embedded broker
# can report an end short of records it acknowledged in multi-record batches
CATCH_UP_FETCHES = 20


@dataclass(frozen=True)
class RebuildSummary:
    generation: int
    current: bool  # False: a newer rebuild finished first, and this one was dropped
    records: int
    partitions: int
    seconds: float


def _consumer(settings: CommonSettings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms,
        client_id="clinicflow-dashboard",
    )


async def _partitions(consumer: AIOKafkaConsumer) -> list[TopicPartition]:
    """Every partition of every public topic, as the broker has them now."""
    await consumer.topics()  # fresh metadata: a topic may be new, or have grown
    found = []
    for spec in PUBLIC_TOPICS:
        numbers = consumer.partitions_for_topic(spec.name) or set(range(spec.partitions))
        found += [TopicPartition(spec.name, n) for n in sorted(numbers)]
    return found


async def _assign(
    consumer: AIOKafkaConsumer, offsets: dict[tuple[str, int], int]
) -> list[TopicPartition]:
    partitions = await _partitions(consumer)
    consumer.assign(partitions)
    fresh = [tp for tp in partitions if (tp.topic, tp.partition) not in offsets]
    if fresh:
        await consumer.seek_to_beginning(*fresh)
    for tp in partitions:
        if (tp.topic, tp.partition) in offsets:
            consumer.seek(tp, offsets[(tp.topic, tp.partition)])
    return partitions


def _positioned(records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Positioned]:
    return [
        Positioned(
            topic=r.topic,
            partition=r.partition,
            offset=r.offset,
            observation=observe(r.topic, r.value, timestamp_ms=r.timestamp),
        )
        for r in records
    ]


async def _fetch(consumer: AIOKafkaConsumer, timeout_ms: int) -> list[Positioned]:
    batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=BATCH_RECORDS)
    return _positioned([r for records in batches.values() for r in records])


def _keep_from(clock: Clock, window_minutes: int) -> int:
    """The first minute of the flow window, on the shared clock."""
    return minute_of(clock.now()) - window_minutes + 1


async def project(
    settings: CommonSettings,
    store: DashboardStore,
    lease_key: str,
    *,
    clock: Clock,
    window_minutes: int,
) -> None:
    """Keep the current generation up to date, while holding the lease, until cancelled."""
    redis = store.redis
    token = uuid.uuid4().hex
    consumer: AIOKafkaConsumer | None = None
    generation = 0
    try:
        while True:
            try:
                if not await _hold(redis, lease_key, token):
                    if consumer is not None:
                        await consumer.stop()
                        consumer = None
                    await asyncio.sleep(LEASE_S / 5)
                    continue
                current = await store.generation()
                if consumer is None or current != generation:
                    if consumer is not None:
                        await consumer.stop()
                    generation = current
                    consumer = _consumer(settings)
                    await consumer.start()
                    await _assign(consumer, await store.offsets(generation))
                batch = await _fetch(consumer, timeout_ms=500)
                await store.add(
                    generation,
                    batch,
                    keep_from_minute=_keep_from(clock, window_minutes),
                    lease=(lease_key, token),
                )
            except asyncio.CancelledError:
                raise
            except LeaseLost:
                generation = 0  # re-read the offsets: whoever held the lease moved them
            except Exception as exc:  # broker or Redis away: start over from stored offsets
                log.warning("dashboard projection interrupted, resuming: %r", exc)
                if consumer is not None:
                    await _quietly_stop(consumer)
                    consumer = None
                await asyncio.sleep(1.0)
    finally:
        if consumer is not None:
            await _quietly_stop(consumer)
        await redis.eval(_RELEASE, 1, lease_key, token)


async def rebuild(
    settings: CommonSettings, store: DashboardStore, *, clock: Clock, window_minutes: int
) -> RebuildSummary:
    """Fold every public topic from offset 0 into a new generation, then make it current."""
    started = time.monotonic()
    generation = await store.new_generation()
    consumer = _consumer(settings)
    await consumer.start()
    records = 0
    try:
        partitions = await _assign(consumer, {})
        ends = await consumer.end_offsets(partitions)  # the history there is now
        extra = 0
        while True:
            batch = await _fetch(consumer, timeout_ms=500)
            await store.add(generation, batch, keep_from_minute=_keep_from(clock, window_minutes))
            records += len(batch)
            behind = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
            # past the history, read on until a fetch finds nothing (bounded: a busy
            # chain never pauses, and the live projection carries on from here anyway)
            if not behind and (not batch or extra >= CATCH_UP_FETCHES):
                break
            extra += 0 if behind else 1
    finally:
        await _quietly_stop(consumer)
    current = await store.switch_to(generation)
    return RebuildSummary(
        generation=generation,
        current=current,
        records=records,
        partitions=len(partitions),
        seconds=time.monotonic() - started,
    )


async def _hold(redis: aioredis.Redis, key: str, token: str) -> bool:
    """Take or renew the projection lease."""
    return bool(await redis.eval(_HOLD, 1, key, token, int(LEASE_S * 1000)))


async def _quietly_stop(consumer: AIOKafkaConsumer) -> None:
    try:
        await consumer.stop()
    except Exception as exc:
        log.debug("dashboard consumer stop: %r", exc)


_HOLD = """
local holder = redis.call('get', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
