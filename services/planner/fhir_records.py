"""A client's plan records (``store.PlanStore.history``) as the FHIR resources the
planner serves (pure: records, progress and intakes in; resources out).

Every plan is one CarePlan at its latest version, ended by its completion if there
is one. Referrals come from a decline, from a revision that refers, and from a
completion that ends referred; each is one ServiceRequest. Pain readings come from
each plan's progress; contraindications from the intake behind each plan."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.planner.trajectory import Progress
from shared import fhir
from shared.events import EVENT_MODELS, IntakeSubmitted
from shared.events.plans import PlanCompleted, PlanData, PlanDeclined, PlanRevised


@dataclass(frozen=True)
class PlanEntry:
    """One plan of the client: its latest version, when it began, how it ended."""

    latest: PlanData
    started_at: datetime
    completion: PlanCompleted | None


def plans_of(records: Iterable[Mapping[str, Any]]) -> list[PlanEntry]:
    """The client's plans, in the order they began (records are oldest first)."""
    versions: dict[str, list[PlanData]] = {}
    completions: dict[str, PlanCompleted] = {}
    for record in records:
        if record.get("plan") is not None:
            plan = EVENT_MODELS[record["event_type"]].model_validate(record["plan"])
            assert isinstance(plan, PlanData)  # plan records hold plan.created / plan.revised
            versions.setdefault(plan.plan_id, []).append(plan)
        elif record.get("completion") is not None:
            done = PlanCompleted.model_validate(record["completion"])
            completions[done.plan_id] = done
    return [
        PlanEntry(
            latest=max(found, key=lambda p: p.version),
            started_at=min(p.created_at for p in found),
            completion=completions.get(plan_id),
        )
        for plan_id, found in versions.items()
    ]


def care_plans(
    entries: Iterable[PlanEntry],
    *,
    progress: Mapping[str, Progress],
    intakes: Mapping[str, IntakeSubmitted],
    chain_id: str,
) -> list[dict[str, Any]]:
    """CarePlans, with the goals of the intake behind each plan."""
    found = []
    for entry in entries:
        plan_id = entry.latest.plan_id
        intake = intakes.get(plan_id)
        done = progress.get(plan_id)
        found.append(
            fhir.care_plan(
                entry.latest,
                chain_id=chain_id,
                goals=intake.goals if intake is not None else [],
                sessions_done=done.sessions_done if done is not None else 0,
                started_at=entry.started_at,
                completion=entry.completion,
            )
        )
    return found


def pain_observations(
    entries: Iterable[PlanEntry], *, progress: Mapping[str, Progress], chain_id: str
) -> list[dict[str, Any]]:
    """Every pain reading of the client's plans: before and after each completed visit,
    and each check-in answer, in time order."""
    readings: list[tuple[str, dict[str, Any]]] = []
    for entry in entries:
        plan = entry.latest
        done = progress.get(plan.plan_id)
        if done is None:
            continue
        for visit in done.visits:
            for resource in fhir.visit_pain_observations(
                visit_id=visit.visit_id,
                pain_before=visit.pain_before,
                pain_after=visit.pain_after,
                completed_at=visit.completed_at,
                client_id=plan.client_id,
                plan_id=plan.plan_id,
                chain_id=chain_id,
            ):
                readings.append((visit.completed_at.isoformat(), resource))
        for answer in done.checkins:
            resource = fhir.checkin_pain_observation(
                notification_id=answer.notification_id,
                pain=answer.pain,
                replied_at=answer.replied_at,
                client_id=plan.client_id,
                plan_id=plan.plan_id,
                chain_id=chain_id,
            )
            readings.append((answer.replied_at.isoformat(), resource))
    return [resource for _, resource in sorted(readings, key=lambda r: r[0])]


def referrals(records: Iterable[Mapping[str, Any]], *, chain_id: str) -> list[dict[str, Any]]:
    """A ServiceRequest per referral recommended: by a decline, a revision, a completion."""
    found = []
    for record in records:
        event = _referring(record)
        if event is not None and (request := fhir.referral_of(event, chain_id=chain_id)):
            found.append(request)
    return found


def _referring(record: Mapping[str, Any]) -> PlanDeclined | PlanRevised | PlanCompleted | None:
    """The event of a plan record that may recommend a referral."""
    if record.get("decline") is not None:
        return PlanDeclined.model_validate(record["decline"])
    if record.get("plan") is not None and record.get("event_type") == "plan.revised":
        return PlanRevised.model_validate(record["plan"])
    if record.get("completion") is not None:
        return PlanCompleted.model_validate(record["completion"])
    return None


def conditions(intakes: Iterable[IntakeSubmitted]) -> list[dict[str, Any]]:
    """The contraindications of each intake behind the client's plans (once per intake)."""
    seen: dict[str, IntakeSubmitted] = {i.intake_id: i for i in intakes}
    return [c for intake in seen.values() for c in fhir.contraindication_conditions(intake)]
