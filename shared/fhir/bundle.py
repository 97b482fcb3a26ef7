"""What every mapped resource shares: its id, references between resources, and the
two envelopes the FHIR endpoints answer with (a searchset Bundle, an
OperationOutcome)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, Literal

from shared.envelope import derived_id
from shared.fhir.codes import identifier_system

# R4's id datatype: what a resource id (and so a read's path) may be
FHIR_ID: Final = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def resource_id(ours: str) -> str:
    """The FHIR id of a record: our id where it is a valid FHIR id (our ids are UUIDs),
    else one derived from it; the identifier keeps ours either way."""
    return ours if FHIR_ID.match(ours) else derived_id("fhir-id", ours)


def reference(resource_type: str, ours: str) -> dict[str, Any]:
    """A literal reference to a resource these endpoints serve."""
    return {"reference": f"{resource_type}/{resource_id(ours)}"}


def logical_reference(
    chain_id: str, resource_type: str, kind: str, ours: str, display: str | None
) -> dict[str, Any]:
    """A reference by identifier, for what we name but serve no resource of (a
    therapist, a location): the EHR matches it to its own Practitioner or Location."""
    found: dict[str, Any] = {
        "type": resource_type,
        "identifier": identifier(chain_id, kind, ours),
    }
    if display is not None:
        found["display"] = display
    return found


def identifier(chain_id: str, kind: str, ours: str) -> dict[str, Any]:
    return {"system": identifier_system(chain_id, kind), "value": ours}


def instant(at: datetime) -> str:
    """An R4 instant / dateTime with its zone: UTC, as our events carry time."""
    return at.isoformat().replace("+00:00", "Z")


def searchset(
    resources: Sequence[dict[str, Any]], *, base_url: str, self_url: str
) -> dict[str, Any]:
    """A Bundle of type searchset holding every match: ``fullUrl`` is the resource's
    address under ``base_url`` (the FHIR base, e.g. ``https://host/fhir/r4``); the
    search is not paged, so ``total`` is the number of entries."""
    base = base_url.rstrip("/")
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "link": [{"relation": "self", "url": self_url}],
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


IssueCode = Literal["not-found", "deleted", "required", "invalid", "not-supported"]


def operation_outcome(code: IssueCode, diagnostics: str) -> dict[str, Any]:
    """A FHIR error: one issue of severity error (R4 value set issue-type for ``code``)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }
