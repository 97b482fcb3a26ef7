"""Redis round trips of one intake's journey through the planner and the scheduler,
against the run's real Redis: an intake becomes a plan, the plan's nine visits are
booked, an assessment revises the plan, the scheduler re-plans it and the first
visit's outcome reaches the planner.

The handlers are called as the consumer calls them, on clients of their own counted
by ``shared.redis_store.connect`` (``clinicflow_redis_round_trips_total``); the
consumer's own "already handled" read and marks are not part of these counts. Each
bound is what the handler needs when nothing competes for the location, so a read
or a write added per visit, or a second script per booking, shows up here."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import cast

import pytest
from prometheus_client import REGISTRY

from services.planner.handlers import handlers as planner_handlers
from services.scheduler.handlers import handlers as scheduler_handlers
from shared.clock import Clock
from shared.codec import wrap
from shared.envelope import Envelope, Trace
from shared.events import EVENT_MODELS, EventData, IntakeSubmitted, VisitBooked
from shared.events.intake import (
    AssessmentRecorded,
    ClientRecord,
    Complaint,
    Health,
    Screening,
    TriggerPoint,
)
from shared.events.visits import VisitCompleted
from shared.infra import Infra
from shared.kafka import Outgoing, Publisher
from shared.redis_store import Keys, connect
from shared.runtime import Foundations, Runtime
from shared.settings import PlannerSettings, SchedulerSettings
from shared.streams import Handler
from tests.conftest import DEMO_CHAIN

pytestmark = pytest.mark.integration

NOW = datetime(2027, 3, 1, 16, tzinfo=UTC)  # a Monday, 08:00 in Beaverton
INTAKE_TRIPS = 2  # replay check and survivor in one read, the plan in one transaction
ASSESSMENT_TRIPS = 3  # and the active plan's version, intake and progress in one read
OUTCOME_TRIPS = 2  # a visit's outcome: the plan and its progress read with the replay check
BOOKING_TRIPS = 3  # replay check, lock and calendar in two reads; one script applies
REPLAN_TRIPS = 4  # and what the plan holds read with them, its visits in one more
REPLAY_TRIPS = 1  # a redelivered event: its stored outputs, nothing else


class FixedClock(Clock):
    def now(self) -> datetime:
        return NOW

    def real_seconds_until(self, instant: datetime) -> float:
        return 0.0


@dataclass
class Service:
    """One service's handlers on a Redis client whose round trips are counted apart."""

    handlers: dict[str, Handler]
    label: str

    def trips(self) -> float:
        value = REGISTRY.get_sample_value(
            "clinicflow_redis_round_trips_total", {"service": self.label}
        )
        return value or 0.0

    async def handle(self, envelope: Envelope, data: EventData) -> tuple[Sequence[Outgoing], int]:
        """What handling ``data`` produced, and the round trips it took."""
        before = self.trips()
        produced = await self.handlers[envelope.type](envelope, data)
        return produced, int(self.trips() - before)


@pytest.fixture
async def services(infra: Infra) -> AsyncIterator[tuple[Service, Service]]:
    namespace = f"test-round-trips-{uuid.uuid4().hex[:8]}"
    made = []
    clients = []
    for name, settings_class in (("planner", PlannerSettings), ("scheduler", SchedulerSettings)):
        settings = settings_class(
            REDIS_URL=infra.redis_url, CLINICFLOW_CHAIN_CONFIG=str(DEMO_CHAIN)
        )
        label = f"{name}-{namespace}"
        client = connect(settings, service=label)
        clients.append(client)
        base = Foundations.load(name, settings)
        base.clock = FixedClock()
        runtime = Runtime(
            base=base,
            redis=client,
            keys=Keys(namespace, name),
            publisher=cast(Publisher, object()),  # handlers return their events
        )
        factory = planner_handlers if name == "planner" else scheduler_handlers
        made.append(Service(handlers=dict(factory(runtime)), label=label))
    yield made[0], made[1]
    keys = [k async for k in clients[0].scan_iter(f"{namespace}:*", count=1000)]
    if keys:
        await clients[0].delete(*keys)
    for client in clients:
        await client.aclose()


