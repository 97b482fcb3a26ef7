"""Booking a plan's cadence of visits at one location (pure: no I/O, no clock).

Rules, with where they come from:
- every session of every phase, in order, sequence 1..N (the plan's phases); a
  revised plan's phases hold only the sessions still to come, which are booked
  after the last visit that stays (its anchor), as if it were the previous visit;
- the first visit no earlier than ``now + policy.min_notice``;
- the soreness window (DOMAIN.md 5, 24-48 h): a visit starts no earlier than
  ``previous end + policy.min_gap_same_area``, measured from the *end* of the
  previous visit, because soreness starts when the treatment does;
- the cadence: session k+1 is searched from the local day ``previous start +
  phase.interval_days`` (the phase of session k+1) onward, up to ``now +
  policy.horizon``; the first day with a fitting slot wins;
- at most min(policy, client) visits of the plan per local ISO week, counting
  the visits of the plan that stay;
- continuity: among a day's free slots the best-scoring wins (``scoring.py``: the
  previous visit's therapist first); and when that still leaves the plan with
  more than one therapist, the plan is tried with each of up to three of them
  alone, and one therapist who takes every session at most a day after the day
  the mixed booking found for it is taken instead (a later session says so in its
  ``cadence_note``);
- the directory (``directory.Staffing``): opening hours and closures by date, each
  therapist's hours there by date, the turnover after each visit and the
  therapist's daily maximum;
- a session that cannot be placed is waitlisted, and so is every later one,
  because the cadence cannot continue past a missing visit.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Literal

from services.scheduler.directory import Staffing
from services.scheduler.slots import (
    BookedInterval,
    Occupancy,
    Slot,
    SlotQuery,
    find_slot,
    free_slots_on,
    iso_week,
)
from shared.chain import Location, Policy, Therapist
from shared.envelope import derived_id
from shared.events.plans import Phase, PlanData, SchedulingNeeds
from shared.events.visits import BookingWaitlisted, VisitBooked
from shared.vocabulary import WEEKDAYS

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
    staffing: Staffing,
    policy: Policy,
    existing: Sequence[BookedInterval],
    now: datetime,
    after: VisitBooked | None = None,
    first_sequence: int = 1,
) -> BookingOutcome:
    """Book sessions ``first_sequence..sessions_total`` of ``plan`` at ``location``;
    waitlist what cannot fit.

    ``plan.phases`` hold exactly those sessions (a ``plan.revised`` after
    ``sessions_done`` visits: ``first_sequence = sessions_done + 1``). ``after`` is
    the last visit that stays (done or kept): the first session keeps the cadence
    and the soreness gap (DOMAIN.md 5) from it as from any previous visit."""
    return book_sessions(
        plan,
        sessions_from(plan, first_sequence),
        staffing=staffing,
        policy=policy,
        existing=existing,
        now=now,
        held=[after] if after is not None else [],
    )


def book_sessions(
    plan: PlanData,
    sessions: Sequence[tuple[int, Phase]],
    *,
    staffing: Staffing,
    policy: Policy,
    existing: Sequence[BookedInterval],
    now: datetime,
    held: Sequence[VisitBooked] = (),
    taken: Collection[str] = (),
) -> BookingOutcome:
    """Book the given (sequence, phase) sessions of ``plan``, in order.

    ``held`` are the plan's visits that stay (done or kept): the latest of them
    anchors the cadence and the soreness gap of the first session, all of them
    count towards the weekly maximum, and their calendar footprint is added to
    ``existing`` where it is not there already. ``taken``: the ids of the plan's
    visits, which a new visit never reuses (``free_visit_id``)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    location = staffing.location
    eligible, refusal = _eligible(plan, staffing)
    known = {interval.visit_id for interval in existing}
    occupancy = Occupancy.of(
        staffing, [*existing, *(interval_of(v) for v in held if v.visit_id not in known)]
    )
    anchor = max(held, key=lambda visit: visit.start, default=None)
    place = _Placement(plan, sessions, staffing, policy, now, occupancy, held, anchor, taken)
    if refusal is not None:
        booked: list[VisitBooked] = []
    else:
        mark = occupancy.mark()
        booked, refusal = place(eligible)
        kept = {v.therapist_id for v in booked} | ({anchor.therapist_id} if anchor else set())
        if len(kept) > 1:
            occupancy.undo(mark)
            booked, refusal = _one_therapist(place, eligible, booked, refusal, anchor)
    if refusal is None:
        return BookingOutcome(booked=booked, waitlisted=[])
    # Once one session is missing, the rest of the cadence has no anchor: all of
    # the remaining sessions wait, for the same reason.
    remaining = sessions[len(booked) :]
    return BookingOutcome(
        booked=booked,
        waitlisted=[_waitlisted(plan, location, seq, refusal) for seq, _ in remaining],
    )


