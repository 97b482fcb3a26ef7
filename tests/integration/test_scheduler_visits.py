"""Visit commands against the real broker and Redis: reschedule, cancel, no-show
and complete over HTTP, each answered once and published on ``clinic.visits``;
plan revisions and completions re-plan the visits still to come.

The plan events are handed to the scheduler's handlers directly (the consumer
path has its end-to-end test); the service's clock is a settable one, so "the
visit has started" is a fact of the test, not of how fast the machine is."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import icalendar
import pytest
from fastapi import FastAPI

from services.planner import knowledge as kb
from services.planner.course import cadence_phase
from services.planner.domain import build_plan
from services.scheduler import calendar_api, directory_api, pages_api, waitlist_api
from services.scheduler.api import router
from services.scheduler.handlers import handlers
from services.scheduler.offer_round import offer_rounds
from services.scheduler.outbox import relay
from services.scheduler.store import CalendarChange, CalendarStore, Overlap
from shared import links
from shared.chain import Policy
from shared.codec import wrap
from shared.envelope import Trace
from shared.events import IntakeSubmitted, PlanCreated, VisitBooked
from shared.events.intake import ClientRecord, Complaint, Health, Preferences, Screening
from shared.events.plans import PlanCompleted, PlanData, PlanRevised
from shared.infra import Infra
from shared.runtime import Runtime
from shared.service import build_service
from shared.settings import SchedulerSettings
from shared.streams import Rejected
from tests.conftest import DEMO_CHAIN
from tests.support import SettableClock, TopicLog

pytestmark = pytest.mark.integration

START = datetime(2027, 3, 1, 16, tzinfo=UTC)  # a Monday, 08:00 in Beaverton
LINKS_UNTIL = START + timedelta(days=180)  # signed links in these tests outlive them
FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
BROOKLYN = {"Authorization": "Bearer demo-frontdesk-brooklyn"}
ADMIN = {"Authorization": "Bearer demo-admin"}


@dataclass
class Scheduler:
    http: httpx.AsyncClient
    runtime: Runtime
    clock: SettableClock

    async def receive(self, plan: PlanData) -> list[dict[str, Any]]:
        """Hand a plan event to the scheduler as its consumer would; what it published."""
        cause = wrap(
            plan,
            event_id=str(uuid.uuid4()),
            service="planner",
            subject=plan.plan_id,
            trace=Trace(chainid="northwest-nmt", correlationid=plan.plan_id),
            time=self.clock.now(),
        )
        handle = handlers(self.runtime)[plan.event_type]
        return [o.envelope.model_dump(mode="json") for o in await handle(cause, plan)]


@pytest.fixture
async def scheduler(infra: Infra) -> AsyncIterator[Scheduler]:
    async with scheduler_on(infra, infra.kafka_bootstrap_servers) as running:
        yield running


@asynccontextmanager
async def scheduler_on(
    infra: Infra,
    bootstrap: str,
    *,
    relaying: bool = True,
    offering: bool = False,
    chain: Path = DEMO_CHAIN,
) -> AsyncIterator[Scheduler]:
    """The scheduler's routes and (``relaying``) outbox relay and (``offering``) the
    waitlist's offer rounds on ``bootstrap`` and the run's Redis, with a settable
    clock; plan events come through ``Scheduler.receive``."""
    settings = SchedulerSettings(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        REDIS_URL=infra.redis_url,
        CLINICFLOW_REDIS_NAMESPACE=f"test-visits-{uuid.uuid4().hex[:8]}",
        CLINICFLOW_CHAIN_CONFIG=str(chain),
        CLINICFLOW_ENV="test",
        API_RATE_LIMIT_PER_MINUTE=60_000,
        API_RATE_LIMIT_BURST=10_000,
    )
    app: FastAPI = build_service(
        service="scheduler",
        settings=settings,
        description="scheduler under test",
        routers=[
            router,
            calendar_api.router,
            waitlist_api.router,
            pages_api.router,
            directory_api.router,
        ],
        background=[*([relay] if relaying else []), *([offer_rounds] if offering else [])],
    )
    clock = SettableClock(START)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        runtime.base.clock = clock
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://scheduler") as http:
            yield Scheduler(http=http, runtime=runtime, clock=clock)


def a_plan(n: str, *, intensity: int = 7, therapist: str | None = None) -> PlanCreated:
    intake = IntakeSubmitted(
        intake_id=f"visits-{n}-{uuid.uuid4().hex[:6]}",
        client=ClientRecord(client_id=f"client-{n}-{uuid.uuid4().hex[:6]}", name="Visit Client"),
        location_id="beaverton",
        complaints=[
            Complaint(
                region="neck", intensity=intensity, qualities=["ache"], onset=date(2026, 6, 1)
            )
        ],
        health=Health(),
        screening=Screening(outcome="clear"),
        preferences=Preferences(therapist_id=therapist),
        submitted_at=START,
    )
    return build_plan(intake, policy=Policy())


def booked(published: list[dict[str, Any]]) -> list[VisitBooked]:
    return [VisitBooked.model_validate(e["data"]) for e in published if e["type"] == "visit.booked"]


async def visits_of(scheduler: Scheduler, client_id: str) -> dict[str, dict[str, Any]]:
    answer = await scheduler.http.get(f"/v1/clients/{client_id}/visits", headers=FRONT_DESK)
    assert answer.status_code == 200, answer.text
    return {v["visit_id"]: v for v in answer.json()["visits"]}


async def on_topic(topics: TopicLog, event_type: str, visit_id: str) -> list[dict[str, Any]]:
    return await topics.wait_for(
        lambda: [e for e in topics.events(type=event_type) if e["subject"] == visit_id]
    )


async def test_cancel_is_once_late_inside_the_window_and_on_the_topic(
    scheduler: Scheduler, topics: TopicLog
) -> None:
    plan = a_plan("cancel")
    visits = booked(await scheduler.receive(plan))
    first, second = visits[0], visits[1]

    # 30 hours before the first visit: not late (policy window 24 h)
    scheduler.clock.at = first.start - timedelta(hours=30)
    answer = await scheduler.http.post(
        f"/v1/visits/{first.visit_id}/cancel", json={"by": "client"}, headers=FRONT_DESK
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["data"]["late"] is False
    # 3 hours before the second: late
    scheduler.clock.at = second.start - timedelta(hours=3)
    late = await scheduler.http.post(
        f"/v1/visits/{second.visit_id}/cancel",
        json={"by": "client", "reason": "sick"},
        headers=FRONT_DESK,
    )
    assert late.status_code == 202 and late.json()["data"]["late"] is True

    # the same request again answers the first result; other commands are refused
    again = await scheduler.http.post(
        f"/v1/visits/{first.visit_id}/cancel", json={"by": "client"}, headers=FRONT_DESK
    )
    assert again.status_code == 200 and again.json() == answer.json()
    other = await scheduler.http.post(
        f"/v1/visits/{first.visit_id}/cancel", json={"by": "clinic"}, headers=FRONT_DESK
    )
    assert other.status_code == 409 and "cancelled" in other.json()["detail"]
    moved = await scheduler.http.post(
        f"/v1/visits/{first.visit_id}/reschedule", json={}, headers=FRONT_DESK
    )
    assert moved.status_code == 409 and "cancelled" in moved.json()["detail"]

    published = await on_topic(topics, "visit.cancelled", first.visit_id)
    assert published[0]["data"]["by"] == "client" and published[0]["data"]["late"] is False
    assert published[0]["correlationid"] == plan.plan_id  # the booking's story
    shown = await visits_of(scheduler, plan.client_id)
    assert shown[first.visit_id]["status"] == "cancelled"
    assert shown[visits[2].visit_id]["status"] == "booked"

    # a body error names the field; another location's key does not see the visit
    bad = await scheduler.http.post(
        f"/v1/visits/{visits[2].visit_id}/cancel", json={"by": "dog"}, headers=FRONT_DESK
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "by"]
    hidden = await scheduler.http.post(
        f"/v1/visits/{visits[2].visit_id}/cancel", json={"by": "clinic"}, headers=BROOKLYN
    )
    assert hidden.status_code == 404


async def test_completion_is_refused_before_the_visit_starts(
    scheduler: Scheduler, topics: TopicLog
) -> None:
    plan = a_plan("complete")
    visit = booked(await scheduler.receive(plan))[0]
    outcome = {
        "pain_before": 7,
        "pain_after": 4,
        "techniques": ["ischemic_compression"],
        "trigger_points": [{"muscle": "upper trapezius", "released": True}],
    }
    therapist = {"Authorization": "Bearer demo-therapist-ana"}
    path = f"/v1/visits/{visit.visit_id}/complete"

    scheduler.clock.at = visit.start - timedelta(minutes=1)
    early = await scheduler.http.post(path, json=outcome, headers=ADMIN)
    assert early.status_code == 409 and "once it has started" in early.json()["detail"]
    no_show_early = await scheduler.http.post(
        f"/v1/visits/{visit.visit_id}/no-show", headers=FRONT_DESK
    )
    assert no_show_early.status_code == 409

    scheduler.clock.at = visit.start + timedelta(minutes=50)
    desk = await scheduler.http.post(path, json=outcome, headers=FRONT_DESK)
    assert desk.status_code == 403  # the front desk does not record clinical outcomes
    by = therapist if visit.therapist_id == "t-ana" else ADMIN
    done = await scheduler.http.post(path, json=outcome, headers=by)
    assert done.status_code == 202, done.text
    again = await scheduler.http.post(path, json=outcome, headers=by)
    assert again.status_code == 200 and again.json() == done.json()
    changed = await scheduler.http.post(path, json={**outcome, "pain_after": 2}, headers=by)
    assert changed.status_code == 409 and "completed" in changed.json()["detail"]

    published = (await on_topic(topics, "visit.completed", visit.visit_id))[0]["data"]
    assert (published["pain_before"], published["pain_after"]) == (7, 4)
    assert published["plan_id"] == plan.plan_id
    assert published["trigger_points"] == [{"muscle": "upper trapezius", "released": True}]
    assert datetime.fromisoformat(published["completed_at"]) >= visit.start
    shown = await visits_of(scheduler, plan.client_id)
    assert shown[visit.visit_id]["status"] == "completed"


async def test_only_the_visits_therapist_completes_it_even_as_a_repeat(
    scheduler: Scheduler,
) -> None:
    plan = a_plan("bens", therapist="t-ben")
    visit = booked(await scheduler.receive(plan))[0]
    assert visit.therapist_id == "t-ben"
    scheduler.clock.at = visit.start + timedelta(minutes=50)
    path = f"/v1/visits/{visit.visit_id}/complete"
    outcome = {"pain_before": 6, "pain_after": 3}
    ana = {"Authorization": "Bearer demo-therapist-ana"}
    assert (await scheduler.http.post(path, json=outcome, headers=ana)).status_code == 403
    assert (await scheduler.http.post(path, json=outcome, headers=ADMIN)).status_code == 202
    # the repeat would answer the recorded outcome: another therapist still gets a 403
    assert (await scheduler.http.post(path, json=outcome, headers=ana)).status_code == 403


async def test_no_show_once_the_visit_has_started(scheduler: Scheduler, topics: TopicLog) -> None:
    plan = a_plan("noshow")
    visit = booked(await scheduler.receive(plan))[0]
    scheduler.clock.at = visit.start + timedelta(minutes=15)
    answer = await scheduler.http.post(f"/v1/visits/{visit.visit_id}/no-show", headers=FRONT_DESK)
    assert answer.status_code == 202, answer.text
    assert (await on_topic(topics, "visit.no_show", visit.visit_id))[0]["data"]["plan_id"] == (
        plan.plan_id
    )
    done = await scheduler.http.post(
        f"/v1/visits/{visit.visit_id}/complete",
        json={"pain_before": 5, "pain_after": 3},
        headers=ADMIN,
    )
    assert done.status_code == 409 and "no-show" in done.json()["detail"]


async def test_a_command_publishes_before_it_lets_the_location_go(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another instance waits for the location's lock; publishing while it is still
    held is what puts the two instances' events on the topic in the calendar's order."""
    visits = booked(await scheduler.receive(a_plan("order")))
    store = CalendarStore(scheduler.runtime.redis, scheduler.runtime.keys)
    lock = store.location_lock_key("beaverton")
    publisher = scheduler.runtime.publisher
    real = publisher.publish
    held_while_publishing: list[bool] = []

    async def publish(items: Any) -> None:
        held_while_publishing.append(await scheduler.runtime.redis.exists(lock) == 1)
        await real(items)

    monkeypatch.setattr(publisher, "publish", publish)
    moved = await scheduler.http.post(
        f"/v1/visits/{visits[0].visit_id}/reschedule", json={}, headers=FRONT_DESK
    )
    assert moved.status_code == 202, moved.text
    cancelled = await scheduler.http.post(
        f"/v1/visits/{visits[1].visit_id}/cancel",
        json={"by": "client", "reason": "travelling"},
        headers=FRONT_DESK,
    )
    assert cancelled.status_code == 202, cancelled.text
    assert held_while_publishing == [True, True]


