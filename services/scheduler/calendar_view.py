"""What the front desk sees: one location's day, and the free slots of a location.

Pure builders of the response models the scheduler's HTTP API serves
(``GET /v1/locations/{location_id}/calendar?date=...`` and its free slots). Every
time is shown on the location's clock with its UTC offset, so a DST day reads
right (09:00-08:00 in the morning, 18:00-07:00 in the evening of the US spring
change). Free slots come from the same building blocks as booking
(``services.scheduler.slots``), so what is offered is what booking would accept.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.scheduler.confirmation import ShownStatus
from services.scheduler.directory import Staffing

# _grid and _ends_inside are the slot search's own rules for candidate starts;
# reusing them keeps the offered slots identical to what booking would place.
from services.scheduler.slots import (
    BookedInterval,
    Occupancy,
    _ends_inside,
    _grid,
    wall_to_utc,
)
from shared.chain import Policy, Therapist
from shared.events.visits import VisitBooked

# Occupancy.free_room also keeps a client from holding two visits at once; a
# search for nobody in particular uses an id no held visit carries.
_NO_CLIENT = "\x00no-client"
_SECOND = timedelta(seconds=1)


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class LocalRange(_View):
    """A span of one day on the location's clock (ISO 8601 with UTC offset)."""

    start: AwareDatetime
    end: AwareDatetime


class DayVisit(_View):
    """A visit on the day's calendar; no clinical detail (minimum necessary)."""

    visit_id: str
    plan_id: str
    client_id: str
    therapist_id: str
    room: int
    start: AwareDatetime
    end: AwareDatetime
    sequence: int
    sessions_total: int
    offered: bool = False  # held for a waiting client until the offer is answered
    status: ShownStatus = Field(
        default="booked",
        description="confirmed: booked, and confirmed by the client at its current start",
    )


class TherapistDay(_View):
    """One therapist's day: when they can be booked here, and what they hold."""

    therapist_id: str
    name: str | None  # None: holds visits here but is no longer listed for the location
    working: list[LocalRange]
    visits: list[DayVisit]


class RoomDay(_View):
    """One room's visits of the day."""

    room: int
    visits: list[DayVisit]


class LocationDay(_View):
    """A location's calendar for one local day."""

    location_id: str
    location_name: str
    day: date
    timezone: str
    utc_offsets: list[str]  # in force during the day; two on a DST change day
    closed: bool
    opening: list[LocalRange]
    therapists: list[TherapistDay]
    rooms: list[RoomDay]


class FreeSlot(_View):
    """A start at which one therapist and one room are free for the whole visit."""

    therapist_id: str
    therapist_name: str
    room: int
    start: AwareDatetime
    end: AwareDatetime


def location_day(
    staffing: Staffing,
    day: date,
    *,
    visits: Iterable[VisitBooked],
    offered: Collection[str] = (),
    statuses: Mapping[str, ShownStatus] | None = None,
) -> LocationDay:
    """The location's calendar for the local ``day``: opening hours, each
    therapist's bookable hours and visits (with ``statuses``, by visit id; booked
    where none is given), and each room's visits.

    Visits of other locations or days are left out; visits on a closed day are
    shown, because someone has to move them."""
    location = staffing.location
    zone = location.zone
    day_start, day_end = day_bounds(day, zone)
    shown = sorted(
        (
            _day_visit(
                v,
                zone,
                offered=v.visit_id in offered,
                status=(statuses or {}).get(v.visit_id, "booked"),
            )
            for v in visits
            if v.location_id == location.id and v.start < day_end and day_start < v.end
        ),
        key=lambda v: (v.start, v.therapist_id, v.room, v.visit_id),
    )
    opening = staffing.opening(day)
    return LocationDay(
        location_id=location.id,
        location_name=location.name,
        day=day,
        timezone=location.timezone,
        utc_offsets=_offsets_during(day_start, day_end, zone),
        closed=not opening,
        opening=[_local_range(day, r, zone) for r in opening],
        therapists=_therapist_days(day, opening, staffing, shown, zone),
        rooms=_room_days(location.rooms, shown),
    )


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants at which the local day starts and the next one starts."""
    return _instant(day, time(), zone), _instant(day + timedelta(days=1), time(), zone)


def _instant(day: date, moment: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local time; a time the spring change skips moves
    forward with the clock, an ambiguous one takes its first occurrence."""
    return datetime.combine(day, moment, tzinfo=zone).astimezone(UTC)


def _offsets_during(start: datetime, end: datetime, zone: ZoneInfo) -> list[str]:
    """The UTC offsets the local clock shows from ``start`` until ``end``."""
    shown = [start.astimezone(zone).strftime("%z"), (end - _SECOND).astimezone(zone).strftime("%z")]
    return [f"{text[:3]}:{text[3:5]}" for text in dict.fromkeys(shown)]


def _local_range(day: date, span: tuple[time, time], zone: ZoneInfo) -> LocalRange:
    start, end = span
    return LocalRange(
        start=_instant(day, start, zone).astimezone(zone),
        end=_instant(day, end, zone).astimezone(zone),
    )


