"""The red flag gate (DOMAIN.md 1; the numbers in ``knowledge.py``).

A new, dull pain of two to three weeks that is not improving is to be brought to a
doctor's attention (seed 000). Such a plan opens with an assessment-only visit at
gentle pressure, and the rest of its course waits: while the plan carries
``awaiting_medical_check`` the scheduler books only the sessions up to its
``book_through``. The therapist's record of the doctor's check (or an override, with
its reason) lets the course go on; a doctor who advises against treatment ends it
referred.

Pure: the plan, the intake and the record in, plan parts or the next plan event out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from services.planner import knowledge as kb
from services.planner.course import remaining_phases
from services.planner.versions import ended, next_version
from shared.events.intake import IntakeSubmitted, MedicalCheckRecorded
from shared.events.plans import (
    MedicalCheck,
    PlanCompleted,
    PlanData,
    PlanRevised,
    ProtocolStep,
    RationaleItem,
)

RULE = "DOMAIN.md 1: red flag, the course waits for a doctor's check"
ASSESSMENT_ONLY = (
    "Assessment only until the doctor's check is recorded (DOMAIN.md 1 red flag, DOMAIN.md "
    "3): history, posture, range of motion and gentle palpation; no trigger point work."
)


def awaited(intake: IntakeSubmitted, *, on: date) -> MedicalCheck | None:
    """The check the screening's red flags ask for, or None: a reason whose finding
    ``waits_for_doctor`` (``knowledge.FINDINGS``), or screening's own word."""
    flagged = [
        reason.detail
        for reason in intake.screening.reasons
        if (rule := kb.FINDINGS.get(reason.code)) is not None and rule.waits_for_doctor
    ]
    if not flagged and not intake.screening.medical_check_required:
        return None
    return MedicalCheck(
        reason="; ".join(flagged) or "screening asked for a doctor's check",
        book_through=kb.MEDICAL_CHECK_BOOK_THROUGH,
        since=on,
    )


def assessment_steps(full: Sequence[ProtocolStep], regions: Sequence[str]) -> list[ProtocolStep]:
    """The visit while the check is awaited: an assessment at gentle pressure, then
    the full protocol's gentlest steps (``knowledge.MEDICAL_CHECK_TECHNIQUES``) with
    their targets; never a direct pressure technique."""
    steps = [
        ProtocolStep(
            order=1,
            technique="assessment",
            targets=list(regions),
            pressure_target=kb.MEDICAL_CHECK_PRESSURE,
            notes=ASSESSMENT_ONLY,
        )
    ]
    for step in full:
        if step.technique in kb.MEDICAL_CHECK_TECHNIQUES and step.pressure_target is None:
            steps.append(step.model_copy(update={"order": len(steps) + 1}))
    return steps


def gate_reason(check: MedicalCheck, sessions: int) -> RationaleItem:
    rest = sessions - check.book_through
    return RationaleItem(
        rule=RULE,
        detail=f"{check.reason}: visit 1 assesses at gentle pressure "
        f"({kb.MEDICAL_CHECK_PRESSURE}/10); the other {rest} session(s) are booked once the "
        "therapist records the doctor's check (or overrides it with a reason)",
    )


def recorded(
    plan: PlanData,
    check: MedicalCheckRecorded,
    *,
    sessions_done: int,
    now: datetime,
) -> PlanRevised | PlanCompleted | None:
    """What the therapist's record makes of a plan waiting for it (``plan`` carries
    the protocol and home program to go on with): the course goes on (cleared,
    override), or ends referred (not cleared); None when the plan waits for nothing."""
    waiting = plan.awaiting_medical_check
    if waiting is None:
        return None
    by = f"{check.therapist_id} on {check.recorded_at.date().isoformat()}"
    if check.outcome == "not_cleared":
        reason = f"the doctor advised against treatment (recorded by {by})" + (
            f": {check.reason}" if check.reason else ""
        )
        return ended(
            plan,
            outcome="referred",
            reason=reason,
            sessions_done=sessions_done,
            now=now,
            refer_to=kb.MEDICAL_CHECK_REFER_TO,
        )
    if check.outcome == "cleared":
        reason = f"the doctor's check was recorded by {by}: the course goes on"
    else:
        reason = f"the therapist {by} goes on without the doctor's check: {check.reason}"
    left = plan.sessions_total - sessions_done
    return next_version(
        plan,
        change="medical_check",
        reason=reason,
        sessions_done=sessions_done,
        now=now,
        phases=remaining_phases(plan.phases, sessions_done),
        awaiting_medical_check=None,
        review_after_sessions=max(1, min(kb.REVIEW_AFTER_SESSIONS, left)),
        review_by=now.date() + timedelta(days=kb.REVIEW_WITHIN_DAYS),
        rationale=[*plan.rationale, RationaleItem(rule=RULE, detail=reason)],
    )
