"""What the front desk sees: one location's day and one therapist's week (the free
slots of a location are ``free_slots.py``).

Pure builders of the response models the scheduler's HTTP API serves
(``GET /v1/locations/{location_id}/calendar?date=...``,
``GET /v1/therapists/{therapist_id}/week?date=...``). A visit shows
names beside its ids (``Names``: the client's, ``None`` when the scheduler has not
learned it; the therapist's, the location's, "Room 2"), its status and "3 of 8". Every
time is shown on the location's clock with its UTC offset, so a DST day reads
right (09:00-08:00 in the morning, 18:00-07:00 in the evening of the US spring
change).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.scheduler.confirmation import ShownStatus
from services.scheduler.directory import Staffing
from shared.events.visits import VisitBooked

_SECOND = timedelta(seconds=1)
# UTC offsets run from -12:00 to +14:00: a day on each side of a week in UTC holds
# every local day of it, wherever the therapist works
_ANY_ZONE = timedelta(days=1)


@dataclass(frozen=True)
class Names:
    """The display names a view shows beside ids (minimum necessary: a name, no
    contact details). A client the scheduler has not learned a name for is None."""

    clients: Mapping[str, str | None] = field(default_factory=dict)
    therapists: Mapping[str, str] = field(default_factory=dict)
    locations: Mapping[str, str] = field(default_factory=dict)

    def client(self, client_id: str) -> str | None:
        return self.clients.get(client_id)

    def therapist(self, therapist_id: str) -> str | None:
        return self.therapists.get(therapist_id)

    def location(self, location_id: str) -> str | None:
        return self.locations.get(location_id)


def room_name(room: int) -> str:
    """Rooms are numbered 1..N at each location: "Room 2"."""
    return f"Room {room}"


def sequence_label(sequence: int, sessions_total: int) -> str:
    """The session's place in the plan: "3 of 8"."""
    return f"{sequence} of {sessions_total}"


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class LocalRange(_View):
    """A span of one day on the location's clock (ISO 8601 with UTC offset)."""

    start: AwareDatetime
    end: AwareDatetime


