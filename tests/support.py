"""Test helpers: read the public topics back, and wait on conditions with deadlines."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from shared.codec import encode, wrap
from shared.envelope import Trace, derived_id
from shared.events import IntakeSubmitted, PlanCompleted
from shared.events.intake import ClientRecord, Complaint, ContactConsent, Health, Screening
from shared.infra import Infra, free_port
from shared.kafka import Outgoing
from shared.settings import IntakeSettings
from shared.topics import PUBLIC_TOPICS
from tests.conftest import DEMO_CHAIN

T = TypeVar("T")
CLOUDEVENTS_ATTRIBUTES = (
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "chainid",
    "locationid",
    "correlationid",
)


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def event(self) -> dict[str, Any]:
        assert self.value is not None
        return dict(json.loads(self.value))


class TopicLog:
    """Everything on the public topics since the beginning, collected in the background."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.records: list[Record] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> TopicLog:
        self._consumer = AIOKafkaConsumer(
            *(spec.name for spec in PUBLIC_TOPICS),
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=25,
            metadata_max_age_ms=1000,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._collect())
        return self

    async def _collect(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for r in records:
                    key = r.key.decode() if r.key is not None else None
                    self.records.append(
                        Record(r.topic, r.partition, r.offset, key, r.value, tuple(r.headers))
                    )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._consumer is not None:
            await self._consumer.stop()

    def events(self, **match: Any) -> list[dict[str, Any]]:
        """Decoded events whose top-level attributes equal ``match``."""
        found = []
        for record in self.records:
            try:
                event = record.event
            except (ValueError, AssertionError, RecursionError):  # poison records, tombstones
                continue
            if all(event.get(k) == v for k, v in match.items()):
                found.append(event)
        return found

    def record_of(self, event_id: str) -> Record | None:
        """The first record carrying the event ``event_id`` (undecodable ones skipped)."""
        for record in self.records:
            try:
                if record.event.get("id") == event_id:
                    return record
            except (ValueError, AssertionError, RecursionError):
                continue
        return None

    def for_client(self, event_type: str, client_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events(type=event_type) if e["data"].get("client_id") == client_id]

    async def wait_for(self, condition: Callable[[], T | None], *, timeout: float = 60.0) -> T:
        return await eventually(condition, timeout=timeout)

    async def caught_up(self, *, timeout: float = 30.0) -> None:
        """Wait until everything on the topics right now has been read (to count records).

        Judged by the records collected, not by the consumer's position: a position
        waits, without a deadline, for an offset reset the broker may be slow to
        answer, and this must fail at its deadline instead."""
        assert self._consumer is not None
        consumer = self._consumer
        async with asyncio.timeout(timeout):
            ends = await consumer.end_offsets(list(consumer.assignment()))
        wanted = {(tp.topic, tp.partition): end - 1 for tp, end in ends.items() if end > 0}

        def missing() -> list[tuple[str, int]]:
            seen: dict[tuple[str, int], int] = {}
            for r in self.records:
                key = (r.topic, r.partition)
                seen[key] = max(seen.get(key, -1), r.offset)
            return [key for key, last in wanted.items() if seen.get(key, -1) < last]

        deadline = time.monotonic() + timeout
        while behind := missing():
            if time.monotonic() > deadline:
                raise AssertionError(f"not read to the end within {timeout:.0f} s: {behind}")
            await asyncio.sleep(0.05)


async def eventually(condition: Callable[[], T | None], *, timeout: float = 60.0) -> T:
    """Poll ``condition`` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:.0f} s")
        await asyncio.sleep(0.05)


async def until(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0) -> T:
    """``eventually`` for a condition that has to be awaited (Redis, HTTP)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:.0f} s")
        await asyncio.sleep(0.05)


@dataclass
class SettableClock:
    """A service's shared clock, moved by the test: "it is due" is a fact of the test,
    not of how fast the machine is."""

    at: datetime

    def now(self) -> datetime:
        return self.at

    def real_seconds_until(self, instant: datetime) -> float:
        return 0.0 if instant <= self.at else 3600.0  # only the test moves time