async def test_reschedule_to_the_next_slot_keeps_the_gap_and_is_published(
    scheduler: Scheduler, topics: TopicLog
) -> None:
    plan = a_plan("move")
    visits = booked(await scheduler.receive(plan))
    first, second = visits[0], visits[1]
    policy = scheduler.runtime.chain.policy_for("beaverton")

    answer = await scheduler.http.post(
        f"/v1/visits/{first.visit_id}/reschedule", json={}, headers=FRONT_DESK
    )
    assert answer.status_code == 202, answer.text
    moved = answer.json()["data"]
    new_start = datetime.fromisoformat(moved["start"])
    new_end = datetime.fromisoformat(moved["end"])
    assert new_start != first.start
    assert datetime.fromisoformat(moved["previous_start"]) == first.start
    assert new_end + policy.min_gap_same_area <= second.start  # the soreness gap holds

    published = await on_topic(topics, "visit.rescheduled", first.visit_id)
    assert published[0]["data"]["start"] == moved["start"]
    shown = await visits_of(scheduler, plan.client_id)
    assert shown[first.visit_id]["start"] == moved["start"]
    assert shown[first.visit_id]["status"] == "booked"

    # an explicit start on a closed day is refused with the reason, and changes nothing
    last = visits[-1].visit_id
    before = shown[last]["start"]
    closed = datetime(2027, 5, 31, 17, tzinfo=UTC)  # Memorial Day, 10:00 in Beaverton
    refused = await scheduler.http.post(
        f"/v1/visits/{last}/reschedule",
        json={"start": closed.isoformat()},
        headers=FRONT_DESK,
    )
    assert refused.status_code == 409 and "closed" in refused.json()["detail"]
    assert (await visits_of(scheduler, plan.client_id))[last]["start"] == before


