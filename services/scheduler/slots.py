"""Where one visit can go at one location: wall-clock slots and who is busy.

Pure: the location, the therapists' hours and the visits already held come in as
arguments. Candidate starts are built as local wall-clock times in the
location's zone and only then converted to UTC, so a 10:00 visit stays 10:00
local across a DST change (DESIGN.md "Guarantees": time).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from shared.chain import Location, Therapist, WeeklyHours, ranges_on
from shared.vocabulary import WEEKDAYS, TimeOfDay, Weekday

# DESIGN.md intake preferences, by the local start time of a visit:
# morning starts before noon, afternoon 12:00-17:00, evening at/after 17:00.
# Half-open [from, until) in local wall-clock time; None means "to midnight".
TIMES_OF_DAY: dict[TimeOfDay, tuple[time, time | None]] = {
    "morning": (time(0, 0), time(12, 0)),
    "afternoon": (time(12, 0), time(17, 0)),
    "evening": (time(17, 0), None),
}


@dataclass(frozen=True)
class BookedInterval:
    """A visit already held at the location (any client), in UTC."""

    therapist_id: str
    room: int
    start: datetime
    end: datetime
    visit_id: str
    client_id: str


@dataclass(frozen=True)
class Slot:
    """A place for one visit: who, which room, when (UTC)."""

    therapist_id: str
    room: int
    start: datetime
    end: datetime


@dataclass(frozen=True)
class SlotQuery:
    """Everything the search for one session needs besides the calendar."""

    earliest: datetime  # UTC: no start before this (notice, soreness gap)
    first_day: date  # local: the cadence's target day
    latest: datetime  # UTC: no start at or after this (policy horizon)
    minutes: int  # length of the visit
    step_minutes: int  # grid of candidate starts
    therapists: Sequence[tuple[Therapist, WeeklyHours]]  # eligible, sorted by id
    preferred_therapist: str | None  # continuity: the previous visit's therapist
    client_id: str
    days: frozenset[Weekday]  # empty: any day
    times: frozenset[TimeOfDay]  # empty: any time of day
    weekly_cap: int  # visits of the plan per local ISO week


class Occupancy:
    """The visits held at one location, indexed by local date.

    A candidate lies inside one local day, so checking it only reads that day's
    bucket: the cost never depends on the rest of the calendar."""

    def __init__(self, *, zone: ZoneInfo, rooms: int, intervals: Iterable[BookedInterval]) -> None:
        self._zone = zone
        self._rooms = rooms
        self._by_day: dict[date, list[BookedInterval]] = defaultdict(list)
        for interval in intervals:
            self.add(interval)

    def add(self, interval: BookedInterval) -> None:
        day = interval.start.astimezone(self._zone).date()
        last = interval.end.astimezone(self._zone).date()
        while day <= last:  # an interval crossing midnight belongs to both days
            self._by_day[day].append(interval)
            day += timedelta(days=1)

    def free_room(
        self, *, therapist_id: str, client_id: str, start: datetime, end: datetime
    ) -> int | None:
        """The lowest room free for all of [start, end), or None if the therapist,
        the client or the location is busy at some instant of it."""
        day = start.astimezone(self._zone).date()
        overlapping = [
            held for held in self._by_day.get(day, []) if held.start < end and start < held.end
        ]
        if any(h.therapist_id == therapist_id or h.client_id == client_id for h in overlapping):
            return None
        # Room numbers alone would do for a consistent calendar; counting the peak
        # also keeps the room limit when held visits carry out-of-range rooms.
        if _peak(overlapping, start, end) >= self._rooms:
            return None
        taken = {held.room for held in overlapping}
        return next((room for room in range(1, self._rooms + 1) if room not in taken), None)


def _peak(intervals: Sequence[BookedInterval], start: datetime, end: datetime) -> int:
    """The most intervals held at one instant inside [start, end)."""
    # Ends sort before starts at the same instant: intervals are half-open.
    changes = sorted(
        [(max(i.start, start), 1) for i in intervals] + [(min(i.end, end), -1) for i in intervals]
    )
    held = peak = 0
    for _, change in changes:
        held += change
        peak = max(peak, held)
    return peak


@lru_cache(maxsize=65_536)
def wall_to_utc(day: date, minute: int, zone: ZoneInfo) -> datetime | None:
    """The UTC instant of a local wall-clock time, None if the spring-forward gap
    skips it. An ambiguous fall-back time takes its first occurrence (fold=0).
    Cached: a booking asks the same few hundred grid times for every candidate."""
    naive = datetime.combine(day, time()) + timedelta(minutes=minute)
    instant = naive.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != naive:
        return None
    return instant


def _minute_of(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def _grid(
    location_ranges: list[tuple[time, time]],
    therapist_ranges: list[tuple[time, time]],
    *,
    step: int,
    minutes: int,
) -> list[tuple[int, int]]:
    """Candidate (start minute, window end minute) pairs of one day, earliest first.

    The grid is anchored at the start of the location's opening range, so every
    therapist at the location is offered the same clock times."""
    starts: dict[int, int] = {}
    for open_from, open_until in location_ranges:
        anchor = _minute_of(open_from)
        for works_from, works_until in therapist_ranges:
            begin = max(anchor, _minute_of(works_from))
            until = min(_minute_of(open_until), _minute_of(works_until))
            minute = anchor + -(-(begin - anchor) // step) * step  # first grid point >= begin
            while minute + minutes <= until:
                starts[minute] = max(until, starts.get(minute, until))
                minute += step
    return sorted(starts.items())


def _time_allowed(minute: int, times: frozenset[TimeOfDay]) -> bool:
    if not times:
        return True
    for name in times:
        since, until = TIMES_OF_DAY[name]
        if _minute_of(since) <= minute and (until is None or minute < _minute_of(until)):
            return True
    return False


def _ends_inside(end: datetime, day: date, until_minute: int, zone: ZoneInfo) -> bool:
    """Whether the visit's real end, read on the local clock, is inside the window
    (a DST change during the visit moves its wall-clock end)."""
    local_end = end.astimezone(zone)
    minute = local_end.hour * 60 + local_end.minute
    return local_end.date() == day and minute <= until_minute


def _first_slot(
    day: date,
    therapist: Therapist,
    hours: WeeklyHours,
    query: SlotQuery,
    location: Location,
    occupancy: Occupancy,
) -> Slot | None:
    """The therapist's earliest free slot on a local day."""
    weekday = WEEKDAYS[day.weekday()]
    grid = _grid(
        ranges_on(location.hours, weekday),
        ranges_on(hours, weekday),
        step=query.step_minutes,
        minutes=query.minutes,
    )
    zone = location.zone
    for minute, until in grid:
        if not _time_allowed(minute, query.times):
            continue
        start = wall_to_utc(day, minute, zone)
        if start is None or start < query.earliest or start >= query.latest:
            continue
        end = start + timedelta(minutes=query.minutes)
        if not _ends_inside(end, day, until, zone):
            continue
        room = occupancy.free_room(
            therapist_id=therapist.id, client_id=query.client_id, start=start, end=end
        )
        if room is not None:
            return Slot(therapist_id=therapist.id, room=room, start=start, end=end)
    return None


