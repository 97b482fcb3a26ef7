"""FHIR R4 (4.0.1) resources from our records, for an EHR to read (pure: records in,
JSON-ready resource dicts out; no I/O, no clock).

| ours | FHIR R4 | module |
|---|---|---|
| client (``ClientRecord``) | Patient | ``people`` |
| screening contraindications | Condition | ``people`` |
| plan (``PlanData``) and its intake goals | CarePlan with contained Goals | ``plans`` |
| referral (decline, revision, completion) | ServiceRequest | ``plans`` |
| visit (``VisitBooked`` and its status) | Appointment | ``visits`` |
| pain before/after a visit, at a check-in | Observation, LOINC 72514-3 | ``visits`` |

The tests validate every resource with ``fhir.resources.R4B`` (4.3.0), the R4-family
model set the package ships for pydantic 2 (its R4 4.0.1 models were for pydantic 1).
R4B is backward compatible with R4 except in the medication definition, evidence,
subscription and Substance resources (the R4B version history); none of those is
emitted here, so every element used (Patient, Condition, CarePlan, Goal,
ServiceRequest, Appointment, Observation, Bundle, OperationOutcome) has R4's name,
cardinality and type, and every status code is from R4's required value set.
"""

from shared.fhir.bundle import operation_outcome, reference, resource_id, searchset
from shared.fhir.codes import LOINC, PAIN_SEVERITY_CODE
from shared.fhir.people import contraindication_conditions, merged_patient, patient
from shared.fhir.plans import care_plan, care_plan_status, referral_of, referral_request
from shared.fhir.visits import (
    appointment,
    checkin_pain_observation,
    visit_pain_ids,
    visit_pain_observations,
)

__all__ = [
    "LOINC",
    "PAIN_SEVERITY_CODE",
    "appointment",
    "care_plan",
    "care_plan_status",
    "checkin_pain_observation",
    "contraindication_conditions",
    "merged_patient",
    "operation_outcome",
    "patient",
    "reference",
    "referral_of",
    "referral_request",
    "resource_id",
    "searchset",
    "visit_pain_ids",
    "visit_pain_observations",
]
