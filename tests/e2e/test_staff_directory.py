"""The staff directory changed at run time, end to end: two scheduler processes
(the session stack's and a second one beside it) share one calendar and one
directory. A closure added through one takes effect in both - visits already on
that day are moved or cancelled, plans booked afterwards by either process keep
off it, both calendars show it closed - and a therapist's sick day moves their
visits, with the client's change notice following from the notifier."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from shared.chain import ChainConfig
from shared.redis_store import Keys
from shared.stack import Stack
from tests.e2e import test_client_journey as journey
from tests.e2e import test_scheduler_race as race
from tests.e2e.conftest import sim_now
from tests.e2e.test_scheduler_race import (
    ADMIN,
    LOCATION,
    Scheduler,
    Visit,
    a_plan,
    booked_by_plan,
    clashes,
    client_events,
    publish,
)
from tests.support import TopicLog

pytestmark = pytest.mark.e2e

# the two-process fixture and the chain, as the race test has them
schedulers = race.schedulers
chain = race.chain

FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
WAIT_S = 40.0


def standing(topics: TopicLog, clients: set[str]) -> dict[str, Visit]:
    """The clients' visits as the topic tells it: booked, then moved, minus cancelled."""
    events = client_events(topics, clients)
    visits: dict[str, Visit] = {}
    for event in events.get("visit.booked", []):
        visits[event["data"]["visit_id"]] = Visit.of(event["data"])
    for event in events.get("visit.rescheduled", []):
        data = event["data"]
        known = visits.get(data["visit_id"])
        if known is not None:
            visits[data["visit_id"]] = Visit.of({**data, "sequence": known.sequence})
    for event in events.get("visit.cancelled", []):
        visits.pop(event["data"]["visit_id"], None)
    return visits


def local_day(visit: Visit, config: ChainConfig) -> date:
    return visit.start.astimezone(config.location(visit.location_id).zone).date()


async def held_visits(stack: Stack, namespace: str) -> dict[str, Visit]:
    """Everything the calendar holds in this deployment."""
    redis = aioredis.Redis.from_url(stack.infra.redis_url, decode_responses=True)
    try:
        raw = await redis.hgetall(Keys(namespace, "scheduler")("held"))
    finally:
        await redis.aclose()
    return {vid: Visit.held(json.loads(item)) for vid, item in raw.items()}


def replanned(topics: TopicLog, clients: set[str], visit_ids: set[str]) -> dict[str, str]:
    """visit id -> rescheduled | cancelled, for the directory's re-plan of ``visit_ids``."""
    found = {}
    events = client_events(topics, clients)
    for kind in ("visit.rescheduled", "visit.cancelled"):
        for event in events.get(kind, []):
            data = event["data"]
            if data["visit_id"] in visit_ids and data.get("cause") == "staff_unavailable":
                found[data["visit_id"]] = kind.split(".")[1]
    return found


async def test_a_closure_added_at_run_time_holds_in_both_schedulers(
    stack: Stack,
    schedulers: list[Scheduler],
    topics: TopicLog,
    producer: AIOKafkaProducer,
    chain: ChainConfig,
    namespace: str,
) -> None:
    http = [httpx.AsyncClient(base_url=s.url, headers=ADMIN, timeout=60.0) for s in schedulers]
    try:
        now = sim_now(stack)
        before = [a_plan(chain, now, 500 + n) for n in range(6)]
        await publish(producer, chain, before, now)
        booked = await topics.wait_for(lambda: booked_by_plan(topics, before), timeout=WAIT_S)
        # the day of the most visits among these plans' second sessions
        seconds = [visits[1] for visits in booked.values() if len(visits) > 1]
        day = max(
            {local_day(v, chain) for v in seconds},
            key=lambda d: sum(local_day(v, chain) == d for v in seconds),
        )
        on_day = {
            v.visit_id for visits in booked.values() for v in visits if local_day(v, chain) == day
        }
        assert on_day

        # closed through the second process
        answer = await http[1].post(
            "/v1/directory/closures",
            json={
                "location_id": LOCATION,
                "start_date": day.isoformat(),
                "end_date": day.isoformat(),
                "note": "burst pipe",
            },
        )
        assert answer.status_code == 201, answer.text
        result = answer.json()
        assert set(result["moved"]) | set(result["cancelled"]) >= on_day
        assert result["event_type"] == "directory.closure_added"
        assert result["data"]["replanned"] >= len(on_day)
        clients = {p.client_id for p in before}

        def all_replanned() -> dict[str, str] | None:
            found = replanned(topics, clients, on_day)
            return found if found.keys() >= on_day else None

        events = await topics.wait_for(all_replanned, timeout=WAIT_S)
        assert set(events) == on_day
        directory_events = await topics.wait_for(
            lambda: [
                e
                for e in topics.events(type="directory.closure_added")
                if e["data"]["closure_id"] == result["data"]["closure_id"]
            ],
            timeout=WAIT_S,
        )
        record = topics.record_of(directory_events[0]["id"])
        assert record is not None and record.topic == "clinic.directory"
        assert record.key == chain.chain.id

        # plans booked after it, by whichever process holds their partition, keep off it
        now = sim_now(stack)
        after = [a_plan(chain, now, 600 + n) for n in range(8)]
        await publish(producer, chain, after, now)
        booked_after = await topics.wait_for(lambda: booked_by_plan(topics, after), timeout=WAIT_S)
        everyone = {p.client_id for p in [*before, *after]}
        visits = standing(topics, everyone)
        assert not [v for v in visits.values() if local_day(v, chain) == day], day
        assert all(booked_after.values())

        # both processes show the day closed, with nothing held on it
        for client in http:
            shown = await client.get(
                f"/v1/locations/{LOCATION}/calendar", params={"date": day.isoformat()}
            )
            assert shown.status_code == 200, shown.text
            calendar = shown.json()
            assert calendar["closed"] is True
            assert not [
                v
                for t in calendar["therapists"]
                for v in t["visits"]
                if v["status"] in ("booked", "confirmed")
            ]
        held = await held_visits(stack, namespace)
        assert not clashes(list(held.values()))
        assert not [
            v for v in held.values() if v.location_id == LOCATION and local_day(v, chain) == day
        ]
    finally:
        for client in http:
            await client.aclose()


