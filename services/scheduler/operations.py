"""What can happen to booked visits (pure: no I/O, no clock; ``now`` is an argument).

- cancel: a client cancel inside ``policy.late_cancel_window`` before the start is
  late; a clinic cancel never is;
- complete: only once the visit has started on the shared clock (DESIGN.md
  "Running": a visit can only be completed relative to that clock);
- reschedule: a new time keeps every booking rule - notice, horizon, opening and
  therapist hours, skills, rooms, the client's other visits, the weekly maximum
  and the soreness gap to the plan's neighbouring sessions (DOMAIN.md 5).

Re-planning on ``plan.revised`` is ``replan.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from services.scheduler.booking import (
    eligible_therapists,
    weekly_cap,
    weekly_counts,
)
from services.scheduler.directory import Staffing
from services.scheduler.slots import (
    BookedInterval,
    Occupancy,
    Slot,
    SlotQuery,
    find_slot,
    iso_week,
)
from shared.chain import Location, Policy, Therapist
from shared.events.plans import SchedulingNeeds
from shared.events.visits import VisitBooked, VisitCancelled
from shared.vocabulary import CancelCause, CancelledBy

RefusalReason = Literal[
    "started",
    "notice",
    "horizon",
    "closed",
    "outside_hours",
    "gap",
    "weekly_cap",
    "client_busy",
    "no_therapist",
    "no_room",
    "no_slot",
]
# "After the current start": the next slot must really be a later one.
_LATER = timedelta(minutes=1)


@dataclass(frozen=True)
class Refusal:
    """Why a visit cannot move: a stable ``reason`` code and a sentence for people."""

    reason: RefusalReason
    detail: str


def is_late_cancel(visit: VisitBooked, *, by: CancelledBy, now: datetime, policy: Policy) -> bool:
    """A client cancel less than ``policy.late_cancel_window`` before the start (or
    after it) is late; exactly the window before is still on time. The clinic's
    own cancels are never late."""
    return by == "client" and visit.start - now < policy.late_cancel_window


def completion_refusal(
    visit: VisitBooked, *, now: datetime, action: str = "completed"
) -> str | None:
    """Why ``visit`` cannot be completed (or recorded as a no-show, ``action``) yet, or
    None once it has started (``now >= start`` on the shared clock)."""
    if now >= visit.start:
        return None
    zone = ZoneInfo(visit.timezone)
    return (
        f"Visit {visit.visit_id} starts {_local(visit.start, zone)}; it can be {action} "
        f"once it has started (it is now {_local(now, zone)})."
    )


def cancellation(
    visit: VisitBooked,
    *,
    by: CancelledBy,
    reason: str | None,
    now: datetime,
    policy: Policy,
    cause: CancelCause | None = None,
) -> VisitCancelled:
    """The cancellation of ``visit`` at ``now``, late or not (``is_late_cancel``). Its
    ``cause`` is what made it (a plan revised, a make-up); a command's is who asked."""
    return VisitCancelled(
        visit_id=visit.visit_id,
        plan_id=visit.plan_id,
        client_id=visit.client_id,
        location_id=visit.location_id,
        by=by,
        late=is_late_cancel(visit, by=by, now=now, policy=policy),
        reason=reason,
        cancelled_at=now,
        cause=cause or by,
    )


