"""The review date is enforced against the run's broker and Redis (DOMAIN.md 5, seed
003's 4-14 days): a plan whose review date passes at its location with nothing to
judge is revised review_overdue, then lapses; a check-in answer counts as a reading;
every decision is published once, with an id derived from (plan, version), however
often the sweep runs and even when the broker missed it the first time.

Intakes and check-ins are handed to the planner's handlers as its consumer would; the
service's clock is a settable one, so "the date has passed" is a fact of the test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.planner.api import router
from services.planner.handlers import handlers
from services.planner.review_sweep import ReviewSweep, index_existing
from services.planner.store import REVIEW_DUE, PlanStore
from shared.codec import wrap
from shared.envelope import Trace, derived_id
from shared.events import EventData, IntakeSubmitted
from shared.events.intake import (
    AssessmentRecorded,
    ClientRecord,
    Complaint,
    Health,
    Screening,
    TriggerPoint,
)
from shared.events.notifications import CheckinReplied
from shared.events.plans import PlanCreated, PlanRevised
from shared.events.visits import VisitCompleted
from shared.infra import Infra
from shared.kafka import Outgoing, PublishError
from shared.runtime import Runtime
from shared.service import build_service
from shared.settings import PlannerSettings
from shared.streams import StateMoved
from tests.conftest import DEMO_CHAIN
from tests.support import SettableClock, TopicLog

pytestmark = pytest.mark.integration

SUBMITTED = datetime(2027, 3, 1, 17, tzinfo=UTC)  # Monday 09:00 in Beaverton
REVIEW_BY = date(2027, 3, 15)  # fourteen days on
# the review date is past in UTC but not yet in Beaverton (20:00 on the 15th there)
PAST_IN_UTC_ONLY = datetime(2027, 3, 16, 3, tzinfo=UTC)
PAST_IN_BEAVERTON = datetime(2027, 3, 16, 9, tzinfo=UTC)  # 02:00 on the 16th there


@dataclass
class Planner:
    runtime: Runtime
    clock: SettableClock

    async def receive(self, data: EventData, *, event_id: str | None = None) -> list[Outgoing]:
        """Hand an event to the planner as its consumer would (``event_id``: the same
        record again); what it produced."""
        cause = wrap(
            data,
            event_id=event_id or str(uuid.uuid4()),
            service="test",
            subject="test",
            trace=Trace(chainid="northwest-nmt", correlationid="test"),
            time=self.clock.now(),
        )
        return list(await handlers(self.runtime)[data.event_type](cause, data))


@pytest.fixture
async def planner(infra: Infra) -> AsyncIterator[Planner]:
    settings = PlannerSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
        REDIS_URL=infra.redis_url,
        CLINICFLOW_REDIS_NAMESPACE=f"test-reviews-{uuid.uuid4().hex[:8]}",
        CLINICFLOW_CHAIN_CONFIG=str(DEMO_CHAIN),
        CLINICFLOW_ENV="test",
    )
    app = build_service(
        service="planner", settings=settings, description="planner under test", routers=[router]
    )
    clock = SettableClock(SUBMITTED)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        runtime.base.clock = clock
        yield Planner(runtime=runtime, clock=clock)


def an_intake(n: str) -> IntakeSubmitted:
    """An acute neck: four sessions, reviewed after four or by 2027-03-15."""
    return IntakeSubmitted(
        intake_id=f"reviews-{n}-{uuid.uuid4().hex[:6]}",
        client=ClientRecord(client_id=f"client-{n}-{uuid.uuid4().hex[:6]}", name="Review Client"),
        location_id="beaverton",
        complaints=[
            Complaint(region="neck", intensity=6, qualities=["ache"], onset=date(2027, 2, 1))
        ],
        health=Health(),
        screening=Screening(outcome="clear"),
        submitted_at=SUBMITTED,
    )


async def plan_of(planner: Planner, n: str) -> PlanCreated:
    (created,) = await planner.receive(an_intake(n))
    plan = PlanCreated.model_validate(created.envelope.data)
    assert plan.review_by == REVIEW_BY
    return plan


def first_visit(plan: PlanCreated, *, at: datetime) -> VisitCompleted:
    """The plan's first visit, done at ``at``, with pain 6 carried in."""
    return VisitCompleted(
        visit_id=f"{plan.plan_id}-1",
        plan_id=plan.plan_id,
        client_id=plan.client_id,
        location_id=plan.location_id,
        therapist_id="t-ana",
        pain_before=6,
        pain_after=3,
        completed_at=at,
    )


def mine(published: list[Outgoing], plan_id: str) -> list[dict[str, Any]]:
    return [
        {"id": o.envelope.id, "type": o.envelope.type, **o.envelope.data}
        for o in published
        if o.envelope.data.get("plan_id") == plan_id
    ]


