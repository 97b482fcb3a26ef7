"""Make-up visits (DOMAIN.md 5; pure: no I/O, no clock, ``now`` is an argument).

A visit the client or the clinic cancels, or the client misses (a no-show), leaves
the plan a session short: the course would end with fewer sessions done than it
plans. The scheduler makes it whole again:

- the visits still to come each move up a place (re-issued with their new sequence
  and phase, at the same time with the same therapist) while they keep the cadence
  and the soreness gap, as a re-plan keeps them (``replan.still_fitting``);
- the missing session is booked after the last of them, as the plan's last
  session, with the cadence and the 24-48 h soreness gap counted from it: the
  make-up, which names the visit it replaces (``makeup_for``);
- what cannot be placed is waitlisted with the reason, as any session is
  (``booking.book_sessions``).

Whether a plan is short is read from its calendar, not from the cause: the sessions
the plan may book (``booking.sessions_from``, up to where it waits) against the
visits done or under way and those still to come. So a visit cancelled by a plan
change is never made up (a revision re-plans the course itself, a completion ends
it), nor is a loss something else already made good, and the same calendar gives
the same answer however often it is asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.scheduler.booking import book_sessions, first_sequence, sessions_from
from services.scheduler.directory import Staffing
from services.scheduler.replan import renumbered_as, still_fitting
from services.scheduler.slots import BookedInterval
from services.scheduler.store import VisitStatus
from shared.chain import Policy
from shared.events.plans import Phase, PlanData
from shared.events.visits import BookingWaitlisted, VisitBooked


@dataclass(frozen=True)
class MakeUp:
    """What making up a lost visit does to the plan's visits still to come.

    ``renumbered``: the visits that stay, re-issued where their place in the course
    changed. ``cancel``: those that no longer keep the cadence. ``book``: the make-up
    (and any session after it). ``waitlisted``: what could not be placed."""

    renumbered: list[VisitBooked]
    cancel: list[VisitBooked]
    book: list[VisitBooked]
    waitlisted: list[BookingWaitlisted]


def bookable_sessions(
    plan: PlanData, *, waiting_from: int | None = None
) -> list[tuple[int, Phase]]:
    """(sequence, phase) of every session of the course the plan may book now: the
    sessions its phases hold (only up to ``book_through`` while it waits for a doctor's
    check), before the first one that waits for a slot (``waiting_from``). A revision's
    phases hold the sessions after those done; those done keep the first phase."""
    first = first_sequence(plan)
    held = sessions_from(plan, first)
    if not held:
        return []
    done = [(sequence, held[0][1]) for sequence in range(1, first)]
    last = held[-1][0] if waiting_from is None else min(held[-1][0], waiting_from - 1)
    return [(q, p) for q, p in [*done, *held] if q <= last]


def make_up(
    plan: PlanData,
    *,
    lost: VisitBooked,
    visits: Sequence[tuple[VisitBooked, VisitStatus]],
    staffing: Staffing,
    policy: Policy,
    existing: Sequence[BookedInterval],
    now: datetime,
    waiting_from: int | None = None,
) -> MakeUp | None:
    """Make the plan whole after ``lost`` (cancelled or missed); None when it is whole.

    ``visits``: the plan's visits with their status; ``existing``: the location's
    calendar without the plan's visits still to come; ``waiting_from``: the first
    session of the plan on the waitlist, if any."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    course = bookable_sessions(plan, waiting_from=waiting_from)
    # done or under way: a visit that started and was not missed is a session of the course
    held = [v for v, s in visits if s == "completed" or (s == "booked" and v.start <= now)]
    upcoming = sorted((v for v, s in visits if s == "booked" and v.start > now), key=_start)
    if len(held) + len(upcoming) >= len(course):
        return None
    sessions = course[len(held) :]
    anchor = max(held, key=_start, default=None)
    kept = still_fitting(plan, upcoming, sessions, anchor, staffing, policy)
    kept_ids = {visit.visit_id for visit, _, _ in kept}
    outcome = book_sessions(
        plan,
        sessions[len(kept) :],
        staffing=staffing,
        policy=policy,
        existing=existing,
        now=now,
        held=[*held, *(visit for visit, _, _ in kept)],
        taken={visit.visit_id for visit, _ in visits},
    )
    return MakeUp(
        renumbered=[
            renumbered
            for visit, sequence, phase in kept
            if (renumbered := renumbered_as(visit, plan, sequence, phase)) is not visit
        ],
        cancel=[visit for visit in upcoming if visit.visit_id not in kept_ids],
        book=[v.model_copy(update={"makeup_for": lost.visit_id}) for v in outcome.booked],
        waitlisted=[
            w.model_copy(
                update={
                    "makeup_for": lost.visit_id,
                    "detail": f"Make-up for visit {lost.visit_id}: {w.detail}",
                }
            )
            for w in outcome.waitlisted
        ],
    )


def _start(visit: VisitBooked) -> datetime:
    return visit.start


__all__ = ["MakeUp", "bookable_sessions", "make_up"]
