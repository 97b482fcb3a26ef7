"""The dashboard writes a batch of records in one Redis round trip, with the offsets
it reached, and a batch that does not follow what is stored is written nowhere:
the same batch again (its first answer lost), a batch of an instance whose lease
lapsed, a batch for a generation a rebuild replaced. A projector that fails right
after a write starts again from the stored offsets and counts nothing twice.

One intake's records, as the services publish them: the intake, its plan, nine
visits, a reminder pair per visit and the plan summary's message."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import REGISTRY

from services.dashboard import batch_write
from services.dashboard.fold import Positioned
from services.dashboard.projection import observe
from services.dashboard.projector import project
from services.dashboard.store import (
    DashboardStore,
    GenerationMoved,
    Lease,
    LeaseLost,
    OffsetsMoved,
)
from shared.clock import parse_clock
from shared.infra import Infra
from shared.kafka import ensure_topics
from shared.redis_store import Keys, connect
from shared.settings import DashboardSettings
from shared.topics import PUBLIC_TOPICS
from tests.support import until

pytestmark = pytest.mark.integration
VISITS = 9
TOPIC_OF = {
    "intake": "clinic.intake",
    "plan": "clinic.plans",
    "visit": "clinic.visits",
    "notification": "clinic.notifications",
}


def intake_records(location: str, client: str) -> list[tuple[str, bytes]]:
    """(topic, value) of one intake's records, in the order the services publish them."""
    now = datetime.now(UTC)
    events: list[tuple[str, dict[str, Any]]] = [
        ("intake.submitted", {"intake_id": f"i-{client}"}),
        ("plan.created", {"plan_id": f"p-{client}", "version": 1}),
    ]
    events += [("visit.booked", {"visit_id": f"v-{client}-{n}"}) for n in range(VISITS)]
    for n in range(VISITS):
        for lead in ("P2D", "PT2H"):
            notice = {"notification_id": f"n-{client}-{n}-{lead}", "kind": "reminder"}
            events.append(("notification.scheduled", {**notice, "channel": "email"}))
    summary = {"notification_id": f"n-{client}-summary", "kind": "plan_summary"}
    events.append(("notification.sent", {**summary, "channel": "email"}))
    return [
        (
            TOPIC_OF[kind.split(".")[0]],
            json.dumps(
                {
                    "specversion": "1.0",
                    "id": str(uuid.uuid4()),
                    "type": kind,
                    "subject": client,
                    "time": now.isoformat(),
                    "locationid": location,
                    "data": {"client_id": client, **data},
                }
            ).encode(),
        )
        for kind, data in events
    ]


def expected_totals(location: str, intakes: int) -> dict[str, int]:
    counts = {
        "clinic.intake|intake.submitted": 1,
        "clinic.plans|plan.created": 1,
        "clinic.visits|visit.booked": VISITS,
        "clinic.notifications|notification.scheduled": 2 * VISITS,
        "clinic.notifications|notification.sent": 1,
    }
    return {f"{location}|{field}": n * intakes for field, n in counts.items()}


def positioned(records: list[tuple[str, bytes]], start: int) -> list[Positioned]:
    """The records as one batch, each topic's from offset ``start`` on partition 0."""
    next_offset: dict[str, int] = {}
    batch = []
    for topic, value in records:
        offset = next_offset.get(topic, start)
        next_offset[topic] = offset + 1
        seen = observe(topic, value, timestamp_ms=0)
        batch.append(Positioned(topic=topic, partition=0, offset=offset, observation=seen))
    return batch


def round_trips(service: str) -> float:
    found = REGISTRY.get_sample_value("clinicflow_redis_round_trips_total", {"service": service})
    return found or 0.0


@pytest.fixture
def location() -> str:
    return f"batch-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings(infra: Infra) -> Iterator[DashboardSettings]:
    yield DashboardSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
        REDIS_URL=infra.redis_url,
        CLINICFLOW_REDIS_NAMESPACE=f"dash-batch-{uuid.uuid4().hex[:10]}",
        CLINICFLOW_ENV="test",
    )


@pytest.fixture
async def counted(settings: DashboardSettings) -> AsyncIterator[tuple[DashboardStore, str]]:
    """A store on a client of its own, whose round trips are counted apart."""
    service = f"dashboard-test-{uuid.uuid4().hex[:8]}"
    redis = connect(settings, service=service)
    yield DashboardStore(redis, Keys(settings.redis_namespace, "dashboard")), service
    async for key in redis.scan_iter(match=f"{settings.redis_namespace}:*", count=1000):
        await redis.delete(key)
    await redis.aclose()


