"""The FHIR R4 endpoints of intake, planner and scheduler on the real broker and Redis,
after a real journey: an intake through the front door, its plan, its visits booked,
one completed with pain before and after, one cancelled, a check-in answer; and a
second client declined and referred. Every resource answered is validated with
``fhir.resources.R4B``; the searchsets' shape, the content type and the keys' scopes
are checked against what the /v1 reads of the same records answer.

The intake publishes to the broker; its ``intake.submitted`` is read back from the
topic and handed to the planner's handlers, and what they produce to the scheduler's
(the consumer path has its end-to-end tests); one settable clock serves all three."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

import httpx
import pytest
from fhir.resources.R4B import get_fhir_model_class

from services.intake.app import build_app as build_intake
from services.intake.docs import INTAKE_EXAMPLE
from services.planner import fhir_api as planner_fhir
from services.planner.api import router as planner_router
from services.planner.handlers import handlers as planner_handlers
from services.scheduler import fhir_api as scheduler_fhir
from services.scheduler.api import router as scheduler_router
from services.scheduler.handlers import handlers as scheduler_handlers
from shared.codec import decode_data
from shared.envelope import Envelope
from shared.events import EventData, VisitBooked
from shared.events.notifications import CheckinReplied
from shared.events.visits import VisitCompleted
from shared.fhir_http import FHIR_JSON
from shared.infra import Infra
from shared.service import build_service
from shared.settings import PlannerSettings, SchedulerSettings
from tests.conftest import DEMO_CHAIN
from tests.integration.test_client_merge import START, Service, envelope_of, serving
from tests.support import SettableClock, TopicLog, intake_settings

pytestmark = pytest.mark.integration

BEAVERTON = {"Authorization": "Bearer demo-frontdesk-beaverton"}
BROOKLYN = {"Authorization": "Bearer demo-frontdesk-brooklyn"}
ADMIN = {"Authorization": "Bearer demo-admin"}


@dataclass
class Clinic:
    intake: Service
    planner: Service
    scheduler: Service
    clock: SettableClock

    async def flow(self, envelope: Envelope) -> list[Envelope]:
        """Hand ``envelope`` to the planner and scheduler, then what they produce, until
        nothing new comes out; every envelope produced."""
        produced: list[Envelope] = []
        queue = [envelope]
        while queue:
            current = queue.pop(0)
            for service in (self.planner, self.scheduler):
                handle = service.handlers.get(current.type)
                if handle is not None:
                    outputs = await handle(current, decode_data(current))
                    queue += [o.envelope for o in outputs]
                    produced += [o.envelope for o in outputs]
        return produced

    async def event(self, data: EventData) -> list[Envelope]:
        return await self.flow(envelope_of(data, self.clock.now(), event_id=None))


@pytest.fixture
async def clinic(infra: Infra) -> AsyncIterator[Clinic]:
    namespace = f"test-fhir-{uuid.uuid4().hex[:8]}"
    common: dict[str, Any] = {
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap_servers,
        "REDIS_URL": infra.redis_url,
        "CLINICFLOW_REDIS_NAMESPACE": namespace,
        "CLINICFLOW_CHAIN_CONFIG": str(DEMO_CHAIN),
        "CLINICFLOW_ENV": "test",
        "API_RATE_LIMIT_PER_MINUTE": 60_000,
        "API_RATE_LIMIT_BURST": 10_000,
    }
    apps = {
        "intake": (build_intake(intake_settings(infra, namespace)), lambda runtime: {}),
        "planner": (
            build_service(
                service="planner",
                settings=PlannerSettings(**common),
                description="planner under test",
                routers=[planner_router, planner_fhir.router],
            ),
            planner_handlers,
        ),
        "scheduler": (
            build_service(
                service="scheduler",
                settings=SchedulerSettings(**common),
                description="scheduler under test",
                routers=[scheduler_router, scheduler_fhir.router],
            ),
            scheduler_handlers,
        ),
    }
    clock = SettableClock(START)
    async with AsyncExitStack() as stack:
        services = {
            name: await stack.enter_async_context(serving(app, clock, factory))
            for name, (app, factory) in apps.items()
        }
        yield Clinic(**services, clock=clock)


async def admitted(clinic: Clinic, topics: TopicLog, document: dict[str, Any]) -> Envelope:
    """The intake through the front door, and its ``intake.submitted`` off the topic."""
    answer = await clinic.intake.http.post("/v1/intakes", json=document, headers=BEAVERTON)
    assert answer.status_code == 202, answer.text
    intake_id = answer.json()["intake_id"]
    [event] = await topics.wait_for(
        lambda: topics.events(type="intake.submitted", correlationid=intake_id) or None
    )
    return Envelope.model_validate(event)


def validated(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` as fhir.resources' R4B model of its type takes it."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resource


def searchset_of(answer: httpx.Response, resource_type: str) -> list[dict[str, Any]]:
    """The resources of a searchset answer, each validated; the Bundle too."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(FHIR_JSON)
    bundle = validated(answer.json())
    assert bundle["type"] == "searchset"
    assert bundle["total"] == len(bundle["entry"])
    assert bundle["link"][0]["relation"] == "self"
    resources = []
    for entry in bundle["entry"]:
        resource = validated(entry["resource"])
        assert resource["resourceType"] == resource_type
        assert entry["fullUrl"] == f"http://service/fhir/r4/{resource_type}/{resource['id']}"
        assert entry["search"] == {"mode": "match"}
        resources.append(resource)
    return resources