async def test_a_sick_day_moves_the_visits_and_the_change_notice_follows(
    stack: Stack,
    topics: TopicLog,
    chain: ChainConfig,
    namespace: str,
) -> None:
    # a client with an e-mail address, through the front door: the notifier can write
    email = f"sick-day-{uuid.uuid4().hex[:8]}@example.com"
    accepted = await journey.submit(stack, journey.intake(email))
    correlation = accepted["intake_id"]
    created = await topics.wait_for(
        lambda: topics.events(type="plan.created", correlationid=correlation), timeout=WAIT_S
    )
    total = created[0]["data"]["sessions_total"]
    client_id = created[0]["data"]["client_id"]
    booked_events = await topics.wait_for(
        lambda: (
            (v := topics.events(type="visit.booked", correlationid=correlation))
            and len(v) >= total
            and v
        ),
        timeout=WAIT_S,
    )
    booked = sorted((Visit.of(e["data"]) for e in booked_events), key=lambda v: v.sequence)
    # the booking's confirmation goes first: a change inside its grace period joins it
    # (one message per plan change); a change after it is a notice of its own
    await topics.wait_for(
        lambda: [
            e
            for e in topics.for_client("notification.sent", client_id)
            if e["data"].get("kind") == "booking_confirmation"
        ],
        timeout=WAIT_S,
    )
    second = booked[1]
    day = local_day(second, chain)
    async with httpx.AsyncClient(base_url=stack.urls["scheduler"], timeout=60.0) as http:
        answer = await http.post(
            "/v1/directory/exceptions",
            headers=FRONT_DESK,
            json={
                "therapist_id": second.therapist_id,
                "kind": "sick",
                "start_date": day.isoformat(),
                "end_date": day.isoformat(),
            },
        )
    assert answer.status_code == 201, answer.text
    result = answer.json()
    assert second.visit_id in result["moved"] + result["cancelled"]
    assert result["data"]["replanned"] >= 1

    def replanned_second() -> dict[str, Any] | None:
        events = client_events(topics, {client_id})
        for kind in ("visit.rescheduled", "visit.cancelled"):
            for event in events.get(kind, []):
                if event["data"]["visit_id"] == second.visit_id:
                    return event
        return None

    event = await topics.wait_for(replanned_second, timeout=WAIT_S)
    assert event["data"]["cause"] == "staff_unavailable"
    if event["type"] == "visit.rescheduled":
        new = Visit.of({**event["data"], "sequence": second.sequence})
        # not with the sick therapist that day; the soreness gap to both neighbours kept
        assert not (new.therapist_id == second.therapist_id and local_day(new, chain) == day)
        gap = chain.policy_for(LOCATION).min_gap_same_area
        assert new.start >= booked[0].end + gap
        if len(booked) > 2:
            assert new.end + gap <= booked[2].start
        # a move leaves the rest of the plan as it was
        visits = standing(topics, {client_id})
        for visit in booked:
            if visit.visit_id != second.visit_id and local_day(visit, chain) != day:
                assert visits[visit.visit_id] == visit
    # the notifier tells the client: a change notice sent for this plan
    notice = await topics.wait_for(
        lambda: [
            e
            for e in topics.for_client("notification.sent", client_id)
            if e["data"].get("kind") == "visit_change"
        ],
        timeout=WAIT_S,
    )
    assert notice[0]["data"]["channel"] in ("email", "console")  # the stack's mail sink
    held = await held_visits(stack, namespace)
    assert not clashes(list(held.values()))
