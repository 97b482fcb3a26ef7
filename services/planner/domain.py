"""The planner's rules: an intake in, a treatment plan (or a declined plan) out.

Pure: no I/O, no clock, no random ids. The same intake always yields the same
plan, and the plan id is derived from the intake id, so a redelivered intake is
harmless. The clinical numbers live in ``knowledge.py``, ``shared/body_map.py``
and ``shared/pain.py``; the course (sessions, cadence) is computed in
``course.py`` and what a visit contains in ``protocol.py``; this module puts
them together and explains them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from services.planner import home, medical_check, protocol
from services.planner import knowledge as kb
from services.planner.course import (
    max_sessions_per_week,
    modality_for,
    phases_for,
    sessions_for,
    severity_score,
)
from services.planner.outputs import course_of
from services.planner.versions import next_version
from shared import body_map
from shared.chain import Policy
from shared.events.intake import (
    AssessmentRecorded,
    Complaint,
    IntakeSubmitted,
    MedicalCheckRecorded,
    Precaution,
    Preferences,
)
from shared.events.plans import (
    Phase,
    PlanCompleted,
    PlanCreated,
    PlanData,
    PlanDeclined,
    PlanRevised,
    RationaleItem,
    Referral,
    SchedulingNeeds,
)
from shared.pain import condition_for, months_since, nerve_signs
from shared.vocabulary import Condition, Modality

__all__ = [
    "after_medical_check",
    "build_plan",
    "condition_for",
    "decide",
    "max_sessions_per_week",
    "modality_for",
    "months_since",
    "phases_for",
    "revise_for_assessment",
    "sessions_for",
    "severity_score",
]


def decide(intake: IntakeSubmitted, *, policy: Policy) -> PlanCreated | PlanDeclined:
    """Decline what screening deferred or referred, or what leaves nothing to treat;
    otherwise build the plan."""
    if intake.screening.outcome in ("defer", "refer"):
        return _declined(intake)
    if not protocol.target_regions(intake):
        return _nothing_to_treat(intake)
    return build_plan(intake, policy=policy)


def build_plan(intake: IntakeSubmitted, *, policy: Policy) -> PlanCreated:
    """The first version of the plan for an intake that screening let through."""
    on = intake.submitted_at.date()
    regions = protocol.target_regions(intake)
    if not regions:
        raise ValueError(f"intake {intake.intake_id}: every complaint region is excluded")
    treated = [c for c in intake.complaints if c.region in regions]
    precautions = intake.health.precautions
    condition: Condition = (
        "chronic" if any(condition_for(c, on=on) == "chronic" for c in treated) else "acute"
    )
    severity = severity_score(treated, on=on, precautions=precautions)
    sessions = sessions_for(condition, severity)
    max_per_week = max_sessions_per_week(intake.preferences, policy=policy)
    gap_days = max(kb.SORENESS_GAP_DAYS, math.ceil(policy.min_gap_same_area / timedelta(days=1)))
    phases = phases_for(condition, sessions, max_per_week=max_per_week, min_gap_days=gap_days)
    modality = modality_for(intake.preferences.modality)
    visit = protocol.visit_protocol(intake, modality=modality)
    waiting = medical_check.awaited(intake, on=on)
    steps = visit.steps
    if waiting is not None:
        steps = medical_check.assessment_steps(visit.steps, regions)
    review_after = min(kb.REVIEW_AFTER_SESSIONS, sessions)
    review_by = on + timedelta(days=kb.REVIEW_WITHIN_DAYS)
    rationale = [
        *(_condition_reason(c, on=on) for c in treated),
        _sessions_reason(condition, treated, on=on, precautions=precautions, sessions=sessions),
        _cadence_reason(condition, phases, intake.preferences, policy=policy),
        *_modality_reasons(intake, modality),
        *visit.rationale,
        *([] if waiting is None else [medical_check.gate_reason(waiting, sessions)]),
        RationaleItem(
            rule="DOMAIN.md 5: relief expected within 4-14 days, up to 4 sessions",
            detail=f"review after {review_after} sessions or by {review_by.isoformat()}",
        ),
    ]
    return PlanCreated(
        plan_id=course_of(intake.intake_id),
        version=1,
        client_id=intake.client.client_id,
        location_id=intake.location_id,
        intake_id=intake.intake_id,
        condition=condition,
        modality=modality,
        sessions_total=sessions,
        phases=phases,
        visit_minutes=policy.visit_minutes,
        protocol=steps,
        modifications=visit.modifications,
        excluded_regions=protocol.excluded_regions(intake),
        target_regions=regions,
        home_program=visit.home_program,
        review_after_sessions=review_after,
        review_by=review_by,
        scheduling=SchedulingNeeds(
            required_skills=list(kb.SKILLS_FOR_MODALITY[modality]),
            therapist_id=intake.preferences.therapist_id,
            days=intake.preferences.days,
            times=intake.preferences.times,
            max_sessions_per_week=max_per_week,
        ),
        rationale=rationale,
        created_at=intake.submitted_at,
        awaiting_medical_check=waiting,
    )


def _since(complaint: Complaint, *, on: date) -> str:
    months = months_since(complaint, on=on)
    if complaint.onset is not None:
        return f"since {complaint.onset.isoformat()} ({months} months)"
    return f"for {complaint.duration_weeks} weeks ({months} months)"


def _condition_reason(complaint: Complaint, *, on: date) -> RationaleItem:
    condition = condition_for(complaint, on=on)
    return RationaleItem(
        rule="DOMAIN.md 1: acute under 3 months, chronic from 3 months",
        detail=f"{complaint.region} pain {_since(complaint, on=on)} -> {condition}",
    )


def _sessions_reason(
    condition: Condition,
    treated: Sequence[Complaint],
    *,
    on: date,
    precautions: Sequence[Precaution],
    sessions: int,
) -> RationaleItem:
    low, high = kb.COURSES[condition].sessions
    oldest = max(treated, key=lambda c: months_since(c, on=on))
    regions = len({c.region for c in treated})
    nerve = sorted({q for c in treated for q in nerve_signs(c)})
    extras = [f"nerve signs ({', '.join(nerve)})"] if nerve else []
    extras += [f"{len({p.code for p in precautions})} precaution(s)"] if precautions else []
    return RationaleItem(
        rule=f"DOMAIN.md 5: {condition} course {low}-{high} sessions",
        detail=(
            f"{oldest.region} pain {_since(oldest, on=on)} at intensity "
            f"{max(c.intensity for c in treated)} with {regions} region(s)"
            + "".join(f", {extra}" for extra in extras)
            + f" -> {sessions} sessions"
        ),
    )


def _cadence_reason(
    condition: Condition, phases: Sequence[Phase], preferences: Preferences, *, policy: Policy
) -> RationaleItem:
    wanted = preferences.max_sessions_per_week
    limit = f"client at most {wanted}/week, " if wanted is not None else ""
    course = kb.COURSES[condition]
    weeks = f"1-{course.max_per_week} per week for {course.weeks[0]}-{course.weeks[1]} weeks"
    taper = ", then every two weeks" if course.taper_sessions else ""
    shape = "; ".join(f"{p.name}: {p.sessions} every {p.interval_days} days" for p in phases)
    return RationaleItem(
        rule=f"DOMAIN.md 5: {condition} cadence {weeks}{taper}; 24-48 h soreness gap",
        detail=f"{limit}policy at most {policy.max_sessions_per_week}/week -> {shape}",
    )


def _modality_reasons(intake: IntakeSubmitted, modality: Modality) -> list[RationaleItem]:
    skills = " and ".join(kb.SKILLS_FOR_MODALITY[modality])
    reasons = [
        RationaleItem(
            rule="DOMAIN.md 4: modality choice; FMM needs a therapist who practises it",
            detail=f"client prefers {intake.preferences.modality} -> {modality}, skills {skills}",
        )
    ]
    if intake.screening.outcome != "clear":
        screening = intake.screening
        changes = "; ".join(screening.modifications or [r.detail for r in screening.reasons])
        reasons.append(
            RationaleItem(
                rule="DOMAIN.md 2: screening", detail=f"{intake.screening.outcome}: {changes}"
            )
        )
    return reasons


def _declined(intake: IntakeSubmitted) -> PlanDeclined:
    screening = intake.screening
    stopping = [r for r in screening.reasons if r.action in ("defer", "refer")]
    reasons = [RationaleItem(rule=r.rule, detail=r.detail) for r in stopping or screening.reasons]
    if not reasons:
        reasons = [RationaleItem(rule="DOMAIN.md 2: contraindications", detail=screening.outcome)]
    codes = [r.code for r in stopping or screening.reasons]
    to = next((kb.REFER_TO[c] for c in codes if c in kb.REFER_TO), kb.REFER_TO_DEFAULT)
    recheck = f"; recheck on {screening.recheck_on.isoformat()}" if screening.recheck_on else ""
    return PlanDeclined(
        client_id=intake.client.client_id,
        intake_id=intake.intake_id,
        location_id=intake.location_id,
        outcome=screening.outcome,
        reasons=reasons,
        referral=Referral(
            recommended=screening.outcome == "refer" or screening.referral_recommended,
            to=to,
            detail=f"no NMT for now ({', '.join(codes) or screening.outcome}){recheck}",
        ),
        recheck_on=screening.recheck_on,
        declined_at=intake.submitted_at,
    )


def _nothing_to_treat(intake: IntakeSubmitted) -> PlanDeclined:
    """DOMAIN.md 2: a local skin condition excludes its area; when that is every
    complaint's area, there is nothing left to plan."""
    excluded = ", ".join(protocol.excluded_regions(intake))
    return PlanDeclined(
        client_id=intake.client.client_id,
        intake_id=intake.intake_id,
        location_id=intake.location_id,
        outcome=intake.screening.outcome,
        reasons=[
            RationaleItem(
                rule="DOMAIN.md 2: a local skin condition excludes that area",
                detail=f"every complaint region is excluded ({excluded})",
            )
        ],
        referral=Referral(
            recommended=intake.screening.referral_recommended,
            to=kb.REFER_TO["skin_condition"],
            detail="treat the area once the skin condition has cleared",
        ),
        recheck_on=intake.screening.recheck_on,
        declined_at=intake.submitted_at,
    )