def _best_slot_on(
    day: date, query: SlotQuery, location: Location, occupancy: Occupancy
) -> Slot | None:
    """Continuity first: the previous therapist if free that day, else the earliest
    slot (ties to the lower therapist id; the room is already the lowest free)."""
    firsts = [
        slot
        for therapist, hours in query.therapists
        if (slot := _first_slot(day, therapist, hours, query, location, occupancy)) is not None
    ]
    for slot in firsts:
        if slot.therapist_id == query.preferred_therapist:
            return slot
    return min(firsts, key=lambda slot: (slot.start, slot.therapist_id), default=None)


def iso_week(day: date) -> tuple[int, int]:
    year, week, _ = day.isocalendar()
    return year, week


def _days(query: SlotQuery, location: Location) -> Iterator[date]:
    """Local days from the target day to the horizon that the plan may use."""
    zone = location.zone
    day = max(query.first_day, query.earliest.astimezone(zone).date())
    last = query.latest.astimezone(zone).date()
    closed = set(location.closed)
    while day <= last:
        if day not in closed and (not query.days or WEEKDAYS[day.weekday()] in query.days):
            yield day
        day += timedelta(days=1)


def find_slot(
    query: SlotQuery,
    *,
    location: Location,
    occupancy: Occupancy,
    visits_per_week: dict[tuple[int, int], int],
) -> Slot | None:
    """The slot for one session: the first local day with a fitting slot, or None
    if nothing fits before the horizon."""
    for day in _days(query, location):
        if visits_per_week.get(iso_week(day), 0) >= query.weekly_cap:
            continue
        slot = _best_slot_on(day, query, location, occupancy)
        if slot is not None:
            return slot
    return None
