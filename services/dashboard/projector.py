"""Reads every public topic into the dashboard's read model.

The dashboard is not a consumer group member: it assigns itself every partition
and keeps its own offsets in Redis, written with the counts in one step
(``store.py``). One instance projects at a time (a lease in Redis); any number
serve pages. Records are gathered for up to ``GATHER_S`` after the first one of a
write arrived, so a trickle costs a write per ``GATHER_S`` rather than one per
fetch (the pages redraw every 2 s), and a busy chain a write per ``BATCH_RECORDS``.
``rebuild`` is ``clinicflow replay``: the same fold from offset 0 into a new
generation, made current once it reached the end the topics had when it began.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.dashboard.fold import Positioned
from services.dashboard.projection import observe
from services.dashboard.store import BatchRefused, DashboardStore, Lease, minute_of
from shared.clock import Clock
from shared.fetch_pacing import pace_fetches
from shared.settings import CommonSettings
from shared.topics import PUBLIC_TOPICS

log = logging.getLogger(__name__)

LEASE_S = 15.0
RENEW_S = LEASE_S / 5  # an idle projector renews this often; a write renews it too
BATCH_RECORDS = 1000
GATHER_S = 0.5
FIRST_WAIT_MS = 500
# A rebuild finds the history fetched ahead (a batch fills at once) and stops at
# the first empty fetch past it: waiting longer gains nothing, since the live
# projection carries on from the offsets the rebuild stored.
REBUILD_WAIT_MS = 200
REBUILD_GATHER_S = 0.1
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


async def _gather(
    consumer: AIOKafkaConsumer, *, first_wait_ms: int = FIRST_WAIT_MS, gather_s: float = GATHER_S
) -> list[Positioned]:
    """The records of one write: whatever comes within ``first_wait_ms``, and then
    what else comes within ``gather_s`` of that, up to ``BATCH_RECORDS``."""
    records: list[ConsumerRecord[bytes, bytes]] = []
    until: float | None = None
    while len(records) < BATCH_RECORDS:
        if until is None:
            wait_ms = first_wait_ms
        else:
            wait_ms = int((until - time.monotonic()) * 1000)
            if wait_ms <= 0:
                break
        batches = await consumer.getmany(
            timeout_ms=wait_ms, max_records=BATCH_RECORDS - len(records)
        )
        if not batches:
            break
        records += [r for found in batches.values() for r in found]
        until = until or time.monotonic() + gather_s
    return _positioned(records)


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
    """Keep the current generation up to date, while holding the lease, until cancelled.

    A write that fails or is refused (``BatchRefused``) leaves the fetched records
    unwritten: the consumer starts again from the offsets stored with the counts."""
    lease = Lease(lease_key, uuid.uuid4().hex, int(LEASE_S * 1000))
    consumer: AIOKafkaConsumer | None = None
    generation = 0
    renewed = 0.0
    try:
        while True:
            try:
                if consumer is None:
                    generation = await store.hold(lease)
                    if not generation:
                        await asyncio.sleep(RENEW_S)
                        continue
                    renewed = time.monotonic()
                    consumer = _consumer(settings)
                    await consumer.start()
                    pace_fetches(consumer, settings.kafka)
                    await _assign(consumer, await store.offsets(generation))
                batch = await _gather(consumer)
                if batch:
                    await store.add(
                        generation,
                        batch,
                        keep_from_minute=_keep_from(clock, window_minutes),
                        lease=lease,
                    )
                    renewed = time.monotonic()
                elif time.monotonic() - renewed >= RENEW_S:
                    if await store.hold(lease) != generation:  # lost, or a rebuild switched
                        await _quietly_stop(consumer)
                        consumer = None
                    renewed = time.monotonic()
            except asyncio.CancelledError:
                raise
            except BatchRefused as refused:
                log.info("dashboard batch not written, reading the stored offsets: %s", refused)
                if consumer is not None:
                    await _quietly_stop(consumer)
                    consumer = None
            except Exception as exc:  # broker or Redis away: start over from stored offsets
                log.warning("dashboard projection interrupted, resuming: %r", exc)
                if consumer is not None:
                    await _quietly_stop(consumer)
                    consumer = None
                await asyncio.sleep(1.0)
    finally:
        if consumer is not None:
            await _quietly_stop(consumer)
        await store.release(lease)


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
            batch = await _gather(
                consumer, first_wait_ms=REBUILD_WAIT_MS, gather_s=REBUILD_GATHER_S
            )
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


async def _quietly_stop(consumer: AIOKafkaConsumer) -> None:
    try:
        await consumer.stop()
    except Exception as exc:
        log.debug("dashboard consumer stop: %r", exc)
