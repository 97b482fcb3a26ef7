"""What one intake costs the notifier in Redis round trips, against real Redis: the
intake, its plan and the plan's nine visits (seventeen reminders and the booking
confirmation) take one read
and one transaction each, the visits together when they arrive as a run; and a
run announces exactly what its visits announce one at a time, redelivered or not.

The count is ``clinicflow_redis_round_trips_total`` of a Redis client of the
test's own; the stream processor's ledger ("already handled", then the marks) is
its own, two per batch, and counted apart where the processor drives the handlers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.notifier.handlers import handlers
from services.notifier.store import NotificationStore
from services.planner.domain import build_plan
from shared.aliases import ClientAliases
from shared.chain import Policy
from shared.codec import encode, wrap
from shared.envelope import Envelope, Trace
from shared.events import EventData, IntakeSubmitted, PlanCreated, VisitBooked
from shared.infra import Infra
from shared.kafka import Outgoing, Publisher, ensure_topics
from shared.metrics import REDIS_ROUND_TRIPS
from shared.redis_store import Keys, ProcessedEvents, connect
from shared.runtime import Foundations, Runtime
from shared.settings import NotifierSettings
from shared.streams import Batched, Handler, RawRecord, Rejected, StreamProcessor
from shared.topics import INTAKE, PLANS, VISITS
from tests.conftest import DEMO_CHAIN
from tests.integration.test_notifier_flow import START, intake, visit_for
from tests.support import SettableClock

pytestmark = pytest.mark.integration

ROUND_TRIPS_PER_INTAKE = 10
ROUND_TRIPS_PER_RECORD = 2  # one read, one transaction


@dataclass
class Notifier:
    runtime: Runtime
    handlers: dict[str, Handler]
    store: NotificationStore
    label: str

    def round_trips(self) -> float:
        return float(REDIS_ROUND_TRIPS.labels(self.label)._value.get())

    async def one(self, envelope: Envelope, data: EventData) -> list[Outgoing]:
        return list(await self.handlers[data.event_type](envelope, data))

    async def run(self, items: Sequence[tuple[Envelope, EventData]]) -> list[list[Outgoing]]:
        booked = self.handlers["visit.booked"]
        assert isinstance(booked, Batched)
        return [list(outputs) for outputs in await booked.many(items)]


@pytest.fixture
async def notifiers(infra: Infra) -> AsyncIterator[list[Notifier]]:
    """Two notifiers on namespaces of their own, at one frozen instant."""
    made: list[Notifier] = []
    for _ in range(2):
        settings = NotifierSettings(
            KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
            REDIS_URL=infra.redis_url,
            CLINICFLOW_REDIS_NAMESPACE=f"test-trips-{uuid.uuid4().hex[:8]}",
            CLINICFLOW_CHAIN_CONFIG=str(DEMO_CHAIN),
            CLINICFLOW_ENV="test",
        )
        base = Foundations.load("notifier", settings)
        base.clock = SettableClock(START)
        label = f"notifier-trips-{uuid.uuid4().hex[:8]}"
        runtime = Runtime(
            base=base,
            redis=connect(settings, service=label),
            keys=Keys(settings.redis_namespace, "notifier"),
            publisher=Publisher(settings, client_id="round-trips"),  # never started: unused
        )
        await runtime.redis.ping()  # the connection's handshake is not the handlers'
        made.append(
            Notifier(
                runtime=runtime,
                handlers=dict(handlers(runtime)),
                store=NotificationStore(runtime.redis, runtime.keys),
                label=label,
            )
        )
    yield made
    for notifier in made:
        await notifier.runtime.redis.aclose()


@dataclass(frozen=True)
class Intake:
    client: IntakeSubmitted
    plan: PlanCreated
    visits: list[VisitBooked]

    @property
    def client_id(self) -> str:
        return self.client.client.client_id


def one_intake(*, email: bool = True) -> Intake:
    """An intake, its plan and nine visits: the first too soon for its two-day reminder."""
    client = intake("trips", email=email)
    plan = build_plan(client, policy=Policy())
    assert isinstance(plan, PlanCreated)
    visits = [
        visit_for(client, start=START + timedelta(days=1 + 4 * n, hours=n % 3), n=n + 1)
        for n in range(9)
    ]
    return Intake(client, plan, [v.model_copy(update={"plan_id": plan.plan_id}) for v in visits])


def envelope(data: EventData, subject: str) -> Envelope:
    return wrap(
        data,
        event_id=str(uuid.uuid4()),
        service="test",
        subject=subject,
        trace=Trace(chainid="northwest-nmt", correlationid=subject),
        time=START,
    )


def published(outputs: Sequence[Outgoing]) -> list[tuple[str, dict[str, Any]]]:
    return [(o.key, o.envelope.model_dump(mode="json")) for o in outputs]


async def test_one_intake_costs_the_notifier_a_bounded_number_of_round_trips(
    notifiers: list[Notifier],
) -> None:
    n = notifiers[0]
    given = one_intake()
    before = n.round_trips()
    await n.one(envelope(given.client, given.client_id), given.client)
    [summary] = await n.one(envelope(given.plan, given.client_id), given.plan)
    runs = await n.run([(envelope(v, given.client_id), v) for v in given.visits])
    spent = n.round_trips() - before

    announced = [o for outputs in runs for o in outputs]
    reminders = [o for o in announced if o.envelope.data["kind"] == "reminder"]
    assert len(reminders) == 17
    assert [o.envelope.data["kind"] for o in announced if o not in reminders] == [
        "booking_confirmation"  # the plan's visits, one message, opened by the first
    ]
    assert {o.envelope.type for o in [summary, *announced]} == {"notification.scheduled"}
    assert spent <= ROUND_TRIPS_PER_INTAKE
    stored = await n.store.for_client(given.client_id)
    assert len(stored) == 19 and {r["status"] for r in stored} == {"scheduled"}


async def test_each_record_alone_takes_one_read_and_one_write(
    notifiers: list[Notifier],
) -> None:
    n = notifiers[0]
    given = one_intake()
    for data in (given.client, given.plan, *given.visits):
        before = n.round_trips()
        await n.one(envelope(data, given.client_id), data)
        assert n.round_trips() - before <= ROUND_TRIPS_PER_RECORD, data.event_type


@pytest.mark.parametrize("email", [True, False], ids=["scheduled", "suppressed"])
async def test_a_run_announces_and_stores_what_its_visits_do_one_by_one(
    notifiers: list[Notifier], email: bool
) -> None:
    alone, together = notifiers
    given = one_intake(email=email)
    items = [(envelope(v, given.client_id), v) for v in given.visits]
    for n in notifiers:
        await n.one(envelope(given.client, given.client_id), given.client)

    one_by_one = [await alone.one(e, v) for e, v in items]
    as_a_run = await together.run(items)

    assert [published(o) for o in as_a_run] == [published(o) for o in one_by_one]
    assert sum(len(o) for o in as_a_run) == 17 + 1  # the reminders, the confirmation
    expected = "notification.scheduled" if email else "notification.suppressed"
    assert {o.envelope.type for outputs in as_a_run for o in outputs} == {expected}
    records = [await n.store.for_client(given.client_id) for n in notifiers]
    assert sorted(records[0], key=str) == sorted(records[1], key=str)
    assert len(records[0]) == 17 + 1


async def test_a_redelivered_run_republishes_the_same_events_and_arms_nothing_again(
    notifiers: list[Notifier],
) -> None:
    n = notifiers[0]
    given = one_intake()
    await n.one(envelope(given.client, given.client_id), given.client)
    items = [(envelope(v, given.client_id), v) for v in given.visits]
    first = await n.run(items)
    # the first reminder is being sent when the run comes again
    soonest = min(datetime_of(o) for outputs in first for o in outputs)
    [claimed] = await n.store.claim_due(now_epoch=soonest, lease_s=30, limit=1)

    again = await n.run(items)
    alone = [await n.one(e, v) for e, v in items]

    assert [published(o) for o in again] == [published(o) for o in first]
    assert [published(o) for o in alone] == [published(o) for o in first]
    assert await n.store.claim_due(now_epoch=soonest, lease_s=30) == []  # not armed twice
    armed = await n.runtime.redis.zrange(n.runtime.keys("due"), 0, -1)
    assert claimed not in armed and len(armed) == 17 + 1 - 1


async def test_a_run_with_a_record_it_cannot_act_on_raises_before_writing_anything(
    notifiers: list[Notifier],
) -> None:
    """The processor then takes the run record by record: nothing of the run may be
    stored already, and the good visits alone arm what they would have."""
    n = notifiers[0]
    given = one_intake()
    await n.one(envelope(given.client, given.client_id), given.client)
    bad = given.visits[4].model_copy(update={"location_id": "nowhere"})
    visits = [*given.visits[:4], bad, *given.visits[5:]]
    items = [(envelope(v, given.client_id), v) for v in visits]

    with pytest.raises(Rejected):
        await n.run(items)
    assert await n.store.for_client(given.client_id) == []
    assert await n.runtime.redis.zcard(n.runtime.keys("due")) == 0

    alone = [await n.one(e, v) for e, v in items if v is not bad]
    # the fifth visit's two reminders are refused; the first opens the confirmation
    assert sum(len(o) for o in alone) == 15 + 1
    assert len(await n.store.for_client(given.client_id)) == 15 + 1


async def test_a_run_under_a_retired_client_id_arms_for_the_survivor(
    notifiers: list[Notifier],
) -> None:
    n = notifiers[0]
    kept, gone = one_intake(), one_intake()
    await n.one(envelope(kept.client, kept.client_id), kept.client)
    async with n.runtime.redis.pipeline(transaction=True) as pipe:
        ClientAliases(n.runtime.redis, n.runtime.keys).record(
            pipe, gone.client_id, kept.client_id, ()
        )
        await pipe.execute()

    runs = await n.run([(envelope(v, gone.client_id), v) for v in gone.visits])
    announced = [o for outputs in runs for o in outputs]

    assert {o.key for o in announced} == {kept.client_id}
    assert {o.envelope.data["client_id"] for o in announced} == {kept.client_id}
    assert {o.envelope.data["channel"] for o in announced} == {"console"}  # kept's contact
    assert len(await n.store.for_client(kept.client_id)) == 17 + 1
    assert await n.store.for_client(gone.client_id) == []


async def test_through_the_stream_processor_the_visits_of_a_plan_are_one_run(
    notifiers: list[Notifier], infra: Infra
) -> None:
    n = notifiers[0]
    given = one_intake()
    await ensure_topics(infra.kafka_bootstrap_servers)
    publisher = Publisher(n.runtime.base.settings, client_id=n.label)
    await publisher.start()
    try:
        consumer = StreamProcessor(
            service="notifier",
            chain_id=n.runtime.chain.chain.id,
            locations=[location.id for location in n.runtime.chain.locations],
            handlers=n.handlers,
            publisher=publisher,
            processed=ProcessedEvents(n.runtime.redis, n.runtime.keys),
            clock=n.runtime.clock,
        )
        batches = [
            [raw(INTAKE.name, 0, given.client_id, given.client)],
            [raw(PLANS.name, 0, given.client_id, given.plan)],
            [raw(VISITS.name, k, given.client_id, v) for k, v in enumerate(given.visits)],
        ]
        spent = []
        for batch in batches:
            before = n.round_trips()
            await consumer.process_batch(batch)
            spent.append(n.round_trips() - before)
    finally:
        await publisher.stop()

    ledger = 2  # the processor's "already handled" check and its marks, per batch
    assert spent[2] <= ledger + ROUND_TRIPS_PER_RECORD  # nine visits: one read, one write
    assert sum(spent) <= ROUND_TRIPS_PER_INTAKE + ledger * len(batches)
    stored = await n.store.for_client(given.client_id)
    assert len(stored) == 19 and {r["status"] for r in stored} == {"scheduled"}


def raw(topic: str, offset: int, key: str, data: EventData) -> RawRecord:
    body = encode(envelope(data, key))
    return RawRecord(topic=topic, partition=0, offset=offset, key=key.encode(), value=body)


def datetime_of(output: Outgoing) -> float:
    return datetime.fromisoformat(output.envelope.data["due_at"]).timestamp()
