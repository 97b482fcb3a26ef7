"""The example EHR subscriber's mapping (``examples/fhir_subscriber.py``): each event of
one client's journey becomes the resources it changes, with the ids the services'
own FHIR endpoints give, and every Bundle it would send validates with
``fhir.resources``. What a later event needs of an earlier one is kept in its SQLite
state, and an event whose Bundle was not taken leaves that state as it was."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from examples.fhir_subscriber import Mapper, Parked, State, transaction
from services.planner.domain import decide
from shared import fhir
from shared.chain import Policy
from shared.codec import wrap
from shared.envelope import Envelope, Trace
from shared.events import EventData, PlanCreated, PlanDeclined
from shared.events.notifications import CheckinReplied
from shared.events.plans import PlanCompleted, Referral
from shared.events.visits import (
    VisitCancelled,
    VisitCompleted,
    VisitConfirmed,
    VisitNoShow,
    VisitRescheduled,
)
from tests.unit.test_fhir_mapping import CHAIN, INTAKE, SUBMITTED, a_visit, submitted

TRACE = Trace(chainid=CHAIN, correlationid="i-1", locationid="beaverton")


def of(plan: PlanCreated) -> dict[str, Any]:
    """The fields every event about one of the plan's visits names."""
    return {"plan_id": plan.plan_id, "client_id": plan.client_id, "location_id": "beaverton"}


def envelope(data: EventData) -> Envelope:
    return wrap(
        data,
        event_id=str(uuid.uuid4()),
        service="test",
        subject="c-jordan",
        trace=TRACE,
        time=SUBMITTED,
    )


class Journey:
    def __init__(self, path: Path) -> None:
        self.state = State(path)
        self.mapper = Mapper(self.state, CHAIN)

    def deliver(self, data: EventData) -> dict[str, dict[str, Any]]:
        """The resources of one event, by type/id, each validated as the Bundle is."""
        self.state.begin()
        try:
            resources = self.mapper.resources(envelope(data))
        except BaseException:
            self.state.rollback()
            raise
        self.state.commit()
        for resource in resources:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        get_fhir_model_class("Bundle").model_validate(transaction(resources))
        return {f"{r['resourceType']}/{r['id']}": r for r in resources}


@pytest.fixture
def journey(tmp_path: Path) -> Journey:
    return Journey(tmp_path / "state.sqlite3")


def test_a_course_from_intake_to_completion(journey: Journey) -> None:
    intake = submitted(INTAKE, client_id="c-jordan", intake_id="i-1")
    first = journey.deliver(intake)
    assert set(first) == {"Patient/c-jordan"} | {
        f"Condition/{c['id']}" for c in fhir.contraindication_conditions(intake)
    }
    assert len(first) == 3  # the two local skin conditions

    plan = decide(intake, policy=Policy())
    assert isinstance(plan, PlanCreated)
    [care_plan] = journey.deliver(plan).values()
    assert [g["description"]["text"] for g in care_plan["contained"]] == intake.goals

    visits = [a_visit(plan, n) for n in (1, 2, 3)]
    for visit in visits:
        [booked] = journey.deliver(visit).values()
        assert booked["status"] == "booked"
        assert booked["participant"][0]["status"] == "tentative"

    one, two, three = visits
    confirmed = journey.deliver(
        VisitConfirmed(
            visit_id=one.visit_id,
            **of(plan),
            start=one.start,
            via="link",
            confirmed_at=SUBMITTED,
        )
    )
    assert confirmed[f"Appointment/{one.visit_id}"]["participant"][0]["status"] == "accepted"

    later = two.start + timedelta(days=1)
    moved = journey.deliver(
        VisitRescheduled(
            visit_id=two.visit_id,
            **of(plan),
            therapist_id="t-ben",
            room=1,
            previous_start=two.start,
            start=later,
            end=later + timedelta(minutes=60),
            timezone=two.timezone,
        )
    )[f"Appointment/{two.visit_id}"]
    assert moved["start"] == later.isoformat().replace("+00:00", "Z")
    assert "t-ben" in str(moved["participant"][1])

    done = journey.deliver(
        VisitCompleted(
            visit_id=one.visit_id,
            **of(plan),
            therapist_id="t-ana",
            pain_before=7,
            pain_after=4,
            completed_at=one.end,
        )
    )
    before, after = fhir.visit_pain_ids(one.visit_id)
    assert done[f"Appointment/{one.visit_id}"]["status"] == "fulfilled"
    assert done[f"Observation/{before}"]["valueInteger"] == 7
    assert done[f"Observation/{after}"]["valueInteger"] == 4
    care = done[f"CarePlan/{plan.plan_id}"]["activity"]
    assert care[0]["detail"]["status"] == "in-progress"  # one session of the first phase done

    cancelled = journey.deliver(
        VisitCancelled(
            visit_id=three.visit_id,
            **of(plan),
            by="client",
            cancelled_at=SUBMITTED,
        )
    )
    assert cancelled[f"Appointment/{three.visit_id}"]["status"] == "cancelled"
    missed = journey.deliver(
        VisitNoShow(
            visit_id=two.visit_id,
            **of(plan),
            recorded_at=later,
        )
    )
    assert missed[f"Appointment/{two.visit_id}"]["status"] == "noshow"

    [reading] = journey.deliver(
        CheckinReplied(
            notification_id="n-checkin-1",
            client_id=plan.client_id,
            location_id="beaverton",
            visit_id=one.visit_id,
            plan_id=plan.plan_id,
            pain=3,
            channel="email",
            replied_at=one.end + timedelta(days=1),
        )
    ).values()
    assert reading["valueInteger"] == 3
    assert reading["code"]["coding"][0]["code"] == "72514-3"

    ended = journey.deliver(
        PlanCompleted(
            plan_id=plan.plan_id,
            version=plan.version,
            client_id=plan.client_id,
            location_id="beaverton",
            reason="no relief",
            outcome="referred",
            sessions_done=1,
            referral=Referral(recommended=True, to="physician", detail="no relief"),
            completed_at=one.end + timedelta(days=20),
        )
    )
    assert ended[f"CarePlan/{plan.plan_id}"]["status"] == "revoked"
    [request] = [r for r in ended.values() if r["resourceType"] == "ServiceRequest"]
    assert request["basedOn"] == [{"reference": f"CarePlan/{plan.plan_id}"}]
    assert (
        request["id"]
        == fhir.referral_request(
            Referral(recommended=True, to="physician", detail="no relief"),
            chain_id=CHAIN,
            cause=f"{plan.plan_id}:completed",
            client_id=plan.client_id,
            authored_on=SUBMITTED,
        )["id"]
    )  # the id the planner's ServiceRequest search gives


