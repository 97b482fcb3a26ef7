"""The consumer loop against the real broker and Redis: bad records are dead-lettered
with their reason, handled records are not handled twice."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from shared.clock import parse_clock
from shared.codec import encode, wrap
from shared.envelope import Envelope, Trace
from shared.events import EventData, PlanCompleted
from shared.infra import Infra
from shared.kafka import Outgoing, Publisher, ensure_topics
from shared.metrics import DEADLETTERS, EVENTS_CONSUMED
from shared.redis_store import Keys, ProcessedEvents
from shared.settings import CommonSettings
from shared.streams import RawRecord, Rejected, StreamProcessor
from tests.support import TopicLog

pytestmark = pytest.mark.integration
NOW = datetime(2027, 3, 8, 16, tzinfo=UTC)


@pytest.fixture
async def parts(
    infra: Infra, namespace: str
) -> AsyncIterator[tuple[Publisher, ProcessedEvents, TopicLog]]:
    settings = CommonSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers, REDIS_URL=infra.redis_url
    )
    await ensure_topics(infra.kafka_bootstrap_servers)
    publisher = Publisher(settings, client_id="test")
    await publisher.start()
    client = aioredis.Redis.from_url(infra.redis_url, decode_responses=True)
    log = await TopicLog(infra.kafka_bootstrap_servers).start()
    yield publisher, ProcessedEvents(client, Keys(namespace, "stream-test")), log
    await log.stop()
    await client.aclose()
    await publisher.stop()


def completed(client_id: str) -> Envelope:
    data = PlanCompleted(
        plan_id="p-1",
        version=1,
        client_id=client_id,
        location_id="beaverton",
        reason="sessions done",
        completed_at=NOW,
    )
    trace = Trace(chainid="northwest-nmt", correlationid=f"i-{client_id}")
    return wrap(data, event_id=str(uuid.uuid4()), service="t", subject="p-1", trace=trace, time=NOW)


def record(envelope: Envelope | None, offset: int, raw: bytes | None = None) -> RawRecord:
    value = raw if envelope is None else encode(envelope)
    return RawRecord(topic="clinic.plans", partition=0, offset=offset, key=b"c-1", value=value)


def processor(publisher: Publisher, processed: ProcessedEvents, handler: object) -> StreamProcessor:
    return StreamProcessor(
        service=f"stream-test-{uuid.uuid4().hex[:6]}",
        chain_id="northwest-nmt",
        locations=["beaverton"],
        handlers={"plan.completed": handler},  # type: ignore[dict-item]
        publisher=publisher,
        processed=processed,
        clock=parse_clock("system"),
    )


async def test_handled_once_then_duplicates_are_skipped(
    parts: tuple[Publisher, ProcessedEvents, TopicLog],
) -> None:
    publisher, processed, _ = parts
    calls: list[str] = []

    async def handler(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        calls.append(envelope.id)
        return []

    event = completed("c-1")
    consumer = processor(publisher, processed, handler)
    await consumer.process(record(event, 1))
    await consumer.process(record(event, 2))  # the same event delivered again
    assert calls == [event.id]
    assert await processed.seen(event)


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (Rejected("unknown location 'atlantis'"), "rejected plan.completed: unknown location"),
        (KeyError("boom"), "handler error: KeyError"),
    ],
)
async def test_a_failing_handler_dead_letters_the_record_and_goes_on(
    parts: tuple[Publisher, ProcessedEvents, TopicLog], failure: Exception, reason: str
) -> None:
    publisher, processed, log = parts

    async def handler(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        raise failure

    event = completed(str(uuid.uuid4()))
    consumer = processor(publisher, processed, handler)
    await consumer.process(record(event, 7))
    letters = await log.wait_for(
        lambda: [
            e for e in log.events(type="record.deadlettered") if e.get("causationid") == event.id
        ]
    )
    data = letters[0]["data"]
    assert reason in data["error"]
    assert (data["source_topic"], data["partition"], data["offset"]) == ("clinic.plans", 0, 7)
    assert json.loads(data["payload"])["id"] == event.id
    assert letters[0]["correlationid"] == event.correlationid

    # once the cause is fixed, the dead letter replayed to its topic is handled
    assert not await processed.seen(event)
    handled: list[str] = []

    async def fixed(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        handled.append(envelope.id)
        return []

    consumer.handlers["plan.completed"] = fixed
    await consumer.process(record(event, 8))
    assert handled == [event.id]


async def test_binary_garbage_is_kept_base64_encoded(
    parts: tuple[Publisher, ProcessedEvents, TopicLog],
) -> None:
    publisher, processed, log = parts

    async def handler(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        raise AssertionError("never called for garbage")

    consumer = processor(publisher, processed, handler)
    offset = int(uuid.uuid4().int % 1_000_000)
    await consumer.process(record(None, offset, raw=b"\x00\xff\x10"))
    letters = await log.wait_for(
        lambda: [
            e
            for e in log.events(type="record.deadlettered")
            if e["data"]["offset"] == offset and e["data"]["service"] == consumer.service
        ]
    )
    assert letters[0]["data"]["payload"] == "AP8Q"
    assert letters[0]["data"]["payload_encoding"] == "base64"


async def test_invalid_data_in_a_sound_envelope_keeps_its_story(
    parts: tuple[Publisher, ProcessedEvents, TopicLog],
) -> None:
    publisher, processed, log = parts

    async def handler(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        raise AssertionError("never called for invalid data")

    event = completed(str(uuid.uuid4()))
    broken = event.model_copy(update={"locationid": "beaverton", "data": {"plan_id": "p-1"}})
    consumer = processor(publisher, processed, handler)
    await consumer.process(record(broken, 11))
    letters = await log.wait_for(
        lambda: [
            e for e in log.events(type="record.deadlettered") if e.get("causationid") == event.id
        ]
    )
    # the dead letter follows the event: its correlation and location, for the dashboard
    assert letters[0]["correlationid"] == event.correlationid
    assert letters[0]["locationid"] == "beaverton"
    assert "invalid plan.completed data" in letters[0]["data"]["error"]


async def test_types_a_service_does_not_handle_are_ignored_unread_and_counted(
    parts: tuple[Publisher, ProcessedEvents, TopicLog],
) -> None:
    publisher, processed, _ = parts
    calls: list[str] = []

    async def handler(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        calls.append(envelope.id)
        return []

    consumer = processor(publisher, processed, handler)
    event = completed("c-ignore")
    other = json.loads(encode(event))
    other["type"] = "visit.booked"  # a type this consumer has no handler for
    del other["id"]  # and not even a sound envelope: it is not read
    ignored = json.dumps(other).encode()
    # the same event with its data written before its type: the bytes leave doubt,
    # so it is decoded in full and handled
    wire = json.loads(encode(event))
    data_first = json.dumps({"data": wire.pop("data"), **wire}).encode()

    def count(event_type: str, outcome: str) -> float:
        sample = EVENTS_CONSUMED.labels(consumer.service, "clinic.plans", event_type, outcome)
        return float(sample._value.get())

    await consumer.process_batch([record(None, 1, ignored), record(None, 2, data_first)])
    assert calls == [event.id]
    assert count("visit.booked", "ignored") == 1
    assert count("plan.completed", "handled") == 1
    assert DEADLETTERS.labels(consumer.service, "clinic.plans")._value.get() == 0
