"""The staff directory at run time, through HTTP, the real broker and Redis: where a
two-location therapist is booked, what an extra shift or a sick day re-plans, the
turnover and the daily cap of a location's policy, the cadence note, and the
refusals of bad changes.

Plan events are handed to the scheduler's handlers (``Scheduler.receive``) and what
they produce is published as the consumer would; the clock is a settable one."""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from icalendar import Calendar

from services.planner.domain import build_plan
from services.scheduler.handlers import handlers
from services.scheduler.store import CalendarStore
from shared.chain import Policy
from shared.codec import wrap
from shared.envelope import Trace
from shared.events import IntakeSubmitted, PlanCreated, VisitBooked
from shared.events.intake import ClientRecord, Complaint, Health, Preferences, Screening
from shared.events.plans import PlanData
from shared.infra import Infra
from shared.runtime import Runtime
from shared.vocabulary import Weekday
from tests.integration import test_scheduler_visits as visits
from tests.support import SettableClock, TopicLog

pytestmark = pytest.mark.integration

START = datetime(2027, 3, 1, 16, tzinfo=UTC)  # a Monday, 08:00 in Beaverton, 11:00 in Brooklyn
CHAIN_ID = "northwest-nmt"
ADMIN = {"Authorization": "Bearer demo-admin"}
BEAVERTON_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
BROOKLYN_DESK = {"Authorization": "Bearer demo-frontdesk-brooklyn"}
BEAVERTON = ZoneInfo("America/Los_Angeles")
BROOKLYN = ZoneInfo("America/New_York")
ZONES = {"beaverton": BEAVERTON, "brooklyn": BROOKLYN}
TUESDAY, THURSDAY = 1, 3  # date.weekday()


@dataclass
class Scheduler:
    """The visits tests' scheduler (``scheduler_on``: the routes, the directory's
    among them, its outbox relay, a Redis namespace of its own - a fresh directory
    seeded from the demo chain - and a settable clock at ``START``), whose plan
    events also publish what they produced, as the consumer does."""

    running: visits.Scheduler

    @property
    def http(self) -> httpx.AsyncClient:
        return self.running.http

    @property
    def runtime(self) -> Runtime:
        return self.running.runtime

    @property
    def clock(self) -> SettableClock:
        return self.running.clock

    async def receive(self, plan: PlanData) -> list[dict[str, Any]]:
        cause = wrap(
            plan,
            event_id=str(uuid.uuid4()),
            service="planner",
            subject=plan.plan_id,
            trace=Trace(chainid=CHAIN_ID, correlationid=plan.plan_id),
            time=self.clock.now(),
        )
        produced = await handlers(self.runtime)[plan.event_type](cause, plan)
        await self.runtime.publisher.publish(produced)
        return [o.envelope.model_dump(mode="json") for o in produced]

    @property
    def store(self) -> CalendarStore:
        return CalendarStore(self.runtime.redis, self.runtime.keys)

    async def booked_at(self, location_id: str) -> list[VisitBooked]:
        """Every booked visit at the location within the horizon, from the store."""
        held = await self.store.intervals(
            location_id, start=START - timedelta(days=1), end=START + timedelta(weeks=20)
        )
        found = await self.store.visits(sorted({i.visit_id for i in held}))
        return sorted((v for v, s in found if s == "booked"), key=lambda v: (v.start, v.visit_id))


@pytest.fixture
async def scheduler(infra: Infra) -> AsyncIterator[Scheduler]:
    async with visits.scheduler_on(infra, infra.kafka_bootstrap_servers) as running:
        yield Scheduler(running)


def a_plan(
    n: str,
    *,
    location: str = "beaverton",
    therapist: str | None = None,
    days: Iterable[Weekday] = (),
    intensity: int = 7,
) -> PlanCreated:
    intake = IntakeSubmitted(
        intake_id=f"directory-{n}-{uuid.uuid4().hex[:6]}",
        client=ClientRecord(
            client_id=f"client-{n}-{uuid.uuid4().hex[:6]}", name="Directory Client"
        ),
        location_id=location,
        complaints=[
            Complaint(
                region="neck", intensity=intensity, qualities=["ache"], onset=date(2026, 6, 1)
            )
        ],
        health=Health(),
        screening=Screening(outcome="clear"),
        preferences=Preferences(therapist_id=therapist, days=list(days)),
        submitted_at=START,
    )
    return build_plan(intake, policy=Policy())