def test_a_declined_intake_is_a_referral(journey: Journey) -> None:
    intake = submitted(
        {**INTAKE, "health": {"contraindications": [{"code": "dvt"}]}},
        client_id="c-dvt",
        intake_id="i-dvt",
    )
    journey.deliver(intake)
    declined = decide(intake, policy=Policy())
    assert isinstance(declined, PlanDeclined)
    [request] = journey.deliver(declined).values()
    assert request["resourceType"] == "ServiceRequest"
    assert request["intent"] == "proposal"


def test_an_event_not_delivered_leaves_the_state_as_it_was(journey: Journey) -> None:
    intake = submitted(INTAKE, client_id="c-jordan", intake_id="i-1")
    journey.deliver(intake)
    plan = decide(intake, policy=Policy())
    assert isinstance(plan, PlanCreated)
    journey.deliver(plan)
    visit = a_visit(plan, 1)
    journey.deliver(visit)
    done = VisitCompleted(
        visit_id=visit.visit_id,
        **of(plan),
        therapist_id="t-ana",
        pain_before=6,
        pain_after=3,
        completed_at=visit.end,
    )
    journey.state.begin()
    journey.mapper.resources(envelope(done))
    assert journey.state.sessions_done(plan.plan_id) == 1
    journey.state.rollback()  # the FHIR server did not take the Bundle

    assert journey.state.sessions_done(plan.plan_id) == 0
    assert journey.state.visit(visit.visit_id) == (visit, "booked", False)


def test_a_change_to_a_visit_never_booked_here_is_parked(journey: Journey) -> None:
    with pytest.raises(Parked, match="never booked"):
        journey.deliver(
            VisitNoShow(
                visit_id="v-unknown",
                plan_id="p-1",
                client_id="c-jordan",
                location_id="beaverton",
                recorded_at=SUBMITTED,
            )
        )


def test_a_plan_read_before_its_intake_gets_the_goals_when_the_intake_comes(
    journey: Journey,
) -> None:
    intake = submitted(INTAKE, client_id="c-jordan", intake_id="i-1")
    plan = decide(intake, policy=Policy())
    assert isinstance(plan, PlanCreated)
    [early] = journey.deliver(plan).values()  # clinic.plans read ahead of clinic.intake
    assert "contained" not in early

    later = journey.deliver(intake)
    care_plan = later[f"CarePlan/{plan.plan_id}"]
    assert [g["description"]["text"] for g in care_plan["contained"]] == intake.goals