async def committed_offset(bootstrap: str, group: str, topic: str, partition: int) -> int:
    """The consumer group's committed offset (next record to read) on one partition, or -1.

    Asked through a consumer that never subscribes, so it does not join the group."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        committed = await consumer.committed(TopicPartition(topic, partition))
    finally:
        await consumer.stop()
    return -1 if committed is None else int(committed)


async def wait_committed_past(
    bootstrap: str, group: str, topic: str, partition: int, offset: int, *, timeout: float = 60.0
) -> None:
    """Wait until ``group`` has committed beyond ``offset``: it has handled that record."""
    deadline = time.monotonic() + timeout
    while await committed_offset(bootstrap, group, topic, partition) <= offset:
        if time.monotonic() > deadline:
            raise AssertionError(f"{group} did not get past {topic}[{partition}]@{offset}")
        await asyncio.sleep(0.2)


@asynccontextmanager
async def in_process_service(
    build: Callable[[Any], FastAPI], settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A service app with its lifespan running (Redis, broker), reached over ASGI."""
    app = build(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
            yield http


def intake_settings(infra: Infra, namespace: str, **overrides: Any) -> IntakeSettings:
    """Settings for an intake service under test: the run's broker, Redis and namespace,
    the demo chain, and a rate limit out of the way (the limit has tests of its own)."""
    values: dict[str, Any] = {
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap_servers,
        "REDIS_URL": infra.redis_url,
        "CLINICFLOW_REDIS_NAMESPACE": namespace,
        "CLINICFLOW_CHAIN_CONFIG": DEMO_CHAIN,
        "CLINICFLOW_ENV": "test",
        "API_RATE_LIMIT_PER_MINUTE": 60_000,
        "API_RATE_LIMIT_BURST": 10_000,
        **overrides,
    }
    return IntakeSettings(**values)


@asynccontextmanager
async def served(build: Callable[[Any], FastAPI], settings: Any) -> AsyncIterator[str]:
    """A service app behind a real uvicorn server on a free port (for what the ASGI
    transport cannot do, such as reading a server-sent event stream as it comes)."""
    port = free_port()
    # log_config=None: uvicorn must not reconfigure the process's loggers (as serve())
    config = uvicorn.Config(
        build(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        log_config=None,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await until(_started(server))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


def _started(server: Any) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        if server.started:
            return True
        await asyncio.sleep(0.05)
        return False

    return probe


def intake_record(
    client_id: str, *, name: str = "Sam Sample", email: str | None = None, region: str = "low_back"
) -> bytes:
    """A valid ``intake.submitted`` record value for the demo chain's Beaverton, as a
    producer other than the intake service would write it (e-mail consent with an
    e-mail)."""
    intake_id = str(uuid.uuid4())
    data = IntakeSubmitted(
        intake_id=intake_id,
        client=ClientRecord(
            client_id=client_id,
            name=name,
            email=email,
            contact_consent=ContactConsent(email=email is not None),
        ),
        location_id="beaverton",
        complaints=[Complaint(region=region, intensity=6, qualities=["ache"], duration_weeks=4)],
        health=Health(),
        screening=Screening(outcome="clear"),
        submitted_at=datetime(2027, 3, 8, 16, 30, tzinfo=UTC),
    )
    envelope = wrap(
        data,
        event_id=derived_id("intake.submitted", intake_id),
        service="test",
        subject=client_id,
        trace=Trace(chainid="northwest-nmt", correlationid=intake_id, locationid="beaverton"),
        time=data.submitted_at,
    )
    return encode(envelope)


def plan_completed(
    client_id: str, *, service: str = "outbox-test", reason: str = "course done"
) -> Outgoing:
    """A ``plan.completed`` for ``client_id``, keyed by the client as the services key
    their events: an event of that client to put in an outbox ahead of others."""
    at = datetime(2027, 3, 8, 16, tzinfo=UTC)
    data = PlanCompleted(
        plan_id=f"plan-{uuid.uuid4().hex[:8]}",
        version=1,
        client_id=client_id,
        location_id="beaverton",
        reason=reason,
        completed_at=at,
    )
    envelope = wrap(
        data,
        event_id=str(uuid.uuid4()),
        service=service,
        subject=client_id,
        trace=Trace(chainid="northwest-nmt", correlationid=str(uuid.uuid4())),
        time=at,
    )
    return Outgoing(key=client_id, envelope=envelope)