async def test_an_overdue_review_revises_once_then_lapses(
    planner: Planner, topics: TopicLog
) -> None:
    plan = await plan_of(planner, "overdue")
    sweep = ReviewSweep(planner.runtime)

    planner.clock.at = PAST_IN_UTC_ONLY  # still the 15th in Beaverton: not yet
    assert mine(await sweep.once(), plan.plan_id) == []

    planner.clock.at = PAST_IN_BEAVERTON
    (overdue,) = mine(await sweep.once(), plan.plan_id)
    assert (overdue["type"], overdue["change"], overdue["version"]) == (
        "plan.revised",
        "review_overdue",
        2,
    )
    assert overdue["id"] == derived_id("plan.revised", f"review:{plan.plan_id}:1")
    assert overdue["review_by"] == "2027-03-30"  # the location's date, fourteen days on
    assert sum(p["sessions"] for p in overdue["phases"]) == plan.sessions_total
    # the sweep again, later the same day: nothing new
    planner.clock.at = PAST_IN_BEAVERTON + timedelta(hours=5)
    assert mine(await sweep.once(), plan.plan_id) == []

    planner.clock.at = datetime(2027, 3, 31, 16, tzinfo=UTC)
    (lapsed,) = mine(await sweep.once(), plan.plan_id)
    assert (lapsed["type"], lapsed["outcome"], lapsed.get("maintenance")) == (
        "plan.completed",
        "lapsed",
        None,
    )
    assert lapsed["id"] == derived_id("plan.completed", f"review:{plan.plan_id}:2")
    planner.clock.at += timedelta(days=20)
    assert mine(await sweep.once(), plan.plan_id) == []

    on_topic = await topics.wait_for(
        lambda: found if len(found := topics.events(subject=plan.plan_id)) >= 2 else None
    )
    assert [e["type"] for e in on_topic] == ["plan.revised", "plan.completed"]
    assert [e["id"] for e in on_topic] == [overdue["id"], lapsed["id"]]
    assert {e["correlationid"] for e in on_topic} == {plan.intake_id}
    store = PlanStore(planner.runtime.redis, planner.runtime.keys)
    assert [r["status"] for r in await store.history(plan.client_id)][-1] == "completed"
    assert await store.active_plan_id(plan.client_id) is None


async def test_a_check_in_is_a_reading_the_review_date_judges(planner: Planner) -> None:
    plan = await plan_of(planner, "judged")
    planner.clock.at = SUBMITTED + timedelta(days=3)
    visit = first_visit(plan, at=planner.clock.at)
    assert await planner.receive(visit) == []
    answer = CheckinReplied(
        notification_id=f"checkin-{plan.plan_id}",
        client_id=plan.client_id,
        location_id=plan.location_id,
        visit_id=visit.visit_id,
        plan_id=plan.plan_id,
        pain=6,
        channel="sms",
        replied_at=planner.clock.at + timedelta(days=1),
    )
    assert await planner.receive(answer) == []
    assert await planner.receive(answer) == []  # the same answer again counts once

    planner.clock.at = PAST_IN_BEAVERTON
    (revised,) = mine(await ReviewSweep(planner.runtime).once(), plan.plan_id)
    # one visit and a check-in: 0 % improvement, judged as at the review point
    assert (revised["change"], revised["sessions_done"]) == ("reassess", 1)
    assert "pain carried in: 6 -> 6 (check-in)" in revised["reason"]