def booked(published: list[dict[str, Any]]) -> list[VisitBooked]:
    return [VisitBooked.model_validate(e["data"]) for e in published if e["type"] == "visit.booked"]


def local_day(visit: VisitBooked) -> date:
    return visit.start.astimezone(ZONES[visit.location_id]).date()


def staff_unavailable(topics: TopicLog, visit_id: str) -> list[dict[str, Any]]:
    return [
        e
        for kind in ("visit.rescheduled", "visit.cancelled")
        for e in topics.events(type=kind, subject=visit_id)
        if e["data"].get("cause") == "staff_unavailable"
    ]


def assert_no_double_booking(visits: list[VisitBooked]) -> None:
    """No therapist, room (per location) or client holds two overlapping visits."""
    for name, owner in (
        ("therapist", lambda v: v.therapist_id),
        ("room", lambda v: (v.location_id, v.room)),
        ("client", lambda v: v.client_id),
    ):
        by: defaultdict[object, list[VisitBooked]] = defaultdict(list)
        for visit in visits:
            by[owner(visit)].append(visit)
        for key, held in by.items():
            for a, b in itertools.pairwise(sorted(held, key=lambda v: v.start)):
                assert a.end <= b.start, f"{name} {key}: {a.visit_id} overlaps {b.visit_id}"


async def test_a_two_location_therapist_is_booked_only_where_they_work_that_day(
    scheduler: Scheduler, topics: TopicLog
) -> None:
    at_brooklyn = a_plan("dev-brooklyn", location="brooklyn", therapist="t-dev")
    at_beaverton = a_plan("dev-beaverton", location="beaverton", therapist="t-dev")
    brooklyn_visits = booked(await scheduler.receive(at_brooklyn))
    beaverton_visits = booked(await scheduler.receive(at_beaverton))
    assert len(brooklyn_visits) == at_brooklyn.sessions_total
    assert len(beaverton_visits) == at_beaverton.sessions_total
    # Tuesdays in Brooklyn (New York local), Thursdays in Beaverton (Beaverton local)
    assert all(v.therapist_id == "t-dev" and v.location_id == "brooklyn" for v in brooklyn_visits)
    assert {local_day(v).weekday() for v in brooklyn_visits} == {TUESDAY}
    assert all(v.therapist_id == "t-dev" and v.location_id == "beaverton" for v in beaverton_visits)
    assert {local_day(v).weekday() for v in beaverton_visits} == {THURSDAY}

    # an extra shift in Beaverton on a Tuesday he works in Brooklyn
    tuesday = local_day(brooklyn_visits[0])
    lost = [v for v in brooklyn_visits if local_day(v) == tuesday]
    assert lost
    exception_id = f"dev-shift-{uuid.uuid4().hex[:8]}"
    answer = await scheduler.http.post(
        "/v1/directory/exceptions",
        json={
            "exception_id": exception_id,
            "therapist_id": "t-dev",
            "kind": "extra_shift",
            "start_date": tuesday.isoformat(),
            "end_date": tuesday.isoformat(),
            "location_id": "beaverton",
            "ranges": ["09:00-18:00"],
        },
        headers=ADMIN,
    )
    assert answer.status_code == 201, answer.text
    result = answer.json()
    assert result["event_type"] == "directory.exception_added"
    assert {v.visit_id for v in lost} <= set(result["moved"]) | set(result["cancelled"])

    # each of his Brooklyn visits that Tuesday was moved or cancelled, on clinic.visits
    for visit in lost:
        facts = await topics.wait_for(lambda v=visit: staff_unavailable(topics, v.visit_id))
        for fact in facts:
            if fact["type"] == "visit.rescheduled":
                moved_to = datetime.fromisoformat(fact["data"]["start"])
                assert not (
                    fact["data"]["therapist_id"] == "t-dev"
                    and moved_to.astimezone(BROOKLYN).date() == tuesday
                )
    left = [
        v
        for v in await scheduler.booked_at("brooklyn")
        if v.therapist_id == "t-dev" and local_day(v) == tuesday
    ]
    assert left == []

    # a new Beaverton plan can now use that Tuesday; the first one did not
    assert all(local_day(v) != tuesday for v in beaverton_visits)
    again = booked(await scheduler.receive(a_plan("dev-shift", therapist="t-dev")))
    assert again[0].therapist_id == "t-dev" and local_day(again[0]) == tuesday
    assert {local_day(v).weekday() for v in again[1:]} == {THURSDAY}

    # regular Tuesday hours in Beaverton: he works in Brooklyn on Tuesdays
    refused = await scheduler.http.put(
        "/v1/directory/therapists/t-dev/locations/beaverton/hours",
        json={"hours": {"tue": ["09:00-18:00"], "thu": ["09:00-18:00"]}},
        headers=ADMIN,
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "hours", "tue"]
    shown = (await scheduler.http.get("/v1/directory", headers=ADMIN)).json()
    assert "tue" not in shown["hours"]["t-dev"]["beaverton"]


