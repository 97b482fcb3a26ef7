"""The stream processor a batch at a time, against the real broker and Redis: each
client key keeps its order, duplicates are skipped, a bad record is dead-lettered
while the rest of its batch is handled, a transient failure redoes only what did not
finish, and offsets are committed only once a record's outputs are acknowledged."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.binding import structured_headers
from shared.clock import parse_clock
from shared.codec import encode, wrap
from shared.envelope import Envelope, Trace
from shared.events import EventData, PlanCompleted, VisitCancelled
from shared.infra import Infra
from shared.kafka import Outgoing, Publisher, PublishError, ensure_topics
from shared.redis_store import Keys, ProcessedEvents, connect
from shared.runtime import Foundations, running
from shared.settings import CommonSettings
from shared.streams import Batched, RawRecord, StreamProcessor
from shared.topics import PLANS, VISITS
from tests.conftest import DEMO_CHAIN
from tests.support import TopicLog, committed_offset, until

pytestmark = pytest.mark.integration
NOW = datetime(2027, 3, 8, 16, tzinfo=UTC)
TRACE = Trace(chainid="northwest-nmt", correlationid="batch-test")


def completed(client_id: str, n: int) -> Envelope:
    data = PlanCompleted(
        plan_id=f"p-{client_id}-{n}",
        version=1,
        client_id=client_id,
        location_id="beaverton",
        reason="sessions done",
        completed_at=NOW,
    )
    return wrap(
        data, event_id=str(uuid.uuid4()), service="t", subject=client_id, trace=TRACE, time=NOW
    )


def declined(envelope: Envelope) -> Outgoing:
    """The output a test handler gives for ``envelope``: a derived id, as rules do."""
    data = PlanCompleted(
        plan_id=f"out-{envelope.data['plan_id']}",
        version=1,
        client_id=str(envelope.data["client_id"]),
        location_id="beaverton",
        reason="a test output",
        completed_at=NOW,
    )
    out = wrap(
        data, event_id=f"out-{envelope.id}", service="t", subject="out", trace=TRACE, time=NOW
    )
    return Outgoing(key=str(envelope.data["client_id"]), envelope=out)


def raw(envelope: Envelope | None, offset: int, key: str, value: bytes | None = None) -> RawRecord:
    body = encode(envelope) if envelope is not None else value
    return RawRecord(topic="clinic.plans", partition=0, offset=offset, key=key.encode(), value=body)


@pytest.fixture
async def settings(infra: Infra, namespace: str) -> CommonSettings:
    await ensure_topics(infra.kafka_bootstrap_servers)
    return CommonSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
        REDIS_URL=infra.redis_url,
        CLINICFLOW_REDIS_NAMESPACE=namespace,
        CLINICFLOW_CHAIN_CONFIG=DEMO_CHAIN,
        CLINICFLOW_ENV="test",
    )


@pytest.fixture
async def parts(
    settings: CommonSettings, infra: Infra, namespace: str
) -> AsyncIterator[tuple[Publisher, ProcessedEvents, TopicLog, str]]:
    service = f"batch-{uuid.uuid4().hex[:8]}"
    publisher = Publisher(settings, client_id=service)
    await publisher.start()
    client = connect(settings, service=service)
    log = await TopicLog(infra.kafka_bootstrap_servers).start()
    yield publisher, ProcessedEvents(client, Keys(namespace, service)), log, service
    await log.stop()
    await client.aclose()
    await publisher.stop()


def processor(
    parts: tuple[Publisher, ProcessedEvents, TopicLog, str], handler: object
) -> StreamProcessor:
    publisher, processed, _, service = parts
    return StreamProcessor(
        service=service,
        chain_id="northwest-nmt",
        locations=["beaverton"],
        handlers={"plan.completed": handler},  # type: ignore[dict-item]
        publisher=publisher,
        processed=processed,
        clock=parse_clock("system"),
    )


def round_trips(service: str) -> float:
    return (
        REGISTRY.get_sample_value("clinicflow_redis_round_trips_total", {"service": service}) or 0.0
    )


async def test_a_batch_keeps_each_keys_order_skips_duplicates_and_dead_letters_only_the_bad(
    parts: tuple[Publisher, ProcessedEvents, TopicLog, str],
) -> None:
    _, processed, log, service = parts
    calls: list[tuple[str, int]] = []
    a, b = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"

    async def handler(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        key = str(envelope.data["client_id"])
        calls.append((key, int(str(envelope.data["plan_id"]).rsplit("-", 1)[1])))
        await asyncio.sleep(0.01 if key == a else 0)  # keys interleave while one waits
        if envelope.data["plan_id"] == f"p-{b}-2":
            raise KeyError("boom")
        return [declined(envelope)]

    events = [completed(a if n % 2 == 0 else b, n // 2) for n in range(10)]
    again = events[4]  # delivered twice in one batch, as a redelivery can
    records = [
        raw(event, offset, str(event.data["client_id"])) for offset, event in enumerate(events)
    ]
    records.insert(3, raw(None, 100, a, b"\x00 not an event"))
    records.append(raw(again, 101, str(again.data["client_id"])))
    consumer = processor(parts, handler)
    await processed.seen(events[0])  # the connection's handshake is not the batch's
    before = round_trips(service)

    await consumer.process_batch(records)

    assert [n for key, n in calls if key == a] == [0, 1, 2, 3, 4]
    assert [n for key, n in calls if key == b] == [0, 1, 2, 3, 4]
    # one pipelined "already handled" check and one pipeline of marks for the batch
    assert round_trips(service) - before == 2
    bad = next(e for e in events if e.data["plan_id"] == f"p-{b}-2")
    handled = [e for e in events if e is not bad]
    for event in handled:
        assert await processed.seen(event)
    assert not await processed.seen(bad)
    wanted = {f"out-{event.id}" for event in handled}
    await log.wait_for(lambda: wanted <= {e["id"] for e in log.events(type="plan.completed")})
    letters = await log.wait_for(lambda: _letters_of(log, service, 2))
    reasons = {letter["data"]["offset"]: letter["data"]["error"] for letter in letters}
    assert "handler error: KeyError" in reasons[5]
    assert "not JSON" in reasons[100]
    assert calls.count((str(again.data["client_id"]), 2)) == 1  # the duplicate ran once


def _letters_of(log: TopicLog, service: str, n: int) -> list[dict[str, object]] | None:
    letters = [e for e in log.events(type="record.deadlettered") if e["data"]["service"] == service]
    return letters if len(letters) >= n else None


async def test_a_transient_failure_redoes_only_what_did_not_finish(
    parts: tuple[Publisher, ProcessedEvents, TopicLog, str],
) -> None:
    _, processed, _, _ = parts
    calls: list[str] = []
    failed_once: set[str] = set()
    a, b = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"

    async def handler(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        calls.append(envelope.id)
        if envelope.data["plan_id"] == f"p-{b}-0" and not failed_once:
            failed_once.add(envelope.id)
            raise RedisConnectionError("redis went away")
        return [declined(envelope)]

    events = [completed(a, 0), completed(b, 0), completed(a, 1), completed(b, 1)]
    records = [raw(event, n, str(event.data["client_id"])) for n, event in enumerate(events)]
    await processor(parts, handler).process_batch(records)

    # a's records ran once; b's first ran twice (failed, then passed), its second once
    assert calls.count(events[0].id) == 1 and calls.count(events[2].id) == 1
    assert calls.count(events[1].id) == 2 and calls.count(events[3].id) == 1
    assert calls.index(events[3].id) > len(calls) - 2  # b's second only after its first passed
    for event in events:
        assert await processed.seen(event)


async def test_a_batched_handler_takes_a_keys_run_and_falls_back_one_by_one(
    parts: tuple[Publisher, ProcessedEvents, TopicLog, str],
) -> None:
    _, processed, log, _ = parts
    runs: list[int] = []
    ones: list[str] = []
    client = f"c-{uuid.uuid4().hex[:6]}"

    async def one(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        ones.append(envelope.id)
        if envelope.data["plan_id"] == f"p-{client}-3":
            raise ValueError("this one is bad")
        return [declined(envelope)]

    async def many(items: Sequence[tuple[Envelope, EventData]]) -> Sequence[Sequence[Outgoing]]:
        runs.append(len(items))
        if any(envelope.data["plan_id"] == f"p-{client}-3" for envelope, _ in items):
            raise ValueError("a bad record in the run")
        return [[declined(envelope)] for envelope, _ in items]

    first = [completed(client, n) for n in range(3)]
    await processor(parts, Batched(one, many)).process_batch(
        [raw(event, n, client) for n, event in enumerate(first)]
    )
    assert runs == [3] and ones == []
    assert all([await processed.seen(event) for event in first])

    second = [completed(client, n) for n in range(3, 6)]
    await processor(parts, Batched(one, many)).process_batch(
        [raw(event, n, client) for n, event in enumerate(second, start=3)]
    )
    # the run failed; one by one, only the bad record is dead-lettered
    assert runs == [3, 3] and ones == [event.id for event in second]
    assert [await processed.seen(event) for event in second] == [False, True, True]
    await log.wait_for(
        lambda: (
            [
                e
                for e in log.events(type="record.deadlettered")
                if e.get("causationid") == second[0].id
            ]
            or None
        )
    )


async def test_offsets_are_committed_only_once_outputs_are_acknowledged(
    settings: CommonSettings,
) -> None:
    """The consumer of two topics: the plans topic's outputs are held unacknowledged
    while the visits topic flows. Commits happen (the visits record's offset is
    committed) and the held record's offset is not, until its outputs are through."""
    service = f"commit-{uuid.uuid4().hex[:8]}"
    client = f"c-{uuid.uuid4().hex[:8]}"
    release = asyncio.Event()
    held: list[str] = []

    async def on_plan(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        return [declined(envelope)] if envelope.subject == client else []

    async def on_visit(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        return []

    publisher = Publisher(settings, client_id=service)
    await publisher.start()
    try:
        async with running(
            Foundations.load(service, settings),
            consumes=[PLANS, VISITS],
            handlers=lambda runtime: {"plan.completed": on_plan, "visit.cancelled": on_visit},
        ) as runtime:
            real = runtime.publisher.publish_each

            async def acknowledged_later(items: Sequence[Outgoing]) -> list[PublishError | None]:
                items = list(items)
                if any(item.envelope.id.startswith("out-") for item in items):
                    held.extend(item.envelope.id for item in items)
                    await release.wait()
                return await real(items)

            runtime.publisher.publish_each = acknowledged_later  # type: ignore[method-assign]
            plan = completed(client, 0)
            visit = VisitCancelled(
                visit_id=f"v-{client}",
                plan_id=f"p-{client}",
                client_id=client,
                location_id="beaverton",
                by="client",
                cancelled_at=NOW,
            )
            visit_event = wrap(
                visit,
                event_id=str(uuid.uuid4()),
                service="t",
                subject=client,
                trace=TRACE,
                time=NOW,
            )
            group = f"clinicflow-{service}"
            plan_at = await _send(publisher, Outgoing(key=client, envelope=plan))
            await until(lambda: _true(bool(held)), timeout=60)
            visit_at = await _send(publisher, Outgoing(key=client, envelope=visit_event))
            bootstrap = settings.kafka_bootstrap_servers
            # commits go on: the visits record is committed past...
            await until(lambda: _past(bootstrap, group, VISITS.name, visit_at), timeout=60)
            # ... while the plans record, whose outputs are not acknowledged, is not
            assert await committed_offset(bootstrap, group, PLANS.name, plan_at[0]) <= plan_at[1]
            release.set()
            await until(lambda: _past(bootstrap, group, PLANS.name, plan_at), timeout=60)
    finally:
        release.set()
        await publisher.stop()


async def _send(publisher: Publisher, item: Outgoing) -> tuple[int, int]:
    return await publisher.send_raw(
        item.topic, key=item.key.encode(), value=encode(item.envelope), headers=structured_headers()
    )


async def _past(bootstrap: str, group: str, topic: str, at: tuple[int, int]) -> bool:
    return await committed_offset(bootstrap, group, topic, at[0]) > at[1]


async def _true(value: bool) -> bool:
    return value
