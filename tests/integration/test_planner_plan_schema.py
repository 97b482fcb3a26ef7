"""The planner's plan endpoints answer what their OpenAPI document says: every body
of ``GET /plan`` and ``GET /plan/history`` - an active plan with progress, a
completed plan, a decline - validates against the response schema the app
publishes, on the real broker and Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import jsonschema
import pytest

from services.planner.api import router
from services.planner.handlers import handlers
from shared.events import EventData, IntakeSubmitted
from shared.events.intake import Screening
from shared.events.plans import PlanCreated
from shared.events.visits import VisitCompleted
from shared.infra import Infra
from shared.service import build_service
from shared.settings import PlannerSettings
from tests.conftest import DEMO_CHAIN
from tests.integration.test_client_merge import START, Service, an_intake, envelope_of, serving
from tests.support import SettableClock

pytestmark = pytest.mark.integration
ADMIN = {"Authorization": "Bearer demo-admin"}


@dataclass
class Planner:
    service: Service
    openapi: dict[str, Any]


@pytest.fixture
async def planner(infra: Infra) -> AsyncIterator[Planner]:
    settings = PlannerSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
        REDIS_URL=infra.redis_url,
        CLINICFLOW_REDIS_NAMESPACE=f"test-plan-schema-{uuid.uuid4().hex[:8]}",
        CLINICFLOW_CHAIN_CONFIG=str(DEMO_CHAIN),
        CLINICFLOW_ENV="test",
        API_RATE_LIMIT_PER_MINUTE=60_000,
        API_RATE_LIMIT_BURST=10_000,
    )
    app = build_service(
        service="planner", settings=settings, description="planner under test", routers=[router]
    )
    async with serving(app, SettableClock(START), handlers) as running:
        yield Planner(service=running, openapi=app.openapi())


async def handle(planner: Planner, data: EventData) -> list[dict[str, Any]]:
    envelope = envelope_of(data, START, event_id=None)
    outputs = await planner.service.handlers[data.event_type](envelope, data)
    return [{"type": o.envelope.type, **o.envelope.data} for o in outputs]


def outcome(plan: dict[str, Any], n: int, pain: int) -> VisitCompleted:
    return VisitCompleted(
        visit_id=f"{plan['plan_id']}-{n}",
        plan_id=plan["plan_id"],
        client_id=plan["client_id"],
        location_id=plan["location_id"],
        therapist_id="t-ana",
        pain_before=pain,
        pain_after=max(0, pain - 2),
        techniques=["ischemic_compression"],
        completed_at=START + timedelta(days=3 * n),
    )


def response_schema(spec: dict[str, Any], path: str) -> dict[str, Any]:
    content = spec["paths"][path]["get"]["responses"]["200"]["content"]
    return {**content["application/json"]["schema"], "components": spec["components"]}


async def test_every_plan_body_validates_against_the_published_schema(planner: Planner) -> None:
    active = an_intake("active", "beaverton", email="a@example.com", onset=date(2026, 6, 1))
    done = an_intake("done", "beaverton", email="d@example.com", onset=date(2026, 6, 1))
    declined = an_intake("declined", "beaverton", email="r@example.com", onset=date(2026, 6, 1))
    declined = declined.model_copy(update={"screening": Screening(outcome="refer")})
    [created] = await handle(planner, active)
    assert created["type"] == PlanCreated.event_type
    await handle(planner, outcome(created, 1, 7))  # progress with no improvement yet
    [finished] = await handle(planner, done)
    await handle(planner, outcome(finished, 1, 6))
    [completion] = await handle(planner, outcome(finished, 2, 1))
    assert completion["type"] == "plan.completed"
    [decline] = await handle(planner, declined)
    assert decline["type"] == "plan.declined"

    spec, http = planner.openapi, planner.service.http
    for path in ("/v1/clients/{client_id}/plan", "/v1/clients/{client_id}/plan/history"):
        validator = jsonschema.Draft202012Validator(response_schema(spec, path))
        for intake in (active, done, declined):
            assert isinstance(intake, IntakeSubmitted)
            url = path.format(client_id=intake.client.client_id)
            response = await http.get(url, headers=ADMIN)
            assert response.status_code == 200, response.text
            errors = [
                f"{list(e.absolute_path)}: {e.message}"
                for e in validator.iter_errors(response.json())
            ]
            assert errors == [], (url, errors)
    body = (await http.get(f"/v1/clients/{active.client.client_id}/plan", headers=ADMIN)).json()
    # the documented nulls are in the body, not left out
    assert body["progress"]["improvement"] is None and body["progress"]["sessions_done"] == 1