class DayVisit(_View):
    """A visit on the day's calendar or a therapist's week; no clinical detail
    (minimum necessary)."""

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
        description="booked, confirmed (booked, and confirmed by the client at its current "
        "start), completed, no_show; offered: held for a waiting client",
    )
    client_name: str | None = Field(
        default=None, description="the client's name; null when the scheduler does not know it"
    )
    therapist_name: str | None = None
    location_id: str
    location_name: str | None = None
    room_name: str = Field(examples=["Room 2"])
    sequence_label: str = Field(examples=["3 of 8"], description="sequence of sessions_total")
    cadence_note: str | None = Field(
        default=None,
        description="when the visit is not on the day the plan's cadence asks for: what was "
        "booked instead and why",
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
    room_name: str = Field(examples=["Room 2"])
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
    cancelled: list[DayVisit] = Field(
        default_factory=list,
        description="the day's visits that were cancelled, at the time they had (their "
        "places are free again)",
    )


class WeekDay(_View):
    """One local day of a therapist's week: the visits that start that day, at every
    location, each on its own location's clock."""

    day: date
    visits: list[DayVisit]
    cancelled: list[DayVisit] = Field(
        default_factory=list, description="the day's visits of theirs that were cancelled"
    )


class TherapistWeek(_View):
    """A therapist's ISO week, Monday to Sunday."""

    therapist_id: str
    therapist_name: str | None
    week: str = Field(examples=["2027-W09"], description="the ISO week")
    first_day: date  # the Monday
    last_day: date  # the Sunday
    days: list[WeekDay]  # the seven days, Monday first, each with its visits (maybe none)


def location_day(
    staffing: Staffing,
    day: date,
    *,
    visits: Iterable[VisitBooked],
    offered: Collection[str] = (),
    statuses: Mapping[str, ShownStatus] | None = None,
    names: Names | None = None,
    cancelled: Iterable[VisitBooked] = (),
) -> LocationDay:
    """The location's calendar for the local ``day``: opening hours, each
    therapist's bookable hours and visits (with ``statuses``, by visit id; booked
    where none is given; and ``names``, the location's therapists and its own name
    where none are given), each room's visits, and the visits ``cancelled`` from the
    day, listed apart.

    Visits of other locations or days are left out; visits on a closed day are
    shown, because someone has to move them."""
    location = staffing.location
    zone = location.zone
    day_start, day_end = day_bounds(day, zone)
    named = _with_staffing(names or Names(), staffing)
    shown = sorted(
        (
            _day_visit(
                v,
                zone,
                offered=v.visit_id in offered,
                status=(statuses or {}).get(v.visit_id, "booked"),
                names=named,
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
        cancelled=sorted(
            (
                _day_visit(v, zone, offered=False, status="cancelled", names=named)
                for v in cancelled
                if v.location_id == location.id and v.start < day_end and day_start < v.end
            ),
            key=lambda v: (v.start, v.visit_id),
        ),
    )


def therapist_week(
    therapist_id: str,
    day: date,
    *,
    visits: Iterable[VisitBooked],
    offered: Collection[str] = (),
    statuses: Mapping[str, ShownStatus] | None = None,
    names: Names | None = None,
    cancelled: Iterable[VisitBooked] = (),
) -> TherapistWeek:
    """The therapist's ISO week that holds ``day``: the seven local days Monday to
    Sunday, each with the therapist's visits that start on it at their location's
    clock, earliest first, and those ``cancelled`` from it listed apart. Visits of
    other therapists or weeks are left out."""
    named = names or Names()
    first, last = week_of(day)
    days = [first + timedelta(days=n) for n in range(7)]
    by_day: dict[date, list[DayVisit]] = {d: [] for d in days}
    gone: dict[date, list[DayVisit]] = {d: [] for d in days}
    shown = [(v, by_day, (statuses or {}).get(v.visit_id, "booked")) for v in visits]
    shown += [(v, gone, "cancelled") for v in cancelled]
    for visit, into, status in shown:
        zone = ZoneInfo(visit.timezone)
        local_day = visit.start.astimezone(zone).date()
        if visit.therapist_id != therapist_id or local_day not in into:
            continue
        into[local_day].append(
            _day_visit(visit, zone, offered=visit.visit_id in offered, status=status, names=named)
        )
    year, week, _ = first.isocalendar()
    return TherapistWeek(
        therapist_id=therapist_id,
        therapist_name=named.therapist(therapist_id),
        week=f"{year}-W{week:02d}",
        first_day=first,
        last_day=last,
        days=[
            WeekDay(
                day=d,
                visits=sorted(by_day[d], key=_in_order),
                cancelled=sorted(gone[d], key=_in_order),
            )
            for d in days
        ],
    )


def _in_order(visit: DayVisit) -> tuple[datetime, str]:
    return visit.start, visit.visit_id


def week_of(day: date) -> tuple[date, date]:
    """The Monday and the Sunday of the ISO week that holds ``day``."""
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def week_bounds(day: date) -> tuple[datetime, datetime]:
    """UTC instants between which every visit starting in the week of ``day`` lies,
    at a location in any time zone (``therapist_week`` keeps the week's own)."""
    first, last = week_of(day)
    start = datetime.combine(first, time(), tzinfo=UTC) - _ANY_ZONE
    return start, datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC) + _ANY_ZONE


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


def _with_staffing(names: Names, staffing: Staffing) -> Names:
    """``names``, with the location's own therapists and name where it has none."""
    return Names(
        clients=names.clients,
        therapists={**{t.id: t.name for t in staffing.therapists}, **names.therapists},
        locations={staffing.location.id: staffing.location.name, **names.locations},
    )


def _day_visit(
    visit: VisitBooked, zone: ZoneInfo, *, offered: bool, status: ShownStatus, names: Names
) -> DayVisit:
    return DayVisit(
        offered=offered,
        status=status,
        visit_id=visit.visit_id,
        plan_id=visit.plan_id,
        client_id=visit.client_id,
        client_name=names.client(visit.client_id),
        therapist_id=visit.therapist_id,
        therapist_name=names.therapist(visit.therapist_id),
        location_id=visit.location_id,
        location_name=names.location(visit.location_id),
        room=visit.room,
        room_name=room_name(visit.room),
        start=visit.start.astimezone(zone),
        end=visit.end.astimezone(zone),
        sequence=visit.sequence,
        sessions_total=visit.sessions_total,
        sequence_label=sequence_label(visit.sequence, visit.sessions_total),
        cadence_note=visit.cadence_note,
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
    return [
        RoomDay(room=n, room_name=room_name(n), visits=[v for v in shown if v.room == n])
        for n in numbers
    ]


__all__ = [
    "DayVisit",
    "LocalRange",
    "LocationDay",
    "Names",
    "RoomDay",
    "TherapistDay",
    "TherapistWeek",
    "WeekDay",
    "location_day",
    "room_name",
    "sequence_label",
    "therapist_week",
    "week_bounds",
    "week_of",
]