async def test_a_completed_plan_cancels_the_visits_still_to_come(
    scheduler: Scheduler, topics: TopicLog
) -> None:
    plan = a_plan("ended")
    visits = booked(await scheduler.receive(plan))
    scheduler.clock.at = visits[1].start + timedelta(hours=2)  # two visits have happened
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
    cancelled = {e["data"]["visit_id"] for e in published if e["type"] == "visit.cancelled"}
    assert cancelled == {v.visit_id for v in visits[2:]}
    assert all(e["data"]["by"] == "clinic" for e in published)
    again = await scheduler.receive(done)  # redelivered: the same events, nothing new
    assert [e["id"] for e in again] == [e["id"] for e in published]
    shown = await visits_of(scheduler, plan.client_id)
    assert [shown[v.visit_id]["status"] for v in visits[:2]] == ["booked", "booked"]
    assert {shown[v.visit_id]["status"] for v in visits[2:]} == {"cancelled"}


async def test_a_revision_keeps_what_fits_cancels_the_rest_and_books_the_difference(
    scheduler: Scheduler,
) -> None:
    plan = a_plan("revised")
    visits = booked(await scheduler.receive(plan))
    assert [v.sequence for v in visits] == list(range(1, plan.sessions_total + 1))
    scheduler.clock.at = visits[3].end + timedelta(hours=1)  # four visits done
    left = 3
    revised = PlanRevised(
        **{
            **plan.model_dump(),
            "version": 2,
            "sessions_total": 4 + left,
            "phases": [cadence_phase("taper", kb.EVERY_TWO_WEEKS, left, 3)],
            "created_at": scheduler.clock.at,
        },
        reason="good progress: taper sooner",
        change="taper",
        sessions_done=4,
    )
    published = await scheduler.receive(revised)
    cancelled = [e["data"] for e in published if e["type"] == "visit.cancelled"]
    new = booked(published)
    assert {c["visit_id"] for c in cancelled} <= {v.visit_id for v in visits[4:]}
    assert all(c["by"] == "clinic" and "version 2" in c["reason"] for c in cancelled)
    shown = await visits_of(scheduler, plan.client_id)
    coming = sorted(
        (v for v in shown.values() if v["status"] == "booked" and v["sequence"] > 4),
        key=lambda v: v["start"],
    )
    # the course now ends with three visits every two weeks after the fourth
    assert [v["sequence"] for v in coming] == [5, 6, 7]
    zone = scheduler.runtime.chain.location("beaverton").zone
    days = [visits[3].start.astimezone(zone).date()] + [
        datetime.fromisoformat(v["start"]).astimezone(zone).date() for v in coming
    ]
    assert all((b - a).days >= 14 for a, b in itertools.pairwise(days))
    new_ids = {n.visit_id for n in new}
    assert all(v["plan_version"] == 2 for v in coming if v["visit_id"] in new_ids)
    # nothing of the old cadence is left booked
    kept_old = [v for v in visits[4:] if shown[v.visit_id]["status"] == "booked"]
    assert len(kept_old) + len(new) == left
    again = await scheduler.receive(revised)  # redelivered: the same events
    assert [e["id"] for e in again] == [e["id"] for e in published]


