"""What a directory change does to visits already booked (pure: no I/O, no clock).

After a change (time off, a sick day, changed hours, a closure, a new turnover or
daily cap), every booked visit still to come at a location it touches is checked
against the new directory, in start order: the location open for all of it, its
therapist working there then, its turnover and the therapist's daily cap kept
with the visits before it. A visit that no longer fits moves to the nearest slot
(by start, either way) that keeps its plan's cadence and soreness gap
(DOMAIN.md 5):

- past the plan's previous visit's soreness window and ending a soreness window
  before the next one, and on a local day at most ``SLACK_DAYS`` off the cadence
  either way: no fewer than ``interval_days - SLACK_DAYS`` days after the previous
  visit's day, nor fewer than that before the next visit's (a front desk moves a
  "twice weekly" visit by a day; more would be a different cadence);
- inside the notice and the horizon, the client's days and times, the weekly
  maximum, and within ``REACH`` days of where it was;
- the same therapist first, then another with the plan's skills (the nearest
  again, ties to the lower id).

A visit that cannot move is cancelled by the clinic with the cause
``staff_unavailable``; the course's make-up (``makeup.py``) then books the
session after the last visit of the plan, or waitlists it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services.scheduler.booking import eligible_therapists, interval_of, weekly_cap, weekly_counts
from services.scheduler.directory import Staffing
from services.scheduler.replan import staffed
from services.scheduler.slots import (
    BookedInterval,
    Occupancy,
    Slot,
    SlotQuery,
    bookable_days,
    free_slots_on,
    iso_week,
)
from shared.chain import Policy, Therapist
from shared.events.plans import SchedulingNeeds
from shared.events.visits import VisitBooked

_SECOND = timedelta(seconds=1)  # SlotQuery.latest is exclusive
SLACK_DAYS = 1
REACH = timedelta(days=7)  # a visit moves at most a week either way; beyond, it is made up


@dataclass(frozen=True)
class Booked:
    """A booked visit still to come, with what its move reads of its plan."""

    visit: VisitBooked
    plan_visits: Sequence[VisitBooked]  # the plan's visits that stand (booked or done)
    needs: SchedulingNeeds
    interval_days: Mapping[int, int]  # sequence -> its phase's cadence, in local days


@dataclass(frozen=True)
class Outcome:
    moved: list[tuple[VisitBooked, VisitBooked]]  # (as it was, as it is now)
    cancelled: list[VisitBooked]


def unfit(
    visits: Sequence[VisitBooked], *, staffing: Staffing, fixed: Sequence[BookedInterval]
) -> list[VisitBooked]:
    """The ``visits`` (booked, still to come) the directory no longer has room for, in
    start order: outside the opening or the therapist's hours there, or breaking the
    turnover or the daily cap with the visits before them. ``fixed``: what stays
    held whatever happens (started visits, other locations' are not needed)."""
    occupancy = Occupancy.of(staffing, fixed)
    found = []
    for visit in sorted(visits, key=lambda v: (v.start, v.visit_id)):
        held = interval_of(visit)
        if staffed(visit, staffing) and occupancy.fits(held):
            occupancy.add(held)
        else:
            found.append(visit)
    return found


def replan_unfit(
    moving: Sequence[Booked],
    *,
    staffing: Staffing,
    policy: Policy,
    calendar: Sequence[BookedInterval],
    now: datetime,
) -> Outcome:
    """Move each of ``moving`` (in start order) or cancel it; ``calendar``: the
    location's held visits without ``moving``."""
    occupancy = Occupancy.of(staffing, calendar)
    moved: list[tuple[VisitBooked, VisitBooked]] = []
    cancelled: list[VisitBooked] = []
    placed: dict[str, VisitBooked] = {}
    for booked in sorted(moving, key=lambda b: (b.visit.start, b.visit.visit_id)):
        # the plan as it stands now: visits moved before this one at their new times
        plan_visits = [placed.get(v.visit_id, v) for v in booked.plan_visits]
        slot = _nearest(booked, plan_visits, staffing, policy, occupancy, now)
        if slot is None:
            cancelled.append(booked.visit)
            continue
        new = booked.visit.model_copy(
            update={
                "therapist_id": slot.therapist_id,
                "room": slot.room,
                "start": slot.start,
                "end": slot.end,
            }
        )
        occupancy.add(interval_of(new))
        placed[new.visit_id] = new
        moved.append((booked.visit, new))
    return Outcome(moved=moved, cancelled=cancelled)


def _nearest(
    booked: Booked,
    plan_visits: Sequence[VisitBooked],
    staffing: Staffing,
    policy: Policy,
    occupancy: Occupancy,
    now: datetime,
) -> Slot | None:
    visit = booked.visit
    zone = staffing.location.zone
    others = [v for v in plan_visits if v.visit_id != visit.visit_id]
    previous = max((v for v in others if v.start < visit.start), key=_start, default=None)
    following = min((v for v in others if v.start > visit.start), key=_start, default=None)
    length = visit.end - visit.start
    own_day = visit.start.astimezone(zone).date()
    earliest = max(now + policy.min_notice, visit.start - REACH)
    latest = min(now + policy.horizon, visit.start + REACH)
    first_day = (earliest.astimezone(zone) - timedelta(days=1)).date()
    last_day = latest.astimezone(zone).date()
    if previous is not None:
        earliest = max(earliest, previous.end + policy.min_gap_same_area)
        cadence = _with_slack(booked.interval_days.get(visit.sequence, 1))
        first_day = max(first_day, previous.start.astimezone(zone).date() + timedelta(cadence))
    if following is not None:
        latest = min(latest, following.start - policy.min_gap_same_area - length + _SECOND)
        cadence = _with_slack(booked.interval_days.get(following.sequence, 1))
        last_day = min(last_day, following.start.astimezone(zone).date() - timedelta(cadence))
    query = SlotQuery(
        earliest=earliest,
        first_day=first_day,
        latest=latest,
        minutes=length // timedelta(minutes=1),
        step_minutes=policy.slot_step_minutes,
        therapists=[],
        preferred_therapist=visit.therapist_id,
        client_id=visit.client_id,
        days=frozenset(booked.needs.days),
        times=frozenset(booked.needs.times),
        weekly_cap=weekly_cap(policy, booked.needs),
    )
    per_week = weekly_counts(others, staffing.location)
    days = sorted(
        (
            d
            for d in bookable_days(query, staffing)  # the client's days, the location open
            if d <= last_day and per_week.get(iso_week(d), 0) < query.weekly_cap
        ),
        key=lambda d: (abs((d - own_day).days), d),
    )
    eligible = eligible_therapists(booked.needs, staffing.therapists)
    same = [t for t in eligible if t.id == visit.therapist_id]
    for group in (same, [t for t in eligible if t.id != visit.therapist_id]):
        slot = _nearest_of(group, days, query, staffing, occupancy, visit.start)
        if slot is not None:
            return slot
    return None


def _nearest_of(
    therapists: Sequence[Therapist],
    days: Sequence[date],
    query: SlotQuery,
    staffing: Staffing,
    occupancy: Occupancy,
    start: datetime,
) -> Slot | None:
    """The free slot of ``therapists`` nearest to ``start`` (ties: the earlier, then
    the lower therapist id)."""
    slots = [
        slot
        for day in days
        for therapist in therapists
        for slot in free_slots_on(day, therapist, query, staffing, occupancy)
    ]
    return min(slots, key=lambda s: (abs(s.start - start), s.start, s.therapist_id), default=None)


def _with_slack(interval_days: int) -> int:
    return max(interval_days - SLACK_DAYS, 1)


def _start(visit: VisitBooked) -> datetime:
    return visit.start


__all__ = ["REACH", "SLACK_DAYS", "Booked", "Outcome", "replan_unfit", "unfit"]
