"""Re-planning on ``plan.revised`` (pure: no I/O, no clock; ``now`` is an argument).

The visits still to come are kept, in order, while each still fits the revised
plan: a therapist with the plan's skills, the weekly maximum, and the revised
cadence and soreness gap from the previous visit that stays. The rest are
cancelled, and the sessions after the last kept visit are booked as a revision
books them (``booking.book_sessions``). A kept visit whose place in the course
changed is re-issued with its new sequence and phase.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from services.scheduler.booking import (
    book_sessions,
    eligible_therapists,
    sessions_from,
    weekly_cap,
    weekly_counts,
)
from services.scheduler.directory import Staffing
from services.scheduler.slots import BookedInterval, iso_week
from shared.chain import Policy
from shared.events.plans import Phase, PlanData, PlanRevised
from shared.events.visits import BookingWaitlisted, VisitBooked


@dataclass(frozen=True)
class Replan:
    """What a ``plan.revised`` does to the plan's visits still to come.

    ``keep``: the visits that stay, unchanged, in session order. ``renumbered``:
    those of them whose sequence, sessions_total or phase changed, re-issued as
    ``VisitBooked`` copies (same id, time, therapist and room) with the revised
    plan_version; a kept visit whose place in the course is unchanged is not
    re-issued. ``cancel``: the visits that no longer fit. ``book``/``waitlisted``:
    the sessions after the last kept visit, booked as a revision books them."""

    keep: list[VisitBooked]
    renumbered: list[VisitBooked]
    cancel: list[VisitBooked]
    book: list[VisitBooked]
    waitlisted: list[BookingWaitlisted]


def replan(
    revised: PlanRevised,
    *,
    visits: Sequence[VisitBooked],
    staffing: Staffing,
    policy: Policy,
    existing: Sequence[BookedInterval],
    now: datetime,
    anchor: VisitBooked | None = None,
    taken: Collection[str] = (),
) -> Replan:
    """Fit the booked, not yet started ``visits`` to the revised cadence.

    Walking the remaining sessions (``sessions_done + 1`` on) in order, a visit is
    kept for the next session when it keeps the cadence and the soreness gap
    (DOMAIN.md 5) from the previous kept visit, or from ``anchor`` (the last
    visit that started), its therapist is still eligible and its week has room;
    the others are cancelled and the sessions left are booked after the last
    visit that stays. ``existing``: the location's calendar without ``visits``;
    ``taken``: the ids of the plan's visits (``booking.free_visit_id``)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if any(visit.start <= now for visit in visits):
        raise ValueError("replan takes the visits not yet started; a started one is the anchor")
    sessions = sessions_from(revised, revised.sessions_done + 1)
    upcoming = sorted(visits, key=lambda visit: visit.start)
    kept = still_fitting(revised, upcoming, sessions, anchor, staffing, policy)
    kept_ids = {visit.visit_id for visit, _, _ in kept}
    dropped = {visit.visit_id for visit in visits}
    outcome = book_sessions(
        revised,
        sessions[len(kept) :],
        staffing=staffing,
        policy=policy,
        existing=[i for i in existing if i.visit_id not in dropped],
        now=now,
        held=[*([anchor] if anchor is not None else []), *(visit for visit, _, _ in kept)],
        taken=taken,
    )
    return Replan(
        keep=[visit for visit, _, _ in kept],
        renumbered=[
            renumbered
            for visit, sequence, phase in kept
            if (renumbered := renumbered_as(visit, revised, sequence, phase)) is not visit
        ],
        cancel=[visit for visit in upcoming if visit.visit_id not in kept_ids],
        book=outcome.booked,
        waitlisted=outcome.waitlisted,
    )


def still_fitting(
    plan: PlanData,
    upcoming: Sequence[VisitBooked],
    sessions: Sequence[tuple[int, Phase]],
    anchor: VisitBooked | None,
    staffing: Staffing,
    policy: Policy,
) -> list[tuple[VisitBooked, int, Phase]]:
    """(visit, new sequence, new phase) of the ``upcoming`` visits (in start order) that
    stay for ``sessions``, in order: each keeps the cadence and the soreness gap from
    the previous one that stays (the first from ``anchor``), its therapist is eligible
    and its week has room, and the directory still has the therapist there then."""
    location = staffing.location
    eligible = {t.id for t in eligible_therapists(plan.scheduling, staffing.therapists)}
    cap = weekly_cap(policy, plan.scheduling)
    per_week = weekly_counts([anchor] if anchor is not None else [], location)
    kept: list[tuple[VisitBooked, int, Phase]] = []
    previous = anchor
    for visit in upcoming:
        if len(kept) == len(sessions):
            break
        sequence, phase = sessions[len(kept)]
        week = iso_week(visit.start.astimezone(location.zone).date())
        fits = (
            visit.therapist_id in eligible
            and staffed(visit, staffing)
            and per_week.get(week, 0) < cap
            and _keeps_cadence(visit, previous, phase, policy, location.zone)
        )
        if fits:
            kept.append((visit, sequence, phase))
            per_week[week] = per_week.get(week, 0) + 1
            previous = visit
    return kept


def staffed(visit: VisitBooked, staffing: Staffing) -> bool:
    """The location is open and the visit's therapist works there for all of it, as
    the directory has it now (a closure or time off may have come since)."""
    return staffing.holds(visit.therapist_id, visit.start, visit.end)


def _keeps_cadence(
    visit: VisitBooked,
    previous: VisitBooked | None,
    phase: Phase,
    policy: Policy,
    zone: ZoneInfo,
) -> bool:
    """At least ``interval_days`` local days after the previous visit's local day
    (as booking counts cadence) and past its soreness window (DOMAIN.md 5)."""
    if previous is None:
        return True
    days = (visit.start.astimezone(zone).date() - previous.start.astimezone(zone).date()).days
    return days >= phase.interval_days and visit.start >= previous.end + policy.min_gap_same_area


def renumbered_as(visit: VisitBooked, plan: PlanData, sequence: int, phase: Phase) -> VisitBooked:
    """The kept visit as ``plan`` numbers it; itself when nothing changed."""
    place = (sequence, plan.sessions_total, phase.name)
    if (visit.sequence, visit.sessions_total, visit.phase) == place:
        return visit
    return visit.model_copy(
        update={
            "plan_version": plan.version,
            "sequence": sequence,
            "sessions_total": plan.sessions_total,
            "phase": phase.name,
        }
    )


__all__ = ["Replan", "renumbered_as", "replan", "staffed", "still_fitting"]