async def test_calendar_files_open_with_a_key_or_a_signed_link(scheduler: Scheduler) -> None:
    plan = a_plan("ics")
    visits = booked(await scheduler.receive(plan))
    visit = visits[0]
    path = f"/v1/visits/{visit.visit_id}.ics"

    with_key = await scheduler.http.get(path, headers=FRONT_DESK)
    assert with_key.status_code == 200, with_key.text
    assert with_key.headers["content-type"].startswith("text/calendar")
    event = icalendar.Calendar.from_ical(with_key.content).walk("VEVENT")[0]
    assert event["DTSTART"].params["TZID"] == "America/Los_Angeles"
    assert event.decoded("DTSTART").astimezone(UTC) == visit.start

    secret = scheduler.runtime.base.settings.link_secret.get_secret_value()
    signed = await scheduler.http.get(
        path, params={"sig": links.sign(secret, "visit", visit.visit_id, expires=LINKS_UNTIL)}
    )
    assert signed.status_code == 200 and signed.content == with_key.content
    other = links.sign(secret, "visit", visits[1].visit_id, expires=LINKS_UNTIL)  # another visit
    assert (await scheduler.http.get(path, params={"sig": other})).status_code == 401
    assert (await scheduler.http.get(path, headers=BROOKLYN)).status_code == 404

    await scheduler.http.post(
        f"/v1/visits/{visits[1].visit_id}/cancel", json={"by": "clinic"}, headers=FRONT_DESK
    )
    feed = await scheduler.http.get(
        f"/v1/clients/{plan.client_id}/calendar.ics",
        params={"sig": links.sign(secret, "client", plan.client_id, expires=LINKS_UNTIL)},
    )
    assert feed.status_code == 200
    events = icalendar.Calendar.from_ical(feed.content).walk("VEVENT")
    assert len(events) == len(visits)
    status = {str(e["UID"]).split("@")[0]: str(e["STATUS"]) for e in events}
    assert status[visits[1].visit_id] == "CANCELLED" and status[visit.visit_id] == "CONFIRMED"


