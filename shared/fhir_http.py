"""What the services' FHIR routes share: the ``application/fhir+json`` answer, the
searchset and read answers, and their OpenAPI ``responses``.

Each service serves, under ``/fhir/r4``, the resource types whose records it holds;
the types are disjoint, so a gateway routing ``/fhir/r4/<Type>`` by path gives one
FHIR base. Successes and the routes' own errors (a read of a resource that is not
there or not the key's: 404; a search without its patient: 400) are FHIR JSON; the
refusals of the key check in front of every route (401, 429, 503) are the API's
usual ``{"detail": ...}``, answered before the route is reached."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from fastapi import Request
from fastapi.responses import JSONResponse

from shared.errors import MEANINGS
from shared.fhir import operation_outcome, searchset
from shared.fhir.bundle import IssueCode

FHIR_JSON: Final = "application/fhir+json"
BASE_PATH: Final = "/fhir/r4"


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


def base_url(request: Request) -> str:
    """The FHIR base as the caller reached it (fullUrl of every entry starts with it)."""
    return str(request.base_url).rstrip("/") + BASE_PATH


def searchset_answer(request: Request, resources: Sequence[dict[str, Any]]) -> FhirResponse:
    return FhirResponse(searchset(resources, base_url=base_url(request), self_url=str(request.url)))


def outcome_answer(status_code: int, code: IssueCode, diagnostics: str) -> FhirResponse:
    return FhirResponse(operation_outcome(code, diagnostics), status_code=status_code)


def not_found(resource_type: str, resource_id: str) -> FhirResponse:
    """404 for a resource that is not there or lies outside the key's locations (one
    answer for both: existence is not revealed)."""
    return outcome_answer(404, "not-found", f"{resource_type}/{resource_id} is not known")


def no_patient() -> FhirResponse:
    return outcome_answer(
        400, "required", "search by patient: patient=<id> or patient=Patient/<id>"
    )


def _resource_schema(resource_type: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"a FHIR R4 {resource_type} (hl7.org/fhir/R4/{resource_type.lower()}.html)",
        "required": ["resourceType", "id"],
        "properties": {
            "resourceType": {"type": "string", "enum": [resource_type]},
            "id": {"type": "string"},
        },
    }


OPERATION_OUTCOME: Final[dict[str, Any]] = {
    "type": "object",
    "description": "a FHIR R4 OperationOutcome",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
        "issue": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"type": "string"},
                    "code": {"type": "string"},
                    "diagnostics": {"type": "string"},
                },
            },
        },
    },
}


def _searchset_schema(resource_type: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"a FHIR R4 Bundle of type searchset: every matching {resource_type}",
        "required": ["resourceType", "type", "total", "entry"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["Bundle"]},
            "type": {"type": "string", "enum": ["searchset"]},
            "total": {"type": "integer", "minimum": 0},
            "link": {"type": "array", "items": {"type": "object"}},
            "entry": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["fullUrl", "resource", "search"],
                    "properties": {
                        "fullUrl": {"type": "string"},
                        "resource": _resource_schema(resource_type),
                        "search": {"type": "object"},
                    },
                },
            },
        },
    }


def _fhir(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {FHIR_JSON: {"schema": schema}}}


def search_responses(resource_type: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a search by patient (the key check's 401, 429 and 503,
    in the API's error shape, are added by ``shared.openapi``)."""
    return {
        200: _fhir(
            f"the {resource_type} resources of the patient at the key's locations (none: "
            "an empty searchset, also for a patient we do not know or the key may not see)",
            _searchset_schema(resource_type),
        ),
        400: _fhir("the search names no patient", OPERATION_OUTCOME),
    }


def read_responses(resource_type: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a read by id."""
    return {
        200: _fhir(f"the {resource_type}", _resource_schema(resource_type)),
        404: _fhir(MEANINGS[404], OPERATION_OUTCOME),
    }
