"""No double booking: two scheduler instances booking plans at one location at the
same time never give a therapist or a room two overlapping visits."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
import redis.asyncio as aioredis

from services.planner.domain import build_plan
from services.scheduler.handlers import handlers
from shared.codec import wrap
from shared.envelope import Trace
from shared.events import IntakeSubmitted, PlanCreated, VisitBooked
from shared.events.intake import ClientRecord, Complaint, Health, Screening
from shared.infra import Infra
from shared.kafka import Publisher
from shared.redis_store import Keys
from shared.runtime import Foundations, Runtime
from shared.settings import SchedulerSettings
from tests.conftest import DEMO_CHAIN

pytestmark = pytest.mark.integration
START = datetime(2027, 3, 1, 16, tzinfo=UTC)


def plan_for(n: int, chain_policy: object) -> PlanCreated:
    intake = IntakeSubmitted(
        intake_id=f"concurrency-{n}",
        client=ClientRecord(client_id=f"client-{n}", name="Concurrent Client"),
        location_id="beaverton",
        complaints=[
            Complaint(region="neck", intensity=7, qualities=["ache"], onset=date(2026, 6, 1))
        ],
        health=Health(),
        screening=Screening(outcome="clear"),
        submitted_at=START,
    )
    return build_plan(intake, policy=chain_policy)  # type: ignore[arg-type]


@pytest.fixture
async def schedulers(infra: Infra) -> AsyncIterator[list[Runtime]]:
    settings = SchedulerSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
        REDIS_URL=infra.redis_url,
        CLINICFLOW_CHAIN_CONFIG=str(DEMO_CHAIN),
        CLINICFLOW_CLOCK="sim:2027-03-01T16:00:00Z@1x",
    )
    namespace = f"test-concurrency-{uuid.uuid4().hex[:8]}"
    runtimes = []
    for _ in range(2):  # two instances: separate connections, one Redis, one namespace
        base = Foundations.load("scheduler", settings)
        client = aioredis.Redis.from_url(infra.redis_url, decode_responses=True)
        publisher = Publisher(settings, client_id="unused")  # handlers return events, never send
        runtimes.append(
            Runtime(base=base, redis=client, keys=Keys(namespace, "scheduler"), publisher=publisher)
        )
    yield runtimes
    for runtime in runtimes:
        await runtime.redis.aclose()


async def test_two_instances_booking_at_once_never_overlap(schedulers: list[Runtime]) -> None:
    policy = schedulers[0].chain.policy_for("beaverton")
    plans = [plan_for(n, policy) for n in range(24)]
    on_plan = [handlers(runtime)["plan.created"] for runtime in schedulers]
    trace = Trace(chainid="northwest-nmt", correlationid="concurrency")

    async def book(n: int, plan: PlanCreated) -> list[VisitBooked]:
        cause = wrap(
            plan,
            event_id=str(uuid.uuid4()),
            service="t",
            subject=plan.plan_id,
            trace=trace,
            time=START,
        )
        outputs = await on_plan[n % 2](cause, plan)
        return [
            VisitBooked.model_validate(o.envelope.data)
            for o in outputs
            if o.envelope.type == "visit.booked"
        ]

    booked = [
        v
        for visits in await asyncio.gather(*(book(n, p) for n, p in enumerate(plans)))
        for v in visits
    ]
    assert len(booked) > 100  # the location is busy: the instances really competed
    for a, b in itertools.combinations(booked, 2):
        if a.start < b.end and b.start < a.end:
            assert a.therapist_id != b.therapist_id, (a.visit_id, b.visit_id)
            assert a.room != b.room, (a.visit_id, b.visit_id)


async def test_a_redelivered_plan_books_nothing_new(schedulers: list[Runtime]) -> None:
    plan = plan_for(99, schedulers[0].chain.policy_for("beaverton"))
    trace = Trace(chainid="northwest-nmt", correlationid="redelivery")
    cause = wrap(
        plan, event_id=str(uuid.uuid4()), service="t", subject=plan.plan_id, trace=trace, time=START
    )
    first = await handlers(schedulers[0])["plan.created"](cause, plan)
    again = await handlers(schedulers[1])["plan.created"](cause, plan)
    assert [o.envelope for o in again] == [o.envelope for o in first]