async def test_a_sick_day_replans_with_continuity(scheduler: Scheduler, topics: TopicLog) -> None:
    policy = scheduler.runtime.chain.policy_for("beaverton")
    # one client asked for Ana; another did not, and is booked with her all the same
    asked = a_plan("ana-asked", therapist="t-ana")
    asked_visits = booked(await scheduler.receive(asked))
    plan = a_plan("ana-booked")
    visits = booked(await scheduler.receive(plan))
    for course, held in ((asked, asked_visits), (plan, visits)):
        assert len(held) == course.sessions_total
        assert {v.therapist_id for v in held} == {"t-ana"}
    first, second, third = visits[0], visits[1], visits[2]
    sick_day = local_day(second)
    assert local_day(asked_visits[1]) == sick_day

    exception_id = f"ana-sick-{uuid.uuid4().hex[:8]}"
    sick = {
        "exception_id": exception_id,
        "therapist_id": "t-ana",
        "kind": "sick",
        "start_date": sick_day.isoformat(),
        "end_date": sick_day.isoformat(),
        "note": "flu",
    }

    async def post(body: dict[str, Any]) -> httpx.Response:
        return await scheduler.http.post(
            "/v1/directory/exceptions", json=body, headers=BEAVERTON_DESK
        )

    answer = await post(sick)
    assert answer.status_code == 201, answer.text
    result = answer.json()
    # the same request again (a retry after a lost answer): what stands, nothing re-planned
    again = await post(sick)
    assert again.status_code == 200, again.text
    assert again.json()["version"] == result["version"] and again.json()["moved"] == []
    # the same id with other content
    other = await post({**sick, "kind": "time_off", "note": None})
    assert other.status_code == 409, other.text
    # the same therapist first: with a day's slack either way of the cadence, Ana takes
    # both visits on a neighbouring day - the one of the client who asked for her too
    assert {second.visit_id, asked_visits[1].visit_id} <= set(result["moved"])
    assert result["cancelled"] == []
    kept = (await topics.wait_for(lambda: staff_unavailable(topics, asked_visits[1].visit_id)))[0]
    assert kept["type"] == "visit.rescheduled" and kept["data"]["therapist_id"] == "t-ana"

    fact = (await topics.wait_for(lambda: staff_unavailable(topics, second.visit_id)))[0]
    assert fact["type"] == "visit.rescheduled"
    moved = fact["data"]
    new_start = datetime.fromisoformat(moved["start"])
    new_end = datetime.fromisoformat(moved["end"])
    assert datetime.fromisoformat(moved["previous_start"]) == second.start
    assert moved["therapist_id"] == "t-ana"
    # the cadence window of session 2, a day's slack either way (directory_replan.SLACK_DAYS)
    interval = dict(
        enumerate((p.interval_days for p in plan.phases for _ in range(p.sessions)), start=1)
    )
    window_from = local_day(first) + timedelta(days=interval[2] - 1)
    window_to = local_day(third) - timedelta(days=interval[3] - 1)
    new_day = new_start.astimezone(BEAVERTON).date()
    assert window_from <= new_day <= window_to and new_day != sick_day
    assert abs((new_day - sick_day).days) == 1  # the nearest day she has a slot
    # the soreness gap to both neighbours
    assert first.end + policy.min_gap_same_area <= new_start
    assert new_end + policy.min_gap_same_area <= third.start

    # the calendar: the moved visit stands there, and nothing overlaps
    shown = await scheduler.http.get(f"/v1/clients/{plan.client_id}/visits", headers=ADMIN)
    assert shown.status_code == 200, shown.text
    listed = {v["visit_id"]: v for v in shown.json()["visits"]}
    assert listed[second.visit_id]["status"] == "booked"
    assert listed[second.visit_id]["therapist_id"] == "t-ana"
    assert datetime.fromisoformat(listed[second.visit_id]["start"]) == new_start
    assert_no_double_booking(await scheduler.booked_at("beaverton"))
    # the client's calendar entry of the moved visit is a new revision of it
    entry = await scheduler.http.get(f"/v1/visits/{second.visit_id}.ics", headers=ADMIN)
    assert entry.status_code == 200, entry.text
    (event,) = Calendar.from_ical(entry.content).walk("VEVENT")
    assert event["SEQUENCE"] == 1 and event.decoded("DTSTART").astimezone(UTC) == new_start

    # the directory's own event, keyed by the chain
    added = await topics.wait_for(
        lambda: [
            e
            for e in topics.events(type="directory.exception_added")
            if e["data"]["exception_id"] == exception_id
        ]
    )
    assert added[0]["data"]["replanned"] >= 2 and added[0]["data"]["kind"] == "sick"
    assert len(added) == 1  # the repeat published nothing
    assert "note" not in added[0]["data"]  # why she is off stays off the topic
    record = topics.record_of(added[0]["id"])
    assert record is not None and record.topic == "clinic.directory" and record.key == CHAIN_ID

    # the same therapist when she has a slot in the window: the last visit's window
    # runs a week past it, so a sick day there keeps it with Ana, a day or two off
    last = asked_visits[-1]
    late_day = local_day(last)
    later = await scheduler.http.post(
        "/v1/directory/exceptions",
        json={
            "therapist_id": "t-ana",
            "kind": "sick",
            "start_date": late_day.isoformat(),
            "end_date": late_day.isoformat(),
        },
        headers=BEAVERTON_DESK,
    )
    assert later.status_code == 201, later.text
    assert last.visit_id in later.json()["moved"]
    kept = (await topics.wait_for(lambda: staff_unavailable(topics, last.visit_id)))[0]["data"]
    assert kept["therapist_id"] == "t-ana"
    kept_day = datetime.fromisoformat(kept["start"]).astimezone(BEAVERTON).date()
    assert 0 < abs((kept_day - late_day).days) <= 2
    assert_no_double_booking(await scheduler.booked_at("beaverton"))

    # refusals: another location's front desk, and a front desk closing a location
    version = (await scheduler.http.get("/v1/directory", headers=ADMIN)).json()["version"]
    elsewhere = await scheduler.http.post(
        "/v1/directory/exceptions",
        json={
            "therapist_id": "t-ana",
            "kind": "time_off",
            "start_date": "2027-04-01",
            "end_date": "2027-04-02",
        },
        headers=BROOKLYN_DESK,
    )
    assert elsewhere.status_code == 422, elsewhere.text
    assert elsewhere.json()["detail"][0]["loc"] == ["body", "therapist_id"]
    closing = await scheduler.http.post(
        "/v1/directory/closures",
        json={"location_id": "beaverton", "start_date": "2027-04-01", "end_date": "2027-04-01"},
        headers=BEAVERTON_DESK,
    )
    assert closing.status_code == 403, closing.text
    after = (await scheduler.http.get("/v1/directory", headers=ADMIN)).json()
    assert after["version"] == version
    assert not any(c["start_date"] == "2027-04-01" for c in after["closures"])
    assert not any(e["start_date"] == "2027-04-01" for e in after["exceptions"])


