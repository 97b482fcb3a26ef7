"""A visit as a FHIR Appointment, and the pain readings as Observations
(LOINC 72514-3, pain severity 0-10).

Observation category is ``survey``, not ``vital-signs``: the value is the client's own
rating on a verbal numeric scale, an assessment instrument's score, and the R4
vital-signs profile's list of codes does not include 72514-3, so ``vital-signs``
would announce a profile the resource cannot meet.

Each completed visit gives two Observations (the pain carried in, the pain right
after), each check-in answer one; their ids are derived from the visit or the
check-in, so the scheduler can point a fulfilled Appointment at the readings the
planner serves without either knowing the other's data. R4 gives an Observation no
reference to an Appointment (``partOf`` and ``encounter`` take other types), so the
link runs the other way: ``Appointment.supportingInformation``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.envelope import derived_id
from shared.events.visits import VisitBooked
from shared.fhir.bundle import identifier, instant, logical_reference, reference, resource_id
from shared.fhir.codes import (
    APPOINTMENT_STATUS,
    LOINC,
    OBSERVATION_CATEGORY,
    PAIN_MOMENTS,
    PAIN_SEVERITY_CODE,
    PAIN_SEVERITY_DISPLAY,
    PARTICIPATION_TYPE,
    PainMoment,
    coding,
    concept,
    ours,
)


def appointment(
    visit: VisitBooked,
    status: str,
    *,
    chain_id: str,
    confirmed: bool = False,
    therapist_name: str | None = None,
    location_name: str | None = None,
) -> dict[str, Any] | None:
    """Appointment for a visit in its stored ``status`` (``APPOINTMENT_STATUS``); None
    for a released one, which was never the client's. The client's participation
    says whether they confirmed: tentative while a booked visit waits for their
    confirmation, accepted once confirmed (R4 has no confirmed status of its own),
    needs-action on an offer they have not taken."""
    mapped = APPOINTMENT_STATUS.get(status)
    if mapped is None:
        return None
    client = "needs-action" if mapped == "pending" else "accepted"
    if mapped == "booked" and not confirmed:
        client = "tentative"
    minutes = round((visit.end - visit.start).total_seconds() / 60)
    supporting = [reference("CarePlan", visit.plan_id)]
    if mapped == "fulfilled":
        supporting += [reference("Observation", i) for i in visit_pain_ids(visit.visit_id)]
    return {
        "resourceType": "Appointment",
        "id": resource_id(visit.visit_id),
        "identifier": [identifier(chain_id, "visit", visit.visit_id)],
        "status": mapped,
        "description": f"Session {visit.sequence} of {visit.sessions_total}",
        "start": instant(visit.start),
        "end": instant(visit.end),
        "minutesDuration": minutes,
        "supportingInformation": supporting,
        "participant": [
            {
                "actor": reference("Patient", visit.client_id),
                "required": "required",
                "status": client,
            },
            {
                "type": [concept(PARTICIPATION_TYPE, "PPRF", "primary performer")],
                "actor": logical_reference(
                    chain_id, "Practitioner", "therapist", visit.therapist_id, therapist_name
                ),
                "required": "required",
                "status": "accepted",
            },
            {
                "actor": logical_reference(
                    chain_id, "Location", "location", visit.location_id, location_name
                ),
                "required": "required",
                "status": "accepted",
            },
        ],
    }


def visit_pain_ids(visit_id: str) -> tuple[str, str]:
    """The ids of a visit's two pain Observations: before, after."""
    return _pain_id(visit_id, "before-visit"), _pain_id(visit_id, "after-visit")


def visit_pain_observations(
    *,
    visit_id: str,
    pain_before: int,
    pain_after: int,
    completed_at: datetime,
    client_id: str,
    plan_id: str,
    chain_id: str,
) -> list[dict[str, Any]]:
    """The pain carried into a visit and right after it, both read when the visit
    was recorded complete (the time we have for either)."""
    readings: tuple[tuple[PainMoment, int], ...] = (
        ("before-visit", pain_before),
        ("after-visit", pain_after),
    )
    return [
        pain_observation(
            cause=visit_id,
            moment=moment,
            pain=pain,
            at=completed_at,
            client_id=client_id,
            plan_id=plan_id,
            chain_id=chain_id,
        )
        for moment, pain in readings
    ]


def checkin_pain_observation(
    *,
    notification_id: str,
    pain: int,
    replied_at: datetime,
    client_id: str,
    plan_id: str,
    chain_id: str,
) -> dict[str, Any]:
    """The pain a client reported in answer to a check-in between visits."""
    return pain_observation(
        cause=notification_id,
        moment="checkin",
        pain=pain,
        at=replied_at,
        client_id=client_id,
        plan_id=plan_id,
        chain_id=chain_id,
    )


def pain_observation(
    *,
    cause: str,
    moment: PainMoment,
    pain: int,
    at: datetime,
    client_id: str,
    plan_id: str,
    chain_id: str,
) -> dict[str, Any]:
    """Observation of one pain reading under a plan (``basedOn`` the CarePlan); ``cause``
    is the visit or check-in it was reported at, which with ``moment`` gives the id."""
    return {
        "resourceType": "Observation",
        "id": _pain_id(cause, moment),
        "identifier": [identifier(chain_id, "pain-reading", f"{cause}:{moment}")],
        "basedOn": [reference("CarePlan", plan_id)],
        "status": "final",
        "category": [concept(OBSERVATION_CATEGORY, "survey", "Survey")],
        "code": {
            "coding": [coding(LOINC, PAIN_SEVERITY_CODE, PAIN_SEVERITY_DISPLAY)],
            "text": "Pain severity 0-10",
        },
        "subject": reference("Patient", client_id),
        "effectiveDateTime": instant(at),
        "issued": instant(at),
        "valueInteger": pain,
        "method": concept(ours("pain-reading"), moment, PAIN_MOMENTS[moment]),
    }


def _pain_id(cause: str, moment: PainMoment) -> str:
    return derived_id("fhir:Observation", cause, moment)