def _day_visit(
    visit: VisitBooked, zone: ZoneInfo, *, offered: bool, status: ShownStatus
) -> DayVisit:
    return DayVisit(
        offered=offered,
        status=status,
        visit_id=visit.visit_id,
        plan_id=visit.plan_id,
        client_id=visit.client_id,
        therapist_id=visit.therapist_id,
        room=visit.room,
        start=visit.start.astimezone(zone),
        end=visit.end.astimezone(zone),
        sequence=visit.sequence,
        sessions_total=visit.sessions_total,
    )


def _overlap(
    first: list[tuple[time, time]], second: list[tuple[time, time]]
) -> list[tuple[time, time]]:
    """The parts of a day inside a range of both lists."""
    both = [
        (max(a_from, b_from), min(a_until, b_until))
        for a_from, a_until in first
        for b_from, b_until in second
    ]
    return sorted((since, until) for since, until in both if since < until)


def _therapist_days(
    day: date,
    opening: list[tuple[time, time]],
    staffing: Staffing,
    shown: list[DayVisit],
    zone: ZoneInfo,
) -> list[TherapistDay]:
    """Listed therapists in the given order, then anyone else holding a visit."""
    # Bookable here: their own hours that day, inside the location's opening.
    working = {t.id: _overlap(opening, staffing.working(t.id, day)) for t in staffing.therapists}
    names: dict[str, str | None] = {t.id: t.name for t in staffing.therapists}
    for other in sorted({v.therapist_id for v in shown} - names.keys()):
        names[other] = None
    return [
        TherapistDay(
            therapist_id=tid,
            name=name,
            working=[_local_range(day, r, zone) for r in working.get(tid, [])],
            visits=[v for v in shown if v.therapist_id == tid],
        )
        for tid, name in names.items()
    ]


def _room_days(rooms: int, shown: list[DayVisit]) -> list[RoomDay]:
    """Every room of the location, and any other room number a visit holds."""
    numbers = sorted(set(range(1, rooms + 1)) | {v.room for v in shown})
    return [RoomDay(room=n, visits=[v for v in shown if v.room == n]) for n in numbers]


def free_slots(
    *,
    staffing: Staffing,
    held: Iterable[BookedInterval],
    first_day: date,
    last_day: date,
    policy: Policy,
    now: datetime,
    minutes: int | None = None,
    skills: Collection[str] = (),
    therapist_id: str | None = None,
    client_id: str | None = None,
    limit: int = 50,
) -> list[FreeSlot]:
    """The free (therapist, room, start) slots at ``location`` for a visit of
    ``minutes`` (default: the policy's) on the local days ``first_day`` to
    ``last_day``, earliest first, at most ``limit``.

    A slot starts at least ``policy.min_notice`` after ``now`` and before
    ``now + policy.horizon`` (which bounds the search), lies inside the opening
    and the therapist's hours on an open day, and overlaps no held visit of the
    therapist (nor of ``client_id``, if given) and no instant the rooms are
    full. Therapists need every one of ``skills``; ``therapist_id`` narrows to one."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    length = policy.visit_minutes if minutes is None else minutes
    if length < 1:
        raise ValueError("minutes must be at least 1")
    eligible = [
        t
        for t in staffing.therapists
        if set(skills) <= set(t.skills) and therapist_id in (None, t.id)
    ]
    zone = staffing.location.zone
    occupancy = Occupancy.of(staffing, held)
    earliest, latest = now + policy.min_notice, now + policy.horizon
    day = max(first_day, earliest.astimezone(zone).date())
    last = min(last_day, latest.astimezone(zone).date())
    found: list[FreeSlot] = []
    while day <= last and len(found) < limit:
        if staffing.opening(day):
            slots = [
                slot
                for therapist in eligible
                for slot in _therapist_slots(
                    day,
                    therapist,
                    staffing=staffing,
                    occupancy=occupancy,
                    window=(earliest, latest),
                    minutes=length,
                    step=policy.slot_step_minutes,
                    client_id=client_id or _NO_CLIENT,
                )
            ]
            found += sorted(slots, key=lambda s: (s.start, s.therapist_id))
        day += timedelta(days=1)
    return found[:limit]


def _therapist_slots(
    day: date,
    therapist: Therapist,
    *,
    staffing: Staffing,
    occupancy: Occupancy,
    window: tuple[datetime, datetime],
    minutes: int,
    step: int,
    client_id: str,
) -> list[FreeSlot]:
    """Every free slot of one therapist on one open local day, on booking's grid."""
    zone = staffing.location.zone
    earliest, latest = window
    working = staffing.working(therapist.id, day)
    if not working:
        return []
    grid = _grid(staffing.opening(day), working, step=step, minutes=minutes)
    slots = []
    for minute, until in grid:
        start = wall_to_utc(day, minute, zone)
        if start is None or start < earliest or start >= latest:
            continue
        end = start + timedelta(minutes=minutes)
        if not _ends_inside(end, day, until, zone):
            continue
        room = occupancy.free_room(
            therapist_id=therapist.id, client_id=client_id, start=start, end=end
        )
        if room is not None:
            slots.append(
                FreeSlot(
                    therapist_id=therapist.id,
                    therapist_name=therapist.name,
                    room=room,
                    start=start.astimezone(zone),
                    end=end.astimezone(zone),
                )
            )
    return slots


__all__ = [
    "DayVisit",
    "FreeSlot",
    "LocalRange",
    "LocationDay",
    "RoomDay",
    "TherapistDay",
    "free_slots",
    "location_day",
]