async def totals(store: DashboardStore, location: str) -> dict[str, int]:
    found = (await store.read(await store.generation(), [], None)).totals
    return {"|".join(k): v for k, v in found.items() if k[0] == location}


async def test_one_intakes_records_are_written_in_one_round_trip(
    counted: tuple[DashboardStore, str], location: str
) -> None:
    store, service = counted
    first = positioned(intake_records(location, "c-1"), start=0)
    await store.redis.ping()  # the connection's own greeting is not the batch's
    before = round_trips(service)
    await store.add(1, first, keep_from_minute=0)
    # the script's first use on a server may cost a load: at most three
    assert round_trips(service) - before <= 3
    second = positioned(intake_records(location, "c-2"), start=100)
    before = round_trips(service)
    await store.add(1, second, keep_from_minute=0)
    assert round_trips(service) - before == 1
    assert await totals(store, location) == expected_totals(location, 2)
    view = await store.read(1, [], None)
    assert view.notifications[f"{location}|sent|plan_summary|email"] == 2
    offsets = await store.offsets(1)
    assert offsets[("clinic.notifications", 0)] == 100 + 2 * VISITS + 1
    assert offsets[("clinic.intake", 0)] == 101


async def test_a_batch_that_does_not_follow_what_is_stored_is_not_written(
    settings: DashboardSettings, counted: tuple[DashboardStore, str], location: str
) -> None:
    store, _ = counted
    keys = Keys(settings.redis_namespace, "dashboard")
    lease = Lease(keys("projection-lease"), "me", 15_000)
    assert await store.hold(lease) == 1
    batch = positioned(intake_records(location, "c-1"), start=100)
    await store.add(1, batch, keep_from_minute=0, lease=lease)
    # the same batch again (the first answer lost on the way back): counted once
    with pytest.raises(OffsetsMoved):
        await store.add(1, batch, keep_from_minute=0, lease=lease)
    # a batch that overlaps the stored offsets by one record is refused whole
    overlapping = positioned(intake_records(location, "c-2"), start=100)[-1:]
    with pytest.raises(OffsetsMoved):
        await store.add(1, overlapping, keep_from_minute=0, lease=lease)
    # an instance whose lease lapsed and was taken by another writes nothing
    await store.redis.set(lease.key, "another", px=15_000)
    later = positioned(intake_records(location, "c-3"), start=200)
    with pytest.raises(LeaseLost):
        await store.add(1, later, keep_from_minute=0, lease=lease)
    assert await store.hold(lease) == 0
    # a rebuild made another generation current: the old one is not written to
    await store.redis.set(lease.key, lease.token, px=15_000)
    newer = await store.new_generation()
    assert await store.switch_to(newer)
    with pytest.raises(GenerationMoved):
        await store.add(1, later, keep_from_minute=0, lease=lease)
    assert await store.hold(lease) == newer
    assert await totals(store, location) == {}  # the new generation holds nothing yet
    assert await store.offsets(1) == {}  # the old one is gone, and was not written again


def dead_letter(location: str, n: int) -> tuple[str, bytes]:
    data = {
        "source_topic": "clinic.visits",
        "partition": 0,
        "offset": n,
        "key": "c-1",
        "error": "handler error",
        "payload": "x" * 1000,
        "payload_encoding": "utf-8",
        "service": "notifier",
        "failed_at": datetime.now(UTC).isoformat(),
    }
    envelope = {"type": "record.deadlettered", "id": f"d-{location}-{n}", "locationid": location}
    return "clinic.deadletter", json.dumps({**envelope, "data": data}).encode()