def reschedule(
    visit: VisitBooked,
    *,
    plan_visits: Sequence[VisitBooked],
    start: datetime | None,
    staffing: Staffing,
    needs: SchedulingNeeds,
    policy: Policy,
    existing: Sequence[BookedInterval],
    now: datetime,
) -> Slot | Refusal:
    """Where ``visit`` can move: to ``start`` when given, else the next fitting slot
    after its current start. ``plan_visits`` are the plan's other visits that stand
    (booked or done; any order); the soreness gap (DOMAIN.md 5) is kept to the
    sessions just before and after this one. The visit keeps its length. The
    visit itself may be among ``plan_visits`` and ``existing``: it is left out.

    An explicit start is the client's own choice, so the intake's day and time
    wishes do not bind it (the next-slot search honours them); the first rule it
    breaks is the refusal."""
    if now.tzinfo is None or (start is not None and start.tzinfo is None):
        raise ValueError("now and start must be timezone-aware")
    if now >= visit.start:
        return Refusal("started", "The visit has already started; it cannot be moved.")
    location = staffing.location
    eligible = eligible_therapists(needs, staffing.therapists)
    if not eligible:
        skills = ", ".join(sorted(needs.required_skills)) or "this treatment"
        return Refusal("no_therapist", f"No therapist at {location.name} offers {skills}.")
    others = [v for v in plan_visits if v.visit_id != visit.visit_id]
    move = _Move(
        visit=visit,
        previous=max(
            (v for v in others if v.sequence < visit.sequence),
            key=lambda v: v.sequence,
            default=None,
        ),
        following=min(
            (v for v in others if v.sequence > visit.sequence),
            key=lambda v: v.sequence,
            default=None,
        ),
        others=others,
        staffing=staffing,
        eligible=eligible,
        needs=needs,
        policy=policy,
        calendar=[i for i in existing if i.visit_id != visit.visit_id],
        now=now,
    )
    if start is None:
        return _next_slot(move)
    end = start + (visit.end - visit.start)
    return (
        _window_refusal(move, start)
        or _opening_refusal(move, start, end)
        or _gap_refusal(move, start, end)
        or _week_refusal(move, start)
        or _free_slot_at(move, start, end)
    )


@dataclass(frozen=True)
class _Move:
    """One reschedule request and what its rules read; ``previous`` and
    ``following`` are the plan's sessions just before and after it, by sequence."""

    visit: VisitBooked
    previous: VisitBooked | None
    following: VisitBooked | None
    others: Sequence[VisitBooked]
    staffing: Staffing
    eligible: Sequence[Therapist]
    needs: SchedulingNeeds
    policy: Policy
    calendar: Sequence[BookedInterval]
    now: datetime

    @property
    def location(self) -> Location:
        return self.staffing.location

    @property
    def zone(self) -> ZoneInfo:
        return self.location.zone

    def occupancy(self) -> Occupancy:
        return Occupancy.of(self.staffing, self.calendar)

    def local(self, moment: datetime) -> str:
        return _local(moment, self.zone)


def _next_slot(move: _Move) -> Slot | Refusal:
    """The first fitting slot after the current start, searched day by day as a
    booking is (continuity first on the chosen day); a later start can only
    shrink the gap to the next session, so the first slot decides."""
    visit, policy, following = move.visit, move.policy, move.following
    earliest = max(move.now + policy.min_notice, visit.start + _LATER)
    if move.previous is not None:
        earliest = max(earliest, move.previous.end + policy.min_gap_same_area)
    latest = move.now + policy.horizon
    if following is not None:
        latest = min(latest, following.start)
    query = SlotQuery(
        earliest=earliest,
        first_day=visit.start.astimezone(move.zone).date(),
        latest=latest,
        minutes=(visit.end - visit.start) // timedelta(minutes=1),
        step_minutes=policy.slot_step_minutes,
        therapists=move.eligible,
        preferred_therapist=visit.therapist_id,
        client_id=visit.client_id,
        days=frozenset(move.needs.days),
        times=frozenset(move.needs.times),
        weekly_cap=weekly_cap(policy, move.needs),
        scored=False,  # "the next free slot" is the earliest one
    )
    slot = find_slot(
        query,
        staffing=move.staffing,
        occupancy=move.occupancy(),
        visits_per_week=weekly_counts(move.others, move.location),
    )
    if slot is not None:
        return _gap_refusal(move, slot.start, slot.end) or slot
    bound = (
        f"ending {_hours(policy.min_gap_same_area)} before session {following.sequence}"
        if following is not None and latest == following.start
        else f"within {policy.horizon.days} days"
    )
    return Refusal(
        "no_slot",
        f"No free therapist and room at {move.location.name} after "
        f"{move.local(visit.start)} {bound}.",
    )


def _window_refusal(move: _Move, start: datetime) -> Refusal | None:
    """Minimum notice from now, and the booking horizon."""
    earliest, latest = move.now + move.policy.min_notice, move.now + move.policy.horizon
    if start < earliest:
        return Refusal(
            "notice",
            f"The new start needs {_hours(move.policy.min_notice)} notice: "
            f"{move.local(earliest)} at the earliest.",
        )
    if start >= latest:
        return Refusal(
            "horizon",
            f"Visits are booked at most {move.policy.horizon.days} days ahead: "
            f"before {move.local(latest)}.",
        )
    return None


