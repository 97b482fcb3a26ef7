"""Every ``visit.cancelled`` the scheduler publishes says what made it (``cause``):
the client or the clinic asking through the front desk, a plan revised or
completed, or the make-up rule moving the course up. The notifier words its
notice by it; subscribers count cancels by it. On the run's broker and Redis."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from services.planner import knowledge as kb
from services.planner.course import cadence_phase
from services.scheduler.handlers import handlers
from shared.codec import wrap
from shared.envelope import Trace
from shared.events import EventData, VisitBooked
from shared.events.plans import PlanCompleted, PlanCreated, PlanRevised
from shared.events.visits import VisitCancelled
from tests.integration.test_scheduler_visits import (  # noqa: F401 (the fixture)
    FRONT_DESK,
    Scheduler,
    a_plan,
    booked,
    on_topic,
    scheduler,
)
from tests.support import TopicLog
from tests.unit.test_booking import make_phase

pytestmark = pytest.mark.integration


def cancels(published: list[dict[str, Any]]) -> list[VisitCancelled]:
    found = [e["data"] for e in published if e["type"] == "visit.cancelled"]
    return [VisitCancelled.model_validate(data) for data in found]


async def handled(at: Scheduler, event: EventData, plan_id: str) -> list[dict[str, Any]]:
    """Hand ``event`` to the scheduler ``at`` as its consumer would; what it published."""
    cause = wrap(
        event,
        event_id=str(uuid.uuid4()),
        service="test",
        subject=plan_id,
        trace=Trace(chainid="northwest-nmt", correlationid=plan_id),
        time=at.clock.now(),
    )
    made = await handlers(at.runtime)[event.event_type](cause, event)
    return [o.envelope.model_dump(mode="json") for o in made]


@pytest.mark.parametrize("by", ["client", "clinic"])
async def test_a_cancel_through_the_front_desk_is_caused_by_who_asked(
    scheduler: Scheduler,  # noqa: F811
    topics: TopicLog,
    by: str,
) -> None:
    visit = booked(await scheduler.receive(a_plan(f"cause-{by}")))[1]
    answer = await scheduler.http.post(
        f"/v1/visits/{visit.visit_id}/cancel", json={"by": by}, headers=FRONT_DESK
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["data"]["cause"] == by
    (published,) = await on_topic(topics, "visit.cancelled", visit.visit_id)
    assert (published["data"]["by"], published["data"]["cause"]) == (by, by)


async def test_a_revision_cancels_with_its_cause(scheduler: Scheduler) -> None:  # noqa: F811
    plan = a_plan("cause-revised")
    visits = booked(await scheduler.receive(plan))
    scheduler.clock.at = visits[3].end + timedelta(hours=1)
    revised = PlanRevised(
        **{
            **plan.model_dump(),
            "version": 2,
            "sessions_total": 5,
            "phases": [cadence_phase("taper", kb.EVERY_TWO_WEEKS, 1, 2)],
            "created_at": scheduler.clock.at,
        },
        reason="good progress: taper sooner",
        change="taper",
        sessions_done=4,
    )
    cancelled = cancels(await scheduler.receive(revised))
    assert cancelled, "the taper cancelled nothing"
    assert {(c.by, c.cause) for c in cancelled} == {("clinic", "plan_revised")}


async def test_a_completed_plan_cancels_with_its_cause(scheduler: Scheduler) -> None:  # noqa: F811
    plan = a_plan("cause-completed")
    visits = booked(await scheduler.receive(plan))
    scheduler.clock.at = visits[1].start + timedelta(hours=2)
    done = PlanCompleted(
        plan_id=plan.plan_id,
        version=plan.version,
        client_id=plan.client_id,
        location_id=plan.location_id,
        reason="goals met",
        outcome="goals_met",
        sessions_done=2,
        completed_at=scheduler.clock.at,
    )
    cancelled = cancels(await handled(scheduler, done, plan.plan_id))
    assert len(cancelled) == len(visits) - 2
    assert {(c.by, c.cause) for c in cancelled} == {("clinic", "plan_completed")}


async def test_the_visits_a_make_up_no_longer_fits_are_cancelled_with_its_cause(
    scheduler: Scheduler,  # noqa: F811
) -> None:
    """Two weekly sessions, then two three days apart: once the first is cancelled,
    the others move up a place, and the third and fourth, three days after the
    second, are too close for the weekly phase they now fall in."""
    weekly, closer = (
        make_phase("initial", sessions=2, interval_days=7),
        make_phase("closer", sessions=2, interval_days=3),
    )
    plan: PlanCreated = a_plan("cause-makeup").model_copy(
        update={"phases": [weekly, closer], "sessions_total": 4}
    )
    visits = booked(await scheduler.receive(plan))
    assert [v.sequence for v in visits] == [1, 2, 3, 4]
    answer = await scheduler.http.post(
        f"/v1/visits/{visits[0].visit_id}/cancel", json={"by": "client"}, headers=FRONT_DESK
    )
    assert answer.status_code == 202, answer.text
    lost = VisitCancelled.model_validate(answer.json()["data"])
    events = await handled(scheduler, lost, plan.plan_id)
    cancelled = cancels(events)
    assert {c.visit_id for c in cancelled} == {visits[2].visit_id, visits[3].visit_id}
    assert {(c.by, c.cause) for c in cancelled} == {("clinic", "makeup")}
    assert any(
        VisitBooked.model_validate(e["data"]).makeup_for == lost.visit_id
        for e in events
        if e["type"] == "visit.booked"
    )