async def test_a_batch_heavy_with_dead_letters_is_written_in_parts_each_with_its_offsets(
    counted: tuple[DashboardStore, str], location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, service = counted
    monkeypatch.setattr(batch_write, "WRITE_BYTES", 2000)  # two dead letters a part
    batch = positioned([dead_letter(location, n) for n in range(5)], start=0)
    await store.redis.ping()
    before = round_trips(service)
    await store.add(1, batch, keep_from_minute=0)
    assert 3 <= round_trips(service) - before <= 3 + 2  # three parts; a script load at most
    assert await totals(store, location) == {f"{location}|clinic.deadletter|record.deadlettered": 5}
    assert (await store.offsets(1))[("clinic.deadletter", 0)] == 5
    listed = (await store.read(1, [], location)).dead_letters
    assert sorted(d.id for d in listed) == [f"d-{location}-{n}" for n in range(5)]
    # a retry of the whole batch after the second part: nothing counted twice
    with pytest.raises(OffsetsMoved):
        await store.add(1, batch, keep_from_minute=0)
    assert await totals(store, location) == {f"{location}|clinic.deadletter|record.deadlettered": 5}


class AnswerLost(DashboardStore):
    """Writes the first batch, then fails as if the connection dropped before its answer."""

    failures = 1

    async def add(self, *args: Any, **kwargs: Any) -> None:
        await super().add(*args, **kwargs)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("connection lost before the answer")


@pytest.fixture
async def producer(infra: Infra) -> AsyncIterator[AIOKafkaProducer]:
    await ensure_topics(infra.kafka_bootstrap_servers)
    sender = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap_servers, acks="all")
    await sender.start()
    yield sender
    await sender.stop()


async def start_at_the_end(settings: DashboardSettings, store: DashboardStore) -> None:
    """Offsets at the topics' ends: the projector reads this test's records only, not
    the whole run's history on the shared broker."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(spec.name, n)
            for spec in PUBLIC_TOPICS
            for n in sorted(consumer.partitions_for_topic(spec.name) or ())
        ]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    offsets = Keys(settings.redis_namespace, "dashboard")("g", "1", "offsets")
    await store.redis.hset(
        offsets, mapping={f"{tp.topic}|{tp.partition}": n for tp, n in ends.items()}
    )


async def publish(
    producer: AIOKafkaProducer, records: list[tuple[str, bytes]], key: str
) -> dict[tuple[str, int], int]:
    """Send the records together; the offset after the last one, per partition."""
    sent = await asyncio.gather(
        *[await producer.send(t, key=key.encode(), value=v) for t, v in records]
    )
    reached: dict[tuple[str, int], int] = {}
    for meta in sent:
        where = (meta.topic, meta.partition)
        reached[where] = max(reached.get(where, 0), meta.offset + 1)
    return reached


async def projected_past(store: DashboardStore, reached: dict[tuple[str, int], int]) -> bool:
    offsets = await store.offsets(1)
    return all(offsets.get(where, 0) >= n for where, n in reached.items())


async def running(settings: DashboardSettings, store: DashboardStore) -> asyncio.Task[None]:
    lease = Keys(settings.redis_namespace, "dashboard")("projection-lease")
    return asyncio.create_task(
        project(settings, store, lease, clock=parse_clock("system"), window_minutes=60)
    )


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_projector_spends_a_few_round_trips_on_an_intake(
    settings: DashboardSettings,
    counted: tuple[DashboardStore, str],
    producer: AIOKafkaProducer,
    location: str,
) -> None:
    store, service = counted
    # the test looks on a client of its own: only the projector's round trips count
    watcher = DashboardStore(connect(settings), Keys(settings.redis_namespace, "dashboard"))
    await start_at_the_end(settings, watcher)
    task = await running(settings, store)
    try:
        lease = Keys(settings.redis_namespace, "dashboard")("projection-lease")
        await until(lambda: watcher.redis.exists(lease))  # started: it holds the lease
        before = round_trips(service)
        reached = await publish(producer, intake_records(location, "c-1"), "c-1")
        await until(lambda: projected_past(watcher, reached))
        spent = round_trips(service) - before
        assert 1 <= spent <= 10, spent
        assert await totals(watcher, location) == expected_totals(location, 1)
    finally:
        await stop(task)
        await watcher.redis.aclose()


async def test_a_failure_right_after_a_write_counts_nothing_twice(
    settings: DashboardSettings, producer: AIOKafkaProducer, location: str
) -> None:
    redis = connect(settings, service="dashboard-test")
    store = AnswerLost(redis, Keys(settings.redis_namespace, "dashboard"))
    try:
        await start_at_the_end(settings, store)
        task = await running(settings, store)
        try:
            reached = await publish(producer, intake_records(location, "c-1"), "c-1")
            await until(lambda: projected_past(store, reached))
            assert store.failures == 0  # the write went through, its answer did not
            # the next batch, after the projector started again from the stored offsets
            reached = await publish(producer, intake_records(location, "c-2"), "c-2")
            await until(lambda: projected_past(store, reached))
        finally:
            await stop(task)
        assert await totals(store, location) == expected_totals(location, 2)
    finally:
        async for key in redis.scan_iter(match=f"{settings.redis_namespace}:*", count=1000):
            await redis.delete(key)
        await redis.aclose()
