"""The scheduler's pure booking rules (services/scheduler/booking.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.scheduler.booking import BookedInterval, BookingOutcome, book_plan
from services.scheduler.directory import plain
from shared.chain import Location, Policy, Therapist, ranges_on
from shared.envelope import derived_id
from shared.events.plans import (
    HomeProgram,
    Phase,
    PlanCreated,
    RationaleItem,
    SchedulingNeeds,
)
from shared.events.visits import VisitBooked
from shared.vocabulary import WEEKDAYS, TimeOfDay, Weekday

LA = "America/Los_Angeles"
NY = "America/New_York"
NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)  # Monday, 04:00 in Los Angeles
WEEKDAY_HOURS: dict[Weekday, list[str]] = {
    day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")
}
ALL_WEEK: dict[Weekday, list[str]] = {day: ["09:00-18:00"] for day in WEEKDAYS}


def make_location(
    *,
    timezone: str = LA,
    hours: dict[Weekday, list[str]] | None = None,
    rooms: int = 2,
    closed: Sequence[date] = (),
) -> Location:
    return Location(
        id="beaverton",
        name="Beaverton",
        timezone=timezone,
        hours=hours if hours is not None else WEEKDAY_HOURS,
        rooms=rooms,
        closed=list(closed),
    )


def make_therapist(
    therapist_id: str,
    *,
    skills: Sequence[str] = ("nmt",),
    hours: dict[Weekday, list[str]] | None = None,
) -> Therapist:
    return Therapist(
        id=therapist_id,
        name=therapist_id,
        locations=["beaverton"],
        skills=list(skills),
        hours=hours,
    )


def make_phase(name: str = "initial", *, sessions: int = 6, interval_days: int = 3) -> Phase:
    return Phase(
        name=name,
        sessions=sessions,
        interval_days=interval_days,
        per_week=7 / interval_days,
        weeks=max(1, sessions * interval_days // 7),
        rrule=f"FREQ=DAILY;INTERVAL={interval_days};COUNT={sessions}",
    )


def make_plan(
    *,
    phases: Sequence[Phase] | None = None,
    visit_minutes: int = 60,
    plan_id: str = "plan-1",
    client_id: str = "client-1",
    **scheduling: object,
) -> PlanCreated:
    phases = list(phases) if phases is not None else [make_phase()]
    return PlanCreated(
        plan_id=plan_id,
        version=1,
        client_id=client_id,
        location_id="beaverton",
        intake_id="intake-1",
        condition="chronic",
        modality="nmt",
        sessions_total=sum(phase.sessions for phase in phases),
        phases=phases,
        visit_minutes=visit_minutes,
        protocol=[],
        home_program=HomeProgram(),
        review_after_sessions=4,
        review_by=date(2027, 4, 1),
        scheduling=SchedulingNeeds.model_validate(scheduling),
        rationale=[RationaleItem(rule="x", detail="y")],
        created_at=NOW,
    )


def book(
    plan: PlanCreated,
    *,
    location: Location | None = None,
    therapists: Sequence[Therapist] | None = None,
    policy: Policy | None = None,
    existing: Sequence[BookedInterval] = (),
    now: datetime = NOW,
) -> BookingOutcome:
    location = location or make_location()
    therapists = therapists if therapists is not None else [make_therapist("t-ana")]
    return book_plan(
        plan,
        staffing=plain(
            location, [(t, t.hours if t.hours is not None else location.hours) for t in therapists]
        ),
        policy=policy or Policy(),
        existing=existing,
        now=now,
    )


def local(visit: VisitBooked, zone: str = LA) -> tuple[datetime, datetime]:
    return visit.start.astimezone(ZoneInfo(zone)), visit.end.astimezone(ZoneInfo(zone))


def inside(start: datetime, end: datetime, ranges: list[tuple[time, time]]) -> bool:
    """Whether a local visit lies inside one of a day's ranges (wall-clock)."""
    same_day = start.date() == end.date()
    return same_day and any(lo <= start.time() and end.time() <= hi for lo, hi in ranges)


