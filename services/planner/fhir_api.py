"""FHIR R4 searches of the planner: a client's plans (CarePlan), pain readings
(Observation), referrals (ServiceRequest) and contraindications (Condition), from
the records ``GET /v1/clients/{client_id}/plan/history`` reads, scoped the same way:
each record by its own location, a merged client's id answering for the survivor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.planner import fhir_records
from services.planner.retirement import keep_for
from services.planner.store import PlanStore, location_of
from services.planner.trajectory import Progress
from shared import fhir
from shared.aliases import ClientAliases
from shared.auth import CurrentPrincipal, Principal
from shared.events import IntakeSubmitted
from shared.fhir.search import patient_id_of, token_matches
from shared.fhir_http import (
    BASE_PATH,
    FHIR_JSON,
    OPERATION_OUTCOME,
    FhirResponse,
    no_patient,
    not_found,
    outcome_answer,
    read_responses,
    search_responses,
    searchset_answer,
)
from shared.retention import RetiredCourse
from shared.routes import runtime_of
from shared.runtime import Runtime
from shared.topics import PLANS

router = APIRouter(prefix=BASE_PATH, tags=["fhir"])
PatientParam = Annotated[
    str | None, Query(description="the client: its id, or Patient/<id>", examples=["Patient/c-1"])
]


@dataclass(frozen=True)
class ClientRecords:
    """What the key may see of one client's plans."""

    records: list[dict[str, Any]]
    plans: list[fhir_records.PlanEntry]


async def _visible(request: Request, principal: Principal, client_id: str) -> ClientRecords:
    runtime = runtime_of(request)
    _, known_as = await ClientAliases(runtime.redis, runtime.keys).known_as(client_id)
    history = await PlanStore(runtime.redis, runtime.keys).history(*known_as)
    records = [r for r in history if principal.reaches(location_of(r))]
    return ClientRecords(records, fhir_records.plans_of(records))


async def _progress(request: Request, plans: list[fhir_records.PlanEntry]) -> dict[str, Progress]:
    runtime = runtime_of(request)
    store = PlanStore(runtime.redis, runtime.keys)
    return {p.latest.plan_id: await store.progress(p.latest.plan_id) for p in plans}


async def _intakes(
    request: Request, plans: list[fhir_records.PlanEntry]
) -> dict[str, IntakeSubmitted]:
    runtime = runtime_of(request)
    store = PlanStore(runtime.redis, runtime.keys)
    found = {}
    for entry in plans:
        intake = (await store.plan_parts(entry.latest.plan_id)).intake
        if intake is not None:
            found[entry.latest.plan_id] = intake
    return found


def _gone(runtime: Runtime, course: RetiredCourse) -> FhirResponse:
    until = course.retained_until(keep_for(runtime.chain, course.location_id))
    return outcome_answer(
        410,
        "deleted",
        f"CarePlan/{course.plan_id}: the course ended {course.ended_at.date()} "
        f"({course.outcome}) and left the planner's state on {until.date()}; its history "
        f"is on {PLANS.name}",
    )


def _chain(request: Request) -> str:
    return runtime_of(request).chain.chain.id


@router.get("/CarePlan", response_class=FhirResponse, responses=search_responses("CarePlan"))
async def search_care_plans(
    principal: CurrentPrincipal, request: Request, patient: PatientParam = None
) -> Response:
    """The client's plans as CarePlans: each at its latest version (``meta.versionId``),
    a timed activity per phase, the intake's goals as contained Goals."""
    client_id = patient_id_of(patient)
    if client_id is None:
        return no_patient()
    seen = await _visible(request, principal, client_id)
    resources = fhir_records.care_plans(
        seen.plans,
        progress=await _progress(request, seen.plans),
        intakes=await _intakes(request, seen.plans),
        chain_id=_chain(request),
    )
    return searchset_answer(request, resources)


@router.get(
    "/CarePlan/{care_plan_id}",
    response_class=FhirResponse,
    responses={
        **read_responses("CarePlan"),
        410: {
            "description": "the plan's course finished and has left the planner's state "
            "after its retention period; its history is on clinic.plans",
            "content": {FHIR_JSON: {"schema": OPERATION_OUTCOME}},
        },
    },
)
async def read_care_plan(
    care_plan_id: str, principal: CurrentPrincipal, request: Request
) -> Response:
    """One plan as a CarePlan, if it was made at a location the key reaches; 410 when
    its course has left the planner's state (``keep_finished_courses``)."""
    runtime = runtime_of(request)
    store = PlanStore(runtime.redis, runtime.keys)
    plan = (await store.plan_parts(care_plan_id)).plan
    if plan is None:
        retired = await store.retirement.of(care_plan_id)
        if retired is not None and principal.reaches(retired.location_id):
            return _gone(runtime, retired)
    if plan is None or not principal.reaches(plan.location_id):
        return not_found("CarePlan", care_plan_id)
    seen = await _visible(request, principal, plan.client_id)
    entries = [e for e in seen.plans if e.latest.plan_id == plan.plan_id]
    if not entries:
        return not_found("CarePlan", care_plan_id)
    (resource,) = fhir_records.care_plans(
        entries,
        progress=await _progress(request, entries),
        intakes=await _intakes(request, entries),
        chain_id=_chain(request),
    )
    return FhirResponse(resource)


@router.get("/Observation", response_class=FhirResponse, responses=search_responses("Observation"))
async def search_observations(
    principal: CurrentPrincipal,
    request: Request,
    patient: PatientParam = None,
    code: Annotated[
        str | None,
        Query(
            description="LOINC 72514-3 (pain severity 0-10), as 72514-3 or "
            "http://loinc.org|72514-3; another code finds nothing",
            examples=["http://loinc.org|72514-3"],
        ),
    ] = None,
) -> Response:
    """The client's pain readings (LOINC 72514-3): before and after each completed
    visit, and each check-in answer, oldest first."""
    client_id = patient_id_of(patient)
    if client_id is None:
        return no_patient()
    if not token_matches(code, system=fhir.LOINC, code=fhir.PAIN_SEVERITY_CODE):
        return searchset_answer(request, [])
    seen = await _visible(request, principal, client_id)
    resources = fhir_records.pain_observations(
        seen.plans, progress=await _progress(request, seen.plans), chain_id=_chain(request)
    )
    return searchset_answer(request, resources)


@router.get(
    "/ServiceRequest", response_class=FhirResponse, responses=search_responses("ServiceRequest")
)
async def search_service_requests(
    principal: CurrentPrincipal, request: Request, patient: PatientParam = None
) -> Response:
    """The referrals we recommended to the client: at a decline, a revision that
    refers, or a course that ended referred."""
    client_id = patient_id_of(patient)
    if client_id is None:
        return no_patient()
    seen = await _visible(request, principal, client_id)
    return searchset_answer(request, fhir_records.referrals(seen.records, chain_id=_chain(request)))


@router.get("/Condition", response_class=FhirResponse, responses=search_responses("Condition"))
async def search_conditions(
    principal: CurrentPrincipal, request: Request, patient: PatientParam = None
) -> Response:
    """The contraindications the client reported on the intakes behind their plans
    (the planner keeps the intake of a plan it made, not of one it declined)."""
    client_id = patient_id_of(patient)
    if client_id is None:
        return no_patient()
    seen = await _visible(request, principal, client_id)
    intakes = await _intakes(request, seen.plans)
    return searchset_answer(request, fhir_records.conditions(intakes.values()))
