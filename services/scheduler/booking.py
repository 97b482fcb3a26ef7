"""Booking a plan's cadence of visits at one location (pure: no I/O, no clock).

Rules, with where they come from:
- every session of every phase, in order, sequence 1..N (the plan's phases);
- the first visit no earlier than ``now + policy.min_notice``;
- the soreness window (DOMAIN.md 5, 24-48 h): a visit starts no earlier than
  ``previous end + policy.min_gap_same_area``, measured from the *end* of the
  previous visit, because soreness starts when the treatment does;
- the cadence: session k+1 is searched from the local day ``previous start +
  phase.interval_days`` (the phase of session k+1) onward, up to ``now +
  policy.horizon``; the first day with a fitting slot wins;
- at most min(policy, client) visits of the plan per local ISO week;
- continuity: the previous visit's therapist when free that day;
- a session that cannot be placed is waitlisted, and so is every later one,
  because the cadence cannot continue past a missing visit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from services.scheduler.slots import (
    BookedInterval,
    Occupancy,
    Slot,
    SlotQuery,
    find_slot,
    iso_week,
)
from shared.chain import Location, Policy, Therapist, WeeklyHours
from shared.envelope import derived_id
from shared.events.plans import Phase, PlanData
from shared.events.visits import BookingWaitlisted, VisitBooked

WaitlistReason = Literal["no_skill", "preferences_too_narrow", "no_capacity"]


@dataclass(frozen=True)
class BookingOutcome:
    """What booking a plan produced: visits held, and sessions left on the waitlist."""

    booked: list[VisitBooked]
    waitlisted: list[BookingWaitlisted]


@dataclass(frozen=True)
class _Refusal:
    reason: WaitlistReason
    detail: str


def book_plan(
    plan: PlanData,
    *,
    location: Location,
    therapists: Sequence[tuple[Therapist, WeeklyHours]],
    policy: Policy,
    existing: Sequence[BookedInterval],
    now: datetime,
) -> BookingOutcome:
    """Book every session of ``plan`` at ``location``; waitlist what cannot fit."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    sessions = _sessions(plan)
    eligible, refusal = _eligible(plan, location, therapists)
    occupancy = Occupancy(zone=location.zone, rooms=location.rooms, intervals=existing)
    visits_per_week: dict[tuple[int, int], int] = {}
    booked: list[VisitBooked] = []
    for sequence, phase in sessions:
        if refusal is not None:
            break
        previous = booked[-1] if booked else None
        query = _query(plan, phase, previous, eligible, policy, now, location)
        slot = find_slot(
            query, location=location, occupancy=occupancy, visits_per_week=visits_per_week
        )
        if slot is None:
            refusal = _why_not(query, location, occupancy, visits_per_week, sequence, policy)
            break
        visit = _visit(plan, location, phase, sequence, slot)
        booked.append(visit)
        occupancy.add(interval_of(visit))
        week = iso_week(slot.start.astimezone(location.zone).date())
        visits_per_week[week] = visits_per_week.get(week, 0) + 1
    if refusal is None:
        return BookingOutcome(booked=booked, waitlisted=[])
    # Once one session is missing, the rest of the cadence has no anchor: all of
    # the remaining sessions wait, for the same reason.
    remaining = sessions[len(booked) :]
    return BookingOutcome(
        booked=booked,
        waitlisted=[_waitlisted(plan, location, seq, refusal) for seq, _ in remaining],
    )


def _sessions(plan: PlanData) -> list[tuple[int, Phase]]:
    """(sequence, phase) of every session, in order."""
    phases = [phase for phase in plan.phases for _ in range(phase.sessions)]
    if len(phases) != plan.sessions_total:
        # A planner bug, not a booking problem: refuse rather than guess the count.
        raise ValueError(
            f"plan {plan.plan_id}: phases hold {len(phases)} sessions, "
            f"sessions_total is {plan.sessions_total}"
        )
    return list(enumerate(phases, start=1))


