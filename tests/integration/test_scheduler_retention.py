"""Finished courses leave the scheduler's hot state, against the run's broker and
Redis: a completed plan's course stays as it was until its location's
``keep_finished_courses`` has passed on the shared clock, then the sweep removes
exactly what the scheduler held of it (and nothing of the client's other course, of
another client, or any hold to come) and leaves the marker; a redelivered
``plan.created`` of it books and publishes nothing; the client's visits answer with
the course as a retired stub, and its visit ids are no longer read.

A plan event's record keeps its envelopes only until the consumer has published
them (``settling.py``): handled through the stream processor, the record shrinks to
the event ids, and the event handled again publishes nothing."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.scheduler.course_sweep import CourseSweep
from services.scheduler.handlers import handlers
from services.scheduler.settling import settle_once
from shared.codec import encode, wrap
from shared.deadletters import RawRecord
from shared.envelope import Trace, derived_id
from shared.events.plans import PlanCompleted, PlanCreated
from shared.redis_store import ProcessedEvents
from shared.runtime import stream_processor
from tests.integration.test_scheduler_visits import (  # noqa: F401 (the fixture)
    BROOKLYN,
    FRONT_DESK,
    Scheduler,
    a_plan,
    booked,
    scheduler,
)

pytestmark = pytest.mark.integration

KEEP = timedelta(days=90)  # the demo chain's policy: the default


async def state(scheduler: Scheduler) -> dict[str, Any]:  # noqa: F811
    """Every key of the scheduler's namespace with its content, comparable (but the
    consumer's ledger, binary, and the location's lock)."""
    redis, prefix = scheduler.runtime.redis, scheduler.runtime.keys("")
    found: dict[str, Any] = {}
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        if key.startswith(scheduler.runtime.keys("ledger")):
            continue
        kind = await redis.type(key)
        if kind == "string":
            found[key] = await redis.get(key)
        elif kind == "hash":
            found[key] = await redis.hgetall(key)
        elif kind == "zset":
            found[key] = dict(await redis.zrange(key, 0, -1, withscores=True))
        elif kind == "set":
            found[key] = await redis.smembers(key)
    return {k: v for k, v in found.items() if not k.endswith((":lock:location:beaverton",))}


def without(found: dict[str, Any], ids: set[str]) -> dict[str, Any]:
    """``found`` with every key, field and member naming one of ``ids`` left out."""

    def named(text: str) -> bool:
        return any(i in text for i in ids)

    kept: dict[str, Any] = {}
    for key, value in found.items():
        if named(key):
            continue
        if isinstance(value, dict):
            value = {f: v for f, v in value.items() if not named(f)}
        elif isinstance(value, set):
            value = {m for m in value if not named(m)}
        if value or not isinstance(value, dict | set):
            kept[key] = value
    return kept


def completion(plan: PlanCreated, at: Any) -> PlanCompleted:
    return PlanCompleted(
        plan_id=plan.plan_id,
        version=plan.version,
        client_id=plan.client_id,
        location_id=plan.location_id,
        reason="goals met",
        outcome="goals_met",
        sessions_done=2,
        completed_at=at,
    )


async def test_a_finished_course_is_retired_after_its_period_and_only_it(
    scheduler: Scheduler,  # noqa: F811
) -> None:
    ended = a_plan("retire")
    other_client = a_plan("retire-other")
    visits = booked(await scheduler.receive(ended))
    booked(await scheduler.receive(other_client))
    finished_at = visits[1].end + timedelta(hours=1)
    scheduler.clock.at = finished_at
    await scheduler.receive(completion(ended, finished_at))
    # the same client's next course, with visits to come long after the first ended
    scheduler.clock.at = finished_at + KEEP - timedelta(days=10)
    later = a_plan("retire-later").model_copy(update={"client_id": ended.client_id})
    coming = booked(await scheduler.receive(later))
    swept_at = finished_at + KEEP + timedelta(days=1)
    assert coming and coming[-1].start > swept_at  # holds to come when the sweep runs
    sweep = CourseSweep(scheduler.runtime)

    scheduler.clock.at = finished_at + KEEP - timedelta(minutes=1)  # not yet
    before = await state(scheduler)
    assert await sweep.once() == 0
    assert await state(scheduler) == before

    scheduler.clock.at = swept_at
    assert await sweep.once() == 1
    after = await state(scheduler)
    # the course: its plan, its visits, the slots its cancelled visits freed
    retired_ids = {ended.plan_id, *(v.visit_id for v in visits)}
    retired_ids |= {derived_id("slot", v.visit_id, v.start.isoformat()) for v in visits}
    markers = {
        scheduler.runtime.keys("retired"),
        scheduler.runtime.keys("retired-of", ended.client_id),
    }
    # exactly the course's keys, fields and members left, and its marker came
    rest = {key: value for key, value in after.items() if key not in markers}
    assert without(rest, retired_ids) == without(before, retired_ids)
    assert not [key for key in after if any(i in key for i in retired_ids)]
    assert set(after) - set(before) == markers
    marker = after[scheduler.runtime.keys("retired")][ended.plan_id]
    assert marker.startswith(f"{ended.client_id}|") and marker.endswith("|goals_met|beaverton")
    assert await sweep.once() == 0  # a second round (or instance) does nothing
    assert await state(scheduler) == after

    # a redelivered plan.created of the retired course books and publishes nothing
    assert await scheduler.receive(ended) == []
    assert await scheduler.receive(completion(ended, finished_at)) == []
    assert await state(scheduler) == after

    # the client's visits: the next course's, and the retired one as a stub
    answer = await scheduler.http.get(f"/v1/clients/{ended.client_id}/visits", headers=FRONT_DESK)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [v["visit_id"] for v in body["visits"]] == [v.visit_id for v in coming]
    (stub,) = body["retired_courses"]
    ended_at = datetime.fromisoformat(stub.pop("ended_at"))
    retained_until = datetime.fromisoformat(stub.pop("retained_until"))
    assert stub == {
        "plan_id": ended.plan_id,
        "location_id": "beaverton",
        "outcome": "goals_met",
        "history": "clinic.visits",
    }
    assert ended_at == finished_at.replace(microsecond=0)
    assert retained_until == ended_at + KEEP
    # another location's key sees neither the visits nor the stub
    elsewhere = await scheduler.http.get(f"/v1/clients/{ended.client_id}/visits", headers=BROOKLYN)
    assert elsewhere.status_code == 404
    # a retired visit's id is no longer read: 404 like an unknown one, everywhere
    gone = visits[0].visit_id
    for path in (
        f"/v1/visits/{gone}/manage",
        f"/v1/visits/{gone}.ics",
        f"/fhir/r4/Appointment/{gone}",
    ):
        read = await scheduler.http.get(path, headers=FRONT_DESK)
        assert read.status_code == 404, (path, read.text)
    # the location's day of a retired visit no longer lists it
    day = visits[0].start.astimezone(ZoneInfo(visits[0].timezone)).date().isoformat()
    calendar = await scheduler.http.get(
        f"/v1/locations/beaverton/calendar?date={day}", headers=FRONT_DESK
    )
    assert calendar.status_code == 200, calendar.text
    assert gone not in calendar.text


async def test_a_plan_events_record_keeps_ids_once_published_and_a_replay_publishes_nothing(
    scheduler: Scheduler,  # noqa: F811
) -> None:
    plan = a_plan("settle")
    cause = wrap(
        plan,
        event_id=str(uuid.uuid4()),
        service="planner",
        subject=plan.plan_id,
        trace=Trace(chainid="northwest-nmt", correlationid=plan.plan_id),
        time=scheduler.clock.now(),
    )
    runtime = scheduler.runtime
    record = runtime.keys("record", f"{plan.plan_id}:{plan.version}")
    consumer = stream_processor(runtime, handlers(runtime))
    raw = RawRecord("clinic.plans", 0, 10_000_000, plan.client_id.encode(), encode(cause))
    await consumer.process_batch([raw])
    full = await runtime.redis.get(record)
    envelopes = [json.loads(e) for e in json.loads(full)]
    assert len(envelopes) == plan.sessions_total
    assert (await ProcessedEvents(runtime.redis, runtime.keys).seen_among([cause])) == {cause.id}

    ledger = ProcessedEvents(runtime.redis, runtime.keys)
    shrunk = await settle_once(runtime.redis, runtime.keys, ledger, now_s=time.time() + 10)
    assert shrunk == 1
    kept = await runtime.redis.get(record)
    assert json.loads(kept) == {"published": [e["id"] for e in envelopes]}
    assert len(kept) < len(full) / 10
    assert await runtime.redis.zcard(runtime.keys("unsettled")) == 0
    # handled again (its ledger mark gone, a group reset): books and publishes nothing
    calendar = await state(scheduler)
    assert await handlers(runtime)["plan.created"](cause, plan) == []
    assert await state(scheduler) == calendar