PINNED_TRIES = 3  # therapists tried alone for one plan: bounds the cost of continuity
# a session kept with the plan's one therapist may land this many days after the day
# the mixed booking found for it (the visit says so: cadence_note)
CONTINUITY_SLACK_DAYS = 1


def _one_therapist(
    place: _Placement,
    eligible: list[Therapist],
    mixed: list[VisitBooked],
    refusal: _Refusal | None,
    anchor: VisitBooked | None,
) -> tuple[list[VisitBooked], _Refusal | None]:
    """The plan with one therapist, if one takes every session the mixed booking
    placed, each at most ``CONTINUITY_SLACK_DAYS`` after the mixed booking's day;
    else the mixed booking again."""
    counts: dict[str, int] = {}
    for visit in mixed:
        counts[visit.therapist_id] = counts.get(visit.therapist_id, 0) + 1
    first = anchor.therapist_id if anchor is not None else None
    order = sorted(eligible, key=lambda t: (t.id != first, -counts.get(t.id, 0), t.id))[
        :PINNED_TRIES
    ]
    zone = place.staffing.location.zone
    slack = timedelta(days=CONTINUITY_SLACK_DAYS)
    days = [m.start.astimezone(zone).date() + slack for m in mixed]
    for therapist in order:
        mark = place.occupancy.mark()
        pinned, pinned_refusal = place([therapist], no_later_than=days, kept=therapist)
        if len(pinned) >= len(mixed):
            return pinned, pinned_refusal
        place.occupancy.undo(mark)
    # the mixed booking again: on the same calendar a pass gives the same visits
    for visit in mixed:
        place.occupancy.add(interval_of(visit))
    return mixed, refusal


@dataclass
class _Placement:
    """One pass over the sessions with a given set of therapists; what it places is
    added to ``occupancy`` (``Occupancy.undo`` takes it back)."""

    plan: PlanData
    sessions: Sequence[tuple[int, Phase]]
    staffing: Staffing
    policy: Policy
    now: datetime
    occupancy: Occupancy
    held: Sequence[VisitBooked]
    anchor: VisitBooked | None
    taken: Collection[str]

    def __call__(
        self,
        therapists: list[Therapist],
        no_later_than: Sequence[date] = (),
        kept: Therapist | None = None,
    ) -> tuple[list[VisitBooked], _Refusal | None]:
        """``no_later_than``: the local day each session must be on or before (a
        therapist tried alone against the mixed booking); the pass stops at the first
        session that cannot, without a refusal. ``kept``: that therapist, whom a
        cadence note names when the plan waits for them."""
        location = self.staffing.location
        visits_per_week = weekly_counts(self.held, location)
        booked: list[VisitBooked] = []
        for sequence, phase in self.sessions:
            previous = booked[-1] if booked else self.anchor
            query = _query(self.plan, phase, previous, therapists, self.policy, self.now, location)
            bounded = len(booked) < len(no_later_than)
            if bounded:
                next_day = no_later_than[len(booked)] + timedelta(days=1)
                until = datetime.combine(next_day, time(), tzinfo=location.zone)
                query = replace(query, latest=min(query.latest, until))
            slot = find_slot(
                query,
                staffing=self.staffing,
                occupancy=self.occupancy,
                visits_per_week=visits_per_week,
            )
            if slot is None and bounded:
                return booked, None
            if slot is None:
                refusal = _why_not(
                    query, self.staffing, self.occupancy, visits_per_week, sequence, self.policy
                )
                return booked, refusal
            visit_id = free_visit_id(self.plan, sequence, self.taken)
            visit = _visit(self.plan, location, phase, sequence, slot, visit_id)
            if previous is not None:
                note = cadence_note(
                    query,
                    slot,
                    self.staffing,
                    self.occupancy,
                    visits_per_week,
                    sequence,
                    phase,
                    kept=kept,
                )
                visit = visit.model_copy(update={"cadence_note": note}) if note else visit
            booked.append(visit)
            self.occupancy.add(interval_of(visit))
            week = iso_week(slot.start.astimezone(location.zone).date())
            visits_per_week[week] = visits_per_week.get(week, 0) + 1
        return booked, None


