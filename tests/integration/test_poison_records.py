"""Records that cannot be dead-lettered as they are, and events this deployment must
not read, never stop the consumer loop (real broker and Redis): the dead letter keeps
the record's position, size and digest and as much of it as fits, and the record
behind it is handled."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.clock import parse_clock
from shared.codec import encode, wrap
from shared.envelope import Envelope, Trace
from shared.events import EventData, PlanCompleted
from shared.infra import Infra
from shared.kafka import Outgoing, Publisher, ensure_topics
from shared.redis_store import Keys, ProcessedEvents
from shared.settings import CommonSettings, KafkaTuning
from shared.streams import RawRecord, StreamProcessor
from tests.support import TopicLog

pytestmark = pytest.mark.integration
NOW = datetime(2027, 3, 8, 16, tzinfo=UTC)
CHAIN = "northwest-nmt"
POISON_BYTES = 1_000_000  # under the producer's 1 MiB, over it once base64 in a dead letter


@pytest.fixture
async def parts(
    infra: Infra, namespace: str
) -> AsyncIterator[tuple[Publisher, ProcessedEvents, TopicLog, AIOKafkaProducer]]:
    settings = CommonSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers, REDIS_URL=infra.redis_url
    )
    await ensure_topics(infra.kafka_bootstrap_servers)
    publisher = Publisher(settings, client_id="poison-test")
    await publisher.start()
    raw = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap_servers, acks="all")
    await raw.start()
    client = aioredis.Redis.from_url(infra.redis_url, decode_responses=True)
    log = await TopicLog(infra.kafka_bootstrap_servers).start()
    yield publisher, ProcessedEvents(client, Keys(namespace, "poison-test")), log, raw
    await log.stop()
    await client.aclose()
    await raw.stop()
    await publisher.stop()


def completed(client_id: str, **trace: Any) -> Envelope:
    data = PlanCompleted(
        plan_id=f"p-{client_id}",
        version=1,
        client_id=client_id,
        location_id="beaverton",
        reason="sessions done",
        completed_at=NOW,
    )
    story = {"chainid": CHAIN, "correlationid": f"i-{client_id}", "locationid": "beaverton"}
    return wrap(
        data,
        event_id=str(uuid.uuid4()),
        service="t",
        subject=data.plan_id,
        trace=Trace(**{**story, **trace}),
        time=NOW,
    )


def processor(
    publisher: Publisher, processed: ProcessedEvents, handled: list[str], outputs: Any = ()
) -> StreamProcessor:
    async def handler(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        handled.append(envelope.id)
        return list(outputs(envelope)) if callable(outputs) else []

    return StreamProcessor(
        service=f"poison-test-{uuid.uuid4().hex[:6]}",
        chain_id=CHAIN,
        locations=["beaverton"],
        handlers={"plan.completed": handler},
        publisher=publisher,
        processed=processed,
        clock=parse_clock("system"),
    )


async def read_back(bootstrap: str, topic: str, partition: int, offsets: list[int]) -> list[Any]:
    """The records at ``offsets`` as the broker hands them to a consumer."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=25)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offsets[0])
        found: dict[int, Any] = {}
        while len(found) < len(offsets):  # the caller's deadline bounds this
            batches = await consumer.getmany(tp, timeout_ms=1000)
            found.update({r.offset: r for r in batches.get(tp, []) if r.offset in offsets})
        return [found[o] for o in offsets]
    finally:
        await consumer.stop()


def raw_record(record: Any) -> RawRecord:
    return RawRecord(record.topic, record.partition, record.offset, record.key, record.value)


def letters_of(log: TopicLog, service: str, position: tuple[str, int, int]) -> Any:
    """The dead letters (whole events) ``service`` sent for the record at ``position``."""
    return [
        e
        for e in log.events(type="record.deadlettered")
        if e["data"]["service"] == service
        and (e["data"]["source_topic"], e["data"]["partition"], e["data"]["offset"]) == position
    ]


@pytest.mark.parametrize(
    "topic", ["clinic.intake", "clinic.plans", "clinic.visits", "clinic.notifications"]
)
async def test_a_one_megabyte_poison_record_is_dead_lettered_cut_and_the_next_is_handled(
    parts: tuple[Publisher, ProcessedEvents, TopicLog, AIOKafkaProducer], infra: Infra, topic: str
) -> None:
    publisher, processed, log, raw = parts
    client = str(uuid.uuid4())
    poison_value = os.urandom(POISON_BYTES)
    good_event = completed(client)
    poison = await raw.send_and_wait(topic, key=client.encode(), value=poison_value)
    good = await raw.send_and_wait(topic, key=client.encode(), value=encode(good_event))
    assert (good.partition, good.offset) == (poison.partition, poison.offset + 1)

    handled: list[str] = []
    consumer = processor(publisher, processed, handled)
    bootstrap = infra.kafka_bootstrap_servers
    async with asyncio.timeout(60):  # a dead letter retried forever fails here
        offsets = [poison.offset, good.offset]
        for record in await read_back(bootstrap, topic, poison.partition, offsets):
            await consumer.process(raw_record(record))

    assert handled == [good_event.id]
    letters = await log.wait_for(
        lambda: letters_of(log, consumer.service, (topic, poison.partition, poison.offset))
    )
    letter = letters[0]["data"]
    assert letter["payload_truncated"] is True
    assert letter["payload_bytes"] == POISON_BYTES
    assert letter["payload_sha256"] == hashlib.sha256(poison_value).hexdigest()
    assert letter["payload_encoding"] == "base64"
    kept = base64.b64decode(letter["payload"])
    assert poison_value.startswith(kept) and len(kept) > POISON_BYTES // 2
    assert letter["key"] == client
    assert "not JSON" in letter["error"]
    assert consumer.next_offsets[(topic, poison.partition)] == good.offset + 1


