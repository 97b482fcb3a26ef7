"""The FHIR R4 mapping (``shared/fhir``), one resource type at a time, from the records
of one client's journey: an intake screened and planned by the services' own rules,
visits booked, completed and missed, a check-in answer, a referral. Every resource is
validated with ``fhir.resources.R4B`` and its important values are asserted."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.servicerequest import ServiceRequest

from services.intake.screening import screen
from services.planner.domain import decide
from shared import fhir
from shared.chain import Policy
from shared.envelope import derived_id
from shared.events import IntakeSubmitted, PlanCreated, PlanDeclined
from shared.events.intake import ClientRecord, IntakeDocument
from shared.events.notifications import CheckinReplied
from shared.events.plans import PlanCompleted, PlanRevised, Referral
from shared.events.visits import VisitBooked, VisitCompleted
from shared.fhir.plans import activity_status
from shared.fhir.search import patient_id_of, token_matches

CHAIN = "northwest-nmt"
SUBMITTED = datetime(2027, 3, 1, 17, 30, tzinfo=UTC)
INTAKE = {
    "location_id": "beaverton",
    "client": {
        "name": "Jordan Rivera",
        "email": "jordan@example.org",
        "phone": "+15035550142",
        "date_of_birth": "1984-02-01",
        "language": "es",
        "contact_consent": {"email": True, "sms": False},
    },
    "complaints": [
        {
            "region": "neck",
            "side": "right",
            "intensity": 7,
            "qualities": ["dull", "ache"],
            "onset": "2026-06-01",
            "aggravating": ["computer work"],
        }
    ],
    "health": {
        "contraindications": [
            {"code": "skin_condition", "region": "shoulder", "since": "2027-02-10"},
            {
                "code": "skin_condition",
                "region": "forearm",
                "detail": "eczema flare on the left arm",
            },
        ],
        "precautions": [{"code": "hypertension"}],
    },
    "goals": ["turn my head without pain", "sleep through the night"],
    "consent": {"treatment": True},
}


def submitted(document: dict[str, Any], *, client_id: str, intake_id: str) -> IntakeSubmitted:
    """The intake as the intake service publishes it: screened by its own rules."""
    doc = IntakeDocument.model_validate(document)
    return IntakeSubmitted(
        intake_id=intake_id,
        client=ClientRecord(client_id=client_id, **doc.client.model_dump()),
        location_id=doc.location_id,
        complaints=doc.complaints,
        health=doc.health,
        goals=doc.goals,
        preferences=doc.preferences,
        consent=doc.consent,
        screening=screen(doc, today=SUBMITTED.date()),
        submitted_at=SUBMITTED,
    )


@pytest.fixture
def intake() -> IntakeSubmitted:
    return submitted(INTAKE, client_id="c-jordan", intake_id="i-1")


@pytest.fixture
def plan(intake: IntakeSubmitted) -> PlanCreated:
    decided = decide(intake, policy=Policy())
    assert isinstance(decided, PlanCreated), decided
    return decided


def a_visit(plan: PlanCreated, n: int) -> VisitBooked:
    start = datetime(2027, 3, 3, 17, tzinfo=UTC) + timedelta(days=3 * (n - 1))
    return VisitBooked(
        visit_id=f"v-{n}",
        plan_id=plan.plan_id,
        client_id=plan.client_id,
        location_id="beaverton",
        therapist_id="t-ana",
        room=2,
        start=start,
        end=start + timedelta(minutes=60),
        timezone="America/Los_Angeles",
        sequence=n,
        sessions_total=plan.sessions_total,
    )


def test_patient_carries_who_and_how_to_reach_nothing_of_health(intake: IntakeSubmitted) -> None:
    resource = fhir.patient(intake.client, chain_id=CHAIN)

    Patient.model_validate(resource)
    assert resource["id"] == "c-jordan"
    assert resource["identifier"] == [
        {"system": f"urn:clinicflow:{CHAIN}:client", "value": "c-jordan"}
    ]
    assert resource["name"] == [{"text": "Jordan Rivera"}]
    assert resource["telecom"] == [
        {"system": "phone", "value": "+15035550142"},
        {"system": "email", "value": "jordan@example.org"},
    ]
    assert resource["birthDate"] == "1984-02-01"
    language = resource["communication"][0]
    assert language["language"]["coding"] == [{"system": "urn:ietf:bcp:47", "code": "es"}]
    assert language["preferred"] is True
    assert set(resource) == {
        "resourceType", "id", "identifier", "active", "name", "telecom", "birthDate",
        "communication",
    }  # fmt: skip


def test_a_patient_without_contact_details_has_no_empty_telecom() -> None:
    bare = ClientRecord(client_id="c-bare", name="Sam")
    resource = fhir.patient(bare, chain_id=CHAIN)
    Patient.model_validate(resource)
    assert "telecom" not in resource and "birthDate" not in resource


def test_a_merged_patient_is_inactive_and_replaced_by_the_survivor() -> None:
    resource = fhir.merged_patient("c-old", survivor_id="c-jordan", chain_id=CHAIN)
    Patient.model_validate(resource)
    assert resource["active"] is False
    assert resource["link"] == [{"other": {"reference": "Patient/c-jordan"}, "type": "replaced-by"}]


def test_contraindications_are_unconfirmed_active_conditions(intake: IntakeSubmitted) -> None:
    skin, forearm = fhir.contraindication_conditions(intake)

    for resource in (skin, forearm):
        Condition.model_validate(resource)
        assert resource["subject"] == {"reference": "Patient/c-jordan"}
        assert resource["clinicalStatus"]["coding"][0]["code"] == "active"
        assert resource["verificationStatus"]["coding"][0]["code"] == "unconfirmed"
        assert resource["category"][0]["coding"][0]["code"] == "problem-list-item"
        assert resource["recordedDate"] == "2027-03-01T17:30:00Z"
    assert skin["code"]["coding"] == [
        {
            "system": "urn:clinicflow:codesystem:contraindication",
            "code": "skin_condition",
            "display": "Skin condition",
        }
    ]
    assert skin["bodySite"][0]["coding"][0]["code"] == "shoulder"  # local: its area
    assert skin["onsetDateTime"] == "2027-02-10"
    assert forearm["bodySite"][0]["coding"][0]["code"] == "forearm"
    assert "onsetDateTime" not in forearm
    assert "eczema" not in str(forearm)  # the free-text detail stays ours
    again = fhir.contraindication_conditions(intake)
    assert [c["id"] for c in again] == [skin["id"], forearm["id"]] and skin["id"] != forearm["id"]


def test_care_plan_has_a_timed_activity_per_phase_goals_and_the_version(
    plan: PlanCreated,
) -> None:
    resource = fhir.care_plan(
        plan,
        chain_id=CHAIN,
        goals=["turn my head without pain", "sleep through the night"],
        sessions_done=2,
        started_at=plan.created_at,
    )

    CarePlan.model_validate(resource)
    assert resource["id"] == plan.plan_id
    assert resource["status"] == "active" and resource["intent"] == "plan"
    assert resource["meta"]["versionId"] == "1"
    assert resource["subject"] == {"reference": "Patient/c-jordan"}
    assert len(resource["activity"]) == len(plan.phases)
    first = plan.phases[0]
    timing = resource["activity"][0]["detail"]["scheduledTiming"]["repeat"]
    assert timing["count"] == first.sessions
    assert (timing["frequency"], timing["period"], timing["periodUnit"]) == (
        1,
        first.interval_days,
        "d",
    )
    assert timing["boundsDuration"]["value"] == first.weeks
    assert sum(a["detail"]["scheduledTiming"]["repeat"]["count"] for a in resource["activity"]) == (
        plan.sessions_total
    )
    assert resource["activity"][0]["detail"]["status"] == "in-progress"  # 2 done
    assert resource["activity"][-1]["detail"]["status"] == "not-started"
    goals = resource["contained"]
    assert [g["description"]["text"] for g in goals] == [
        "turn my head without pain",
        "sleep through the night",
    ]
    assert resource["goal"] == [{"reference": "#goal-1"}, {"reference": "#goal-2"}]
    assert all(g["lifecycleStatus"] == "active" for g in goals)


def test_a_revision_is_a_new_version_whose_phases_count_from_the_sessions_done(
    plan: PlanCreated,
) -> None:
    revised = PlanRevised(
        **{**plan.model_dump(), "version": 2, "sessions_total": 6},
        reason="taper",
        change="taper",
        sessions_done=4,
    ).model_copy(update={"phases": [plan.phases[0].model_copy(update={"sessions": 2})]})
    resource = fhir.care_plan(
        revised, chain_id=CHAIN, goals=[], sessions_done=5, started_at=plan.created_at
    )
    CarePlan.model_validate(resource)
    assert resource["meta"]["versionId"] == "2"
    assert resource["activity"][0]["detail"]["status"] == "in-progress"  # sessions 5-6
    assert "contained" not in resource and "goal" not in resource


@pytest.mark.parametrize(
    ("outcome", "sessions_done", "status"),
    [
        ("course_complete", 8, "completed"),
        ("goals_met", 3, "completed"),
        ("referred", 8, "revoked"),
        ("lapsed", 1, "revoked"),
    ],
)
def test_care_plan_status_follows_how_the_plan_ended(
    plan: PlanCreated, outcome: str, sessions_done: int, status: str
) -> None:
    completion = PlanCompleted(
        plan_id=plan.plan_id,
        version=1,
        client_id=plan.client_id,
        location_id=plan.location_id,
        reason="ended",
        outcome=outcome,
        sessions_done=sessions_done,
        completed_at=SUBMITTED + timedelta(days=40),
    )
    resource = fhir.care_plan(
        plan,
        chain_id=CHAIN,
        goals=["sleep through the night"],
        sessions_done=sessions_done,
        started_at=plan.created_at,
        completion=completion,
    )
    CarePlan.model_validate(resource)
    assert resource["status"] == status
    assert resource["period"]["end"] == "2027-04-10T17:30:00Z"
    assert "not-started" not in {a["detail"]["status"] for a in resource["activity"]}
    goal = resource["contained"][0]
    assert goal["lifecycleStatus"] == "completed"
    assert ("achievementStatus" in goal) == (outcome == "goals_met")


def test_activity_status_of_a_phase() -> None:
    assert activity_status(0, 4, done=4, ended=False) == "completed"
    assert activity_status(0, 4, done=1, ended=False) == "in-progress"
    assert activity_status(4, 8, done=4, ended=False) == "not-started"
    assert activity_status(4, 8, done=5, ended=True) == "stopped"
    assert activity_status(4, 8, done=2, ended=True) == "cancelled"


@pytest.mark.parametrize(
    ("stored", "confirmed", "status", "client"),
    [
        ("booked", False, "booked", "tentative"),
        ("booked", True, "booked", "accepted"),
        ("completed", False, "fulfilled", "accepted"),
        ("cancelled", False, "cancelled", "accepted"),
        ("no_show", False, "noshow", "accepted"),
        ("offered", False, "pending", "needs-action"),
    ],
)
def test_appointment_status_from_the_visits_life(
    plan: PlanCreated, stored: str, confirmed: bool, status: str, client: str
) -> None:
    visit = a_visit(plan, 3)
    resource = fhir.appointment(
        visit,
        stored,
        chain_id=CHAIN,
        confirmed=confirmed,
        therapist_name="Ana Ruiz",
        location_name="Beaverton",
    )

    assert resource is not None
    Appointment.model_validate(resource)
    assert resource["id"] == "v-3" and resource["status"] == status
    assert resource["start"] == "2027-03-09T17:00:00Z" and resource["minutesDuration"] == 60
    patient, therapist, location = resource["participant"]
    assert patient["actor"] == {"reference": "Patient/c-jordan"} and patient["status"] == client
    assert therapist["actor"]["identifier"] == {
        "system": f"urn:clinicflow:{CHAIN}:therapist",
        "value": "t-ana",
    }
    assert therapist["actor"]["type"] == "Practitioner"
    assert location["actor"]["display"] == "Beaverton"
    assert {"reference": f"CarePlan/{plan.plan_id}"} in resource["supportingInformation"]


def test_a_fulfilled_appointment_points_at_its_pain_readings(plan: PlanCreated) -> None:
    resource = fhir.appointment(a_visit(plan, 1), "completed", chain_id=CHAIN)
    assert resource is not None
    before, after = fhir.visit_pain_ids("v-1")
    assert resource["supportingInformation"][1:] == [
        {"reference": f"Observation/{before}"},
        {"reference": f"Observation/{after}"},
    ]


def test_a_released_offer_is_no_appointment(plan: PlanCreated) -> None:
    assert fhir.appointment(a_visit(plan, 2), "released", chain_id=CHAIN) is None


def test_pain_before_and_after_a_visit_and_at_a_check_in_are_loinc_observations(
    plan: PlanCreated,
) -> None:
    done = VisitCompleted(
        visit_id="v-1",
        plan_id=plan.plan_id,
        client_id=plan.client_id,
        location_id="beaverton",
        therapist_id="t-ana",
        pain_before=7,
        pain_after=4,
        techniques=["ischemic_compression"],
        notes="tight upper trapezius",
        completed_at=datetime(2027, 3, 3, 18, tzinfo=UTC),
    )
    reply = CheckinReplied(
        notification_id="n-checkin-1",
        client_id=plan.client_id,
        location_id="beaverton",
        visit_id="v-1",
        plan_id=plan.plan_id,
        pain=5,
        channel="sms",
        replied_at=datetime(2027, 3, 4, 18, tzinfo=UTC),
    )
    before, after = fhir.visit_pain_observations(
        visit_id=done.visit_id,
        pain_before=done.pain_before,
        pain_after=done.pain_after,
        completed_at=done.completed_at,
        client_id=done.client_id,
        plan_id=done.plan_id,
        chain_id=CHAIN,
    )
    checkin = fhir.checkin_pain_observation(
        notification_id=reply.notification_id,
        pain=reply.pain,
        replied_at=reply.replied_at,
        client_id=reply.client_id,
        plan_id=plan.plan_id,
        chain_id=CHAIN,
    )

    for resource in (before, after, checkin):
        Observation.model_validate(resource)
        assert resource["code"]["coding"] == [
            {
                "system": "http://loinc.org",
                "code": "72514-3",
                "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
            }
        ]
        assert resource["status"] == "final"
        assert resource["category"][0]["coding"][0]["code"] == "survey"
        assert resource["subject"] == {"reference": "Patient/c-jordan"}
        assert resource["basedOn"] == [{"reference": f"CarePlan/{plan.plan_id}"}]
    assert [r["valueInteger"] for r in (before, after, checkin)] == [7, 4, 5]
    assert [r["method"]["coding"][0]["code"] for r in (before, after, checkin)] == [
        "before-visit",
        "after-visit",
        "checkin",
    ]
    assert before["effectiveDateTime"] == "2027-03-03T18:00:00Z"
    assert checkin["effectiveDateTime"] == "2027-03-04T18:00:00Z"
    assert (before["id"], after["id"]) == fhir.visit_pain_ids("v-1")
    assert len({before["id"], after["id"], checkin["id"]}) == 3
    assert "trapezius" not in str([before, after])  # the therapist's notes stay ours


def test_a_declined_intakes_referral_is_a_proposed_service_request() -> None:
    dvt = {
        **INTAKE,
        "health": {"contraindications": [{"code": "dvt"}]},
    }
    intake = submitted(dvt, client_id="c-dvt", intake_id="i-dvt")
    declined = decide(intake, policy=Policy())
    assert isinstance(declined, PlanDeclined) and declined.referral.recommended

    resource = fhir.referral_request(
        declined.referral,
        chain_id=CHAIN,
        cause=declined.intake_id,
        client_id=declined.client_id,
        authored_on=declined.declined_at,
    )

    ServiceRequest.model_validate(resource)
    assert resource["intent"] == "proposal" and resource["status"] == "active"
    assert resource["code"]["coding"][0] == {
        "system": "http://snomed.info/sct",
        "code": "3457005",
        "display": "Patient referral",
    }
    assert resource["subject"] == {"reference": "Patient/c-dvt"}
    assert resource["performerType"]["text"] == declined.referral.to
    assert resource["reasonCode"][0]["text"] == declined.referral.detail
    assert resource["id"] == derived_id("fhir:ServiceRequest", "i-dvt")
    assert "basedOn" not in resource
    (dvt_condition,) = fhir.contraindication_conditions(intake)
    Condition.model_validate(dvt_condition)
    assert dvt_condition["code"]["coding"][0]["code"] == "dvt"
    assert "bodySite" not in dvt_condition  # not local: no area


def test_a_plans_referral_is_based_on_its_care_plan(plan: PlanCreated) -> None:
    referral = Referral(recommended=True, to="physician", detail="no relief after 4 sessions")
    resource = fhir.referral_request(
        referral,
        chain_id=CHAIN,
        cause=f"{plan.plan_id}:2",
        client_id=plan.client_id,
        authored_on=SUBMITTED,
        plan_id=plan.plan_id,
    )
    ServiceRequest.model_validate(resource)
    assert resource["basedOn"] == [{"reference": f"CarePlan/{plan.plan_id}"}]


def test_a_searchset_lists_every_match_with_its_full_url(
    intake: IntakeSubmitted, plan: PlanCreated
) -> None:
    resources = [
        fhir.patient(intake.client, chain_id=CHAIN),
        *fhir.contraindication_conditions(intake),
    ]
    bundle = fhir.searchset(
        resources,
        base_url="https://clinic.example/fhir/r4/",
        self_url="https://clinic.example/fhir/r4/Condition?patient=c-jordan",
    )

    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset" and bundle["total"] == 3
    assert bundle["link"] == [
        {"relation": "self", "url": "https://clinic.example/fhir/r4/Condition?patient=c-jordan"}
    ]
    assert bundle["entry"][0]["fullUrl"] == "https://clinic.example/fhir/r4/Patient/c-jordan"
    assert all(e["search"] == {"mode": "match"} for e in bundle["entry"])
    empty = fhir.searchset([], base_url="https://clinic.example/fhir/r4", self_url="x")
    Bundle.model_validate(empty)
    assert empty["total"] == 0 and empty["entry"] == []


def test_an_id_that_is_no_fhir_id_is_derived_and_the_identifier_keeps_ours() -> None:
    resource = fhir.patient(ClientRecord(client_id="client_7/x", name="Sam"), chain_id=CHAIN)
    Patient.model_validate(resource)
    assert resource["id"] == derived_id("fhir-id", "client_7/x")
    assert resource["identifier"][0]["value"] == "client_7/x"
    assert fhir.resource_id("c-jordan") == "c-jordan"


def test_operation_outcome() -> None:
    outcome = fhir.operation_outcome("not-found", "Patient/c-x is not known")
    OperationOutcome.model_validate(outcome)
    assert outcome["issue"] == [
        {"severity": "error", "code": "not-found", "diagnostics": "Patient/c-x is not known"}
    ]


def test_dates_are_r4_dates() -> None:
    assert (
        fhir.patient(
            ClientRecord(client_id="c", name="A", date_of_birth=date(1990, 1, 2)), chain_id=CHAIN
        )["birthDate"]
        == "1990-01-02"
    )


@pytest.mark.parametrize(
    ("value", "client_id"),
    [
        ("c-jordan", "c-jordan"),
        ("Patient/c-jordan", "c-jordan"),
        ("https://clinic.example/fhir/r4/Patient/c-jordan", "c-jordan"),
        ("Group/c-jordan", None),
        ("", None),
        (None, None),
    ],
)
def test_the_patient_a_search_names(value: str | None, client_id: str | None) -> None:
    assert patient_id_of(value) == client_id


@pytest.mark.parametrize(
    ("value", "matches"),
    [
        (None, True),
        ("72514-3", True),
        ("http://loinc.org|72514-3", True),
        ("8480-6,72514-3", True),
        ("|72514-3", False),
        ("http://snomed.info/sct|72514-3", False),
        ("8480-6", False),
        ("", False),
    ],
)
def test_a_code_token_as_fhir_reads_it(value: str | None, matches: bool) -> None:
    assert token_matches(value, system="http://loinc.org", code="72514-3") is matches
