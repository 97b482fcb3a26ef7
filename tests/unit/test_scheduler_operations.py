"""Operations on booked visits (services/scheduler/operations.py) and booking the
rest of a plan after a visit that stays (services/scheduler/booking.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from services.scheduler.booking import book_plan, interval_of
from services.scheduler.directory import plain
from services.scheduler.operations import (
    Refusal,
    completion_refusal,
    is_late_cancel,
    reschedule,
)
from services.scheduler.replan import Replan, replan
from services.scheduler.slots import BookedInterval, Slot
from shared.chain import Location, Policy, Therapist, ranges_on
from shared.envelope import derived_id
from shared.events.plans import Phase, PlanData, PlanRevised, SchedulingNeeds
from shared.events.visits import VisitBooked
from shared.vocabulary import WEEKDAYS, CancelledBy, Weekday
from tests.unit.test_booking import (
    ALL_WEEK,
    LA,
    NOW,
    NY,
    PROPERTY_START,
    PROPERTY_THERAPISTS,
    book,
    calendars,
    inside,
    local,
    make_location,
    make_phase,
    make_plan,
    make_therapist,
    overlaps,
    peak,
    plans,
)

ANA, BOB = make_therapist("t-ana"), make_therapist("t-bob")


def at(day: date, hour: int, minute: int = 0, zone: str = LA) -> datetime:
    """A local wall-clock time, as the aware instant it is."""
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(zone))


def visit(
    sequence: int,
    start: datetime,
    *,
    therapist: str = "t-ana",
    room: int = 1,
    minutes: int = 60,
    zone: str = LA,
) -> VisitBooked:
    return VisitBooked(
        visit_id=f"v{sequence}",
        plan_id="plan-1",
        client_id="client-1",
        location_id="beaverton",
        therapist_id=therapist,
        room=room,
        start=start.astimezone(UTC),
        end=start.astimezone(UTC) + timedelta(minutes=minutes),
        timezone=zone,
        sequence=sequence,
        sessions_total=6,
        phase="initial",
    )


def held(
    start: datetime, *, therapist: str, client: str = "client-2", room: int = 1, hours: float = 1
) -> BookedInterval:
    """Another visit held at the location."""
    utc = start.astimezone(UTC)
    return BookedInterval(therapist, room, utc, utc + timedelta(hours=hours), "other", client)


def with_hours(
    therapists: Sequence[Therapist], location: Location
) -> list[tuple[Therapist, dict[Weekday, list[str]]]]:
    return [(t, t.hours if t.hours is not None else location.hours) for t in therapists]


def revise(
    plan: PlanData, *, phases: list[Phase], sessions_done: int, **update: object
) -> PlanRevised:
    """Version 2 of ``plan``: ``phases`` are the sessions after ``sessions_done``."""
    return PlanRevised.model_validate(
        {
            **plan.model_dump(),
            "version": 2,
            "phases": phases,
            "sessions_total": sessions_done + sum(p.sessions for p in phases),
            "sessions_done": sessions_done,
            "reason": "review",
            "change": "taper",
            **update,
        }
    )


# --- cancel and complete -------------------------------------------------------------

START = at(date(2027, 3, 8), 10)
WINDOW = Policy().late_cancel_window


@pytest.mark.parametrize(
    ("before_start", "late"),
    [
        (WINDOW + timedelta(seconds=1), False),
        (WINDOW, False),  # exactly the window before is still on time
        (WINDOW - timedelta(seconds=1), True),
        (timedelta(0), True),
        (-timedelta(hours=1), True),  # after the start
    ],
)
def test_a_client_cancel_inside_the_window_is_late(before_start: timedelta, late: bool) -> None:
    booked = visit(1, START)
    now = booked.start - before_start
    assert is_late_cancel(booked, by="client", now=now, policy=Policy()) is late


@pytest.mark.parametrize("by", ["clinic", "client"])
def test_the_window_comes_from_policy_and_a_clinic_cancel_is_never_late(by: CancelledBy) -> None:
    booked = visit(1, START)
    now = booked.start - timedelta(hours=3)
    assert is_late_cancel(booked, by="clinic", now=now, policy=Policy()) is False
    short = Policy(late_cancel_window=timedelta(hours=2))
    assert is_late_cancel(booked, by=by, now=now, policy=short) is False


def test_completion_is_refused_before_the_start_and_allowed_from_it() -> None:
    booked = visit(1, START)
    refusal = completion_refusal(booked, now=booked.start - timedelta(seconds=1))
    assert refusal is not None
    assert "Mon 2027-03-08 10:00" in refusal  # the start, on the location's clock
    assert completion_refusal(booked, now=booked.start) is None
    assert completion_refusal(booked, now=booked.end + timedelta(days=1)) is None


# --- reschedule ------------------------------------------------------------------------

S1 = visit(1, at(date(2027, 3, 3), 10))  # Wednesday
S2 = visit(2, at(date(2027, 3, 8), 10))  # Monday: the visit that moves
S3 = visit(3, at(date(2027, 3, 11), 10))  # Thursday
FRIDAY = date(2027, 3, 5)


def move(
    moving: VisitBooked = S2,
    *,
    start: datetime | None,
    plan_visits: Sequence[VisitBooked] = (S3, S1),
    location: Location | None = None,
    therapists: Sequence[Therapist] = (ANA,),
    needs: SchedulingNeeds | None = None,
    policy: Policy | None = None,
    existing: Sequence[BookedInterval] = (),
    now: datetime = NOW,
) -> Slot | Refusal:
    location = location or make_location()
    return reschedule(
        moving,
        plan_visits=plan_visits,
        start=start,
        staffing=plain(location, with_hours(therapists, location)),
        needs=needs or SchedulingNeeds(),
        policy=policy or Policy(),
        existing=existing,
        now=now,
    )


def refused(outcome: Slot | Refusal, reason: str) -> Refusal:
    assert isinstance(outcome, Refusal), outcome
    assert outcome.reason == reason, outcome
    assert outcome.detail
    return outcome


def test_an_explicit_start_that_keeps_every_rule_is_granted() -> None:
    start = at(FRIDAY, 14)
    assert move(start=start) == Slot("t-ana", 1, start, start + timedelta(hours=1))


def test_an_explicit_start_keeps_the_therapist_when_free_else_takes_another() -> None:
    start = at(FRIDAY, 14)
    with_bob = visit(2, S2.start, therapist="t-bob")
    kept = move(with_bob, start=start, therapists=[ANA, BOB])
    assert isinstance(kept, Slot) and kept.therapist_id == "t-bob"  # not just the lower id
    bob_busy = [held(at(FRIDAY, 13, 30), therapist="t-bob")]
    moved = move(with_bob, start=start, therapists=[ANA, BOB], existing=bob_busy)
    assert isinstance(moved, Slot)
    assert (moved.therapist_id, moved.room) == ("t-ana", 2)


@pytest.mark.parametrize(
    ("start", "closed"),
    [(at(FRIDAY, 14), [FRIDAY]), (at(date(2027, 3, 6), 10), [])],  # a closed date; Saturday
)
def test_an_explicit_start_on_a_closed_day_is_refused(start: datetime, closed: list[date]) -> None:
    refusal = refused(move(start=start, location=make_location(closed=closed)), "closed")
    assert f"{start:%Y-%m-%d}" in refusal.detail


def test_an_explicit_start_that_breaks_the_gap_to_the_next_session_is_refused() -> None:
    # Ends Tuesday 15:00: session 3 on Thursday 10:00 is less than 48 h later.
    refusal = refused(move(start=at(date(2027, 3, 9), 14)), "gap")
    assert "Session 3" in refusal.detail
    # Ending exactly 48 h before it is allowed.
    assert isinstance(move(start=at(date(2027, 3, 9), 9)), Slot)


def test_an_explicit_start_that_breaks_the_gap_after_the_previous_session_is_refused() -> None:
    # Session 1 ends Wednesday 11:00; Thursday 10:00 is inside its soreness window.
    assert "Session 1" in refused(move(start=at(date(2027, 3, 4), 10)), "gap").detail


@pytest.mark.parametrize(
    ("start", "reason", "location", "therapists", "existing"),
    [
        (at(FRIDAY, 17, 30), "outside_hours", None, [ANA], []),  # would end 18:30
        (at(date(2027, 3, 1), 10), "notice", None, [ANA], []),  # 6 h from now
        (at(date(2027, 7, 1), 10), "horizon", None, [ANA], []),
        (
            at(FRIDAY, 14),
            "client_busy",
            None,
            [ANA],
            [held(at(FRIDAY, 14), therapist="t-zoe", client="client-1")],
        ),
        (
            at(FRIDAY, 14),
            "no_room",
            make_location(rooms=1),
            [ANA],
            [held(at(FRIDAY, 14), therapist="t-bob")],
        ),
        (
            at(FRIDAY, 14),
            "no_therapist",
            None,
            [ANA],
            [held(at(FRIDAY, 13), therapist="t-ana", hours=2)],
        ),
        (
            at(FRIDAY, 14),
            "no_therapist",
            None,
            [make_therapist("t-ana", hours={"mon": ["09:00-18:00"]})],
            [],
        ),
    ],
)
def test_an_explicit_start_names_the_rule_it_breaks(
    start: datetime,
    reason: str,
    location: Location | None,
    therapists: list[Therapist],
    existing: list[BookedInterval],
) -> None:
    refused(move(start=start, location=location, therapists=therapists, existing=existing), reason)


def test_the_weekly_maximum_and_the_required_skill_hold_for_an_explicit_start() -> None:
    one_a_week = Policy(max_sessions_per_week=1)  # session 1 is that week already
    refused(move(start=at(FRIDAY, 14), policy=one_a_week), "weekly_cap")
    fmm = SchedulingNeeds(required_skills=["fmm"])
    refused(move(start=at(FRIDAY, 14), needs=fmm), "no_therapist")


def test_a_visit_that_started_cannot_move() -> None:
    refused(move(start=at(FRIDAY, 14), now=S2.start), "started")
    refused(move(start=None, now=S2.start + timedelta(minutes=5)), "started")


def test_the_next_slot_is_the_first_one_after_the_current_start() -> None:
    slot = move(start=None)
    assert isinstance(slot, Slot)
    assert slot.start == at(S2.start.date(), 10, 30).astimezone(UTC)
    assert slot.therapist_id == "t-ana"


def test_the_next_slot_prefers_the_same_therapist_on_the_day_it_lands() -> None:
    with_bob = visit(2, S2.start, therapist="t-bob")
    slot = move(with_bob, start=None, therapists=[ANA, BOB])
    assert isinstance(slot, Slot) and slot.therapist_id == "t-bob"


def test_the_next_slot_keeps_the_gap_before_the_next_session() -> None:
    monday_full = [held(at(S2.start.date(), 10, 30), therapist="t-ana", hours=7.5)]
    slot = move(start=None, existing=monday_full)
    assert isinstance(slot, Slot)
    # Tuesday 09:00 ends exactly 48 h before session 3 (Thursday 10:00).
    assert slot.start == at(date(2027, 3, 9), 9).astimezone(UTC)
    assert slot.end + Policy().min_gap_same_area == S3.start
    earlier_s3 = visit(3, at(date(2027, 3, 11), 9, 30))
    too_close = move(start=None, existing=monday_full, plan_visits=[S1, earlier_s3])
    assert "Session 3" in refused(too_close, "gap").detail


def test_the_next_slot_honours_the_day_and_time_wishes() -> None:
    slot = move(start=None, needs=SchedulingNeeds(times=["afternoon"]))
    assert isinstance(slot, Slot)
    assert slot.start.astimezone(ZoneInfo(LA)).time() == time(12)


@pytest.mark.parametrize(
    ("zone", "saturday"),
    [(LA, date(2026, 3, 7)), (NY, date(2026, 10, 31))],  # the weekend of a US DST change
)
def test_a_reschedule_across_dst_keeps_the_local_wall_clock_time(zone: str, saturday: date) -> None:
    location = make_location(timezone=zone, hours={"sat": ["10:00-11:00"], "mon": ["10:00-11:00"]})
    before = visit(1, at(saturday, 10, zone=zone), zone=zone)
    monday = at(saturday + timedelta(days=2), 10, zone=zone)
    now = datetime.combine(saturday - timedelta(days=5), time(12), tzinfo=UTC)
    for start in (None, monday):  # the next slot, and the same time asked for
        slot = move(before, start=start, plan_visits=[], location=location, now=now)
        assert isinstance(slot, Slot)
        assert slot.start.astimezone(ZoneInfo(zone)).replace(tzinfo=None) == datetime.combine(
            monday.date(), time(10)
        )
        # Two calendar days later, but not 48 real hours: the offset changed.
        assert slot.start - before.start != timedelta(days=2)


MOVE_HOURS = {t.id: t for t in PROPERTY_THERAPISTS}


@settings(max_examples=60, deadline=None, derandomize=True)  # the same examples every run
@given(
    calendar=calendars(),
    plan=plans(),
    which=st.integers(0, 20),
    # an explicit start: days from the visit's own day, and a half hour from 08:00
    ask=st.none() | st.tuples(st.integers(-3, 7), st.integers(0, 22)),
)
def test_a_reschedule_never_breaks_the_calendar(
    calendar: tuple[Location, list[BookedInterval]],
    plan: PlanData,
    which: int,
    ask: tuple[int, int] | None,
) -> None:
    location, others_held = calendar
    policy = Policy()
    booked = book(
        plan,
        location=location,
        therapists=PROPERTY_THERAPISTS,
        existing=others_held,
        now=PROPERTY_START,
    ).booked
    assume(booked)
    moving = booked[which % len(booked)]
    zone = location.zone
    start = None
    if ask is not None:
        day = moving.start.astimezone(zone).date() + timedelta(days=ask[0])
        start = datetime.combine(day, time(8), tzinfo=zone) + timedelta(minutes=30 * ask[1])
    existing = [*others_held, *(interval_of(v) for v in booked if v is not moving)]
    outcome = reschedule(
        moving,
        plan_visits=booked,
        start=start,
        staffing=plain(location, with_hours(PROPERTY_THERAPISTS, location)),
        needs=plan.scheduling,
        policy=policy,
        existing=existing,
        now=PROPERTY_START,
    )
    if isinstance(outcome, Refusal):
        assert outcome.detail
        return
    if start is None:
        assert outcome.start > moving.start
    else:
        assert outcome.start == start
    assert outcome.end - outcome.start == moving.end - moving.start
    assert PROPERTY_START + policy.min_notice <= outcome.start < PROPERTY_START + policy.horizon
    local_start, local_end = outcome.start.astimezone(zone), outcome.end.astimezone(zone)
    weekday = WEEKDAYS[local_start.weekday()]
    therapist = MOVE_HOURS[outcome.therapist_id]
    assert local_start.date() not in location.closed
    assert inside(local_start, local_end, ranges_on(location.hours, weekday))
    assert inside(local_start, local_end, ranges_on(therapist.hours or location.hours, weekday))
    assert set(plan.scheduling.required_skills) <= set(therapist.skills)
    for other in booked:
        if other.sequence == moving.sequence - 1:
            assert outcome.start >= other.end + policy.min_gap_same_area
        if other.sequence == moving.sequence + 1:
            assert outcome.end + policy.min_gap_same_area <= other.start
    span = (outcome.start, outcome.end)
    for interval in existing:
        if overlaps(span, (interval.start, interval.end)):
            assert interval.therapist_id != outcome.therapist_id
            assert interval.room != outcome.room
            assert interval.client_id != moving.client_id
    assert 1 <= outcome.room <= location.rooms
    assert peak([(i.start, i.end) for i in existing] + [span]) <= location.rooms


# --- booking the rest of a plan after a visit that stays -------------------------------

EIGHT = make_plan(phases=[make_phase(sessions=8, interval_days=3)])
EIGHT_BOOKED = book(EIGHT).booked  # Mon/Thu from 2027-03-01 16:00, then 09:00 (Los Angeles)


def test_the_rest_of_a_plan_is_booked_after_the_anchor_with_versioned_ids() -> None:
    anchor = visit(2, at(date(2027, 3, 4), 9), therapist="t-bob")
    revised = revise(
        EIGHT, phases=[make_phase("taper", sessions=2, interval_days=14)], sessions_done=2
    )
    location = make_location()
    outcome = book_plan(
        revised,
        staffing=plain(location, with_hours([ANA, BOB], location)),
        policy=Policy(),
        existing=[],
        now=anchor.end,
        after=anchor,
        first_sequence=3,
    )
    assert outcome.waitlisted == []
    assert [v.sequence for v in outcome.booked] == [3, 4]
    assert [local(v)[0] for v in outcome.booked] == [
        at(date(2027, 3, 18), 9),
        at(date(2027, 4, 1), 9),
    ]
    assert {v.therapist_id for v in outcome.booked} == {"t-bob"}  # continuity from the anchor
    assert [v.visit_id for v in outcome.booked] == [
        derived_id("visit", "plan-1", 2, n) for n in (3, 4)
    ]
    assert {(v.plan_version, v.sessions_total, v.phase) for v in outcome.booked} == {
        (2, 4, "taper")
    }


def test_the_anchor_keeps_the_gap_and_counts_towards_its_week() -> None:
    anchor = visit(1, at(date(2027, 3, 2), 17))  # Tuesday, ends 18:00
    plan = make_plan(
        phases=[make_phase(sessions=1, interval_days=1)], max_sessions_per_week=1
    ).model_copy(update={"sessions_total": 2})  # session 2 of 2 is left
    location = make_location(hours=ALL_WEEK)
    outcome = book_plan(
        plan,
        staffing=plain(location, with_hours([ANA], location)),
        policy=Policy(),
        existing=[],
        now=NOW,
        after=anchor,
        first_sequence=2,
    )
    (second,) = outcome.booked
    assert second.visit_id == derived_id("visit", "plan-1", 2)  # version 1 ids are unchanged
    assert second.start >= anchor.end + Policy().min_gap_same_area
    # the anchor's week is full: the next Monday, at the anchor's clock time (routine)
    assert local(second)[0] == at(date(2027, 3, 8), local(anchor)[0].hour)


def test_phases_must_hold_exactly_the_sessions_from_the_first_sequence() -> None:
    with pytest.raises(ValueError, match="sessions_total"):
        book_plan(
            EIGHT,
            staffing=plain(make_location(), []),
            policy=Policy(),
            existing=[],
            now=NOW,
            first_sequence=3,
        )


# --- replan ------------------------------------------------------------------------------


def replan_eight(
    phases: list[Phase],
    *,
    therapists: Sequence[Therapist] = (ANA,),
    **update: object,
) -> tuple[Replan, PlanRevised]:
    """Revise EIGHT after its second visit, while that visit is running."""
    anchor, upcoming = EIGHT_BOOKED[1], EIGHT_BOOKED[2:]
    revised = revise(EIGHT, phases=phases, sessions_done=2, **update)
    location = make_location()
    result = replan(
        revised,
        visits=upcoming,
        anchor=anchor,
        staffing=plain(location, with_hours(therapists, location)),
        policy=Policy(),
        existing=[],
        now=anchor.start + timedelta(minutes=30),
    )
    assert_partition(result, upcoming)
    return result, revised


def assert_partition(result: Replan, upcoming: Sequence[VisitBooked]) -> None:
    kept = {v.visit_id for v in result.keep}
    assert kept | {v.visit_id for v in result.cancel} == {v.visit_id for v in upcoming}
    assert kept.isdisjoint(v.visit_id for v in result.cancel)
    assert {v.visit_id for v in result.renumbered} <= kept


def days_of(visits: Sequence[VisitBooked]) -> list[date]:
    return [local(v)[0].date() for v in visits]


def test_a_taper_cancels_the_visits_off_the_new_cadence_and_books_two_weeks_apart() -> None:
    result, _ = replan_eight([make_phase("taper", sessions=3, interval_days=14)])
    anchor_day = date(2027, 3, 4)
    # Only the visit 14 days after the anchor fits; the twice-weekly ones go.
    assert [v.sequence for v in result.keep] == [6]
    assert [v.sequence for v in result.cancel] == [3, 4, 5, 7, 8]
    (kept,) = result.renumbered
    assert (kept.visit_id, kept.start, kept.sequence) == (
        result.keep[0].visit_id,
        result.keep[0].start,
        3,
    )
    assert (kept.sessions_total, kept.plan_version, kept.phase) == (5, 2, "taper")
    assert [v.sequence for v in result.book] == [4, 5]
    assert [v.visit_id for v in result.book] == [
        derived_id("visit", "plan-1", 2, n) for n in (4, 5)
    ]
    chain = [anchor_day, *days_of(result.keep), *days_of(result.book)]
    assert [(b - a).days for a, b in pairwise(chain)] == [14, 14, 14]
    # Across the DST change of 2027-03-14 the visits keep the kept visit's local time.
    assert {local(v)[0].time() for v in result.book} == {local(result.keep[-1])[0].time()}
    assert result.waitlisted == []


def test_a_revision_that_keeps_the_cadence_keeps_every_visit_and_books_nothing() -> None:
    result, _ = replan_eight([make_phase(sessions=6, interval_days=3)])
    assert result.keep == list(EIGHT_BOOKED[2:])
    assert result.cancel == result.book == result.renumbered == []
    assert result.waitlisted == []


def test_fewer_sessions_cancel_the_surplus_and_renumber_the_course() -> None:
    result, _ = replan_eight([make_phase(sessions=3, interval_days=3)])
    assert result.keep == list(EIGHT_BOOKED[2:5])
    assert result.cancel == list(EIGHT_BOOKED[5:])
    assert result.book == []
    assert [(v.sequence, v.sessions_total, v.plan_version) for v in result.renumbered] == [
        (3, 5, 2),
        (4, 5, 2),
        (5, 5, 2),
    ]


def test_more_sessions_are_booked_after_the_last_kept_visit() -> None:
    result, _ = replan_eight([make_phase(sessions=8, interval_days=3)])
    assert result.keep == list(EIGHT_BOOKED[2:])
    assert [(v.sequence, v.sessions_total) for v in result.book] == [(9, 10), (10, 10)]
    assert days_of(result.book) == [date(2027, 3, 29), date(2027, 4, 1)]
    assert len(result.renumbered) == 6  # sessions_total went from 8 to 10


def test_a_visit_whose_therapist_lacks_a_newly_required_skill_is_rebooked() -> None:
    zoe = make_therapist("t-zoe", skills=["nmt", "fmm"])
    result, _ = replan_eight(
        [make_phase(sessions=6, interval_days=3)],
        therapists=[ANA, zoe],
        scheduling=SchedulingNeeds(required_skills=["fmm"]),
    )
    assert result.keep == []
    assert len(result.cancel) == 6
    assert {v.therapist_id for v in result.book} == {"t-zoe"}
    assert [v.sequence for v in result.book] == [3, 4, 5, 6, 7, 8]


def test_replan_refuses_visits_that_have_started() -> None:
    revised = revise(EIGHT, phases=[make_phase(sessions=6)], sessions_done=2)
    with pytest.raises(ValueError, match="started"):
        replan(
            revised,
            visits=EIGHT_BOOKED[1:],
            staffing=plain(make_location(), []),
            policy=Policy(),
            existing=[],
            now=EIGHT_BOOKED[1].start,
        )


@st.composite
def revisions(draw: st.DrawFn) -> list[Phase]:
    return [
        make_phase(
            f"rev-{n}", sessions=draw(st.integers(1, 4)), interval_days=draw(st.integers(1, 14))
        )
        for n in range(draw(st.integers(1, 2)))
    ]


@settings(max_examples=60, deadline=None, derandomize=True)  # the same examples every run
@given(
    calendar=calendars(),
    plan=plans(),
    phases=revisions(),
    started=st.integers(0, 8),
    skills=st.sampled_from([None, [], ["fmm"]]),
)
def test_a_replan_never_breaks_the_calendar_or_the_cadence(
    calendar: tuple[Location, list[BookedInterval]],
    plan: PlanData,
    phases: list[Phase],
    started: int,
    skills: list[str] | None,
) -> None:
    location, others_held = calendar
    policy = Policy()
    therapists = with_hours(PROPERTY_THERAPISTS, location)
    booked = book(
        plan,
        location=location,
        therapists=PROPERTY_THERAPISTS,
        existing=others_held,
        now=PROPERTY_START,
    ).booked
    started = min(started, len(booked))
    anchor = booked[started - 1] if started else None
    now = anchor.start if anchor is not None else PROPERTY_START
    upcoming = booked[started:]
    update = {} if skills is None else {"scheduling": SchedulingNeeds(required_skills=skills)}
    revised = revise(plan, phases=phases, sessions_done=started, **update)
    result = replan(
        revised,
        visits=upcoming,
        anchor=anchor,
        staffing=plain(location, therapists),
        policy=policy,
        existing=others_held,
        now=now,
    )

    assert_partition(result, upcoming)
    renumbered = {v.visit_id: v for v in result.renumbered}
    kept = [renumbered.get(v.visit_id, v) for v in result.keep]
    sequences = [v.sequence for v in kept + result.book] + [w.sequence for w in result.waitlisted]
    assert sequences == list(range(started + 1, revised.sessions_total + 1))
    interval = {p.name: p.interval_days for p in phases}
    assert {v.phase for v in kept + result.book} <= set(interval)
    assert {v.plan_version for v in result.book} <= {2}
    assert [v.visit_id for v in result.book] == [
        derived_id("visit", plan.plan_id, 2, v.sequence) for v in result.book
    ]
    assert all(v.start >= now + policy.min_notice for v in result.book)
    skilled = {
        t.id for t, _ in therapists if set(revised.scheduling.required_skills) <= set(t.skills)
    }
    assert {v.therapist_id for v in kept + result.book} <= skilled
    chain = ([anchor] if anchor is not None else []) + kept + result.book
    for previous, following in pairwise(chain):
        assert following.phase is not None
        assert (local(following, NY)[0].date() - local(previous, NY)[0].date()).days >= interval[
            following.phase
        ]
        assert following.start >= previous.end + policy.min_gap_same_area
    # Other clients' visits may overlap one another; the replan's may overlap none.
    for mine in chain:
        for other in [*others_held, *(interval_of(v) for v in chain if v is not mine)]:
            if overlaps((mine.start, mine.end), (other.start, other.end)):
                assert mine.therapist_id != other.therapist_id
                assert mine.room != other.room
                assert mine.client_id != other.client_id
    spans = [(i.start, i.end) for i in others_held] + [(v.start, v.end) for v in chain]
    assert peak(spans) <= location.rooms
