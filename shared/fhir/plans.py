"""A treatment plan as a FHIR CarePlan, and a referral as a ServiceRequest.

A CarePlan is one plan (``plan_id``) at its latest version: ``meta.versionId`` is the
plan's version, so an EHR that keeps history sees each revision as a new version of
one resource. Each phase of the cadence is one activity, timed as its sessions'
count at one every ``interval_days`` days; the intake's goals are contained Goals
(they exist only as the client's words on the intake, not as resources of their own).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from shared.envelope import derived_id
from shared.events.plans import PlanCompleted, PlanData, PlanDeclined, PlanRevised, Referral
from shared.fhir.bundle import identifier, instant, logical_reference, reference, resource_id
from shared.fhir.codes import (
    ENDED_COMPLETE,
    GOAL_ACHIEVEMENT,
    MODALITIES,
    PATIENT_REFERRAL_CODE,
    SNOMED,
    UCUM,
    CarePlanStatus,
    concept,
    ours,
)

ActivityStatus = Literal["not-started", "in-progress", "completed", "stopped", "cancelled"]


def care_plan_status(completion: PlanCompleted | None) -> CarePlanStatus:
    """Active until the plan ends; then completed when its course ran (or its goals
    were met), revoked when it lapsed or was ended referred with sessions left."""
    if completion is None:
        return "active"
    if completion.outcome in ENDED_COMPLETE:
        return "completed"
    return "revoked"


def activity_status(first: int, last: int, *, done: int, ended: bool) -> ActivityStatus:
    """The status of a phase holding sessions ``first+1 .. last`` of the course when
    ``done`` sessions are done (R4 CarePlan.activity.detail.status)."""
    if done >= last:
        return "completed"
    if done > first:
        return "stopped" if ended else "in-progress"
    return "cancelled" if ended else "not-started"


def care_plan(
    plan: PlanData,
    *,
    chain_id: str,
    goals: Sequence[str],
    sessions_done: int,
    started_at: datetime,
    completion: PlanCompleted | None = None,
) -> dict[str, Any]:
    """CarePlan for the latest version of a plan; ``started_at``: when its first
    version was made; ``completion``: how it ended, if it has."""
    status = care_plan_status(completion)
    subject = reference("Patient", plan.client_id)
    modality = MODALITIES[plan.modality]
    period: dict[str, Any] = {"start": instant(started_at)}
    if completion is not None:
        period["end"] = instant(completion.completed_at)
    found: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": resource_id(plan.plan_id),
        "meta": {"versionId": str(plan.version), "lastUpdated": instant(plan.created_at)},
        "identifier": [identifier(chain_id, "plan", plan.plan_id)],
        "status": status,
        "intent": "plan",
        "title": f"{modality}: {plan.sessions_total} sessions",
        "subject": subject,
        "period": period,
        "created": instant(started_at),
        "activity": _activities(plan, chain_id, sessions_done, ended=completion is not None),
    }
    contained = [_goal(n, text, subject, completion) for n, text in enumerate(goals, 1)]
    if contained:
        found["contained"] = contained
        found["goal"] = [{"reference": f"#{g['id']}"} for g in contained]
    return found


def _activities(plan: PlanData, chain_id: str, done: int, *, ended: bool) -> list[dict[str, Any]]:
    """One activity per phase; a revision's phases are the sessions after those it
    found done, so they count from there."""
    first = plan.sessions_done if isinstance(plan, PlanRevised) else 0
    location = logical_reference(chain_id, "Location", "location", plan.location_id, None)
    activities = []
    for phase in plan.phases:
        last = first + phase.sessions
        timing = {
            "count": phase.sessions,
            "frequency": 1,
            "period": phase.interval_days,
            "periodUnit": "d",
            "boundsDuration": {"value": phase.weeks, "unit": "wk", "system": UCUM, "code": "wk"},
        }
        detail = {
            "kind": "Appointment",
            "code": concept(ours("modality"), plan.modality, MODALITIES[plan.modality]),
            "status": activity_status(first, last, done=done, ended=ended),
            "description": f"{phase.name}: {phase.sessions} sessions of {plan.visit_minutes} "
            f"minutes, one every {phase.interval_days} days",
            "scheduledTiming": {"repeat": timing},
            "location": location,
        }
        activities.append({"detail": detail})
        first = last
    return activities


def _goal(
    n: int, text: str, subject: dict[str, Any], completion: PlanCompleted | None
) -> dict[str, Any]:
    goal: dict[str, Any] = {
        "resourceType": "Goal",
        "id": f"goal-{n}",
        "lifecycleStatus": "active" if completion is None else "completed",
        "description": {"text": text},
        "subject": subject,
    }
    if completion is not None and completion.outcome == "goals_met":
        goal["achievementStatus"] = concept(GOAL_ACHIEVEMENT, "achieved", "Achieved")
    return goal


def referral_request(
    referral: Referral,
    *,
    chain_id: str,
    cause: str,
    client_id: str,
    authored_on: datetime,
    plan_id: str | None = None,
) -> dict[str, Any]:
    """ServiceRequest for a referral we recommend (a decline's, a revision's or a
    completion's): intent proposal, because we suggest the client see a physician or
    another practitioner and order nothing; ``cause`` names what recommended it (an
    intake, a plan version, a completion) and gives the id."""
    found: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": derived_id("fhir:ServiceRequest", cause),
        "identifier": [identifier(chain_id, "referral", cause)],
        "status": "active",
        "intent": "proposal",
        "code": {
            "coding": [
                {"system": SNOMED, "code": PATIENT_REFERRAL_CODE, "display": "Patient referral"}
            ],
            "text": f"Referral: {referral.to}",
        },
        "subject": reference("Patient", client_id),
        "authoredOn": instant(authored_on),
        "performerType": {"text": referral.to},
        "reasonCode": [{"text": referral.detail}],
    }
    if plan_id is not None:
        found["basedOn"] = [reference("CarePlan", plan_id)]
    return found


def referral_of(
    event: PlanDeclined | PlanRevised | PlanCompleted, *, chain_id: str
) -> dict[str, Any] | None:
    """The ServiceRequest of the referral ``event`` recommends, None when it recommends
    none. The cause that names it: a decline's intake, a revision's plan version, a
    completion's plan (``<plan>:completed``); the planner's search and a subscriber
    building from the topics give one referral the same id this way."""
    referral: Referral | None
    if isinstance(event, PlanDeclined):
        referral, cause, at, plan_id = event.referral, event.intake_id, event.declined_at, None
    elif isinstance(event, PlanRevised):
        referral, cause = event.referral, f"{event.plan_id}:{event.version}"
        at, plan_id = event.created_at, event.plan_id
    else:
        referral, cause = event.referral, f"{event.plan_id}:completed"
        at, plan_id = event.completed_at, event.plan_id
    if referral is None or not referral.recommended:
        return None
    return referral_request(
        referral,
        chain_id=chain_id,
        cause=cause,
        client_id=event.client_id,
        authored_on=at,
        plan_id=plan_id,
    )