async def test_a_location_day_and_free_slots_for_a_plan(scheduler: Scheduler) -> None:
    plan = a_plan("day")
    visit = booked(await scheduler.receive(plan))[0]
    zone = scheduler.runtime.chain.location("beaverton").zone
    day = visit.start.astimezone(zone).date()

    answer = await scheduler.http.get(
        "/v1/locations/beaverton/calendar", params={"date": day.isoformat()}, headers=FRONT_DESK
    )
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert shown["closed"] is False and shown["timezone"] == "America/Los_Angeles"
    in_rooms = {v["visit_id"] for room in shown["rooms"] for v in room["visits"]}
    by_therapist = {
        v["visit_id"]: t["therapist_id"] for t in shown["therapists"] for v in t["visits"]
    }
    assert visit.visit_id in in_rooms and by_therapist[visit.visit_id] == visit.therapist_id
    hidden = await scheduler.http.get(
        "/v1/locations/beaverton/calendar", params={"date": day.isoformat()}, headers=BROOKLYN
    )
    assert hidden.status_code == 404

    slots = await scheduler.http.get(
        f"/v1/plans/{plan.plan_id}/free-slots",
        params={"from": day.isoformat(), "to": (day + timedelta(days=6)).isoformat(), "limit": 40},
        headers=FRONT_DESK,
    )
    assert slots.status_code == 200, slots.text
    found = slots.json()
    assert 0 < len(found) <= 40
    for slot in found:
        start, end = datetime.fromisoformat(slot["start"]), datetime.fromisoformat(slot["end"])
        assert (end - start) == timedelta(minutes=plan.visit_minutes)
        # the client's own visit is kept clear
        assert not (start < visit.end and visit.start < end)
    backwards = await scheduler.http.get(
        f"/v1/plans/{plan.plan_id}/free-slots",
        params={"from": day.isoformat(), "to": (day - timedelta(days=1)).isoformat()},
        headers=FRONT_DESK,
    )
    assert backwards.status_code == 422
    assert backwards.json()["detail"][0]["loc"] == ["query", "to"]


