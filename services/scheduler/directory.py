"""The staff-and-location directory: who works where and when, as data that changes
at run time (pure: no I/O, no clock).

It holds each therapist's weekly hours per location, dated exceptions (time off, a
sick day, an extra shift, changed hours), location closures and holiday hours, and
the staff policy (``turnover``: the buffer after each visit before its therapist and
room take the next; ``max_visits_per_day`` per therapist). The chain YAML seeds it
at first start (``seed``); from then on it changes by HTTP (``directory_api.py``),
one ``apply`` per change, each raising ``version`` by one.

Rules, with where they come from:
- a therapist works at one location a (local) day: two locations never share a
  weekday of their weekly hours, and an extra shift or changed hours at a location
  puts them there for those days, and nowhere else;
- time off and sick days hold at every location; without ranges, the whole day;
- changed hours replace the day's regular hours at their location; an extra shift
  adds to them;
- a closure without hours closes the location those days; with hours, they are the
  days' holiday hours instead of the regular ones;
- the policy set for a location wins over the chain's.

``Staffing`` is one location's view of it, which booking reads (``slots.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from pydantic import Field, ValidationError, ValidationInfo, field_validator

from shared.chain import (
    ChainConfig,
    Location,
    OpeningRange,
    Therapist,
    Turnover,
    WeeklyHours,
    parse_ranges,
    ranges_on,
)
from shared.events.base import Part
from shared.vocabulary import WEEKDAYS, StaffExceptionKind

ExceptionKind = StaffExceptionKind  # shared/vocabulary.py: the events carry it too
OFF: tuple[ExceptionKind, ...] = ("time_off", "sick")
SHIFTS: tuple[ExceptionKind, ...] = ("extra_shift", "changed_hours")
LONGEST_SPAN = timedelta(days=366)  # one exception or closure covers at most a year
CHAIN = "*"  # the policy key of the chain's default

Range = tuple[time, time]


class DirectoryError(ValueError):
    """A change the directory cannot take: ``path`` names the field (as a 422 does)."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class StaffException(Part):
    """A dated exception to a therapist's weekly hours, ``start_date..end_date``."""

    id: str = Field(min_length=1, max_length=80)
    therapist_id: str
    kind: ExceptionKind
    start_date: date
    end_date: date
    # where an extra shift or changed hours are worked
    location_id: str | None = Field(default=None, validate_default=True)
    ranges: list[OpeningRange] = Field(default_factory=list, validate_default=True)
    note: str | None = Field(default=None, max_length=500)

    @field_validator("end_date")
    @classmethod
    def _span(cls, end: date, info: ValidationInfo) -> date:
        return _checked_span(info.data.get("start_date"), end)

    @field_validator("location_id")
    @classmethod
    def _where(cls, location_id: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind in SHIFTS and location_id is None:
            raise ValueError(f"{kind} needs location_id: where the hours are worked")
        return location_id

    @field_validator("ranges")
    @classmethod
    def _hours(cls, ranges: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("kind") == "extra_shift" and not ranges:
            raise ValueError("extra_shift needs ranges: the hours added")
        return ranges

    def covers(self, day: date) -> bool:
        return self.start_date <= day <= self.end_date


class Closure(Part):
    """A location closed (no ``hours``) or on holiday hours, ``start_date..end_date``."""

    id: str = Field(min_length=1, max_length=80)
    location_id: str
    start_date: date
    end_date: date
    hours: list[OpeningRange] = Field(default_factory=list)
    note: str | None = Field(default=None, max_length=500)

    @field_validator("end_date")
    @classmethod
    def _span(cls, end: date, info: ValidationInfo) -> date:
        return _checked_span(info.data.get("start_date"), end)

    def covers(self, day: date) -> bool:
        return self.start_date <= day <= self.end_date


class StaffPolicy(Part):
    turnover: Turnover = timedelta(0)
    max_visits_per_day: int | None = Field(default=None, ge=1, le=20)


class Directory(Part):
    """The whole directory, as stored (one JSON document) and versioned."""

    version: int = Field(default=1, ge=1)
    # therapist id -> location id -> weekly hours there ({}: none)
    hours: dict[str, dict[str, WeeklyHours]] = Field(default_factory=dict)
    exceptions: dict[str, StaffException] = Field(default_factory=dict)
    closures: dict[str, Closure] = Field(default_factory=dict)
    # location id (or CHAIN) -> the staff policy there
    policies: dict[str, StaffPolicy] = Field(default_factory=dict)


def _checked_span(start: date | None, end: date) -> date:
    if start is None:  # start_date itself is invalid: its own error says so
        return end
    if end < start:
        raise ValueError(f"end_date {end} is before start_date {start}")
    if end - start >= LONGEST_SPAN:
        raise ValueError("a span covers at most 366 days; add another for more")
    return end


# --- seeding ---------------------------------------------------------------------------


def seed(chain: ChainConfig) -> Directory:
    """The directory as the chain file gives it (written at first start)."""
    closures = {
        _closure_id(loc.id, day): Closure(
            id=_closure_id(loc.id, day), location_id=loc.id, start_date=day, end_date=day
        )
        for loc in chain.locations
        for day in loc.closed
    }
    policies = {CHAIN: _policy_of(chain, None)}
    for loc in chain.locations:
        if loc.policy.turnover is not None or loc.policy.max_visits_per_day is not None:
            policies[loc.id] = _policy_of(chain, loc.id)
    return Directory(
        hours=seed_hours(chain, Directory()), closures=closures, policies=policies, version=1
    )


def seed_hours(chain: ChainConfig, directory: Directory) -> dict[str, dict[str, WeeklyHours]]:
    """The directory's hours with every (therapist, location) pair the file names and
    the directory does not yet know taken from the file: a therapist or location
    added to the file later starts with the file's hours. Where the file gives one set
    of hours for several locations, each weekday goes to the first location listed
    that is open that day (one location a day)."""
    hours = {tid: dict(at) for tid, at in directory.hours.items()}
    for therapist in chain.therapists:
        known = hours.setdefault(therapist.id, {})
        taken = {day for at in known.values() for day, ranges in at.items() if ranges}
        for location_id in therapist.locations:
            if location_id in known:
                continue
            weekly = chain.therapist_hours(therapist, chain.location(location_id))
            if location_id not in therapist.hours_at:
                weekly = {day: r for day, r in weekly.items() if r and day not in taken}
            known[location_id] = weekly
            taken |= {day for day, ranges in weekly.items() if ranges}
    return hours


def _closure_id(location_id: str, day: date) -> str:
    return f"{location_id}-{day.isoformat()}"


def _policy_of(chain: ChainConfig, location_id: str | None) -> StaffPolicy:
    policy = chain.policy if location_id is None else chain.policy_for(location_id)
    return StaffPolicy(turnover=policy.turnover, max_visits_per_day=policy.max_visits_per_day)


# --- changes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SetHours:
    therapist_id: str
    location_id: str
    hours: WeeklyHours


@dataclass(frozen=True)
class AddException:
    exception: StaffException


@dataclass(frozen=True)
class RemoveException:
    exception_id: str


@dataclass(frozen=True)
class AddClosure:
    closure: Closure


@dataclass(frozen=True)
class RemoveClosure:
    closure_id: str


@dataclass(frozen=True)
class SetPolicy:
    location_id: str | None
    policy: StaffPolicy


Change = SetHours | AddException | RemoveException | AddClosure | RemoveClosure | SetPolicy


def apply(directory: Directory, change: Change, chain: ChainConfig) -> Directory:
    """The directory after ``change``, one version on; ``DirectoryError`` if the chain
    cannot take it (unknown ids, a second location on one day)."""
    update: dict[str, object]
    if isinstance(change, SetHours):
        therapist = _therapist(chain, change.therapist_id, ("therapist_id",))
        _works_at(therapist, change.location_id, ("location_id",))
        _one_location_a_day(directory, change)
        hours = {tid: dict(at) for tid, at in directory.hours.items()}
        hours.setdefault(therapist.id, {})[change.location_id] = change.hours
        update = {"hours": hours}
    elif isinstance(change, AddException):
        exception = change.exception
        therapist = _therapist(chain, exception.therapist_id, ("therapist_id",))
        if exception.kind in SHIFTS:
            assert exception.location_id is not None  # StaffException checks it
            _works_at(therapist, exception.location_id, ("location_id",))
            _one_shift_location(directory, exception)
        if exception.id in directory.exceptions:
            raise DirectoryError(("exception_id",), f"exception {exception.id!r} exists")
        update = {"exceptions": {**directory.exceptions, exception.id: exception}}
    elif isinstance(change, RemoveException):
        if change.exception_id not in directory.exceptions:
            raise DirectoryError(("exception_id",), f"no exception {change.exception_id!r}")
        rest = {k: v for k, v in directory.exceptions.items() if k != change.exception_id}
        update = {"exceptions": rest}
    elif isinstance(change, AddClosure):
        closure = change.closure
        if not chain.has_location(closure.location_id):
            raise DirectoryError(("location_id",), f"unknown location {closure.location_id!r}")
        if closure.id in directory.closures:
            raise DirectoryError(("closure_id",), f"closure {closure.id!r} exists")
        update = {"closures": {**directory.closures, closure.id: closure}}
    elif isinstance(change, RemoveClosure):
        if change.closure_id not in directory.closures:
            raise DirectoryError(("closure_id",), f"no closure {change.closure_id!r}")
        update = {
            "closures": {k: v for k, v in directory.closures.items() if k != change.closure_id}
        }
    else:
        key = CHAIN if change.location_id is None else change.location_id
        if change.location_id is not None and not chain.has_location(change.location_id):
            raise DirectoryError(("location_id",), f"unknown location {change.location_id!r}")
        update = {"policies": {**directory.policies, key: change.policy}}
    return directory.model_copy(update={**update, "version": directory.version + 1})


def pruned(directory: Directory, *, before: date) -> Directory:
    """The directory without the exceptions and closures that ended before ``before``
    (a change keeps the document to what can still matter; the topic keeps the
    history)."""
    exceptions = {k: e for k, e in directory.exceptions.items() if e.end_date >= before}
    closures = {k: c for k, c in directory.closures.items() if c.end_date >= before}
    if len(exceptions) == len(directory.exceptions) and len(closures) == len(directory.closures):
        return directory
    return directory.model_copy(update={"exceptions": exceptions, "closures": closures})


def _therapist(chain: ChainConfig, therapist_id: str, path: tuple[str, ...]) -> Therapist:
    for therapist in chain.therapists:
        if therapist.id == therapist_id:
            return therapist
    raise DirectoryError(path, f"unknown therapist {therapist_id!r}")


def _works_at(therapist: Therapist, location_id: str, path: tuple[str, ...]) -> None:
    if location_id not in therapist.locations:
        raise DirectoryError(
            path,
            f"{therapist.name} does not work at {location_id!r} (their locations: "
            f"{', '.join(therapist.locations)})",
        )


def _one_location_a_day(directory: Directory, change: SetHours) -> None:
    for location_id, weekly in directory.hours.get(change.therapist_id, {}).items():
        if location_id == change.location_id:
            continue
        for weekday, ranges in change.hours.items():
            if ranges and weekly.get(weekday):
                raise DirectoryError(
                    ("hours", weekday),
                    f"the therapist works at {location_id!r} on {weekday}s; a therapist "
                    "works at one location a day",
                )


def _one_shift_location(directory: Directory, exception: StaffException) -> None:
    for other in directory.exceptions.values():
        if (
            other.therapist_id == exception.therapist_id
            and other.kind in SHIFTS
            and other.location_id != exception.location_id
            and other.start_date <= exception.end_date
            and exception.start_date <= other.end_date
        ):
            raise DirectoryError(
                ("start_date",),
                f"the therapist already works at {other.location_id!r} on some of these days "
                f"({other.id}); a therapist works at one location a day",
            )


def parse_error(exc: ValidationError) -> DirectoryError:
    """A pydantic error as a ``DirectoryError`` on its first field."""
    first = exc.errors(include_url=False)[0]
    return DirectoryError(tuple(first["loc"]), first["msg"])


# --- one location's view -------------------------------------------------------------------


@dataclass
class Staffing:
    """What booking at one location reads from the directory: opening hours by date,
    each therapist's hours there by date, the turnover and the daily cap."""

    location: Location
    therapists: list[Therapist]  # who may work here, by id
    weekly: dict[str, WeeklyHours]  # therapist id -> weekly hours here
    exceptions: dict[str, list[StaffException]]  # therapist id -> theirs
    closures: list[Closure]
    turnover: timedelta = timedelta(0)
    max_visits_per_day: int | None = None
    version: int = 1
    _opening: dict[date, list[Range]] = field(default_factory=dict, repr=False)
    _working: dict[tuple[str, date], list[Range]] = field(default_factory=dict, repr=False)

    def opening(self, day: date) -> list[Range]:
        """The location's opening ranges on a local day ([] when closed)."""
        found = self._opening.get(day)
        if found is None:
            found = self._opening[day] = self._resolve_opening(day)
        return found

    def working(self, therapist_id: str, day: date) -> list[Range]:
        """The therapist's working ranges here on a local day ([] when not here)."""
        key = (therapist_id, day)
        found = self._working.get(key)
        if found is None:
            found = self._working[key] = self._resolve_working(therapist_id, day)
        return found

    def holds(self, therapist_id: str, start: datetime, end: datetime) -> bool:
        """Whether the location is open and the therapist works here for all of
        [start, end), read on the location's clock (one local day)."""
        zone = self.location.zone
        local_start, local_end = start.astimezone(zone), end.astimezone(zone)
        day = local_start.date()
        if local_end.date() != day:
            return False
        since, until = local_start.time(), local_end.time()
        return any(lo <= since and until <= hi for lo, hi in self.opening(day)) and any(
            lo <= since and until <= hi for lo, hi in self.working(therapist_id, day)
        )

    def therapist(self, therapist_id: str) -> Therapist | None:
        return next((t for t in self.therapists if t.id == therapist_id), None)

    def only(self, therapists: Iterable[Therapist]) -> Staffing:
        """The same view with only ``therapists`` (sharing what is resolved)."""
        kept = {t.id for t in therapists}
        view = Staffing(
            self.location,
            [t for t in self.therapists if t.id in kept],
            self.weekly,
            self.exceptions,
            self.closures,
            self.turnover,
            self.max_visits_per_day,
            self.version,
        )
        view._opening, view._working = self._opening, self._working
        return view

    def _resolve_opening(self, day: date) -> list[Range]:
        found = [c for c in self.closures if c.covers(day)]
        if not found:
            return sorted(ranges_on(self.location.hours, WEEKDAYS[day.weekday()]))
        if any(not c.hours for c in found):
            return []
        return _merged(r for c in found for r in parse_ranges(c.hours))

    def _resolve_working(self, therapist_id: str, day: date) -> list[Range]:
        mine = [e for e in self.exceptions.get(therapist_id, []) if e.covers(day)]
        shifts = [e for e in mine if e.kind in SHIFTS]
        if any(e.location_id != self.location.id for e in shifts):
            return []  # they work at another location that day
        changed = [e for e in shifts if e.kind == "changed_hours"]
        if changed:
            base = [r for e in changed for r in parse_ranges(e.ranges)]
        else:
            base = ranges_on(self.weekly.get(therapist_id, {}), WEEKDAYS[day.weekday()])
        base += [r for e in shifts if e.kind == "extra_shift" for r in parse_ranges(e.ranges)]
        working = _merged(base)
        for off in (e for e in mine if e.kind in OFF):
            if not off.ranges:
                return []
            working = _without(working, parse_ranges(off.ranges))
        return working


def staffing(chain: ChainConfig, directory: Directory, location_id: str) -> Staffing:
    """One location's view of the directory."""
    location = chain.location(location_id)
    therapists = sorted(chain.therapists_at(location_id), key=lambda t: t.id)
    ids = {t.id for t in therapists}
    exceptions: dict[str, list[StaffException]] = {}
    for exception in directory.exceptions.values():
        if exception.therapist_id in ids:
            exceptions.setdefault(exception.therapist_id, []).append(exception)
    policy = directory.policies.get(location_id) or directory.policies.get(CHAIN)
    policy = policy or _policy_of(chain, location_id)
    return Staffing(
        location=location,
        therapists=therapists,
        weekly={t.id: directory.hours.get(t.id, {}).get(location_id, {}) for t in therapists},
        exceptions=exceptions,
        closures=[c for c in directory.closures.values() if c.location_id == location_id],
        turnover=policy.turnover,
        max_visits_per_day=policy.max_visits_per_day,
        version=directory.version,
    )


def plain(
    location: Location,
    therapists: Sequence[Therapist | tuple[Therapist, WeeklyHours]],
    *,
    turnover: timedelta = timedelta(0),
    max_visits_per_day: int | None = None,
    exceptions: Sequence[StaffException] = (),
    closures: Sequence[Closure] = (),
) -> Staffing:
    """A location's view from its file entries alone: weekly hours (a therapist given
    alone works their own hours, else the location's), its closed days (the view a
    chain's first start seeds), and any exceptions given."""
    pairs = [
        entry if isinstance(entry, tuple) else (entry, entry.hours or location.hours)
        for entry in therapists
    ]
    by_therapist: dict[str, list[StaffException]] = {}
    for exception in exceptions:
        by_therapist.setdefault(exception.therapist_id, []).append(exception)
    closed = [
        Closure(
            id=_closure_id(location.id, day), location_id=location.id, start_date=day, end_date=day
        )
        for day in location.closed
    ]
    return Staffing(
        location=location,
        therapists=sorted((t for t, _ in pairs), key=lambda t: t.id),
        weekly={t.id: hours for t, hours in pairs},
        exceptions=by_therapist,
        closures=[*closed, *closures],
        turnover=turnover,
        max_visits_per_day=max_visits_per_day,
    )


# --- ranges --------------------------------------------------------------------------------


def _merged(ranges: Iterable[Range]) -> list[Range]:
    out: list[Range] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _without(ranges: list[Range], removed: list[Range]) -> list[Range]:
    out = ranges
    for cut_from, cut_until in removed:
        kept: list[Range] = []
        for start, end in out:
            if cut_until <= start or end <= cut_from:
                kept.append((start, end))
                continue
            if start < cut_from:
                kept.append((start, cut_from))
            if cut_until < end:
                kept.append((cut_until, end))
        out = kept
    return out


__all__ = [
    "CHAIN",
    "AddClosure",
    "AddException",
    "Change",
    "Closure",
    "Directory",
    "DirectoryError",
    "RemoveClosure",
    "RemoveException",
    "SetHours",
    "SetPolicy",
    "StaffException",
    "StaffPolicy",
    "Staffing",
    "apply",
    "plain",
    "pruned",
    "seed",
    "seed_hours",
    "staffing",
]
