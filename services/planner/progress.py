"""Progress and revision (DOMAIN.md 5): the pain trajectory of a plan's visits
decides whether the plan stays, changes, or ends.

Pure: the current plan version, its progress and ``now`` in; the next plan
event (or none) out. Every number lives in ``knowledge.py``.
"""

from __future__ import annotations

import math
from datetime import timedelta

from pydantic import AwareDatetime, BaseModel, Field

from services.planner import knowledge as kb
from services.planner.course import cadence_phase
from shared.events.plans import (
    PlanCompleted,
    PlanData,
    PlanRevised,
    ProtocolStep,
    RationaleItem,
    Referral,
)
from shared.events.visits import VisitCompleted

PROGRESS_RULE = "DOMAIN.md 5: relief expected within up to 4 sessions; else re-assess or refer"


class VisitOutcome(BaseModel):
    visit_id: str
    pain_before: int = Field(ge=0, le=10)
    pain_after: int = Field(ge=0, le=10)
    completed_at: AwareDatetime


class Progress(BaseModel):
    """What has happened under one plan, across its versions."""

    plan_id: str
    visits: list[VisitOutcome] = Field(default_factory=list)
    version_started_after: int = Field(
        default=0, description="visits already done when the current version began"
    )
    poor_reviews: int = 0
    finished: bool = False

    @property
    def sessions_done(self) -> int:
        return len(self.visits)


def recorded(progress: Progress, visit: VisitCompleted) -> Progress:
    """The progress with one more visit; a visit already recorded changes nothing."""
    if any(v.visit_id == visit.visit_id for v in progress.visits):
        return progress
    outcome = VisitOutcome(
        visit_id=visit.visit_id,
        pain_before=visit.pain_before,
        pain_after=visit.pain_after,
        completed_at=visit.completed_at,
    )
    visits = sorted([*progress.visits, outcome], key=lambda v: v.completed_at)
    return progress.model_copy(update={"visits": visits})


def improvement(progress: Progress) -> float | None:
    """Lasting improvement since the first visit (see ``knowledge.py``); None without
    pain to improve on."""
    if progress.sessions_done < 2 or progress.visits[0].pain_before == 0:
        return None
    first, latest = progress.visits[0].pain_before, progress.visits[-1].pain_before
    return (first - latest) / first


PlanChange = PlanRevised | PlanCompleted


def next_step(
    plan: PlanData, progress: Progress, *, now: AwareDatetime
) -> tuple[PlanChange | None, Progress]:
    """After a visit: complete, revise at the review point, or carry on."""
    if progress.finished:
        return None, progress
    done = progress.sessions_done
    trajectory = " -> ".join(str(v.pain_before) for v in progress.visits)
    if done >= plan.sessions_total:
        return _completed(plan, progress, now, "course_complete", trajectory), _ended(progress)
    if done >= 2 and progress.visits[-1].pain_before <= kb.GOALS_MET_PAIN:
        return _completed(plan, progress, now, "goals_met", trajectory), _ended(progress)
    if done - progress.version_started_after != plan.review_after_sessions:
        return None, progress
    gained = improvement(progress)
    if gained is None or kb.MEANINGFUL_IMPROVEMENT <= gained < kb.GOOD_PROGRESS:
        return None, progress
    if gained >= kb.GOOD_PROGRESS:
        return _tapered(plan, progress, now, gained, trajectory)
    if progress.poor_reviews < kb.POOR_REVIEWS_BEFORE_REFERRAL:
        return _reassessed(plan, progress, now, gained, trajectory)
    if progress.poor_reviews == kb.POOR_REVIEWS_BEFORE_REFERRAL:
        return _referred(plan, progress, now, gained, trajectory)
    return None, progress  # referred already: the course runs on alongside that care


def _completed(
    plan: PlanData, progress: Progress, now: AwareDatetime, outcome: str, trajectory: str
) -> PlanCompleted:
    done = progress.sessions_done
    reasons = {
        "course_complete": f"all {done} sessions done; pain carried in: {trajectory}",
        "goals_met": f"goals met after {done} sessions; pain carried in: {trajectory}",
    }
    return PlanCompleted(
        plan_id=plan.plan_id,
        version=plan.version,
        client_id=plan.client_id,
        location_id=plan.location_id,
        reason=reasons[outcome],
        outcome=outcome,
        sessions_done=done,
        maintenance=kb.MAINTENANCE,
        completed_at=now,
    )


