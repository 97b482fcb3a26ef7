"""FHIR R4 reads of the scheduler: a client's visits as Appointments, scoped as
``GET /v1/clients/{client_id}/visits`` is: each visit by its own location, a merged
client's id answering for the survivor, a released offer never the client's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.scheduler import commands
from services.scheduler.client_names import view_names
from services.scheduler.store import CalendarStore, VisitStatus
from shared import fhir
from shared.auth import CurrentPrincipal
from shared.events import VisitBooked
from shared.fhir.search import patient_id_of
from shared.fhir_http import (
    BASE_PATH,
    FhirResponse,
    no_patient,
    not_found,
    read_responses,
    search_responses,
    searchset_answer,
)
from shared.routes import runtime_of

router = APIRouter(prefix=BASE_PATH, tags=["fhir"])


async def _appointments(
    request: Request, store: CalendarStore, visits: Sequence[tuple[VisitBooked, VisitStatus]]
) -> list[dict[str, Any]]:
    runtime = runtime_of(request)
    confirmed = await commands.confirmed_now(store, visits)
    names = await view_names(runtime, [])
    found = []
    for visit, state in visits:
        resource = fhir.appointment(
            visit,
            state,
            chain_id=runtime.chain.chain.id,
            confirmed=visit.visit_id in confirmed,
            therapist_name=names.therapist(visit.therapist_id),
            location_name=names.location(visit.location_id),
        )
        if resource is not None:
            found.append(resource)
    return found


@router.get("/Appointment", response_class=FhirResponse, responses=search_responses("Appointment"))
async def search_appointments(
    principal: CurrentPrincipal,
    request: Request,
    patient: Annotated[
        str | None,
        Query(description="the client: its id, or Patient/<id>", examples=["Patient/c-1"]),
    ] = None,
) -> Response:
    """The client's visits as Appointments, in start order: booked, fulfilled,
    cancelled, noshow, or pending while a waitlist offer holds the slot for them."""
    client_id = patient_id_of(patient)
    if client_id is None:
        return no_patient()
    runtime = runtime_of(request)
    store = CalendarStore(runtime.redis, runtime.keys)
    survivor = await store.aliases.resolve(client_id)
    visits = [
        (v, s) for v, s in await store.client_visits(survivor) if principal.reaches(v.location_id)
    ]
    return searchset_answer(request, await _appointments(request, store, visits))


@router.get(
    "/Appointment/{appointment_id}",
    response_class=FhirResponse,
    responses=read_responses("Appointment"),
)
async def read_appointment(
    appointment_id: str, principal: CurrentPrincipal, request: Request
) -> Response:
    """One visit as an Appointment, if it is at a location the key reaches."""
    runtime = runtime_of(request)
    store = CalendarStore(runtime.redis, runtime.keys)
    found = await store.visit(appointment_id)
    if found is None or not principal.reaches(found[0].location_id):
        return not_found("Appointment", appointment_id)
    resources = await _appointments(request, store, [found])
    if not resources:  # a released offer
        return not_found("Appointment", appointment_id)
    return FhirResponse(resources[0])
