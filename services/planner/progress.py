"""Progress and revision (DOMAIN.md 5): the pain trajectory of a plan
(``trajectory.py``) decides whether the plan stays, changes, or ends. A course is
judged at its review point (after ``review_after_sessions`` visits of its version,
or on its review date: ``reviews.py``) and again when it ends.

Pure: the current plan version, its progress and ``now`` in; the next plan
event (or none) out. Every number lives in ``knowledge.py``.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

from pydantic import AwareDatetime

from services.planner import knowledge as kb
from services.planner.course import cadence_phase
from services.planner.trajectory import Progress as Progress
from services.planner.trajectory import improvement as improvement
from services.planner.trajectory import recorded as recorded
from services.planner.trajectory import trajectory
from services.planner.versions import ended, next_version
from shared.events.plans import (
    PlanCompleted,
    PlanData,
    PlanRevised,
    ProtocolStep,
    RationaleItem,
    Referral,
)

PROGRESS_RULE = "DOMAIN.md 5: relief expected within up to 4 sessions; else re-assess or refer"


PlanChange = PlanRevised | PlanCompleted


def next_step(
    plan: PlanData, progress: Progress, *, now: AwareDatetime
) -> tuple[PlanChange | None, Progress]:
    """After a visit: end the course (referred when it ends without meaningful
    relief), revise at the review point, or carry on."""
    if progress.finished:
        return None, progress
    done = progress.sessions_done
    if done >= plan.sessions_total:
        gained = improvement(progress)
        if gained is not None and gained < kb.MEANINGFUL_IMPROVEMENT:
            return _referred_at_end(plan, progress, now, gained), _ended(progress)
        return _completed(plan, progress, now, "course_complete"), _ended(progress)
    if done >= 2 and progress.visits[-1].pain_before <= kb.GOALS_MET_PAIN:
        return _completed(plan, progress, now, "goals_met"), _ended(progress)
    if done - progress.version_started_after != plan.review_after_sessions:
        return None, progress
    return judged(plan, progress, now=now)


def judged(
    plan: PlanData, progress: Progress, *, now: AwareDatetime
) -> tuple[PlanRevised | None, Progress]:
    """The review of the plan's current version (DOMAIN.md 5): taper on good progress,
    keep the plan on meaningful progress, else re-assess once and then refer; nothing
    to measure yet keeps the plan. The version counts as reviewed either way."""
    reviewed = progress.model_copy(update={"reviewed_version": plan.version})
    gained = improvement(progress)
    if gained is None or kb.MEANINGFUL_IMPROVEMENT <= gained < kb.GOOD_PROGRESS:
        return None, reviewed
    if gained >= kb.GOOD_PROGRESS:
        return _tapered(plan, reviewed, now, gained)
    if progress.poor_reviews < kb.POOR_REVIEWS_BEFORE_REFERRAL:
        return _reassessed(plan, reviewed, now, gained)
    if progress.poor_reviews == kb.POOR_REVIEWS_BEFORE_REFERRAL:
        return _referred(plan, reviewed, now, gained)
    return None, reviewed  # referred already: the course runs on alongside that care


def _completed(
    plan: PlanData, progress: Progress, now: AwareDatetime, outcome: str
) -> PlanCompleted:
    done = progress.sessions_done
    reasons = {
        "course_complete": f"all {done} sessions done; pain carried in: {trajectory(progress)}",
        "goals_met": f"goals met after {done} sessions; pain carried in: {trajectory(progress)}",
    }
    return ended(
        plan,
        outcome=outcome,
        reason=reasons[outcome],
        sessions_done=done,
        now=now,
        maintenance=kb.MAINTENANCE,
    )


def _referred_at_end(
    plan: PlanData, progress: Progress, now: AwareDatetime, gained: float
) -> PlanCompleted:
    """DOMAIN.md 5: all sessions done without meaningful relief: the course ends
    referred, never with maintenance (a maintenance visit would be more of what did
    not help)."""
    done = progress.sessions_done
    reason = (
        f"{gained:.0%} improvement after all {done} sessions (pain carried in: "
        f"{trajectory(progress)}), under {kb.MEANINGFUL_IMPROVEMENT:.0%}: the course ends "
        f"referred to a {kb.REFERRAL_AFTER_NO_PROGRESS}"
    )
    return ended(
        plan,
        outcome="referred",
        reason=reason,
        sessions_done=done,
        now=now,
        refer_to=kb.REFERRAL_AFTER_NO_PROGRESS,
    )


def _reassessed(
    plan: PlanData, progress: Progress, now: AwareDatetime, gained: float
) -> tuple[PlanRevised, Progress]:
    """Less than meaningful relief: re-assess, gentler and more release-led (DOMAIN.md 4)."""
    reason = (
        f"{gained:.0%} improvement after {progress.sessions_done} sessions (pain carried in: "
        f"{trajectory(progress)}), under {kb.MEANINGFUL_IMPROVEMENT:.0%}: re-assess trigger "
        "points and change the technique mix"
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
    plan: PlanData, progress: Progress, now: AwareDatetime, gained: float
) -> tuple[PlanRevised, Progress]:
    """Still no meaningful relief after a re-assessment, with sessions left: refer
    (DOMAIN.md 5). NMT is combined with physical therapy and chiropractic care
    (DOMAIN.md 7), so the rest of the course goes on weekly and gentle alongside theirs."""
    reason = (
        f"{gained:.0%} improvement after {progress.sessions_done} sessions and a "
        f"re-assessment (pain carried in: {trajectory(progress)}), under "
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
    plan: PlanData, progress: Progress, now: AwareDatetime, gained: float
) -> tuple[PlanRevised | None, Progress]:
    """Good progress: the rest of the course shrinks to a taper (DOMAIN.md 5)."""
    remaining = plan.sessions_total - progress.sessions_done
    left = max(1, math.ceil(remaining / 2))
    reason = (
        f"{gained:.0%} improvement after {progress.sessions_done} sessions (pain carried in: "
        f"{trajectory(progress)}): taper sooner, {left} of the {remaining} remaining sessions"
    )
    revised = _revision(plan, progress, now, reason=reason, change="taper", left=left)
    if _same_course(revised, plan):  # tapered already as far as it goes: nothing changes
        return None, progress
    return revised, progress.model_copy(update={"version_started_after": progress.sessions_done})


def _same_course(revised: PlanRevised, plan: PlanData) -> bool:
    """Whether a revision would leave the course's length and the cadence of the
    sessions still to come as they are (its phases count from its own sessions done)."""
    cadence = {p.interval_days for p in revised.phases}
    return revised.sessions_total == plan.sessions_total and cadence == {
        p.interval_days for p in plan.phases
    }


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
    review_after = min(kb.REVIEW_AFTER_SESSIONS, left)
    return next_version(
        plan,
        change=change,
        reason=reason,
        sessions_done=done,
        now=now,
        sessions_total=done + left,
        phases=phases,
        review_after_sessions=review_after,
        review_by=version_review_by(now, phases[0].interval_days),
        rationale=[*plan.rationale, RationaleItem(rule=PROGRESS_RULE, detail=reason)],
    )


def version_review_by(now: AwareDatetime, interval_days: int) -> date:
    """DOMAIN.md 5's review date (within 14 days) of a version whose visits are
    ``interval_days`` apart, never before its first visit can be held with a little
    room (``knowledge.FIRST_VISIT_ROOM_DAYS``): a taper every two weeks would otherwise
    pass its review date before its first visit, and be revised review_overdue while
    that visit was still to come."""
    held = interval_days + kb.FIRST_VISIT_ROOM_DAYS
    return now.date() + timedelta(days=max(kb.REVIEW_WITHIN_DAYS, held))


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
