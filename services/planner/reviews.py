"""The review date (DOMAIN.md 5; the numbers in ``knowledge.py``): a plan's
``review_by`` is enforced, not only stated.

Seed 003: significant relief within 4-14 days, with up to 4 sessions. A version not
yet reviewed by its sessions (``progress.next_step``) is reviewed once the location's
date is past its ``review_by``:

- with something to judge (a visit or a check-in since the version began, and a
  trajectory to measure) it is judged as at the review point (``progress.judged``);
- with nothing to judge it is revised ``review_overdue``: the front desk contacts the
  client and the rest of the course is booked again, with a new review date
  ``REVIEW_OVERDUE_GRACE_DAYS`` on;
- when that review date passes with no visit or check-in either, the course ends
  ``lapsed``.

A plan waiting for a doctor's check (DOMAIN.md 1) is on hold and is not reviewed.

Pure: the plan, its progress, the location's date and ``now`` in; the next plan
event (or none) and the progress it leaves out.
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import AwareDatetime

from services.planner import knowledge as kb
from services.planner.course import remaining_phases
from services.planner.progress import PlanChange, judged
from services.planner.trajectory import Progress, improvement, readings
from services.planner.versions import ended, next_version
from shared.events.plans import PlanCompleted, PlanData, PlanRevised, RationaleItem

REVIEW_RULE = "DOMAIN.md 5: relief expected within 4-14 days, up to 4 sessions"


def review_due(plan: PlanData, progress: Progress, *, today: date) -> bool:
    """Whether the plan's current version is to be reviewed by date on ``today`` (the
    location's date): its review date has passed and it was not reviewed yet."""
    return (
        today > plan.review_by
        and not progress.finished
        and progress.reviewed_version < plan.version
        and progress.sessions_done < plan.sessions_total
        and plan.awaiting_medical_check is None
    )


def sweep_may_write(plan: PlanData, *, now: AwareDatetime) -> bool:
    """Whether the review date sweep may decide on ``plan`` around ``now``: its review
    date has passed, or passes within the day, somewhere (local dates run at most a day
    ahead of UTC's). Only then must a handler's write check the plan it read is still
    the stored one (``store.PlanStore.save``'s ``unchanged``)."""
    return now.date() + timedelta(days=1) > plan.review_by


def reviewed_by_date(
    plan: PlanData, progress: Progress, *, today: date, now: AwareDatetime
) -> tuple[PlanChange | None, Progress]:
    """What the passing of the review date makes of the plan (see the module)."""
    if not review_due(plan, progress, today=today):
        return None, progress
    fresh = [r for r in readings(progress) if r.at > plan.created_at]
    if fresh and improvement(progress) is not None:
        return judged(plan, progress, now=now)
    if not fresh and isinstance(plan, PlanRevised) and plan.change == "review_overdue":
        return _lapsed(plan, progress, now), progress.model_copy(update={"finished": True})
    return _overdue(plan, progress, today, now)


def _overdue(
    plan: PlanData, progress: Progress, today: date, now: AwareDatetime
) -> tuple[PlanRevised, Progress]:
    done = progress.sessions_done
    left = plan.sessions_total - done
    # the phases hold the sessions after the ones done when the version began
    begun_after = plan.sessions_total - sum(p.sessions for p in plan.phases)
    review_by = today + timedelta(days=kb.REVIEW_OVERDUE_GRACE_DAYS)
    reason = (
        f"the review date {plan.review_by.isoformat()} passed with nothing to judge "
        f"({done} of {plan.sessions_total} sessions done, nothing measured since "
        f"{plan.created_at.date().isoformat()}): the front desk contacts the client to book "
        f"the remaining {left} again; with no visit by {review_by.isoformat()} the course "
        "lapses"
    )
    revised = next_version(
        plan,
        change="review_overdue",
        reason=reason,
        sessions_done=done,
        now=now,
        phases=remaining_phases(plan.phases, done - begun_after),
        review_after_sessions=max(1, min(kb.REVIEW_AFTER_SESSIONS, left)),
        review_by=review_by,
        rationale=[*plan.rationale, RationaleItem(rule=REVIEW_RULE, detail=reason)],
    )
    return revised, progress.model_copy(update={"version_started_after": done})


def _lapsed(plan: PlanData, progress: Progress, now: AwareDatetime) -> PlanCompleted:
    done = progress.sessions_done
    reason = (
        f"the review date {plan.review_by.isoformat()} passed again with no visit "
        f"({done} of {plan.sessions_total} sessions done): the course lapsed; a new intake "
        "starts a new plan"
    )
    return ended(plan, outcome="lapsed", reason=reason, sessions_done=done, now=now)
