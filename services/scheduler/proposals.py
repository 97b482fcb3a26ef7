"""The times a client's visit page proposes for a move (pure: no I/O; ``now`` is an
argument).

A proposal is a start ``operations.reschedule`` would grant, found where
``GET /v1/plans/{id}/free-slots`` finds them (``free_slots.free_slots``: the
plan's skills and therapist, the visit's length, the client's other visits kept
clear), from the earliest the notice and the soreness gap after the previous
session allow, until the gap before the next session or the horizon (DOMAIN.md 5).
One per local day, the first of the day, so the choice is between days rather than
between quarter hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from services.scheduler import operations
from services.scheduler.directory import Staffing
from services.scheduler.free_slots import free_slots
from services.scheduler.slots import BookedInterval
from shared.chain import Policy
from shared.events.plans import SchedulingNeeds
from shared.events.visits import VisitBooked

PROPOSALS = 3
SEARCH_DAYS = 31  # a page view searches at most a month of days
SLOTS_PER_DAY = 200  # more than one location's day holds on the booking grid


def proposed_starts(
    visit: VisitBooked,
    *,
    plan_visits: Sequence[VisitBooked],
    staffing: Staffing,
    needs: SchedulingNeeds,
    policy: Policy,
    held: Sequence[BookedInterval],
    now: datetime,
    count: int = PROPOSALS,
) -> list[datetime]:
    """Up to ``count`` new starts for ``visit`` (UTC, earliest first, one per local day).
    ``plan_visits``: the plan's visits that stand (booked or done); ``held``: the
    location's calendar."""
    others = [v for v in plan_visits if v.visit_id != visit.visit_id]
    previous = max((v for v in others if v.sequence < visit.sequence), key=_seq, default=None)
    following = min((v for v in others if v.sequence > visit.sequence), key=_seq, default=None)
    length = visit.end - visit.start
    earliest = now + policy.min_notice
    if previous is not None:
        earliest = max(earliest, previous.end + policy.min_gap_same_area)
    latest = now + policy.horizon
    if following is not None:
        latest = min(latest, following.start - policy.min_gap_same_area - length)
    zone = staffing.location.zone
    day, last = earliest.astimezone(zone).date(), latest.astimezone(zone).date()
    last = min(last, day + timedelta(days=SEARCH_DAYS - 1))
    calendar = [i for i in held if i.visit_id != visit.visit_id]
    found: list[datetime] = []
    while day <= last and len(found) < count:
        slots = free_slots(
            staffing=staffing,
            held=calendar,
            first_day=day,
            last_day=day,
            policy=policy,
            now=now,
            minutes=length // timedelta(minutes=1),
            skills=needs.required_skills,
            therapist_id=needs.therapist_id,
            client_id=visit.client_id,
            limit=SLOTS_PER_DAY,
        )
        for slot in slots:
            start = slot.start.astimezone(UTC)
            if start == visit.start or not earliest <= start <= latest:
                continue
            granted = operations.reschedule(
                visit,
                plan_visits=plan_visits,
                start=start,
                staffing=staffing,
                needs=needs,
                policy=policy,
                existing=held,
                now=now,
            )
            if not isinstance(granted, operations.Refusal):
                found.append(start)
                break
        day += timedelta(days=1)
    return found


def _seq(visit: VisitBooked) -> int:
    return visit.sequence


__all__ = ["PROPOSALS", "proposed_starts"]