def _opening_refusal(move: _Move, start: datetime, end: datetime) -> Refusal | None:
    """Closed dates and opening hours, read on the location's wall clock."""
    location = move.location
    day = start.astimezone(move.zone).date()
    ranges = move.staffing.opening(day)
    if not ranges:
        return Refusal("closed", f"{location.name} is closed on {day:%A %Y-%m-%d}.")
    if not _inside(start, end, ranges, move.zone):
        hours = ", ".join(f"{lo:%H:%M}-{hi:%H:%M}" for lo, hi in ranges)
        return Refusal(
            "outside_hours",
            f"{move.local(start)} to {end.astimezone(move.zone):%H:%M} is outside the "
            f"opening hours of {location.name} that day ({hours}).",
        )
    return None


def _gap_refusal(move: _Move, start: datetime, end: datetime) -> Refusal | None:
    """The soreness window (DOMAIN.md 5), from the end of one visit of the plan
    to the start of the next."""
    gap, previous, following = move.policy.min_gap_same_area, move.previous, move.following
    if previous is not None and start < previous.end + gap:
        return Refusal(
            "gap",
            f"Session {previous.sequence} ends {move.local(previous.end)}; the next visit "
            f"may start {_hours(gap)} later, from {move.local(previous.end + gap)}.",
        )
    if following is not None and end + gap > following.start:
        return Refusal(
            "gap",
            f"Session {following.sequence} starts {move.local(following.start)}; this visit "
            f"must end {_hours(gap)} before, by {move.local(following.start - gap)}.",
        )
    return None


def _week_refusal(move: _Move, start: datetime) -> Refusal | None:
    """At most min(policy, client) visits of the plan per local ISO week."""
    cap = weekly_cap(move.policy, move.needs)
    week = iso_week(start.astimezone(move.zone).date())
    if weekly_counts(move.others, move.location).get(week, 0) >= cap:
        return Refusal("weekly_cap", f"The plan already has {cap} visit(s) that week.")
    return None


def _free_slot_at(move: _Move, start: datetime, end: datetime) -> Slot | Refusal:
    """The visit's own therapist when free, else another eligible one (by id)."""
    visit, when = move.visit, move.local(start)
    day = start.astimezone(move.zone).date()
    working = sorted(
        (
            t.id
            for t in move.eligible
            if _inside(start, end, move.staffing.working(t.id, day), move.zone)
        ),
        key=lambda therapist_id: (therapist_id != visit.therapist_id, therapist_id),
    )
    if not working:
        return Refusal("no_therapist", f"No therapist who can give this visit works {when}.")
    occupancy = move.occupancy()
    for therapist_id in working:
        room = occupancy.free_room(
            therapist_id=therapist_id, client_id=visit.client_id, start=start, end=end
        )
        if room is not None:
            return Slot(therapist_id=therapist_id, room=room, start=start, end=end)
    overlapping = [i for i in move.calendar if i.start < end and start < i.end]
    if any(i.client_id == visit.client_id for i in overlapping):
        return Refusal("client_busy", f"The client has another visit at {when}.")
    if {i.therapist_id for i in overlapping} >= set(working):
        return Refusal("no_therapist", f"Every therapist who can give this visit is busy {when}.")
    return Refusal("no_room", f"Every room at {move.location.name} is taken {when}.")


def _inside(
    start: datetime, end: datetime, ranges: Sequence[tuple[time, time]], zone: ZoneInfo
) -> bool:
    """Whether [start, end) lies inside one of a day's ranges on the local clock."""
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    return local_start.date() == local_end.date() and any(
        lo <= local_start.time() and local_end.time() <= hi for lo, hi in ranges
    )


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%a %Y-%m-%d %H:%M}"


def _hours(span: timedelta) -> str:
    return f"{span / timedelta(hours=1):g} h"


__all__ = [
    "Refusal",
    "RefusalReason",
    "cancellation",
    "completion_refusal",
    "is_late_cancel",
    "reschedule",
]