async def test_a_change_computed_from_a_stale_visit_writes_nothing(scheduler: Scheduler) -> None:
    """Two instances that both read a visit before either moved it (a lock whose
    lease ran out): the second move is refused by the script, not written."""
    plan = a_plan("stale")
    visit = booked(await scheduler.receive(plan))[-1]
    store = CalendarStore(scheduler.runtime.redis, scheduler.runtime.keys)
    now = scheduler.clock.now()
    read = ("booked", visit.start)
    first = visit.model_copy(
        update={"start": visit.start + timedelta(hours=1), "end": visit.end + timedelta(hours=1)}
    )
    second = visit.model_copy(
        update={"start": visit.start + timedelta(hours=2), "end": visit.end + timedelta(hours=2)}
    )
    await store.apply(CalendarChange(hold=[first], expect={visit.visit_id: read}), now=now)
    with pytest.raises(Overlap, match="changed meanwhile"):
        await store.apply(CalendarChange(hold=[second], expect={visit.visit_id: read}), now=now)
    cancel_late = CalendarChange(free={visit.visit_id: "cancelled"}, expect={visit.visit_id: read})
    with pytest.raises(Overlap):
        await store.apply(cancel_late, now=now)
    found = await store.visit(visit.visit_id)
    assert found is not None and found[0].start == first.start and found[1] == "booked"


async def test_plan_events_for_an_unknown_location_are_rejected_for_the_dead_letters(
    scheduler: Scheduler,
) -> None:
    """The consumer loop dead-letters a Rejected record with its reason
    (tests/integration/test_stream_processor.py); the scheduler rejects, for every
    plan event it handles, a location the chain does not have."""
    plan = a_plan("nowhere").model_copy(update={"location_id": "atlantis"})
    revised = PlanRevised(**plan.model_dump(), reason="test", change="taper", sessions_done=0)
    done = PlanCompleted(
        plan_id=plan.plan_id,
        version=1,
        client_id=plan.client_id,
        location_id="atlantis",
        reason="test",
        completed_at=START,
    )
    for event in (plan, revised, done):
        with pytest.raises(Rejected, match="unknown location 'atlantis'"):
            await scheduler.receive(event)