def first_sequence(plan: PlanData) -> int:
    """The sequence of the first session ``plan.phases`` hold (a revision holds
    only the sessions still to come)."""
    return plan.sessions_total - sum(phase.sessions for phase in plan.phases) + 1


def sessions_from(plan: PlanData, first_sequence: int = 1) -> list[tuple[int, Phase]]:
    """(sequence, phase) of the sessions ``plan.phases`` hold, numbered from
    ``first_sequence``; they must run exactly to ``sessions_total``. While the plan
    waits for a doctor's check (a red flag, DOMAIN.md 1) only the sessions up to its
    ``book_through`` are bookable: the rest are booked by the revision that clears it."""
    phases = [phase for phase in plan.phases for _ in range(phase.sessions)]
    expected = plan.sessions_total - first_sequence + 1
    if first_sequence < 1 or len(phases) != expected:
        # A planner bug, not a booking problem: refuse rather than guess the count.
        raise ValueError(
            f"plan {plan.plan_id}: phases hold {len(phases)} sessions, but sessions "
            f"{first_sequence}..{plan.sessions_total} of sessions_total "
            f"{plan.sessions_total} are {expected}"
        )
    numbered = list(enumerate(phases, start=first_sequence))
    waiting = plan.awaiting_medical_check
    if waiting is None:
        return numbered
    return [(sequence, phase) for sequence, phase in numbered if sequence <= waiting.book_through]


def weekly_counts(visits: Sequence[VisitBooked], location: Location) -> dict[tuple[int, int], int]:
    """Visits per local ISO week (the weekly maximum is counted in local weeks)."""
    counts: dict[tuple[int, int], int] = {}
    for visit in visits:
        week = iso_week(visit.start.astimezone(location.zone).date())
        counts[week] = counts.get(week, 0) + 1
    return counts


def weekly_cap(policy: Policy, needs: SchedulingNeeds) -> int:
    """The weekly maximum: the clinic's, or the client's when lower."""
    if needs.max_sessions_per_week is None:
        return policy.max_sessions_per_week
    return min(policy.max_sessions_per_week, needs.max_sessions_per_week)


def eligible_therapists(needs: SchedulingNeeds, therapists: Sequence[Therapist]) -> list[Therapist]:
    """Therapists with every required skill (and the requested one, if any), by id."""
    skills = set(needs.required_skills)
    return sorted(
        (t for t in therapists if skills <= set(t.skills) and needs.therapist_id in (None, t.id)),
        key=lambda t: t.id,
    )


def _eligible(plan: PlanData, staffing: Staffing) -> tuple[list[Therapist], _Refusal | None]:
    """The eligible therapists, or why there are none."""
    needs = plan.scheduling
    location = staffing.location
    eligible = eligible_therapists(needs, staffing.therapists)
    if eligible:
        return eligible, None
    skills = set(needs.required_skills)
    if needs.therapist_id is None:
        detail = f"No therapist at {location.name} offers {_listed(skills)}."
    elif any(t.id == needs.therapist_id for t in staffing.therapists):
        detail = f"The requested therapist does not offer {_listed(skills)}."
    else:
        detail = f"The requested therapist does not work at {location.name}."
    return [], _Refusal("no_skill", detail)


def _listed(skills: set[str]) -> str:
    return ", ".join(sorted(skills)) or "this treatment"


def _query(
    plan: PlanData,
    phase: Phase,
    previous: VisitBooked | None,
    therapists: list[Therapist],
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
        weekly_cap=weekly_cap(policy, needs),
        previous_start=previous.start if previous is not None else None,
    )