async def test_outputs_the_broker_refuses_for_good_dead_letter_the_record_and_it_goes_on(
    parts: tuple[Publisher, ProcessedEvents, TopicLog, AIOKafkaProducer],
) -> None:
    publisher, processed, log, _ = parts
    client = str(uuid.uuid4())

    def too_large(cause: Envelope) -> list[Outgoing]:
        huge = completed(client).model_copy(
            update={"id": f"out-{cause.id}", "data": {**cause.data, "reason": "x" * 1_200_000}}
        )
        return [Outgoing(key=client, envelope=huge)]

    handled: list[str] = []
    consumer = processor(publisher, processed, handled, outputs=too_large)
    first, second = completed(client), completed(client)
    async with asyncio.timeout(60):  # an output retried forever fails here
        for offset, event in ((10**9, first), (10**9 + 1, second)):
            record = RawRecord("clinic.plans", 0, offset, client.encode(), encode(event))
            await consumer.process(record)

    assert handled == [first.id, second.id]  # the second was not held up by the first
    letters = await log.wait_for(
        lambda: letters_of(log, consumer.service, ("clinic.plans", 0, 10**9))
    )
    letter = letters[0]["data"]
    assert "outputs of plan.completed refused" in letter["error"]
    assert "MessageSizeTooLargeError" in letter["error"]
    assert not letter["payload_truncated"]  # the input itself was small: kept whole
    assert not await processed.seen(first)  # replayed once fixed, it is handled


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"chainid": "another-chain"}, "foreign chain 'another-chain'"),
        ({"locationid": "atlantis"}, "unknown location 'atlantis'"),
        (
            {"dataschema": "urn:clinicflow:schema:plan.completed:v2"},
            "unknown dataschema 'urn:clinicflow:schema:plan.completed:v2'",
        ),
    ],
)
async def test_an_event_this_deployment_cannot_read_correctly_is_dead_lettered_with_why(
    parts: tuple[Publisher, ProcessedEvents, TopicLog, AIOKafkaProducer],
    change: dict[str, str],
    reason: str,
) -> None:
    publisher, processed, log, _ = parts
    client = str(uuid.uuid4())
    handled: list[str] = []
    consumer = processor(publisher, processed, handled)
    unreadable = completed(client).model_copy(update=change)
    fine = completed(client)
    offset = int(uuid.uuid4().int % 10**9)
    for n, event in enumerate((unreadable, fine)):
        await consumer.process(
            RawRecord("clinic.plans", 1, offset + n, client.encode(), encode(event))
        )
    assert handled == [fine.id]
    letters = await log.wait_for(
        lambda: letters_of(log, consumer.service, ("clinic.plans", 1, offset))
    )
    dead = letters[0]
    assert reason in dead["data"]["error"]
    assert dead["chainid"] == CHAIN  # this deployment's dead letter, whoever sent the record
    assert dead["causationid"] == unreadable.id


async def test_events_of_types_this_service_does_not_read_are_counted_and_skipped(
    parts: tuple[Publisher, ProcessedEvents, TopicLog, AIOKafkaProducer],
) -> None:
    publisher, processed, log, _ = parts
    handled: list[str] = []
    consumer = processor(publisher, processed, handled)
    foreign = completed(str(uuid.uuid4()), chainid="another-chain").model_copy(
        update={"type": "plan.extended"}
    )
    offset = int(uuid.uuid4().int % 10**9)
    await consumer.process(RawRecord("clinic.plans", 2, offset, b"k", encode(foreign)))
    assert handled == []
    assert consumer.next_offsets[("clinic.plans", 2)] == offset + 1
    await log.caught_up()
    assert not letters_of(log, consumer.service, ("clinic.plans", 2, offset))


class OverstatedLimit(Publisher):
    """A publisher that believes in a larger limit than its producer (and so the
    broker) keeps: what a topic with a lower ``max.message.bytes`` looks like."""

    @property
    def max_message_bytes(self) -> int:
        return 1_048_576


async def test_a_dead_letter_the_broker_still_refuses_is_sent_in_its_smallest_form(
    parts: tuple[Publisher, ProcessedEvents, TopicLog, AIOKafkaProducer], infra: Infra
) -> None:
    _, processed, log, _ = parts
    settings = CommonSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
        REDIS_URL=infra.redis_url,
        kafka=KafkaTuning(max_message_bytes=200_000),
    )
    publisher = OverstatedLimit(settings, client_id="poison-test-small")
    await publisher.start()
    try:
        handled: list[str] = []
        consumer = processor(publisher, processed, handled)
        value = os.urandom(500_000)
        offset = int(uuid.uuid4().int % 10**9)
        async with asyncio.timeout(60):
            await consumer.process(RawRecord("clinic.visits", 0, offset, b"c-small", value))
            await consumer.process(
                RawRecord("clinic.visits", 0, offset + 1, b"c-small", encode(completed("c")))
            )
    finally:
        await publisher.stop()
    assert len(handled) == 1
    letters = await log.wait_for(
        lambda: letters_of(log, consumer.service, ("clinic.visits", 0, offset))
    )
    data = letters[0]["data"]
    assert data["payload"] == "" and data["payload_truncated"] is True
    assert data["payload_bytes"] == 500_000
    assert data["payload_sha256"] == hashlib.sha256(value).hexdigest()
