"""The front desk's views (services/scheduler/calendar_view.py): a location's day
and its free slots."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scheduler.booking import interval_of
from services.scheduler.calendar_view import location_day
from services.scheduler.directory import plain
from services.scheduler.free_slots import FreeSlot, free_slots
from services.scheduler.slots import BookedInterval
from shared.chain import Location, Policy, Therapist, WeeklyHours, ranges_on
from shared.events.visits import VisitBooked
from shared.vocabulary import WEEKDAYS, Weekday

LA, NY = "America/Los_Angeles", "America/New_York"
WEEKDAY_HOURS: dict[Weekday, list[str]] = {
    day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")
}
CHRISTMAS = date(2026, 12, 25)  # a Friday
MONDAY = date(2026, 3, 9)  # the day after the US spring change
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)  # a Sunday, 04:00 in Los Angeles


def make_location(
    *,
    timezone: str = LA,
    hours: dict[Weekday, list[str]] | None = None,
    rooms: int = 2,
    location_id: str = "beaverton",
) -> Location:
    return Location(
        id=location_id,
        name="Beaverton",
        timezone=timezone,
        hours=hours if hours is not None else WEEKDAY_HOURS,
        rooms=rooms,
        closed=[CHRISTMAS],
    )


def make_therapist(
    therapist_id: str, *, skills: Sequence[str] = ("nmt",), hours: WeeklyHours | None = None
) -> Therapist:
    return Therapist(
        id=therapist_id,
        name=therapist_id.removeprefix("t-").title(),
        locations=["beaverton"],
        skills=list(skills),
        hours=hours,
    )


def staff(location: Location, *therapists: Therapist) -> list[tuple[Therapist, WeeklyHours]]:
    return [(t, t.hours if t.hours is not None else location.hours) for t in therapists]


def make_visit(
    visit_id: str,
    day: date,
    at: time,
    *,
    therapist_id: str = "t-ana",
    room: int = 1,
    minutes: int = 60,
    client_id: str = "client-1",
    location: Location | None = None,
) -> VisitBooked:
    location = location or make_location()
    start = datetime.combine(day, at, tzinfo=location.zone).astimezone(UTC)
    return VisitBooked(
        visit_id=visit_id,
        plan_id="plan-1",
        client_id=client_id,
        location_id=location.id,
        therapist_id=therapist_id,
        room=room,
        start=start,
        end=start + timedelta(minutes=minutes),
        timezone=location.timezone,
        sequence=2,
        sessions_total=6,
    )


# --- a location's day --------------------------------------------------------------------


def test_the_day_groups_visits_by_therapist_and_room_in_local_time() -> None:
    location = make_location()
    visits = [
        make_visit("v-late", MONDAY, time(14), therapist_id="t-bob", room=2),
        make_visit("v-early", MONDAY, time(10), therapist_id="t-ana", room=1),
        make_visit("v-ana-2", MONDAY, time(15), therapist_id="t-ana", room=2),
        make_visit("v-other-day", MONDAY + timedelta(days=1), time(10)),
        make_visit("v-other-place", MONDAY, time(10), location=make_location(location_id="x")),
    ]
    therapists = staff(location, make_therapist("t-ana"), make_therapist("t-bob"))
    view = location_day(plain(location, therapists), MONDAY, visits=visits)
    assert not view.closed
    assert view.utc_offsets == ["-07:00"]
    assert [(t.therapist_id, t.name) for t in view.therapists] == [
        ("t-ana", "Ana"),
        ("t-bob", "Bob"),
    ]
    assert [[v.visit_id for v in t.visits] for t in view.therapists] == [
        ["v-early", "v-ana-2"],
        ["v-late"],
    ]
    assert [(r.room, [v.visit_id for v in r.visits]) for r in view.rooms] == [
        (1, ["v-early"]),
        (2, ["v-late", "v-ana-2"]),
    ]
    shown = view.model_dump(mode="json")
    first = shown["therapists"][0]["visits"][0]
    assert (first["start"], first["end"]) == (
        "2026-03-09T10:00:00-07:00",
        "2026-03-09T11:00:00-07:00",
    )
    assert (first["client_id"], first["room"], first["sequence"], first["sessions_total"]) == (
        "client-1",
        1,
        2,
        6,
    )
    assert shown["opening"] == [
        {"start": "2026-03-09T09:00:00-07:00", "end": "2026-03-09T18:00:00-07:00"}
    ]


def test_working_hours_are_the_therapists_own_inside_the_opening() -> None:
    location = make_location()
    ana = make_therapist("t-ana", hours={"mon": ["07:00-12:00", "13:00-20:00"]})
    view = location_day(plain(location, staff(location, ana)), MONDAY, visits=[])
    working = [(r.start.time(), r.end.time()) for r in view.therapists[0].working]
    assert working == [(time(9), time(12)), (time(13), time(18))]


def test_a_closed_date_shows_closed_but_keeps_its_visits() -> None:
    location = make_location()
    held = make_visit("v-1", CHRISTMAS, time(10))
    view = location_day(
        plain(location, staff(location, make_therapist("t-ana"))), CHRISTMAS, visits=[held]
    )
    assert view.closed
    assert view.opening == []
    assert view.therapists[0].working == []
    assert [v.visit_id for v in view.therapists[0].visits] == ["v-1"]  # someone must move it


def test_a_weekday_without_hours_is_closed() -> None:
    location = make_location()
    saturday = date(2026, 3, 14)
    view = location_day(plain(location, staff(location)), saturday, visits=[])
    assert view.closed
    assert [r.room for r in view.rooms] == [1, 2]


def test_the_spring_change_day_shows_both_offsets() -> None:
    location = make_location(hours={"sun": ["01:00-12:00"]})
    sunday = date(2026, 3, 8)
    visits = [make_visit("v-pst", sunday, time(1)), make_visit("v-pdt", sunday, time(10), room=2)]
    view = location_day(
        plain(location, staff(location, make_therapist("t-ana"))), sunday, visits=visits
    )
    assert view.utc_offsets == ["-08:00", "-07:00"]
    shown = view.model_dump(mode="json")
    assert shown["opening"] == [
        {"start": "2026-03-08T01:00:00-08:00", "end": "2026-03-08T12:00:00-07:00"}
    ]
    starts = [v["start"] for v in shown["therapists"][0]["visits"]]
    assert starts == ["2026-03-08T01:00:00-08:00", "2026-03-08T10:00:00-07:00"]


def test_the_autumn_change_day_in_new_york_shows_both_offsets() -> None:
    location = make_location(timezone=NY, hours={"sun": ["09:00-17:00"]})
    view = location_day(plain(location, []), date(2026, 11, 1), visits=[])
    assert view.utc_offsets == ["-04:00", "-05:00"]
    assert view.model_dump(mode="json")["opening"][0]["start"] == "2026-11-01T09:00:00-05:00"


def test_visits_of_someone_no_longer_listed_still_show() -> None:
    location = make_location(rooms=1)
    visits = [make_visit("v-1", MONDAY, time(10), therapist_id="t-gone", room=3)]
    view = location_day(
        plain(location, staff(location, make_therapist("t-ana"))), MONDAY, visits=visits
    )
    assert [(t.therapist_id, t.name) for t in view.therapists] == [
        ("t-ana", "Ana"),
        ("t-gone", None),
    ]
    assert [(r.room, len(r.visits)) for r in view.rooms] == [(1, 0), (3, 1)]


# --- free slots --------------------------------------------------------------------------


def search(
    *,
    location: Location | None = None,
    therapists: Sequence[Therapist] | None = None,
    held: Sequence[BookedInterval] = (),
    first_day: date = MONDAY,
    last_day: date = MONDAY,
    policy: Policy | None = None,
    now: datetime = NOW,
    minutes: int | None = None,
    skills: Sequence[str] = (),
    therapist_id: str | None = None,
    client_id: str | None = None,
    limit: int = 50,
) -> list[FreeSlot]:
    location = location or make_location()
    therapists = therapists if therapists is not None else [make_therapist("t-ana")]
    return free_slots(
        staffing=plain(location, staff(location, *therapists)),
        held=held,
        first_day=first_day,
        last_day=last_day,
        policy=policy or Policy(),
        now=now,
        minutes=minutes,
        skills=skills,
        therapist_id=therapist_id,
        client_id=client_id,
        limit=limit,
    )


def local_times(slots: list[FreeSlot]) -> list[time]:
    return [s.start.time() for s in slots]


def test_an_empty_day_offers_every_grid_start_in_local_time() -> None:
    slots = search()
    assert local_times(slots) == [time(9 + m // 60, m % 60) for m in range(0, 8 * 60 + 1, 30)]
    assert slots[0].model_dump(mode="json")["start"] == "2026-03-09T09:00:00-07:00"
    assert all(s.end - s.start == timedelta(minutes=60) for s in slots)
    assert {(s.therapist_id, s.therapist_name, s.room) for s in slots} == {("t-ana", "Ana", 1)}


def test_no_slot_overlaps_a_visit_of_the_therapist() -> None:
    held = [interval_of(make_visit("v-1", MONDAY, time(10), therapist_id="t-ana"))]
    slots = search(held=held, minutes=90)
    assert slots
    assert all(s.end <= held[0].start or held[0].end <= s.start for s in slots)
    assert time(8, 30) not in local_times(slots) and time(11) in local_times(slots)


def test_no_slot_when_every_room_is_taken() -> None:
    location = make_location(rooms=1)
    held = [interval_of(make_visit("v-1", MONDAY, time(10), therapist_id="t-bob"))]
    slots = search(location=location, held=held)
    assert [t for t in local_times(slots) if time(9, 30) <= t <= time(10, 30)] == []
    two_rooms = search(held=held)
    assert {s.room for s in two_rooms if s.start.time() == time(10)} == {2}


def test_the_client_cannot_be_offered_a_time_they_already_hold() -> None:
    held = [interval_of(make_visit("v-1", MONDAY, time(10), therapist_id="t-bob"))]
    assert time(10) in local_times(search(held=held))
    assert time(10) not in local_times(search(held=held, client_id="client-1"))


def test_closed_dates_and_days_without_hours_offer_nothing() -> None:
    assert search(first_day=CHRISTMAS, last_day=CHRISTMAS) == []
    saturday = date(2026, 3, 14)
    assert search(first_day=saturday, last_day=saturday + timedelta(days=1)) == []


def test_the_minimum_notice_counts_from_now() -> None:
    now = datetime.combine(MONDAY, time(8), tzinfo=make_location().zone).astimezone(UTC)
    slots = search(now=now, last_day=MONDAY + timedelta(days=1), policy=Policy())
    assert slots[0].start == datetime(2026, 3, 10, 9, tzinfo=make_location().zone)
    slots = search(now=now, policy=Policy(min_notice=timedelta(hours=3)))
    assert local_times(slots)[0] == time(11)


def test_nothing_past_the_policy_horizon() -> None:
    policy = Policy(horizon=timedelta(days=10))
    slots = search(first_day=MONDAY, last_day=date(2027, 3, 1), policy=policy, limit=1000)
    assert slots and max(s.start for s in slots) < NOW + policy.horizon


def test_the_limit_caps_the_answer_earliest_first() -> None:
    therapists = [make_therapist("t-bob"), make_therapist("t-ana")]
    slots = search(therapists=therapists, last_day=MONDAY + timedelta(days=5), limit=5)
    assert len(slots) == 5
    assert [(local_times([s])[0], s.therapist_id) for s in slots] == [
        (time(9), "t-ana"),
        (time(9), "t-bob"),
        (time(9, 30), "t-ana"),
        (time(9, 30), "t-bob"),
        (time(10), "t-ana"),
    ]
    with pytest.raises(ValueError, match="limit"):
        search(limit=0)


def test_skills_and_therapist_narrow_who_is_offered() -> None:
    therapists = [
        make_therapist("t-ana", skills=["nmt"]),
        make_therapist("t-fay", skills=["fmm", "nmt"]),
    ]
    assert {s.therapist_id for s in search(therapists=therapists, skills=["fmm"])} == {"t-fay"}
    only_ana = search(therapists=therapists, therapist_id="t-ana")
    assert {s.therapist_id for s in only_ana} == {"t-ana"}


def test_the_spring_change_day_keeps_the_wall_clock_grid() -> None:
    location = make_location(hours={"sun": ["01:00-05:00"]})
    sunday = date(2026, 3, 8)
    slots = search(location=location, first_day=sunday, last_day=sunday)
    # 02:00 and 02:30 do not exist; 01:30 would end at 03:30 on the clock: still inside.
    assert local_times(slots) == [time(1), time(1, 30), time(3), time(3, 30), time(4)]
    offsets = [s.start.utcoffset() for s in slots]
    assert offsets == [timedelta(hours=-8)] * 2 + [timedelta(hours=-7)] * 3


# --- invariants --------------------------------------------------------------------------


def peak(intervals: list[BookedInterval], slot: FreeSlot) -> int:
    """The most held visits at one instant of the slot (they are half-open)."""
    instants = {slot.start} | {i.start for i in intervals if slot.start < i.start < slot.end}
    return max(sum(i.start <= t < i.end for i in intervals) for t in instants)


THERAPISTS = ("t-ana", "t-bob", "t-cy")
held_visits = st.lists(
    st.tuples(
        st.integers(0, 4),  # day after MONDAY
        st.integers(0, 18),  # start, in 30-minute steps from 08:30
        st.sampled_from((30, 60, 90)),
        st.sampled_from(THERAPISTS),
        st.integers(1, 2),  # room
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(held=held_visits, limit=st.integers(1, 80), rooms=st.integers(1, 3))
def test_free_slots_never_collide(
    held: list[tuple[int, int, int, str, int]], limit: int, rooms: int
) -> None:
    location = make_location(rooms=rooms)
    intervals = [
        interval_of(
            make_visit(
                f"v-{n}",
                MONDAY + timedelta(days=day),
                time(8 + (30 + 30 * step) // 60, (30 + 30 * step) % 60),
                therapist_id=who,
                room=room,
                minutes=minutes,
                client_id=f"c-{n}",
            )
        )
        for n, (day, step, minutes, who, room) in enumerate(held)
    ]
    now = datetime.combine(MONDAY, time(0), tzinfo=location.zone).astimezone(UTC)
    policy = Policy(min_notice=timedelta(hours=33))  # earliest: Tuesday 09:00
    slots = search(
        location=location,
        therapists=[make_therapist(t) for t in THERAPISTS],
        held=intervals,
        last_day=MONDAY + timedelta(days=6),
        policy=policy,
        now=now,
        limit=limit,
    )
    assert len(slots) <= limit
    assert slots == sorted(slots, key=lambda s: (s.start, s.therapist_id))
    for slot in slots:
        local = slot.start.astimezone(location.zone)
        assert slot.start >= now + policy.min_notice
        opening = ranges_on(location.hours, WEEKDAYS[local.weekday()])
        end = slot.end.astimezone(location.zone)
        assert any(lo <= local.time() and end.time() <= hi for lo, hi in opening)
        overlapping = [i for i in intervals if i.start < slot.end and slot.start < i.end]
        assert all(i.therapist_id != slot.therapist_id for i in overlapping)
        assert all(i.room != slot.room for i in overlapping)
        assert 1 <= slot.room <= rooms
        assert peak(overlapping, slot) < rooms  # a room is left at every instant