async def test_a_journey_reads_back_as_fhir_with_the_keys_scopes(
    clinic: Clinic, topics: TopicLog
) -> None:
    document = copy.deepcopy(INTAKE_EXAMPLE)
    document["client"]["email"] = f"fhir-{uuid.uuid4().hex[:8]}@example.org"
    document["client"]["phone"] = None
    document["goals"] = ["turn my head without pain", "sleep through the night"]
    produced = await clinic.flow(await admitted(clinic, topics, document))
    [plan] = [e.data for e in produced if e.type == "plan.created"]
    client_id, plan_id = plan["client_id"], plan["plan_id"]
    visits = [VisitBooked.model_validate(e.data) for e in produced if e.type == "visit.booked"]
    assert len(visits) >= 3, [e.type for e in produced]
    first, second = visits[0], visits[1]

    # the first visit is held: pain 7 carried in, 4 after; the second is cancelled
    clinic.clock.at = first.start + timedelta(minutes=50)
    done = await clinic.scheduler.http.post(
        f"/v1/visits/{first.visit_id}/complete",
        json={"pain_before": 7, "pain_after": 4, "techniques": ["ischemic_compression"]},
        headers=ADMIN,
    )
    assert done.status_code == 202, done.text
    await clinic.event(VisitCompleted.model_validate(done.json()["data"]))
    cancel = await clinic.scheduler.http.post(
        f"/v1/visits/{second.visit_id}/cancel", json={"by": "client"}, headers=BEAVERTON
    )
    assert cancel.status_code == 202, cancel.text
    clinic.clock.at = first.start + timedelta(days=1)
    checkin = CheckinReplied(
        notification_id=f"checkin-{uuid.uuid4().hex[:8]}",
        client_id=client_id,
        location_id="beaverton",
        visit_id=first.visit_id,
        plan_id=plan_id,
        pain=5,
        channel="sms",
        replied_at=clinic.clock.now().astimezone(UTC),
    )
    await clinic.event(checkin)

    # a second client, with a deep vein thrombosis: declined, referred to a physician
    declined_doc = copy.deepcopy(document)
    declined_doc["client"] = {**document["client"], "name": "Dana Decline"}
    declined_doc["client"]["email"] = f"fhir-dvt-{uuid.uuid4().hex[:8]}@example.org"
    declined_doc["health"] = {"contraindications": [{"code": "dvt"}], "precautions": []}
    declined_produced = await clinic.flow(await admitted(clinic, topics, declined_doc))
    [declined] = [e.data for e in declined_produced if e.type == "plan.declined"]
    assert declined["referral"]["recommended"] is True

    # Patient (intake)
    answer = await clinic.intake.http.get(f"/fhir/r4/Patient/{client_id}", headers=BEAVERTON)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith(FHIR_JSON)
    patient = validated(answer.json())
    assert patient["id"] == client_id and patient["name"] == [{"text": "Jordan Rivera"}]
    assert {"system": "email", "value": document["client"]["email"]} in patient["telecom"]

    # CarePlan (planner): the plan, its phases, the intake's goals
    path = f"/fhir/r4/CarePlan?patient={client_id}"
    [care_plan] = searchset_of(await clinic.planner.http.get(path, headers=BEAVERTON), "CarePlan")
    assert care_plan["id"] == plan_id and care_plan["status"] == "active"
    assert care_plan["meta"]["versionId"] == str(plan["version"])
    assert len(care_plan["activity"]) == len(plan["phases"])
    assert [g["description"]["text"] for g in care_plan["contained"]] == document["goals"]
    read = await clinic.planner.http.get(f"/fhir/r4/CarePlan/{plan_id}", headers=BEAVERTON)
    assert read.status_code == 200 and validated(read.json()) == care_plan

    # Observation (planner): before and after the visit, the check-in; LOINC 72514-3
    for code in ("72514-3", "http://loinc.org|72514-3"):
        path = f"/fhir/r4/Observation?patient=Patient/{client_id}&code={code}"
        readings = searchset_of(
            await clinic.planner.http.get(path, headers=BEAVERTON), "Observation"
        )
        assert [r["valueInteger"] for r in readings] == [7, 4, 5]
        assert [r["method"]["coding"][0]["code"] for r in readings] == [
            "before-visit",
            "after-visit",
            "checkin",
        ]
        assert all(r["code"]["coding"][0]["code"] == "72514-3" for r in readings)
        assert all(r["subject"] == {"reference": f"Patient/{client_id}"} for r in readings)
    other = f"/fhir/r4/Observation?patient={client_id}&code=http://loinc.org|8480-6"
    assert (
        searchset_of(await clinic.planner.http.get(other, headers=BEAVERTON), "Observation") == []
    )

    # Condition (planner): the local skin condition on the intake behind the plan
    path = f"/fhir/r4/Condition?patient={client_id}"
    [condition] = searchset_of(await clinic.planner.http.get(path, headers=BEAVERTON), "Condition")
    assert condition["code"]["coding"][0]["code"] == "skin_condition"
    assert condition["bodySite"][0]["coding"][0]["code"] == "shoulder"

    # ServiceRequest (planner): the declined client's referral; none for the planned one
    path = f"/fhir/r4/ServiceRequest?patient={declined['client_id']}"
    [referral] = searchset_of(
        await clinic.planner.http.get(path, headers=BEAVERTON), "ServiceRequest"
    )
    assert referral["intent"] == "proposal" and referral["performerType"]["text"]
    assert referral["subject"] == {"reference": f"Patient/{declined['client_id']}"}
    path = f"/fhir/r4/ServiceRequest?patient={client_id}"
    assert (
        searchset_of(await clinic.planner.http.get(path, headers=BEAVERTON), "ServiceRequest") == []
    )

    # Appointment (scheduler): fulfilled, cancelled, the rest booked
    path = f"/fhir/r4/Appointment?patient={client_id}"
    appointments = searchset_of(
        await clinic.scheduler.http.get(path, headers=BEAVERTON), "Appointment"
    )
    status = {a["id"]: a["status"] for a in appointments}
    assert status[first.visit_id] == "fulfilled" and status[second.visit_id] == "cancelled"
    assert {status[v.visit_id] for v in visits[2:]} == {"booked"}
    fulfilled = next(a for a in appointments if a["id"] == first.visit_id)
    observed = {r["id"] for r in readings[:2]}
    assert observed <= {s["reference"].split("/")[1] for s in fulfilled["supportingInformation"]}
    read = await clinic.scheduler.http.get(
        f"/fhir/r4/Appointment/{first.visit_id}", headers=BEAVERTON
    )
    assert read.status_code == 200 and validated(read.json()) == fulfilled

    await _scopes(clinic, client_id, plan_id, first.visit_id)


