"""The client as a FHIR Patient, and the contraindications their intake reported as
Conditions.

Minimum necessary: a Patient carries who the client is and how to reach them (name,
telecom, date of birth, the language we write in), nothing of their health; a
Condition carries the contraindication's code, where it is for a local one and
since when, not the free-text detail the client may have added."""

from __future__ import annotations

from typing import Any

from shared.envelope import derived_id
from shared.events.intake import ClientRecord, Contraindication, IntakeSubmitted
from shared.fhir.bundle import identifier, instant, reference, resource_id
from shared.fhir.codes import (
    BCP47,
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VERIFICATION,
    concept,
    ours,
    words,
)


def patient(client: ClientRecord, *, chain_id: str) -> dict[str, Any]:
    """Patient from the client on record. The name is one string in our records, so
    it is HumanName.text (splitting it into given and family names would guess)."""
    telecom = []
    if client.phone is not None:
        telecom.append({"system": "phone", "value": client.phone})
    if client.email is not None:
        telecom.append({"system": "email", "value": str(client.email)})
    found: dict[str, Any] = {
        "resourceType": "Patient",
        "id": resource_id(client.client_id),
        "identifier": [identifier(chain_id, "client", client.client_id)],
        "active": True,
        "name": [{"text": client.name}],
        "communication": [
            {
                "language": {"coding": [{"system": BCP47, "code": client.language}]},
                "preferred": True,
            }
        ],
    }
    if telecom:
        found["telecom"] = telecom
    if client.date_of_birth is not None:
        found["birthDate"] = client.date_of_birth.isoformat()
    return found


def merged_patient(retired_id: str, *, survivor_id: str, chain_id: str) -> dict[str, Any]:
    """The Patient a merge retired: inactive, replaced by the client it was merged into
    (a read of the retired id tells where the record went, as the /v1 reads answer
    for the survivor)."""
    return {
        "resourceType": "Patient",
        "id": resource_id(retired_id),
        "identifier": [identifier(chain_id, "client", retired_id)],
        "active": False,
        "link": [{"other": reference("Patient", survivor_id), "type": "replaced-by"}],
    }


def contraindication_conditions(intake: IntakeSubmitted) -> list[dict[str, Any]]:
    """One Condition per contraindication the intake reported (DOMAIN.md 2)."""
    return [
        condition(item, intake=intake, position=n)
        for n, item in enumerate(intake.health.contraindications)
    ]


def condition(item: Contraindication, *, intake: IntakeSubmitted, position: int) -> dict[str, Any]:
    """Condition for one contraindication: active (reported at intake), unconfirmed (the
    client's own report, not a clinician's finding), on the problem list; a local one
    (a skin condition on the shoulder) has its region as bodySite. The id is derived
    from the intake and the item's place in it, so a repeated read gives the same."""
    found: dict[str, Any] = {
        "resourceType": "Condition",
        "id": derived_id("fhir:Condition", intake.intake_id, position, item.code),
        "clinicalStatus": concept(CONDITION_CLINICAL, "active", "Active"),
        "verificationStatus": concept(CONDITION_VERIFICATION, "unconfirmed", "Unconfirmed"),
        "category": [concept(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")],
        "code": concept(ours("contraindication"), item.code, words(item.code)),
        "subject": reference("Patient", intake.client.client_id),
        "recordedDate": instant(intake.submitted_at),
    }
    if item.region is not None:
        found["bodySite"] = [concept(ours("region"), item.region, words(item.region))]
    if item.since is not None:
        found["onsetDateTime"] = item.since.isoformat()
    return found
