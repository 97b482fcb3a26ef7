"""Where one visit can go at one location: wall-clock slots and who is busy.

Pure: the location's staffing (``directory.Staffing``: opening hours and each
therapist's hours by date, the turnover and the daily cap) and the visits already
held come in as arguments. Candidate starts are built as local wall-clock times in the
location's zone and only then converted to UTC, so a 10:00 visit stays 10:00
local across a DST change (DESIGN.md "Guarantees": time).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from services.scheduler.directory import Staffing
from services.scheduler.scoring import Candidate, score
from shared.chain import Therapist
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
    therapists: Sequence[Therapist]  # eligible, sorted by id
    preferred_therapist: str | None  # continuity: the previous visit's therapist
    client_id: str
    days: frozenset[Weekday]  # empty: any day
    times: frozenset[TimeOfDay]  # empty: any time of day
    weekly_cap: int  # visits of the plan per local ISO week
    previous_start: datetime | None = None  # the previous visit's (the client's routine)
    # False: the earliest slot of the day (the previous therapist's when free), as a
    # move to "the next free slot" promises; True: the best-scoring (scoring.py)
    scored: bool = True


class Occupancy:
    """The visits held at one location, read by local date.

    A candidate lies inside one local day, so checking it only reads that day's
    bucket: the cost never depends on the rest of the calendar. A day's bucket is
    built the first time the day is asked for (a booking looks at a few dozen days
    of a calendar that holds months), from the intervals kept in start order.
    ``turnover`` keeps the therapist and the room free for that long after each
    visit; ``max_visits_per_day`` caps one therapist's visits in a local day (a
    therapist works at one location a day, so the location's visits are all of
    theirs)."""

    def __init__(
        self,
        *,
        zone: ZoneInfo,
        rooms: int,
        intervals: Iterable[BookedInterval],
        turnover: timedelta = timedelta(0),
        max_visits_per_day: int | None = None,
    ) -> None:
        self._zone = zone
        self._rooms = rooms
        self._turnover = turnover
        self._max_per_day = max_visits_per_day
        self._held = sorted(intervals, key=_start_of)  # a calendar read by start: O(n)
        self._longest = max((i.end - i.start for i in self._held), default=timedelta(0))
        self._by_day: dict[date, list[BookedInterval]] = {}
        self._per_day: dict[tuple[str, date], int] = defaultdict(int)
        self._bounds: dict[date, tuple[datetime, datetime]] = {}
        self._added: list[BookedInterval] = []

    @classmethod
    def of(cls, staffing: Staffing, intervals: Iterable[BookedInterval]) -> Occupancy:
        return cls(
            zone=staffing.location.zone,
            rooms=staffing.location.rooms,
            intervals=intervals,
            turnover=staffing.turnover,
            max_visits_per_day=staffing.max_visits_per_day,
        )

    def add(self, interval: BookedInterval) -> None:
        self._held.insert(bisect_right(self._held, interval.start, key=_start_of), interval)
        self._longest = max(self._longest, interval.end - interval.start)
        for day, bucket in self._by_day.items():
            since, until = self._bounds[day]
            if interval.start < until and since < interval.end:
                bucket.append(interval)
                if since <= interval.start:
                    self._per_day[(interval.therapist_id, day)] += 1
        self._added.append(interval)

    def mark(self) -> int:
        """A point ``undo`` goes back to: the intervals ``add``ed after it leave."""
        return len(self._added)

    def undo(self, mark: int) -> None:
        while len(self._added) > mark:
            interval = self._added.pop()
            at = bisect_left(self._held, interval.start, key=_start_of)
            while self._held[at] is not interval:
                at += 1
            del self._held[at]
            for day, bucket in self._by_day.items():
                # by identity: comparing intervals field by field costs more than the rest
                place = next((n for n, held in enumerate(bucket) if held is interval), None)
                if place is not None:
                    del bucket[place]
                    if self._bounds[day][0] <= interval.start:
                        self._per_day[(interval.therapist_id, day)] -= 1

    def _bucket(self, day: date) -> list[BookedInterval]:
        """The intervals overlapping the local ``day``, its therapists' counts taken."""
        found = self._by_day.get(day)
        if found is not None:
            return found
        since = datetime.combine(day, time(), tzinfo=self._zone).astimezone(UTC)
        until = datetime.combine(day + timedelta(days=1), time(), tzinfo=self._zone)
        until = until.astimezone(UTC)
        low = bisect_left(self._held, since - self._longest, key=_start_of)
        high = bisect_left(self._held, until, key=_start_of)
        found = [i for i in self._held[low:high] if i.end > since]
        for interval in found:
            if since <= interval.start:
                self._per_day[(interval.therapist_id, day)] += 1
        self._by_day[day], self._bounds[day] = found, (since, until)
        return found

    def day_full(self, therapist_id: str, day: date) -> bool:
        """Whether the therapist's day has reached the daily maximum."""
        self._bucket(day)
        cap = self._max_per_day
        return cap is not None and self._per_day.get((therapist_id, day), 0) >= cap

    def therapist_busy(self, therapist_id: str, day: date) -> list[tuple[datetime, datetime]]:
        """When the therapist cannot start or end a visit on a local day: each of their
        visits widened by the turnover on both sides ([start, end) of a new visit must
        not overlap one)."""
        pad = self._turnover
        return [(h.start - pad, h.end + pad) for h in self.therapist_day(therapist_id, day)]

    def therapist_day(self, therapist_id: str, day: date) -> list[BookedInterval]:
        """The therapist's visits held on a local day."""
        return [held for held in self._bucket(day) if held.therapist_id == therapist_id]

    def fits(self, interval: BookedInterval) -> bool:
        """Whether ``interval`` keeps its room: nothing of its therapist, room or client
        overlaps it (with the turnover) and the therapist's day has room for it."""
        day = interval.start.astimezone(self._zone).date()
        bucket = self._bucket(day)
        count = self._per_day.get((interval.therapist_id, day), 0)
        if self._max_per_day is not None and count >= self._max_per_day:
            return False
        pad, start, end = self._turnover, interval.start, interval.end
        for held in bucket:
            if held.visit_id == interval.visit_id:
                continue
            if held.client_id == interval.client_id and held.start < end and start < held.end:
                return False
            near = held.start < end + pad and start < held.end + pad
            if near and (held.therapist_id == interval.therapist_id or held.room == interval.room):
                return False
        return interval.room <= self._rooms

    def free_room(
        self,
        *,
        therapist_id: str,
        client_id: str,
        start: datetime,
        end: datetime,
        day: date | None = None,
    ) -> int | None:
        """The lowest room free for all of [start, end) and its turnover, or None if the
        therapist, the client or the location is busy at some instant of it, or the
        therapist's day is full. ``day``: the local day of ``start``, when known."""
        day = day if day is not None else start.astimezone(self._zone).date()
        bucket = self._bucket(day)
        if self._max_per_day is not None and (
            self._per_day.get((therapist_id, day), 0) >= self._max_per_day
        ):
            return None
        pad = self._turnover
        padded_end = end + pad
        near = []
        for held in bucket:  # one pass: this runs for every candidate start
            if held.start < padded_end and start < held.end + pad:
                if held.therapist_id == therapist_id:
                    return None
                if held.client_id == client_id and held.start < end and start < held.end:
                    return None
                near.append(held)
        # Room numbers alone would do for a consistent calendar; counting the peak
        # also keeps the room limit when held visits carry out-of-range rooms.
        if len(near) >= self._rooms and _peak(near, start, padded_end, pad) >= self._rooms:
            return None
        taken = {held.room for held in near}
        return next((room for room in range(1, self._rooms + 1) if room not in taken), None)