def _reassessed(
    plan: PlanData, progress: Progress, now: AwareDatetime, gained: float, trajectory: str
) -> tuple[PlanRevised, Progress]:
    """Less than meaningful relief: re-assess, gentler and more release-led (DOMAIN.md 4)."""
    reason = (
        f"{gained:.0%} improvement after {progress.sessions_done} sessions (pain carried in: "
        f"{trajectory}), under {kb.MEANINGFUL_IMPROVEMENT:.0%}: re-assess trigger points and "
        "change the technique mix"
    )
    steps = [
        ProtocolStep(
            order=1,
            technique="reassessment",
            targets=plan.target_regions,
            notes="re-assess posture, range of motion and trigger points before treating "
            "(DOMAIN.md 3)",
        ),
        *(_gentler(step, order=n + 2) for n, step in enumerate(plan.protocol)),
    ]
    remaining = plan.sessions_total - progress.sessions_done
    revised = _revision(plan, progress, now, reason=reason, change="reassess", left=remaining)
    revised = revised.model_copy(update={"protocol": steps})
    return revised, _after_poor_review(progress)


def _referred(
    plan: PlanData, progress: Progress, now: AwareDatetime, gained: float, trajectory: str
) -> tuple[PlanRevised, Progress]:
    """Still no meaningful relief after a re-assessment: refer (DOMAIN.md 5). NMT is
    combined with physical therapy and chiropractic care (DOMAIN.md 7), so the rest
    of the course goes on weekly and gentle alongside theirs."""
    reason = (
        f"{gained:.0%} improvement after {progress.sessions_done} sessions and a "
        f"re-assessment (pain carried in: {trajectory}), under "
        f"{kb.MEANINGFUL_IMPROVEMENT:.0%}: refer to a {kb.REFERRAL_AFTER_NO_PROGRESS}; "
        "the remaining sessions go on weekly alongside their care"
    )
    steps = [
        step.model_copy(update={"order": n})
        for n, step in enumerate((s for s in plan.protocol if s.technique != "reassessment"), 1)
    ]
    remaining = plan.sessions_total - progress.sessions_done
    revised = _revision(plan, progress, now, reason=reason, change="refer", left=remaining)
    referral = Referral(recommended=True, to=kb.REFERRAL_AFTER_NO_PROGRESS, detail=reason)
    revised = revised.model_copy(update={"protocol": steps, "referral": referral})
    return revised, _after_poor_review(progress)


def _tapered(
    plan: PlanData, progress: Progress, now: AwareDatetime, gained: float, trajectory: str
) -> tuple[PlanRevised, Progress]:
    """Good progress: the rest of the course shrinks to a taper (DOMAIN.md 5)."""
    remaining = plan.sessions_total - progress.sessions_done
    left = max(1, math.ceil(remaining / 2))
    reason = (
        f"{gained:.0%} improvement after {progress.sessions_done} sessions (pain carried in: "
        f"{trajectory}): taper sooner, {left} of the {remaining} remaining sessions"
    )
    revised = _revision(plan, progress, now, reason=reason, change="taper", left=left)
    return revised, progress.model_copy(update={"version_started_after": progress.sessions_done})


def _revision(
    plan: PlanData,
    progress: Progress,
    now: AwareDatetime,
    *,
    reason: str,
    change: str,
    left: int,
) -> PlanRevised:
    done = progress.sessions_done
    gap = min(p.interval_days for p in plan.phases)
    # DOMAIN.md 5: a chronic course tapers to every two weeks; an acute one stays weekly
    tapering = change == "taper" and plan.condition == "chronic"
    cadence = kb.EVERY_TWO_WEEKS if tapering else kb.WEEKLY
    name = "taper" if change == "taper" else "after review"
    phases = [cadence_phase(name, cadence, left, gap)]
    base = plan.model_dump(exclude={"reason", "change", "sessions_done", "referral"})
    return PlanRevised(
        **{
            **base,
            "version": plan.version + 1,
            "sessions_total": done + left,
            "phases": phases,
            "review_after_sessions": min(kb.REVIEW_AFTER_SESSIONS, left),
            "review_by": now.date() + timedelta(days=kb.REVIEW_WITHIN_DAYS),
            "rationale": [
                *plan.rationale,
                RationaleItem(rule=PROGRESS_RULE, detail=reason),
            ],
            "created_at": now,
        },
        reason=reason,
        change=change,
        sessions_done=done,
    )


def _gentler(step: ProtocolStep, *, order: int) -> ProtocolStep:
    """One point less pressure while the plan is re-assessed (never below 3 of 10)."""
    pressure = None if step.pressure_target is None else max(3, step.pressure_target - 1)
    return step.model_copy(update={"order": order, "pressure_target": pressure})


def _after_poor_review(progress: Progress) -> Progress:
    """One more poor review counted; the new version's review counts from here."""
    return progress.model_copy(
        update={
            "poor_reviews": progress.poor_reviews + 1,
            "version_started_after": progress.sessions_done,
        }
    )


def _ended(progress: Progress) -> Progress:
    return progress.model_copy(update={"finished": True})