def _why_not(
    query: SlotQuery,
    staffing: Staffing,
    occupancy: Occupancy,
    visits_per_week: dict[tuple[int, int], int],
    sequence: int,
    policy: Policy,
) -> _Refusal:
    """Why a session found no slot: the client's day/time wishes, or capacity."""
    horizon_days = policy.horizon.days
    location = staffing.location
    if query.days or query.times:
        relaxed = replace(query, days=frozenset(), times=frozenset())
        slot = find_slot(
            relaxed, staffing=staffing, occupancy=occupancy, visits_per_week=visits_per_week
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


def cadence_note(
    query: SlotQuery,
    slot: Slot,
    staffing: Staffing,
    occupancy: Occupancy,
    visits_per_week: dict[tuple[int, int], int],
    sequence: int,
    phase: Phase,
    *,
    kept: Therapist | None = None,
) -> str | None:
    """What was booked instead of the cadence's day, and why each day before it did
    not do; None when the session is on the cadence's day. ``kept``: the plan's one
    therapist, when the plan keeps to them for continuity."""
    zone = staffing.location.zone
    booked_day = slot.start.astimezone(zone).date()
    if booked_day <= query.first_day:
        return None
    why: dict[str, list[str]] = {}
    day = query.first_day
    while day < booked_day:
        reason = _day_refusal(day, query, staffing, occupancy, visits_per_week, kept)
        why.setdefault(reason, []).append(f"{day:%a %d %b}")
        day += timedelta(days=1)
    late = (booked_day - query.first_day).days
    reasons = "; ".join(f"{reason} ({', '.join(days)})" for reason, days in why.items())
    return (
        f"Session {sequence} is on {booked_day:%a %d %b}, {late} day{'s' if late > 1 else ''} "
        f"after the cadence's {query.first_day:%a %d %b} (every {phase.interval_days} days): "
        f"{reasons}."
    )


def _day_refusal(
    day: date,
    query: SlotQuery,
    staffing: Staffing,
    occupancy: Occupancy,
    visits_per_week: dict[tuple[int, int], int],
    kept: Therapist | None = None,
) -> str:
    """Why a session could not go on ``day``, in front-desk words."""
    location = staffing.location
    if not staffing.opening(day):
        return f"{location.name} is closed"
    if query.days and WEEKDAYS[day.weekday()] not in query.days:
        return "not among the client's days"
    if visits_per_week.get(iso_week(day), 0) >= query.weekly_cap:
        return f"the plan's weekly maximum of {query.weekly_cap} is reached"
    working = [t for t in query.therapists if staffing.working(t.id, day)]
    if not working and kept is not None:
        return f"{kept.name}, kept as the plan's one therapist, does not work at {location.name}"
    if not working:
        return f"no therapist for this plan works at {location.name}"
    if _any_free(day, working, replace(query, earliest=query.earliest - DAY), staffing, occupancy):
        return "too soon after the previous visit (the soreness gap) or the notice"
    if query.times and _any_free(
        day, working, replace(query, times=frozenset()), staffing, occupancy
    ):
        return "no free time among the client's times of day"
    if kept is not None:
        return f"{kept.name}, kept as the plan's one therapist, is fully booked"
    return "fully booked"


DAY = timedelta(days=1)


def _any_free(
    day: date,
    therapists: Sequence[Therapist],
    query: SlotQuery,
    staffing: Staffing,
    occupancy: Occupancy,
) -> bool:
    return any(
        next(iter(free_slots_on(day, t, query, staffing, occupancy)), None) is not None
        for t in therapists
    )


def _visit(
    plan: PlanData, location: Location, phase: Phase, sequence: int, slot: Slot, visit_id: str
) -> VisitBooked:
    return VisitBooked(
        visit_id=visit_id,
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


def visit_id_for(plan: PlanData, sequence: int) -> str:
    """Derived from the cause, so rebooking the same plan version yields the same
    ids; from version 2 on the version is part of it, so a sequence booked again
    by a revision never reuses the id of a visit it cancelled."""
    if plan.version == 1:
        return derived_id("visit", plan.plan_id, sequence)
    return derived_id("visit", plan.plan_id, plan.version, sequence)


def free_visit_id(plan: PlanData, sequence: int, taken: Collection[str]) -> str:
    """``visit_id_for``, unless a visit of the plan holds that id already: a make-up
    moves the visits after a lost one up a place, so the visit first booked as this
    sequence may still stand under another (``makeup.py``). Then the first numbered
    variant that is free; the same calendar gives the same id."""
    visit_id, n = visit_id_for(plan, sequence), 1
    while visit_id in taken:
        n += 1
        visit_id = derived_id("visit", plan.plan_id, plan.version, sequence, n)
    return visit_id


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


__all__ = [
    "BookedInterval",
    "BookingOutcome",
    "WaitlistReason",
    "book_plan",
    "book_sessions",
    "eligible_therapists",
    "free_visit_id",
    "interval_of",
    "sessions_from",
    "visit_id_for",
    "weekly_cap",
    "weekly_counts",
]
