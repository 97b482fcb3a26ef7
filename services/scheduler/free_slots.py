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

# booking's own search of a therapist's day: what is offered is what booking places
from services.scheduler.slots import BookedInterval, Occupancy, SlotQuery, free_slots_on
from shared.chain import Policy

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
    # booking's own search of one therapist's day, for nobody's plan in particular
    query = SlotQuery(
        earliest=earliest,
        first_day=day,
        latest=latest,
        minutes=length,
        step_minutes=policy.slot_step_minutes,
        therapists=eligible,
        preferred_therapist=None,
        client_id=client_id or _NO_CLIENT,
        days=frozenset(),
        times=frozenset(),
        weekly_cap=7,
    )
    while day <= last and len(found) < limit:
        slots = [
            FreeSlot(
                therapist_id=therapist.id,
                therapist_name=therapist.name,
                room=slot.room,
                start=slot.start.astimezone(zone),
                end=slot.end.astimezone(zone),
            )
            for therapist in eligible
            for slot in free_slots_on(day, therapist, query, staffing, occupancy)
        ]
        found += sorted(slots, key=lambda s: (s.start, s.therapist_id))
        day += timedelta(days=1)
    return found[:limit]


__all__ = ["FreeSlot", "free_slots"]