def _start_of(interval: BookedInterval) -> datetime:
    return interval.start


def _peak(
    intervals: Sequence[BookedInterval], start: datetime, end: datetime, pad: timedelta
) -> int:
    """The most intervals (each with its turnover ``pad``) held at one instant inside
    [start, end)."""
    # Ends sort before starts at the same instant: intervals are half-open.
    changes = sorted(
        [(max(i.start, start), 1) for i in intervals]
        + [(min(i.end + pad, end), -1) for i in intervals]
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


@lru_cache(maxsize=4096)
def _grid_of(
    location_ranges: tuple[tuple[time, time], ...],
    therapist_ranges: tuple[tuple[time, time], ...],
    step: int,
    minutes: int,
) -> tuple[tuple[int, int], ...]:
    """Candidate (start minute, window end minute) pairs of one day, earliest first.

    The grid is anchored at the start of the location's opening range, so every
    therapist at the location is offered the same clock times. Cached: a week has
    few distinct pairs of opening and working hours."""
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
    return tuple(sorted(starts.items()))


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


def _free_slots(
    day: date,
    therapist: Therapist,
    query: SlotQuery,
    staffing: Staffing,
    occupancy: Occupancy,
    then_only: Callable[[datetime, datetime], bool] | None = None,
) -> Iterator[Slot]:
    """The therapist's free slots on a local day, earliest first. ``then_only``: after
    the first free slot, only the starts it keeps are looked at (the rest cannot win)."""
    working = staffing.working(therapist.id, day)
    if not working:
        return
    if occupancy.day_full(therapist.id, day):
        return
    zone = staffing.location.zone
    grid = _day_grid(
        day, tuple(staffing.opening(day)), tuple(working), query.step_minutes, query.minutes, zone
    )
    busy = occupancy.therapist_busy(therapist.id, day)  # the commonest refusal, first
    found = False
    for minute, start, end in grid:
        if start < query.earliest or start >= query.latest:
            continue
        if not _time_allowed(minute, query.times):
            continue
        if found and then_only is not None and not then_only(start, end):
            continue
        if _overlaps(busy, start, end):
            continue
        room = occupancy.free_room(
            therapist_id=therapist.id, client_id=query.client_id, start=start, end=end, day=day
        )
        if room is not None:
            found = True
            yield Slot(therapist_id=therapist.id, room=room, start=start, end=end)


@lru_cache(maxsize=16_384)
def _day_grid(
    day: date,
    opening: tuple[tuple[time, time], ...],
    working: tuple[tuple[time, time], ...],
    step: int,
    minutes: int,
    zone: ZoneInfo,
) -> tuple[tuple[int, datetime, datetime], ...]:
    """(start minute, start, end) of the day's candidate visits in UTC, earliest first:
    the grid's starts that exist on the local clock, whose real end (read on the
    clock, a DST change inside moves it) is inside the window. Cached: every booking
    at the location asks for the same few hundred days."""
    length = timedelta(minutes=minutes)
    found = []
    for minute, until in _grid_of(opening, working, step, minutes):
        start = wall_to_utc(day, minute, zone)
        if start is None:
            continue
        end = start + length
        on_grid = minute + minutes <= until and wall_to_utc(day, minute + minutes, zone) == end
        if on_grid or _ends_inside(end, day, until, zone):
            found.append((minute, start, end))
    return tuple(found)


def _overlaps(spans: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> bool:
    # a plain loop: any() over a generator costs more than the check, once per candidate
    for since, until in spans:  # noqa: SIM110
        if since < end and start < until:
            return True
    return False


def free_slots_on(
    day: date, therapist: Therapist, query: SlotQuery, staffing: Staffing, occupancy: Occupancy
) -> Iterator[Slot]:
    """The therapist's free slots on a local day, earliest first."""
    return _free_slots(day, therapist, query, staffing, occupancy)


def _best_slot_on(
    day: date, query: SlotQuery, staffing: Staffing, occupancy: Occupancy
) -> Slot | None:
    """The best-scoring free slot of the day (``scoring.score``); ties go to the
    earlier start, then the lower therapist id (the room is already the lowest free).

    Of one therapist's slots only the earliest free one and those at the routine time
    or meeting their day are scored: any other is later than the earliest with no
    more points, so it cannot win."""
    zone = staffing.location.zone
    routine = query.previous_start.astimezone(zone).time() if query.previous_start else None
    best: tuple[float, datetime, str] | None = None
    chosen: Slot | None = None
    # the same therapist outweighs every other term: when they are free that day,
    # nobody else's slots need scoring
    preferred = [t for t in query.therapists if t.id == query.preferred_therapist]
    others = [t for t in query.therapists if t.id != query.preferred_therapist]
    for therapist in [*preferred, *others]:
        if chosen is not None and chosen.therapist_id == query.preferred_therapist:
            break
        same = therapist.id == query.preferred_therapist
        day_ = _TherapistDay(day, therapist.id, query, staffing, occupancy, routine)
        keep = day_.special if query.scored else _NOTHING
        for slot in _free_slots(day, therapist, query, staffing, occupancy, keep):
            if query.scored:
                candidate = Candidate(
                    same_therapist=same,
                    routine_time=day_.routine(slot.start),
                    touching=day_.touching(slot.start, slot.end),
                    hours_after_first=(slot.start - query.earliest).total_seconds() / 3600,
                )
                points = score(candidate)
            else:
                points = SAME_ONLY * same
            rank = (-points, slot.start, slot.therapist_id)
            if best is None or rank < best:
                best, chosen = rank, slot
    return chosen


def _nothing(start: datetime, end: datetime) -> bool:
    return False


_NOTHING = _nothing


class _TherapistDay:
    """What the score reads of one therapist's day: the instants a slot may start at
    to meet the day before it (another of their visits after its turnover, the
    start of their hours) and end at to meet it after, and the routine time. Read
    from the calendar when first asked: most therapist-days have no free slot."""

    def __init__(
        self,
        day: date,
        therapist_id: str,
        query: SlotQuery,
        staffing: Staffing,
        occupancy: Occupancy,
        routine: time | None,
    ) -> None:
        zone = staffing.location.zone
        self._read = (day, therapist_id, staffing, occupancy)
        self._step = query.step_minutes * 60.0
        self._routine_at = wall_to_utc(day, _minute_of(routine), zone) if routine else None
        self._after: list[float] | None = None  # a slot starting here meets what is before
        self._before: list[float] = []  # a slot ending here meets what is after

    def _anchors(self) -> list[float]:
        if self._after is not None:
            return self._after
        day, therapist_id, staffing, occupancy = self._read
        visits = occupancy.therapist_day(therapist_id, day)
        self._after, self._before = [], []
        if visits:  # an empty day has no gaps to close
            zone, pad = staffing.location.zone, staffing.turnover
            for since, until in staffing.working(therapist_id, day):
                start, end = (
                    wall_to_utc(day, _minute_of(since), zone),
                    wall_to_utc(day, _minute_of(until), zone),
                )
                if start is not None:
                    self._after.append(start.timestamp())
                if end is not None:
                    self._before.append(end.timestamp())
            self._after += [(held.end + pad).timestamp() for held in visits]
            self._before += [(held.start - pad).timestamp() for held in visits]
            self._after.sort()
            self._before.sort()
        return self._after

    def routine(self, start: datetime) -> bool:
        return start == self._routine_at

    def touching(self, start: datetime, end: datetime) -> int:
        """How many sides of [start, end) meet the therapist's day with no gap a visit
        could use (less than one step of the grid): another of their visits after its
        turnover, or - on a day that has other visits - the start or end of their
        hours."""
        after = self._anchors()
        if not after:
            return 0
        at, until = start.timestamp(), end.timestamp()
        n = bisect_right(after, at) - 1
        sides = int(n >= 0 and at - after[n] < self._step)
        n = bisect_left(self._before, until)
        sides += int(n < len(self._before) and self._before[n] - until < self._step)
        return sides

    def special(self, start: datetime, end: datetime) -> bool:
        """Whether a slot could score above the therapist's earliest free one."""
        return self.routine(start) or self.touching(start, end) > 0


ZERO = timedelta(0)
SAME_ONLY = 1.0  # unscored: the previous therapist, else the earliest


def iso_week(day: date) -> tuple[int, int]:
    year, week, _ = day.isocalendar()
    return year, week


def bookable_days(query: SlotQuery, staffing: Staffing) -> Iterator[date]:
    """Local days from the target day to the horizon that the plan may use."""
    zone = staffing.location.zone
    day = max(query.first_day, query.earliest.astimezone(zone).date())
    last = query.latest.astimezone(zone).date()
    while day <= last:
        if (not query.days or WEEKDAYS[day.weekday()] in query.days) and staffing.opening(day):
            yield day
        day += timedelta(days=1)


def find_slot(
    query: SlotQuery,
    *,
    staffing: Staffing,
    occupancy: Occupancy,
    visits_per_week: dict[tuple[int, int], int],
) -> Slot | None:
    """The slot for one session: the first local day with a fitting slot, or None
    if nothing fits before the horizon."""
    for day in bookable_days(query, staffing):
        if visits_per_week.get(iso_week(day), 0) >= query.weekly_cap:
            continue
        slot = _best_slot_on(day, query, staffing, occupancy)
        if slot is not None:
            return slot
    return None
