"""FHIR R4 reads of the intake service: the client as a Patient (``shared/fhir``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.intake.clients import ClientDirectory
from shared import fhir
from shared.auth import CurrentPrincipal
from shared.fhir_http import BASE_PATH, FhirResponse, not_found, read_responses
from shared.routes import runtime_of

router = APIRouter(prefix=BASE_PATH, tags=["fhir"])


@router.get(
    "/Patient/{patient_id}", response_class=FhirResponse, responses=read_responses("Patient")
)
async def read_patient(patient_id: str, principal: CurrentPrincipal, request: Request) -> Response:
    """The client as a FHIR Patient: name, telecom, birth date, language. Seen as
    ``GET /v1/clients/{client_id}`` sees them: when something of the client was
    recorded at the key's locations, else 404. A client a merge retired is an inactive
    Patient replaced by the one it was merged into."""
    runtime = runtime_of(request)
    view = await ClientDirectory.of(runtime).view(patient_id, reaches=principal.reaches)
    if view is None:
        return not_found("Patient", patient_id)
    chain_id = runtime.chain.chain.id
    if view.client.client_id != patient_id:
        survivor = view.client.client_id
        return FhirResponse(
            fhir.merged_patient(patient_id, survivor_id=survivor, chain_id=chain_id)
        )
    return FhirResponse(fhir.patient(view.client, chain_id=chain_id))