async def test_a_decision_the_broker_missed_goes_out_with_the_next_round(
    planner: Planner, topics: TopicLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = await plan_of(planner, "republished")
    sweep = ReviewSweep(planner.runtime)
    publisher = planner.runtime.publisher
    real = publisher.publish

    async def down(items: Any) -> None:
        raise PublishError("broker away")

    monkeypatch.setattr(publisher, "publish", down)
    planner.clock.at = PAST_IN_BEAVERTON
    with pytest.raises(PublishError):
        await sweep.once()
    monkeypatch.setattr(publisher, "publish", real)
    (again,) = mine(await sweep.once(), plan.plan_id)
    assert again["id"] == derived_id("plan.revised", f"review:{plan.plan_id}:1")
    assert mine(await sweep.once(), plan.plan_id) == []
    published = await topics.wait_for(
        lambda: [e for e in topics.events(subject=plan.plan_id) if e["type"] == "plan.revised"]
    )
    assert [e["id"] for e in published] == [again["id"]]
    assert PlanRevised.model_validate(published[0]["data"]).change == "review_overdue"


async def test_a_visit_handled_while_the_sweep_decides_is_handled_again_from_its_decision(
    planner: Planner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep writes its review_overdue version between the visit handler's read and
    its write: the handler's write is refused (``StateMoved``, which the consumer
    retries) and the visit, handled again, counts under the sweep's version: one
    version 2, never two."""
    plan = await plan_of(planner, "raced")
    planner.clock.at = PAST_IN_BEAVERTON
    visit = first_visit(plan, at=planner.clock.at)
    swept: list[Outgoing] = []
    read_first = PlanStore.first_read

    async def read_then_sweep(self: PlanStore, **asked: Any) -> Any:
        read = await read_first(self, **asked)
        if asked.get("plan_id") == plan.plan_id and not swept:
            swept.extend(await ReviewSweep(planner.runtime).once())
        return read

    monkeypatch.setattr(PlanStore, "first_read", read_then_sweep)
    with pytest.raises(StateMoved):
        await planner.receive(visit)
    (overdue,) = mine(swept, plan.plan_id)
    assert (overdue["change"], overdue["version"]) == ("review_overdue", 2)

    monkeypatch.setattr(PlanStore, "first_read", read_first)
    assert await planner.receive(visit) == []  # counted under version 2, nothing new
    store = PlanStore(planner.runtime.redis, planner.runtime.keys)
    versions = [r["plan"]["version"] for r in await store.history(plan.client_id)]
    assert versions == [1, 2]
    assert (await store.progress(plan.plan_id)).sessions_done == 1


async def test_plans_stored_before_the_review_index_are_indexed_once(planner: Planner) -> None:
    plan = await plan_of(planner, "older")
    redis, keys = planner.runtime.redis, planner.runtime.keys
    await redis.zrem(keys(REVIEW_DUE), plan.plan_id)  # as stored before the index existed

    assert await index_existing(planner.runtime, batch=2) >= 1
    assert await redis.zscore(keys(REVIEW_DUE), plan.plan_id) == REVIEW_BY.toordinal()
    await redis.zrem(keys(REVIEW_DUE), plan.plan_id)
    assert await index_existing(planner.runtime) == 0  # once per deployment
    assert await redis.zscore(keys(REVIEW_DUE), plan.plan_id) is None


async def test_an_assessment_handled_while_the_sweep_decides_is_handled_again(
    planner: Planner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for an assessment's revision: the sweep's version 2 stands, and the
    assessment, handled again, revises it to version 3."""
    plan = await plan_of(planner, "raced-assessment")
    planner.clock.at = PAST_IN_BEAVERTON
    assessment = AssessmentRecorded(
        assessment_id=f"assessment-{plan.plan_id}",
        client_id=plan.client_id,
        therapist_id="t-ana",
        location_id=plan.location_id,
        trigger_points=[TriggerPoint(muscle="upper trapezius", side="right", type="active")],
        recorded_at=planner.clock.at,
    )
    swept: list[Outgoing] = []
    read_parts = PlanStore.plan_parts

    async def read_then_sweep(self: PlanStore, plan_id: str) -> Any:
        parts = await read_parts(self, plan_id)
        if plan_id == plan.plan_id and not swept:
            swept.extend(await ReviewSweep(planner.runtime).once())
        return parts

    monkeypatch.setattr(PlanStore, "plan_parts", read_then_sweep)
    with pytest.raises(StateMoved):
        await planner.receive(assessment)
    (overdue,) = mine(swept, plan.plan_id)
    assert (overdue["change"], overdue["version"]) == ("review_overdue", 2)

    monkeypatch.setattr(PlanStore, "plan_parts", read_parts)
    (revised,) = mine(await planner.receive(assessment), plan.plan_id)
    assert (revised["change"], revised["version"]) == ("protocol", 3)
    store = PlanStore(planner.runtime.redis, planner.runtime.keys)
    versions = [r["plan"]["version"] for r in await store.history(plan.client_id)]
    assert versions == [1, 2, 3]


async def test_a_check_in_redelivered_is_one_reading(planner: Planner) -> None:
    plan = await plan_of(planner, "redelivered-checkin")
    answer = CheckinReplied(
        notification_id=f"checkin-{plan.plan_id}",
        client_id=plan.client_id,
        location_id=plan.location_id,
        plan_id=plan.plan_id,
        pain=5,
        channel="sms",
        replied_at=SUBMITTED + timedelta(days=2),
    )
    record = str(uuid.uuid4())
    for _ in range(3):
        assert await planner.receive(answer, event_id=record) == []
    store = PlanStore(planner.runtime.redis, planner.runtime.keys)
    progress = await store.progress(plan.plan_id)
    assert [(c.notification_id, c.pain) for c in progress.checkins] == [(answer.notification_id, 5)]
    assert await planner.runtime.redis.hlen(planner.runtime.keys("checkins", plan.plan_id)) == 1
