"""iCalendar (RFC 5545) files of booked visits, for the client's own calendar.

Pure: the visits, their locations, the names to show and ``now`` come in as
arguments; the bytes come out (``GET /v1/visits/{visit_id}.ics``, a client's
feed). Times are written as the location's wall clock with its TZID and a
VTIMEZONE built from the IANA rules for the dates in the file, so a 10:00 visit
shows at 10:00 local in any calendar, on either side of a DST change
(DESIGN.md "Guarantees": time).

Updates that calendars apply: a visit keeps one UID for good, and its SEQUENCE
grows with every change (``sequence``): 0 as booked, one more for each move, one
more when it is cancelled (the last change a visit has). A calendar holding the
entry replaces it with a file of a higher SEQUENCE, and a cancelled one carries
STATUS:CANCELLED. The location is the ORGANIZER (its name, and the ``email`` the
chain file gives it): with one, the file is an iTIP message (RFC 5546) -
METHOD:PUBLISH, or METHOD:CANCEL for a cancelled visit's own file - whose
required properties are all there. iTIP needs an ORGANIZER with an address, so
a location without ``email`` gets files with neither ORGANIZER nor METHOD: plain
RFC 5545 objects, imported and updated by UID and SEQUENCE all the same.

Minimum necessary (DESIGN.md "Guarantees"): a calendar entry is seen by whoever
sees the client's calendar, so it says where, when and with whom, never why. The
inputs hold no complaint, condition or technique, and must not start to.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import (
    Calendar,
    Event,
    Timezone,
    TimezoneDaylight,
    TimezoneStandard,
    vCalAddress,
)

from shared.chain import Location
from shared.events.visits import VisitBooked

PRODID = "-//clinicflow//scheduler//EN"
# Zone rules change at most once a day: a daily probe finds every change.
_PROBE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class _Entry:
    """One visit as it will be written: the visit and what to show with it."""

    visit: VisitBooked
    location: Location
    therapist_name: str | None
    chain_name: str
    revision: int
    cancelled: bool


def visit_uid(visit_id: str) -> str:
    """The UID of a visit's event: stable, so a new file updates the same entry."""
    return f"{visit_id}@clinicflow"


def sequence(moves: int, *, cancelled: bool) -> int:
    """The SEQUENCE of a visit moved ``moves`` times: each move raises it, and the
    cancellation once more (nothing changes a visit after it), so every change a
    calendar is sent is above the one it holds."""
    return moves + (1 if cancelled else 0)


def organizer(location: Location, *, chain_name: str) -> vCalAddress | None:
    """The location as the ORGANIZER, when the chain gave it an address."""
    if location.email is None:
        return None
    address = vCalAddress(f"mailto:{location.email}")
    address.params["CN"] = f"{chain_name}, {location.name}" if chain_name else location.name
    return address


def visit_ics(
    visit: VisitBooked,
    *,
    location: Location,
    therapist_name: str | None,
    chain_name: str,
    now: datetime,
    revision: int = 0,
    cancelled: bool = False,
) -> bytes:
    """One visit as a VCALENDAR holding its VTIMEZONE and VEVENT: METHOD:PUBLISH, or
    METHOD:CANCEL once it is cancelled, when the location has an address.

    ``revision``: how many times the visit was moved (``sequence`` makes the
    SEQUENCE of it and ``cancelled``)."""
    if visit.location_id != location.id:
        raise ValueError(f"visit {visit.visit_id} is at {visit.location_id!r}, not {location.id!r}")
    entry = _Entry(visit, location, therapist_name, chain_name, revision, cancelled)
    method = "CANCEL" if cancelled else "PUBLISH"
    return _ics([entry], now=now, name=None, method=method)


def client_feed_ics(
    visits: Iterable[VisitBooked],
    *,
    locations: Mapping[str, Location],
    therapist_names: Mapping[str, str],
    chain_name: str,
    now: datetime,
    cancelled: Set[str] = frozenset(),
    revisions: Mapping[str, int] | None = None,
) -> bytes:
    """Every visit of one client in one calendar, in start order; the visits whose
    id is in ``cancelled`` carry STATUS:CANCELLED, ``revisions`` holds how many
    times each was moved. One VTIMEZONE per zone used; METHOD:PUBLISH when every
    visit's location has an address."""
    entries = [
        _Entry(
            visit=visit,
            location=_location_of(visit, locations),
            therapist_name=therapist_names.get(visit.therapist_id),
            chain_name=chain_name,
            revision=(revisions or {}).get(visit.visit_id, 0),
            cancelled=visit.visit_id in cancelled,
        )
        for visit in sorted(visits, key=lambda v: (v.start, v.visit_id))
    ]
    return _ics(entries, now=now, name=f"{chain_name} visits", method="PUBLISH")


def _location_of(visit: VisitBooked, locations: Mapping[str, Location]) -> Location:
    try:
        return locations[visit.location_id]
    except KeyError:
        raise ValueError(
            f"visit {visit.visit_id}: unknown location {visit.location_id!r}"
        ) from None