def _eligible(
    plan: PlanData, location: Location, therapists: Sequence[tuple[Therapist, WeeklyHours]]
) -> tuple[list[tuple[Therapist, WeeklyHours]], _Refusal | None]:
    """Therapists with every required skill (and the requested one, if any), by id."""
    needs = plan.scheduling
    skills = set(needs.required_skills)
    skilled = [(t, h) for t, h in therapists if skills <= set(t.skills)]
    if needs.therapist_id is not None:
        if not any(t.id == needs.therapist_id for t, _ in therapists):
            detail = f"The requested therapist does not work at {location.name}."
            return [], _Refusal("no_skill", detail)
        skilled = [(t, h) for t, h in skilled if t.id == needs.therapist_id]
        if not skilled:
            detail = f"The requested therapist does not offer {_listed(skills)}."
            return [], _Refusal("no_skill", detail)
    if not skilled:
        detail = f"No therapist at {location.name} offers {_listed(skills)}."
        return [], _Refusal("no_skill", detail)
    return sorted(skilled, key=lambda pair: pair[0].id), None


def _listed(skills: set[str]) -> str:
    return ", ".join(sorted(skills)) or "this treatment"


def _query(
    plan: PlanData,
    phase: Phase,
    previous: VisitBooked | None,
    therapists: list[tuple[Therapist, WeeklyHours]],
    policy: Policy,
    now: datetime,
    location: Location,
) -> SlotQuery:
    """The search for the next session, from the notice, the cadence and the gap."""
    zone = location.zone
    earliest = now + policy.min_notice
    first_day = earliest.astimezone(zone).date()
    if previous is not None:
        earliest = max(earliest, previous.end + policy.min_gap_same_area)
        # Cadence in local days, so the target keeps its meaning across DST.
        first_day = previous.start.astimezone(zone).date() + timedelta(days=phase.interval_days)
    needs = plan.scheduling
    cap = policy.max_sessions_per_week
    if needs.max_sessions_per_week is not None:
        cap = min(cap, needs.max_sessions_per_week)
    return SlotQuery(
        earliest=earliest,
        first_day=first_day,
        latest=now + policy.horizon,
        minutes=plan.visit_minutes,
        step_minutes=policy.slot_step_minutes,
        therapists=therapists,
        preferred_therapist=previous.therapist_id if previous is not None else None,
        client_id=plan.client_id,
        days=frozenset(needs.days),
        times=frozenset(needs.times),
        weekly_cap=cap,
    )


def _why_not(
    query: SlotQuery,
    location: Location,
    occupancy: Occupancy,
    visits_per_week: dict[tuple[int, int], int],
    sequence: int,
    policy: Policy,
) -> _Refusal:
    """Why a session found no slot: the client's day/time wishes, or capacity."""
    horizon_days = policy.horizon.days
    if query.days or query.times:
        relaxed = replace(query, days=frozenset(), times=frozenset())
        slot = find_slot(
            relaxed, location=location, occupancy=occupancy, visits_per_week=visits_per_week
        )
        if slot is not None:
            wishes = ", ".join([*sorted(query.days), *sorted(query.times)])
            detail = (
                f"Session {sequence} does not fit on the preferred days and times ({wishes}) "
                f"within {horizon_days} days at {location.name}; other times are free."
            )
            return _Refusal("preferences_too_narrow", detail)
    detail = (
        f"Session {sequence} finds no free therapist and room at {location.name} "
        f"within {horizon_days} days."
    )
    return _Refusal("no_capacity", detail)


def _visit(
    plan: PlanData, location: Location, phase: Phase, sequence: int, slot: Slot
) -> VisitBooked:
    return VisitBooked(
        # Derived from the cause: rebooking the same plan yields the same ids.
        visit_id=derived_id("visit", plan.plan_id, sequence),
        plan_id=plan.plan_id,
        plan_version=plan.version,
        client_id=plan.client_id,
        location_id=location.id,
        therapist_id=slot.therapist_id,
        room=slot.room,
        start=slot.start,
        end=slot.end,
        timezone=location.timezone,
        sequence=sequence,
        sessions_total=plan.sessions_total,
        phase=phase.name,
    )


def interval_of(visit: VisitBooked) -> BookedInterval:
    """The calendar footprint of a booked visit."""
    return BookedInterval(
        therapist_id=visit.therapist_id,
        room=visit.room,
        start=visit.start,
        end=visit.end,
        visit_id=visit.visit_id,
        client_id=visit.client_id,
    )


def _waitlisted(
    plan: PlanData, location: Location, sequence: int, refusal: _Refusal
) -> BookingWaitlisted:
    return BookingWaitlisted(
        plan_id=plan.plan_id,
        plan_version=plan.version,
        client_id=plan.client_id,
        location_id=location.id,
        sequence=sequence,
        sessions_total=plan.sessions_total,
        reason=refusal.reason,
        detail=refusal.detail,
    )


__all__ = ["BookedInterval", "BookingOutcome", "WaitlistReason", "book_plan"]
