"""The free slots of a location: where a visit of a given length could go, for the
front desk's search and a client's page (``GET /v1/plans/{id}/free-slots``,
``proposals.py``).

Pure. Free slots come from the same building blocks as booking
(``services.scheduler.slots``: the grid of candidate starts, the directory's hours
by date, the turnover and the daily cap), so what is offered is what booking would
accept. Every time is shown on the location's clock with its UTC offset.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date, datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict

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

# Occupancy.free_room also keeps a client from holding two visits at once; a
# search for nobody in particular uses an id no held visit carries.
_NO_CLIENT = "\x00no-client"


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class FreeSlot(_View):
    """A start at which one therapist and one room are free for the whole visit."""

    therapist_id: str
    therapist_name: str
    room: int
    start: AwareDatetime
    end: AwareDatetime


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


__all__ = ["FreeSlot", "free_slots"]