def revise_for_assessment(
    plan: PlanData,
    intake: IntakeSubmitted,
    assessment: AssessmentRecorded,
    *,
    sessions_done: int,
    now: datetime,
) -> PlanRevised | None:
    """DOMAIN.md 3: a new assessment re-targets the protocol on the trigger points it
    found (active first), and the home program's stretches on the movements it found
    limited and its posture findings (DOMAIN.md 6); what it does not record stays as
    the plan had it. None when that changes nothing."""
    excluded = protocol.excluded_regions(intake)
    ranked = sorted(assessment.trigger_points, key=lambda tp: tp.type != "active")
    muscles = protocol.assessed_muscles((tp.muscle for tp in ranked), excluded=excluded)
    limits, posture = assessment.range_of_motion_limits, assessment.posture_findings
    aims = bool(body_map.limited_movements(limits) or body_map.posture_patterns(posture))
    if not muscles and not aims:
        return None
    visit = protocol.visit_protocol(
        intake, modality=plan.modality, assessed=muscles, limits=limits, posture=posture
    )
    steps = visit.steps if muscles else plan.protocol
    home_program = visit.home_program if aims else plan.home_program
    retargeted, reaimed = steps != plan.protocol, home_program != plan.home_program
    if not retargeted and not reaimed:
        return None
    found = []
    if retargeted:
        found.append(f"trigger points in {', '.join(muscles)}: the protocol now targets them")
    if reaimed:
        found.append("limited movements or posture: the home program's stretches target them")
    reason = (
        f"assessment {assessment.assessment_id} by {assessment.therapist_id} found "
        + "; ".join(found)
    )
    rationale = [*plan.rationale]
    if retargeted:
        rationale.append(
            RationaleItem(rule="DOMAIN.md 3: trigger points found at assessment", detail=reason)
        )
    if reaimed:
        rationale += [r for r in visit.rationale if r.rule in home.ASSESSMENT_RULES]
    return next_version(
        plan,
        change="protocol",
        reason=reason,
        sessions_done=sessions_done,
        now=now,
        protocol=steps,
        home_program=home_program,
        rationale=rationale,
    )


def after_medical_check(
    plan: PlanData,
    intake: IntakeSubmitted,
    check: MedicalCheckRecorded,
    *,
    assessment: AssessmentRecorded | None,
    sessions_done: int,
    now: datetime,
) -> PlanRevised | PlanCompleted | None:
    """DOMAIN.md 1 red flag: the therapist's record of the doctor's check lets a
    waiting course go on with its full protocol (targeting what the assessment visit
    found, when it was recorded), or ends it referred; None when nothing waits."""
    if plan.awaiting_medical_check is None:
        return None
    full = protocol.visit_protocol(intake, modality=plan.modality).steps
    going_on = plan.model_copy(update={"protocol": full})
    if assessment is not None:
        found = revise_for_assessment(
            going_on, intake, assessment, sessions_done=sessions_done, now=now
        )
        if found is not None:  # its aim, not its version: this record makes the next one
            going_on = going_on.model_copy(
                update={"protocol": found.protocol, "home_program": found.home_program}
            )
    return medical_check.recorded(going_on, check, sessions_done=sessions_done, now=now)
