"""A session lost is made up, through the topics on the run's broker and Redis: a
no-show recorded over HTTP goes out on ``clinic.visits``; the scheduler's consumer
(its stream processor, fed the record as read back from the topic) moves the visits
still to come up a place and books the make-up after the last of them, with
``makeup_for``, so the plan keeps its number of sessions. The record redelivered, or
the no-show handled again, makes nothing more; a plan's own cancellations (a
completion) are not made up."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from services.scheduler.handlers import handlers
from shared.codec import decode_envelope, encode
from shared.deadletters import RawRecord
from shared.envelope import Envelope
from shared.events import EVENT_MODELS, EventData, VisitBooked
from shared.events.plans import PlanCompleted
from shared.runtime import stream_processor
from tests.integration.test_scheduler_visits import (  # noqa: F401 (the fixture)
    FRONT_DESK,
    Scheduler,
    a_plan,
    booked,
    scheduler,
    visits_of,
)
from tests.support import Record, TopicLog

pytestmark = pytest.mark.integration


async def the_record(topics: TopicLog, event_type: str, visit_id: str) -> Record:
    """The record of ``visit_id``'s ``event_type`` (the topic also holds other
    tests' records, poison among them: ``events`` reads only envelopes)."""

    def found() -> Record | None:
        for event in topics.events(type=event_type, subject=visit_id):
            return topics.record_of(event["id"])
        return None

    return await topics.wait_for(found)


def raw(record: Record) -> RawRecord:
    key = None if record.key is None else record.key.encode()
    return RawRecord(record.topic, record.partition, record.offset, key, record.value)


def decoded(value: bytes) -> tuple[Envelope, EventData]:
    envelope = decode_envelope(value)
    return envelope, EVENT_MODELS[envelope.type].model_validate(envelope.data)


def makeups(topics: TopicLog, visit_id: str) -> list[dict[str, Any]]:
    return [
        e for e in topics.events(type="visit.booked") if e["data"].get("makeup_for") == visit_id
    ]


async def test_a_no_show_is_made_up_through_the_topics_once(
    scheduler: Scheduler,  # noqa: F811
    topics: TopicLog,
) -> None:
    plan = a_plan("makeup")
    visits = booked(await scheduler.receive(plan))
    total = plan.sessions_total
    missed = visits[1]
    scheduler.clock.at = missed.start + timedelta(minutes=15)  # the first took place
    answer = await scheduler.http.post(f"/v1/visits/{missed.visit_id}/no-show", headers=FRONT_DESK)
    assert answer.status_code == 202, answer.text

    no_show = await the_record(topics, "visit.no_show", missed.visit_id)
    consumer = stream_processor(scheduler.runtime, handlers(scheduler.runtime))
    await consumer.process_batch([raw(no_show)])

    (makeup,) = await topics.wait_for(lambda: makeups(topics, missed.visit_id))
    data = makeup["data"]
    assert (data["sequence"], data["sessions_total"], data["plan_id"]) == (
        total,
        total,
        plan.plan_id,
    )
    assert makeup["correlationid"] == plan.plan_id  # the booking's story
    assert makeup["causationid"] == no_show.event["id"]
    # the visits after the missed one moved up a place, at the same times
    shown = await visits_of(scheduler, plan.client_id)
    standing = sorted(
        (v for v in shown.values() if v["status"] in ("booked", "completed")),
        key=lambda v: v["start"],
    )
    assert [v["sequence"] for v in standing] == list(range(1, total + 1))  # as many as planned
    assert [v["visit_id"] for v in standing[1:-1]] == [v.visit_id for v in visits[2:]]
    assert standing[-1]["visit_id"] == data["visit_id"]
    assert standing[-1]["makeup_for"] == missed.visit_id
    assert shown[missed.visit_id]["status"] == "no_show"
    policy = scheduler.runtime.chain.policy_for("beaverton")
    last = next(v for v in visits if v.visit_id == standing[-2]["visit_id"])
    assert VisitBooked.model_validate(data).start >= last.end + policy.min_gap_same_area

    # redelivered: the consumer skips the record it handled; the handler asked again
    # answers the same events (same ids) and changes nothing
    await consumer.process_batch([raw(no_show)])
    assert no_show.value is not None
    again = await handlers(scheduler.runtime)["visit.no_show"](*decoded(no_show.value))
    assert data["visit_id"] in {o.envelope.data["visit_id"] for o in again}
    assert makeup["id"] in {o.envelope.id for o in again}
    await topics.caught_up()
    assert len(makeups(topics, missed.visit_id)) == 1
    assert await visits_of(scheduler, plan.client_id) == shown


async def test_the_visits_a_completed_plan_cancels_are_not_made_up(
    scheduler: Scheduler,  # noqa: F811
    topics: TopicLog,
) -> None:
    plan = a_plan("ended-makeup")
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
    published = await scheduler.receive(done)
    cancelled = [e for e in published if e["type"] == "visit.cancelled"]
    assert len(cancelled) == len(visits) - 2
    handle = handlers(scheduler.runtime)["visit.cancelled"]
    for event in cancelled:
        assert await handle(*decoded(json.dumps(event).encode())) == []
    shown = await visits_of(scheduler, plan.client_id)
    assert not [v for v in shown.values() if v.get("makeup_for")]


async def test_a_client_cancel_is_made_up_once_and_the_make_ups_own_cancels_make_nothing(
    scheduler: Scheduler,  # noqa: F811
    topics: TopicLog,
) -> None:
    plan = a_plan("cancel-makeup")
    visits = booked(await scheduler.receive(plan))
    cancelled = visits[2]
    scheduler.clock.at = cancelled.start - timedelta(days=2)
    answer = await scheduler.http.post(
        f"/v1/visits/{cancelled.visit_id}/cancel",
        json={"by": "client", "reason": "away"},
        headers=FRONT_DESK,
    )
    assert answer.status_code == 202, answer.text
    record = await the_record(topics, "visit.cancelled", cancelled.visit_id)
    assert record.value is not None
    handle = handlers(scheduler.runtime)["visit.cancelled"]
    first = await handle(*decoded(record.value))
    (makeup,) = [o for o in first if o.envelope.data.get("makeup_for") == cancelled.visit_id]
    assert makeup.envelope.data["sequence"] == plan.sessions_total
    shown = await visits_of(scheduler, plan.client_id)

    # redelivered: the same events, nothing new on the calendar
    again = await handle(*decoded(record.value))
    assert [o.envelope.id for o in again] == [o.envelope.id for o in first]
    # what the make-up itself cancelled (visits that no longer kept the cadence) comes
    # back on clinic.visits: none of it is made up again
    for own in (o for o in first if o.envelope.type == "visit.cancelled"):
        assert await handle(own.envelope, decoded(encode(own.envelope))[1]) == []
    assert await visits_of(scheduler, plan.client_id) == shown
    standing = [v for v in shown.values() if v["status"] == "booked"]
    assert len(standing) == plan.sessions_total  # as many as planned, the make-up among them