def overlaps(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


# --- the whole cadence -----------------------------------------------------------------


def test_every_session_is_booked_in_order_with_stable_ids() -> None:
    plan = make_plan(phases=[make_phase(sessions=4), make_phase("taper", sessions=2)])
    outcome = book(plan)
    assert outcome.waitlisted == []
    assert [v.sequence for v in outcome.booked] == [1, 2, 3, 4, 5, 6]
    assert [v.phase for v in outcome.booked] == ["initial"] * 4 + ["taper"] * 2
    assert [v.visit_id for v in outcome.booked] == [
        derived_id("visit", "plan-1", n) for n in range(1, 7)
    ]
    first = outcome.booked[0]
    assert (first.plan_version, first.sessions_total, first.timezone) == (1, 6, LA)
    assert first.start.utcoffset() == timedelta(0)
    assert first.end - first.start == timedelta(minutes=60)


def test_the_same_input_gives_the_same_outcome() -> None:
    plan = make_plan()
    therapists = [make_therapist("t-bob"), make_therapist("t-ana")]
    once = book(plan, therapists=therapists)
    again = book(plan, therapists=list(reversed(therapists)))
    assert once == again
    assert {v.therapist_id for v in once.booked} == {"t-ana"}  # tie goes to the lower id


def test_phases_must_add_up_to_sessions_total() -> None:
    plan = make_plan().model_copy(update={"sessions_total": 7})
    with pytest.raises(ValueError, match="sessions_total"):
        book(plan)


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        book(make_plan(), now=NOW.replace(tzinfo=None))


def test_cadence_follows_each_phase_interval() -> None:
    plan = make_plan(
        phases=[
            make_phase(sessions=3, interval_days=3),
            make_phase("taper", sessions=2, interval_days=14),
        ]
    )
    policy = Policy(max_sessions_per_week=3)  # the default 2 would push the third visit
    outcome = book(plan, location=make_location(hours=ALL_WEEK), policy=policy)
    days = [local(v)[0].date() for v in outcome.booked]
    gaps = [(b - a).days for a, b in pairwise(days)]
    assert gaps == [3, 3, 14, 14]


# --- time rules ------------------------------------------------------------------------


def test_first_visit_respects_minimum_notice() -> None:
    now = datetime(2027, 3, 2, 17, 0, tzinfo=UTC)  # Tuesday 09:00 in Los Angeles
    first = book(make_plan(), now=now).booked[0]
    assert first.start >= now + Policy().min_notice
    assert local(first)[0] == datetime(2027, 3, 3, 9, 0, tzinfo=ZoneInfo(LA))


def test_consecutive_visits_leave_the_soreness_window() -> None:
    plan = make_plan(phases=[make_phase(sessions=5, interval_days=1)])
    visits = book(plan, location=make_location(hours=ALL_WEEK)).booked
    for previous, following in pairwise(visits):
        assert following.start >= previous.end + timedelta(hours=48)


def test_closed_date_is_skipped() -> None:
    usual = book(make_plan()).booked[0]
    closed_day = local(usual)[0].date()
    moved = book(make_plan(), location=make_location(closed=[closed_day])).booked[0]
    assert local(moved)[0].date() == closed_day + timedelta(days=1)


def test_visits_stay_inside_location_and_therapist_hours_in_local_time() -> None:
    therapist = make_therapist("t-ana", hours={"tue": ["13:00-16:00"], "thu": ["07:00-10:30"]})
    location = make_location()
    plan = make_plan(visit_minutes=90)
    outcome = book(plan, location=location, therapists=[therapist])
    assert len(outcome.booked) == 6
    for visit in outcome.booked:
        start, end = local(visit)
        weekday = WEEKDAYS[start.weekday()]
        assert inside(start, end, ranges_on(location.hours, weekday))
        assert inside(start, end, ranges_on(therapist.hours or {}, weekday))
    assert {local(v)[0].time() for v in outcome.booked} <= {time(13, 0), time(9, 0)}


@pytest.mark.parametrize("zone", [LA, NY])
@pytest.mark.parametrize("change", [date(2027, 3, 14), date(2027, 11, 7)])
def test_morning_visits_keep_their_wall_clock_time_across_dst(zone: str, change: date) -> None:
    now = datetime.combine(change - timedelta(days=6), time(12), tzinfo=UTC)
    plan = make_plan(times=["morning"])
    outcome = book(plan, location=make_location(timezone=zone, hours=ALL_WEEK), now=now)
    starts = [local(v, zone)[0] for v in outcome.booked]
    assert len(starts) == 6
    assert {s.time() for s in starts} == {time(9, 0)}
    before = [s for s in starts if s.date() < change]
    after = [s for s in starts if s.date() > change]
    assert before and after
    assert before[0].utcoffset() != after[-1].utcoffset()  # the same 09:00, another UTC hour


def test_a_wall_time_skipped_by_spring_forward_is_never_booked() -> None:
    location = make_location(hours={"sun": ["01:00-05:00"]}, rooms=1)
    zone = ZoneInfo(LA)
    # 01:00 PST to 03:00 PDT is one real hour, held by another client.
    busy_from = datetime(2027, 3, 14, 1, 0, tzinfo=zone)
    held = BookedInterval(
        therapist_id="t-ana",
        room=1,
        start=busy_from.astimezone(UTC),
        end=busy_from.astimezone(UTC) + timedelta(hours=1),
        visit_id="v-other",
        client_id="client-2",
    )
    plan = make_plan(phases=[make_phase(sessions=1)])
    now = datetime(2027, 3, 12, 12, tzinfo=UTC)
    visit = book(plan, location=location, existing=[held], now=now).booked[0]
    start = local(visit)[0]
    assert start.replace(tzinfo=None) == datetime(2027, 3, 14, 3, 0)
    assert visit.start == held.end


# --- who -------------------------------------------------------------------------------


def test_a_skill_only_one_therapist_has_keeps_every_visit_with_them() -> None:
    therapists = [make_therapist("t-ana"), make_therapist("t-zoe", skills=["nmt", "fmm"])]
    outcome = book(make_plan(required_skills=["fmm"]), therapists=therapists)
    assert {v.therapist_id for v in outcome.booked} == {"t-zoe"}
    assert len(outcome.booked) == 6


def test_the_requested_therapist_is_booked() -> None:
    therapists = [make_therapist("t-ana"), make_therapist("t-bob")]
    outcome = book(make_plan(therapist_id="t-bob"), therapists=therapists)
    assert {v.therapist_id for v in outcome.booked} == {"t-bob"}


def test_continuity_prefers_the_previous_therapist_on_the_chosen_day() -> None:
    ana = make_therapist("t-ana", hours={"mon": ["09:00-18:00"]})
    bob = make_therapist("t-bob")
    plan = make_plan(phases=[make_phase(sessions=2, interval_days=7)])
    outcome = book(plan, therapists=[ana, bob], now=datetime(2027, 2, 28, 12, tzinfo=UTC))
    first, second = outcome.booked
    assert first.therapist_id == "t-ana"
    # Bob is free at 09:00 too; the client keeps Ana.
    assert second.therapist_id == "t-ana"
    second_ana_busy = book(
        plan,
        therapists=[ana, bob],
        now=datetime(2027, 2, 28, 12, tzinfo=UTC),
        existing=[
            BookedInterval("t-ana", 1, second.start, second.start + timedelta(hours=9), "v", "c2")
        ],
    )
    assert second_ana_busy.booked[1].therapist_id == "t-bob"


def test_a_second_room_lets_two_therapists_work_at_once() -> None:
    first = book(make_plan()).booked[0]
    held = BookedInterval("t-ana", 1, first.start, first.end, "v-other", "client-2")
    therapists = [make_therapist("t-ana"), make_therapist("t-bob")]
    # Ana's whole day taken in room 1: Bob works at the same hour in room 2
    ana_day = BookedInterval("t-ana", 1, first.start, first.start + timedelta(hours=9), "v", "c2")
    visit = book(make_plan(), therapists=therapists, existing=[ana_day]).booked[0]
    assert (visit.start, visit.therapist_id, visit.room) == (first.start, "t-bob", 2)
    # With one room the location is full at that hour.
    one_room = book(
        make_plan(), location=make_location(rooms=1), therapists=therapists, existing=[held]
    )
    assert one_room.booked[0].start == first.end


# --- client preferences ----------------------------------------------------------------


def test_preferred_days_and_times_are_respected() -> None:
    plan = make_plan(days=["tue", "thu"], times=["afternoon"])
    outcome = book(plan)
    assert len(outcome.booked) == 6
    for visit in outcome.booked:
        start = local(visit)[0]
        assert WEEKDAYS[start.weekday()] in ("tue", "thu")
        assert time(12) <= start.time() < time(17)


def test_evening_means_a_start_at_or_after_five() -> None:
    outcome = book(
        make_plan(times=["evening"]), location=make_location(hours={"wed": ["09:00-19:00"]})
    )
    assert {local(v)[0].time() for v in outcome.booked} == {time(17, 0)}


def test_at_most_the_clients_weekly_maximum() -> None:
    plan = make_plan(phases=[make_phase(sessions=4, interval_days=2)], max_sessions_per_week=1)
    weeks = Counter(local(v)[0].isocalendar()[:2] for v in book(plan).booked)
    assert set(weeks.values()) == {1}
    assert sum(weeks.values()) == 4


# --- what cannot be booked ---------------------------------------------------------------


def test_preferences_that_never_fit_are_waitlisted_as_too_narrow() -> None:
    outcome = book(make_plan(days=["sun"]))  # closed on Sundays
    assert outcome.booked == []
    assert [w.sequence for w in outcome.waitlisted] == [1, 2, 3, 4, 5, 6]
    assert {w.reason for w in outcome.waitlisted} == {"preferences_too_narrow"}
    assert all(w.detail for w in outcome.waitlisted)


def test_no_therapist_with_the_skill_is_no_skill() -> None:
    outcome = book(make_plan(required_skills=["fmm"]))
    assert outcome.booked == []
    assert {w.reason for w in outcome.waitlisted} == {"no_skill"}
    assert len(outcome.waitlisted) == 6


def test_a_requested_therapist_without_the_skill_or_not_here_is_no_skill() -> None:
    lacking = book(make_plan(required_skills=["fmm"], therapist_id="t-ana"))
    elsewhere = book(make_plan(therapist_id="t-nobody"))
    assert {w.reason for w in lacking.waitlisted + elsewhere.waitlisted} == {"no_skill"}


def test_a_full_calendar_waitlists_the_rest_as_no_capacity() -> None:
    policy = Policy(horizon=timedelta(days=10))
    outcome = book(make_plan(), policy=policy)
    assert [v.sequence for v in outcome.booked] == [1, 2, 3]
    assert [w.sequence for w in outcome.waitlisted] == [4, 5, 6]
    assert {w.reason for w in outcome.waitlisted} == {"no_capacity"}
    assert all(v.start < NOW + policy.horizon for v in outcome.booked)


# --- invariants over random calendars ----------------------------------------------------

PROPERTY_THERAPISTS = [
    make_therapist("t-a"),
    make_therapist(
        "t-b", skills=["nmt", "fmm"], hours={"mon": ["12:00-18:00"], "sat": ["10:00-14:00"]}
    ),
    make_therapist("t-c", hours={day: ["08:00-20:00"] for day in WEEKDAYS}),
]
PROPERTY_HOURS: dict[Weekday, list[str]] = {
    **WEEKDAY_HOURS,
    "wed": ["09:00-12:00", "13:00-19:30"],
    "sat": ["10:00-14:00"],
}
# DESIGN.md preferences, restated independently of the implementation.
TIMES_OF_DAY: dict[str, tuple[time, time]] = {
    "morning": (time(0), time(12)),
    "afternoon": (time(12), time(17)),
    "evening": (time(17), time.max),
}
PROPERTY_START = datetime(2027, 3, 8, 12, tzinfo=UTC)  # the week before DST in New York


@st.composite
def calendars(draw: st.DrawFn) -> tuple[Location, list[BookedInterval]]:
    """A location and a consistent set of visits held there by other clients."""
    rooms = draw(st.integers(1, 3))
    location = Location(
        id="beaverton",
        name="Beaverton",
        timezone=NY,
        hours=PROPERTY_HOURS,
        rooms=rooms,
        closed=draw(st.lists(st.dates(date(2027, 3, 8), date(2027, 4, 20)), max_size=4)),
    )
    zone = ZoneInfo(NY)
    held: list[BookedInterval] = []
    for n in range(draw(st.integers(0, 80))):
        start = datetime.combine(
            date(2027, 3, 8) + timedelta(days=draw(st.integers(0, 16))),
            time(8),
            tzinfo=zone,
        ) + timedelta(minutes=30 * draw(st.integers(0, 22)))
        candidate = BookedInterval(
            therapist_id=draw(st.sampled_from(["t-a", "t-b", "t-c"])),
            room=draw(st.integers(1, rooms)),
            start=start.astimezone(UTC),
            end=start.astimezone(UTC) + timedelta(minutes=draw(st.sampled_from([30, 60, 90]))),
            visit_id=f"held-{n}",
            client_id=draw(st.sampled_from(["client-1", "client-2", "client-3"])),
        )
        span = (candidate.start, candidate.end)
        clash = any(
            overlaps(span, (h.start, h.end))
            and (h.therapist_id == candidate.therapist_id or h.room == candidate.room)
            for h in held
        )
        if not clash:
            held.append(candidate)
    return location, held


@st.composite
def plans(draw: st.DrawFn) -> PlanCreated:
    phases = [
        make_phase(
            f"phase-{n}", sessions=draw(st.integers(1, 4)), interval_days=draw(st.integers(1, 7))
        )
        for n in range(draw(st.integers(1, 2)))
    ]
    days: list[Weekday] = draw(st.lists(st.sampled_from(WEEKDAYS), unique=True, max_size=3))
    times: list[TimeOfDay] = draw(
        st.lists(st.sampled_from(["morning", "afternoon", "evening"]), unique=True, max_size=2)
    )
    return make_plan(
        phases=phases,
        visit_minutes=draw(st.sampled_from([30, 45, 60, 90])),
        days=days,
        times=times,
        required_skills=draw(st.sampled_from([[], ["nmt"], ["fmm"]])),
        max_sessions_per_week=draw(st.sampled_from([None, 1, 3])),
    )


def peak(spans: list[tuple[datetime, datetime]]) -> int:
    changes = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    held = top = 0
    for _, change in changes:
        held += change
        top = max(top, held)
    return top


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    calendar=calendars(),
    plan=plans(),
    now_offset=st.integers(0, 7 * 24 * 4),
    policy=st.builds(
        Policy,
        horizon=st.sampled_from([timedelta(weeks=2), timedelta(weeks=5)]),
        min_gap_same_area=st.sampled_from([timedelta(hours=24), timedelta(hours=48)]),
        slot_step_minutes=st.sampled_from([15, 30]),
        max_sessions_per_week=st.integers(1, 3),
    ),
)
def test_bookings_never_break_the_calendar(
    calendar: tuple[Location, list[BookedInterval]],
    plan: PlanCreated,
    now_offset: int,
    policy: Policy,
) -> None:
    location, held = calendar
    now = PROPERTY_START + timedelta(minutes=15 * now_offset)
    outcome = book(
        plan,
        location=location,
        therapists=PROPERTY_THERAPISTS,
        policy=policy,
        existing=held,
        now=now,
    )
    booked, waitlisted = outcome.booked, outcome.waitlisted

    sequences = [v.sequence for v in booked] + [w.sequence for w in waitlisted]
    assert sequences == list(range(1, plan.sessions_total + 1))
    assert len({w.reason for w in waitlisted}) <= 1

    hours = {t.id: t.hours if t.hours is not None else location.hours for t in PROPERTY_THERAPISTS}
    skilled = {
        t.id for t in PROPERTY_THERAPISTS if set(plan.scheduling.required_skills) <= set(t.skills)
    }
    cap = min(policy.max_sessions_per_week, plan.scheduling.max_sessions_per_week or 7)
    weeks: Counter[tuple[int, int]] = Counter()
    for n, visit in enumerate(booked):
        span = (visit.start, visit.end)
        start, end = local(visit, NY)
        weekday = WEEKDAYS[start.weekday()]
        assert visit.therapist_id in skilled
        assert 1 <= visit.room <= location.rooms
        assert now + policy.min_notice <= visit.start < now + policy.horizon
        assert start.date() not in location.closed
        assert inside(start, end, ranges_on(location.hours, weekday))
        assert inside(start, end, ranges_on(hours[visit.therapist_id], weekday))
        if plan.scheduling.days:
            assert weekday in plan.scheduling.days
        if plan.scheduling.times:
            windows = [TIMES_OF_DAY[name] for name in plan.scheduling.times]
            assert any(lo <= start.time() < hi for lo, hi in windows)
        if n:
            assert visit.start >= booked[n - 1].end + policy.min_gap_same_area
        weeks[start.isocalendar()[:2]] += 1
        others = [(h.therapist_id, h.room, h.client_id, (h.start, h.end)) for h in held] + [
            (o.therapist_id, o.room, o.client_id, (o.start, o.end))
            for o in booked
            if o is not visit
        ]
        for therapist_id, room, client_id, other in others:
            if overlaps(span, other):
                assert therapist_id != visit.therapist_id
                assert room != visit.room
                assert client_id != visit.client_id
    assert all(count <= cap for count in weeks.values())
    spans = [(h.start, h.end) for h in held] + [(v.start, v.end) for v in booked]
    assert peak(spans) <= location.rooms