def intake(n: str) -> IntakeSubmitted:
    """A chronic two-region intake: a plan of nine visits."""
    return IntakeSubmitted(
        intake_id=f"intake-{n}",
        client=ClientRecord(client_id=f"client-{n}", name="Round Trip"),
        location_id="beaverton",
        complaints=[
            Complaint(region="neck", intensity=7, qualities=["ache"], onset=date(2026, 6, 1)),
            Complaint(region="low_back", intensity=5, qualities=["dull"], onset=date(2026, 9, 1)),
        ],
        health=Health(),
        screening=Screening(outcome="clear"),
        submitted_at=NOW,
    )


def assessment(n: str) -> AssessmentRecorded:
    return AssessmentRecorded(
        assessment_id=f"assessment-{n}",
        client_id=f"client-{n}",
        therapist_id="t-ana",
        location_id="beaverton",
        trigger_points=[TriggerPoint(muscle="upper trapezius", side="right", type="active")],
        recorded_at=NOW,
    )


def envelope_of(data: EventData, subject: str) -> Envelope:
    return wrap(
        data,
        event_id=str(uuid.uuid4()),
        service="test",
        subject=subject,
        trace=Trace(chainid="northwest-nmt", correlationid=subject),
        time=NOW,
    )


def data_of(item: Outgoing) -> EventData:
    return EVENT_MODELS[item.envelope.type].model_validate(item.envelope.data)


def types(produced: Sequence[Outgoing]) -> list[str]:
    return [item.envelope.type for item in produced]


async def journey(planner: Service, scheduler: Service, n: str) -> dict[str, int]:
    """One client's intake, booking, assessment and re-plan; the round trips of each."""
    trips = {}
    submitted = intake(n)
    (plan,), trips["intake"] = await planner.handle(envelope_of(submitted, n), submitted)
    assert plan.envelope.type == "plan.created"
    booked, trips["booking"] = await scheduler.handle(plan.envelope, data_of(plan))
    assert types(booked) == ["visit.booked"] * 9
    assessed = assessment(n)
    (revised,), trips["assessment"] = await planner.handle(envelope_of(assessed, n), assessed)
    assert revised.envelope.type == "plan.revised"
    _, trips["replan"] = await scheduler.handle(revised.envelope, data_of(revised))
    first = VisitBooked.model_validate(booked[0].envelope.data)
    done = VisitCompleted(
        visit_id=first.visit_id,
        plan_id=first.plan_id,
        client_id=first.client_id,
        location_id=first.location_id,
        therapist_id=first.therapist_id,
        pain_before=6,
        pain_after=3,
        completed_at=first.end,
    )
    _, trips["outcome"] = await planner.handle(envelope_of(done, n), done)
    return trips


async def test_an_intake_costs_each_service_a_few_round_trips(
    services: tuple[Service, Service],
) -> None:
    planner, scheduler = services
    await journey(planner, scheduler, "warm-up")  # the scripts are loaded on first use
    trips = await journey(planner, scheduler, "counted")
    bounds = {
        "intake": INTAKE_TRIPS,
        "booking": BOOKING_TRIPS,
        "assessment": ASSESSMENT_TRIPS,
        "replan": REPLAN_TRIPS,
        "outcome": OUTCOME_TRIPS,
    }
    assert {step: n for step, n in trips.items() if n > bounds[step]} == {}, trips


async def test_a_redelivered_event_costs_one_round_trip_and_repeats_its_outputs(
    services: tuple[Service, Service],
) -> None:
    planner, scheduler = services
    submitted = intake("again")
    cause = envelope_of(submitted, "again")
    (plan,), _ = await planner.handle(cause, submitted)
    booked, _ = await scheduler.handle(plan.envelope, data_of(plan))

    (replanned,), planner_trips = await planner.handle(cause, submitted)
    rebooked, scheduler_trips = await scheduler.handle(plan.envelope, data_of(plan))
    assert planner_trips <= REPLAY_TRIPS and scheduler_trips <= REPLAY_TRIPS
    assert replanned.envelope == plan.envelope
    assert [b.envelope for b in rebooked] == [b.envelope for b in booked]
