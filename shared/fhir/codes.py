"""The code systems and identifier systems the FHIR R4 mapping uses, and the tables
that turn our codes into FHIR's.

FHIR's own code systems are named by their canonical URLs (terminology.hl7.org);
codes that are ours (a contraindication, a body region, when a pain reading was
taken) are in clinicflow code systems named by URN, so an EHR can tell them from
any standard code and look them up in our vocabulary (DESIGN.md "The intake
document and shared vocabulary")."""

from __future__ import annotations

from typing import Any, Final, Literal

LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
UCUM: Final = "http://unitsofmeasure.org"
BCP47: Final = "urn:ietf:bcp:47"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
GOAL_ACHIEVEMENT: Final = "http://terminology.hl7.org/CodeSystem/goal-achievement"
PARTICIPATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

PAIN_SEVERITY_CODE: Final = "72514-3"
PAIN_SEVERITY_DISPLAY: Final = "Pain severity - 0-10 verbal numeric rating [Score] - Reported"
PATIENT_REFERRAL_CODE: Final = "3457005"  # SNOMED CT: Patient referral (procedure)


def ours(vocabulary: str) -> str:
    """The URN of one of our code systems (``contraindication``, ``region``, ...)."""
    return f"urn:clinicflow:codesystem:{vocabulary}"


def identifier_system(chain_id: str, kind: str) -> str:
    """The system of our ids of one kind in one chain, e.g. ``urn:clinicflow:acme:client``:
    ids are unique within a chain, so the chain is part of the system."""
    return f"urn:clinicflow:{chain_id}:{kind}"


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"system": system, "code": code}
    if display is not None:
        found["display"] = display
    return found


def concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    """A CodeableConcept of one coding, with the display as its text."""
    found: dict[str, Any] = {"coding": [coding(system, code, display)]}
    if display is not None:
        found["text"] = display
    return found


def words(code: str) -> str:
    """Our code as words for a display: ``skin_condition`` -> ``Skin condition``."""
    return code.replace("_", " ").capitalize()


AppointmentStatus = Literal["proposed", "pending", "booked", "fulfilled", "cancelled", "noshow"]

# a visit's stored status -> Appointment.status (R4 value set appointmentstatus). An
# offered visit is a freed slot held for a waiting client who has not accepted it yet:
# the clinic has, the client not, which is R4's "pending". A released visit was an
# offer that closed; it never was the client's appointment and is not mapped.
APPOINTMENT_STATUS: Final[dict[str, AppointmentStatus]] = {
    "booked": "booked",
    "completed": "fulfilled",
    "cancelled": "cancelled",
    "no_show": "noshow",
    "offered": "pending",
}

CarePlanStatus = Literal["active", "completed", "revoked"]
# how a plan ended (PlanCompleted.outcome) -> CarePlan.status: a course that ran its
# sessions, or ended early because the goals were met, is completed; one that lapsed
# or was ended referred before its sessions ran out was revoked (R4: "terminated
# prior to reaching completion")
ENDED_COMPLETE: Final = frozenset({"course_complete", "goals_met"})

# when a pain reading was taken: Observation.method in our code system, because R4 has
# no element for "before / after the procedure" on an Observation
PainMoment = Literal["before-visit", "after-visit", "checkin"]
PAIN_MOMENTS: Final[dict[PainMoment, str]] = {
    "before-visit": "Pain carried into the visit, reported at its start",
    "after-visit": "Pain right after the visit",
    "checkin": "Pain reported at a check-in between visits",
}

MODALITIES: Final[dict[str, str]] = {
    "nmt": "Neuromuscular therapy",
    "fmm": "Functional muscle manipulation",
    "either": "Neuromuscular therapy or functional muscle manipulation",
}