def _ics(entries: list[_Entry], *, now: datetime, name: str | None, method: str) -> bytes:
    """The VCALENDAR: header, one VTIMEZONE per zone, then the events; folded at
    75 octets with CRLF line ends by the library. ``method`` is written only when
    every event has its ORGANIZER, which iTIP requires of PUBLISH and CANCEL."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if entries and all(entry.location.email is not None for entry in entries):
        calendar.add("method", method)
    if name is not None:
        calendar.add("name", name)  # RFC 7986
        calendar.add("x-wr-calname", name)  # the same, for clients without RFC 7986
    spans: dict[str, list[datetime]] = defaultdict(list)
    for entry in entries:
        spans[entry.location.timezone] += [entry.visit.start, entry.visit.end]
    for tzid in sorted(spans):
        calendar.add_component(_vtimezone_for(ZoneInfo(tzid), spans[tzid]))
    stamp = now.astimezone(UTC)
    for entry in entries:
        calendar.add_component(_event(entry, stamp))
    ics: bytes = calendar.to_ical()
    return ics


def _vtimezone_for(zone: ZoneInfo, instants: list[datetime]) -> Timezone:
    """The zone's rules for the whole local years the visits fall in: every
    STANDARD and DAYLIGHT change of those years, so an entry a client moves
    within its year still shows the right clock (and strict readers that want
    both kinds of observance find them)."""
    first_year = min(instants).astimezone(zone).year
    last_year = max(instants).astimezone(zone).year
    start = datetime(first_year, 1, 1, tzinfo=zone)
    return vtimezone(zone, start, datetime(last_year + 1, 1, 1, tzinfo=zone))


def _event(entry: _Entry, stamp: datetime) -> Event:
    """The VEVENT of one visit, in the location's wall-clock time."""
    visit, location, zone = entry.visit, entry.location, entry.location.zone
    event = Event()
    event.add("uid", visit_uid(visit.visit_id))
    event.add("dtstamp", stamp)
    event.add("dtstart", visit.start.astimezone(zone))
    event.add("dtend", visit.end.astimezone(zone))
    event.add("summary", summary(visit, location=location, chain_name=entry.chain_name))
    host = organizer(location, chain_name=entry.chain_name)
    if host is not None:
        event.add("organizer", host)
    event.add("location", location_text(location))
    description = _description(entry.therapist_name, location)
    if description:
        event.add("description", description)
    event.add("sequence", sequence(entry.revision, cancelled=entry.cancelled))
    event.add("status", "CANCELLED" if entry.cancelled else "CONFIRMED")
    # A cancelled visit no longer blocks the client's time.
    event.add("transp", "TRANSPARENT" if entry.cancelled else "OPAQUE")
    return event


def summary(visit: VisitBooked, *, location: Location, chain_name: str) -> str:
    """The entry's title: which session of the plan, and where."""
    where = f"{chain_name}, {location.name}" if chain_name else location.name
    return f"Therapy session {visit.sequence} of {visit.sessions_total} - {where}"


def location_text(location: Location) -> str:
    """The location's name, then its address when the chain configured one."""
    return f"{location.name}, {location.address}" if location.address else location.name


def _description(therapist_name: str | None, location: Location) -> str:
    lines = []
    if therapist_name:
        lines.append(f"Therapist: {therapist_name}")
    if location.phone:
        lines.append(f"To reschedule or cancel, call {location.phone}.")
    return "\n".join(lines)


def vtimezone(zone: ZoneInfo, start: datetime, end: datetime) -> Timezone:
    """A VTIMEZONE with the zone's observances in force from ``start`` to ``end``.

    The first observance is the one in force at ``start`` (its onset set there);
    every later one is a real change of the zone's rules. Each observance's
    DTSTART is the local time of its onset on the clock it replaces (RFC 5545
    3.6.5: DTSTART is read with TZOFFSETFROM), e.g. 02:00 for the US spring
    change, not 03:00."""
    first = int(start.timestamp())
    timezone = Timezone()
    timezone.add("tzid", zone.key)
    timezone.add_component(_observance(zone, first, _rules(zone, first)[0]))
    for onset in _transitions(zone, first, int(end.timestamp())):
        timezone.add_component(_observance(zone, onset, _rules(zone, onset - 1)[0]))
    return timezone


def _observance(
    zone: ZoneInfo, onset: int, offset_from: timedelta
) -> TimezoneStandard | TimezoneDaylight:
    """The STANDARD or DAYLIGHT sub-component whose rules start at ``onset``
    (a POSIX timestamp)."""
    offset_to, dst, name = _rules(zone, onset)
    # dst > 0, not != 0: tzdata models Irish winter time as negative DST, which
    # must not be labelled DAYLIGHT. The label is cosmetic; the offsets rule.
    observance = TimezoneDaylight() if dst > timedelta(0) else TimezoneStandard()
    instant = datetime.fromtimestamp(onset, UTC)
    observance.add("dtstart", (instant + offset_from).replace(tzinfo=None))
    observance.add("tzoffsetfrom", offset_from)
    observance.add("tzoffsetto", offset_to)
    if name:
        observance.add("tzname", name)
    return observance


def _rules(zone: ZoneInfo, timestamp: int) -> tuple[timedelta, timedelta, str]:
    """What a reader of the zone sees at a POSIX timestamp: offset, DST part, name."""
    local = datetime.fromtimestamp(timestamp, zone)
    # A ZoneInfo answers both for every instant; "or" only satisfies the type.
    return local.utcoffset() or timedelta(0), local.dst() or timedelta(0), local.tzname() or ""


def _transitions(zone: ZoneInfo, start: int, end: int) -> list[int]:
    """The timestamps in (start, end] at which the zone's rules change."""
    found = []
    probe = start
    while probe < end:
        following = min(probe + _PROBE_SECONDS, end)
        if _rules(zone, probe) != _rules(zone, following):
            found.append(_first_change(zone, probe, following))
        probe = following
    return found


def _first_change(zone: ZoneInfo, before: int, after: int) -> int:
    """The first second in (before, after] under other rules than ``before``."""
    old = _rules(zone, before)
    while after - before > 1:
        middle = (before + after) // 2
        if _rules(zone, middle) == old:
            before = middle
        else:
            after = middle
    return after


__all__ = [
    "PRODID",
    "client_feed_ics",
    "location_text",
    "organizer",
    "sequence",
    "summary",
    "visit_ics",
    "visit_uid",
    "vtimezone",
]