async def test_turnover_and_the_daily_cap_hold(scheduler: Scheduler) -> None:
    answer = await scheduler.http.put(
        "/v1/directory/policy",
        json={"location_id": "beaverton", "turnover": "PT30M", "max_visits_per_day": 2},
        headers=ADMIN,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["event_type"] == "directory.policy_set"

    for n in range(4):
        for therapist in ("t-ben", "t-ana"):
            plan = a_plan(f"cap-{therapist}-{n}", therapist=therapist)
            visits = booked(await scheduler.receive(plan))
            assert len(visits) == plan.sessions_total
            assert {v.therapist_id for v in visits} == {therapist}

    visits = await scheduler.booked_at("beaverton")
    per_day: defaultdict[tuple[str, date], list[VisitBooked]] = defaultdict(list)
    per_room: defaultdict[tuple[int, date], list[VisitBooked]] = defaultdict(list)
    for visit in visits:
        per_day[(visit.therapist_id, local_day(visit))].append(visit)
        per_room[(visit.room, local_day(visit))].append(visit)
    assert max(len(day) for day in per_day.values()) == 2  # the cap was reached, and held
    for held in [*per_day.values(), *per_room.values()]:
        for a, b in itertools.pairwise(sorted(held, key=lambda v: v.start)):
            assert b.start - a.end >= timedelta(minutes=30), (a, b)
    # four plans of one therapist all start as early as they can: the cap spread them
    firsts = {
        therapist: sorted({local_day(v) for v in visits if v.therapist_id == therapist})
        for therapist in ("t-ben", "t-ana")
    }
    assert all(len(days) > 1 for days in firsts.values())


async def test_the_cadence_note_says_why_twice_weekly_did_not_fit(
    scheduler: Scheduler, topics: TopicLog
) -> None:
    hours = {"tue": ["09:00-18:00"], "thu": ["09:00-18:00"]}
    answer = await scheduler.http.put(
        "/v1/directory/therapists/t-ben/locations/beaverton/hours",
        json={"hours": hours},
        headers=ADMIN,
    )
    assert answer.status_code == 200, answer.text
    plan = a_plan("ben-tue-thu", therapist="t-ben")
    # the plan starts twice weekly: every 3 days, which Tuesdays and Thursdays cannot keep
    assert plan.phases[0].interval_days == 3 and plan.phases[0].sessions >= 2
    visits = booked(await scheduler.receive(plan))
    assert visits and {v.therapist_id for v in visits} == {"t-ben"}
    assert {local_day(v).weekday() for v in visits} <= {TUESDAY, THURSDAY}

    second = visits[1]
    cadence_day = local_day(visits[0]) + timedelta(days=3)
    assert local_day(second) > cadence_day
    published = await topics.wait_for(
        lambda: [
            e
            for e in topics.for_client("visit.booked", plan.client_id)
            if e["data"].get("cadence_note") and e["subject"] == second.visit_id
        ]
    )
    note = published[0]["data"]["cadence_note"]
    assert note == second.cadence_note
    assert f"{local_day(second):%a %d %b}" in note  # what was booked instead
    assert f"after the cadence's {cadence_day:%a %d %b} (every 3 days)" in note
    assert "no therapist for this plan works at Beaverton" in note  # why
    assert f"{cadence_day:%a %d %b}" in note.split(":", 1)[1]
    assert visits[0].cadence_note is None


def an_exception(**fields: object) -> dict[str, object]:
    return {
        "therapist_id": "t-ana",
        "kind": "time_off",
        "start_date": "2027-04-02",
        "end_date": "2027-04-02",
        **fields,
    }


async def refused_at(scheduler: Scheduler, payload: dict[str, object]) -> list[object]:
    """The loc of the first error of a refused exception (and that it was a 422)."""
    answer = await scheduler.http.post("/v1/directory/exceptions", json=payload, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    return list(answer.json()["detail"][0]["loc"])


async def test_bad_exceptions_are_refused_naming_the_field(scheduler: Scheduler) -> None:
    assert await refused_at(scheduler, an_exception(kind="holiday")) == ["body", "kind"]
    backwards_range = await refused_at(scheduler, an_exception(ranges=["18:00-09:00"]))
    assert backwards_range[:2] == ["body", "ranges"]
    backwards_dates = await scheduler.http.post(
        "/v1/directory/exceptions", json=an_exception(end_date="2027-04-01"), headers=ADMIN
    )
    assert backwards_dates.status_code == 422, backwards_dates.text
    shown = (await scheduler.http.get("/v1/directory", headers=ADMIN)).json()
    assert shown["version"] == 1 and shown["exceptions"] == []


async def test_end_date_before_start_date_is_refused_naming_end_date(
    scheduler: Scheduler,
) -> None:
    loc = await refused_at(scheduler, an_exception(end_date="2027-04-01"))
    assert loc == ["body", "end_date"]