async def _scopes(clinic: Clinic, client_id: str, plan_id: str, visit_id: str) -> None:
    """Another location's key finds nothing, as the /v1 reads of the same records; no
    key is a 401; an unknown patient is an empty searchset, an unknown read a 404."""
    reads = [
        (clinic.intake, f"/fhir/r4/Patient/{client_id}", f"/v1/clients/{client_id}"),
        (clinic.planner, f"/fhir/r4/CarePlan/{plan_id}", f"/v1/clients/{client_id}/plan"),
        (
            clinic.scheduler,
            f"/fhir/r4/Appointment/{visit_id}",
            f"/v1/clients/{client_id}/visits",
        ),
    ]
    for service, path, v1 in reads:
        refused = await service.http.get(path, headers=BROOKLYN)
        assert (
            refused.status_code == 404 == (await service.http.get(v1, headers=BROOKLYN)).status_code
        )
        assert validated(refused.json())["issue"][0]["code"] == "not-found"
        unknown = await service.http.get(path.rsplit("/", 1)[0] + "/no-such-id", headers=ADMIN)
        assert unknown.status_code == 404
        assert validated(unknown.json())["issue"][0]["code"] == "not-found"
        assert (await service.http.get(path)).status_code == 401
    searches = [
        (clinic.planner, "CarePlan"),
        (clinic.planner, "Observation"),
        (clinic.planner, "Condition"),
        (clinic.planner, "ServiceRequest"),
        (clinic.scheduler, "Appointment"),
    ]
    for service, resource_type in searches:
        path = f"/fhir/r4/{resource_type}?patient={client_id}"
        assert searchset_of(await service.http.get(path, headers=BROOKLYN), resource_type) == []
        unknown = f"/fhir/r4/{resource_type}?patient=no-such-client"
        assert searchset_of(await service.http.get(unknown, headers=ADMIN), resource_type) == []
        assert (await service.http.get(path)).status_code == 401
        missing = await service.http.get(f"/fhir/r4/{resource_type}", headers=ADMIN)
        assert missing.status_code == 400
        assert validated(missing.json())["issue"][0]["code"] == "required"
