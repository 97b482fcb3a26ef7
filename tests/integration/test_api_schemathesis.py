"""Every service's HTTP API, fuzzed from its own OpenAPI document with schemathesis:
valid and invalid requests, without a key and with the admin key, against each
service served by uvicorn on the run's broker and Redis. No request may get a 5xx,
and every answer must match the schema the document gives for its status.

The consuming services are served with their routes only (their consumers have tests
of their own, and would join the consumer groups of the end-to-end stack); intake is
its whole app. Examples are bounded: a few per operation, mode and key."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.dashboard import api as dashboard_api
from services.dashboard.probes import Prober
from services.intake.app import build_app as build_intake
from services.intake.docs import INTAKE_EXAMPLE
from services.notifier import api as notifier_api
from services.notifier import sms_replies_api
from services.planner import api as planner_api
from services.planner import fhir_api as planner_fhir
from services.scheduler import api as scheduler_api
from services.scheduler import calendar_api, waitlist_api
from services.scheduler import fhir_api as scheduler_fhir
from services.scheduler import pages_api as scheduler_pages
from services.scheduler.handlers import handlers as scheduler_handlers
from shared.codec import wrap
from shared.envelope import Trace
from shared.events import VisitBooked
from shared.infra import Infra
from shared.runtime import Runtime
from shared.service import build_service
from shared.settings import (
    DashboardSettings,
    NotifierSettings,
    PlannerSettings,
    SchedulerSettings,
)
from tests.conftest import DEMO_CHAIN
from tests.integration.test_scheduler_visits import a_plan
from tests.support import intake_settings, served

pytestmark = pytest.mark.integration

EXAMPLES = 6  # per operation, generation mode and key
ADMIN = {"Authorization": "Bearer demo-admin"}
FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
# server-sent events never end; the stream has its own test (test_dashboard.py)
ENDLESS = {("GET", "/v1/stream")}


def _common(infra: Infra, namespace: str) -> dict[str, Any]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap_servers,
        "REDIS_URL": infra.redis_url,
        "CLINICFLOW_REDIS_NAMESPACE": namespace,
        "CLINICFLOW_CHAIN_CONFIG": str(DEMO_CHAIN),
        "CLINICFLOW_ENV": "test",
        "API_RATE_LIMIT_PER_MINUTE": 600_000,
        "API_RATE_LIMIT_BURST": 100_000,
        # the document's bearer scheme has schemathesis send keys of its own making: unknown
        # keys, which would soon block the address for the admin key's requests too
        "API_FAILED_KEYS_PER_MINUTE": 600_000,
        "API_FAILED_KEYS_BURST": 100_000,
    }


def _routes_only(service: str, routers: list[Any]) -> Callable[[Any], FastAPI]:
    def build(settings: Any) -> FastAPI:
        return build_service(
            service=service, settings=settings, description=f"{service} under test", routers=routers
        )

    return build


def _dashboard(settings: DashboardSettings) -> FastAPI:
    app = _routes_only("dashboard", [dashboard_api.router])(settings)
    app.state.prober = Prober({}, settings.poll_interval_s)
    app.state.flow_window_minutes = settings.flow_window_minutes
    return app


def services(infra: Infra, namespace: str) -> dict[str, tuple[Callable[[Any], FastAPI], Any]]:
    common = _common(infra, namespace)
    return {
        "intake": (build_intake, intake_settings(infra, namespace, **common)),
        "planner": (
            _routes_only("planner", [planner_api.router, planner_fhir.router]),
            PlannerSettings(**common),
        ),
        "scheduler": (
            _routes_only(
                "scheduler",
                [
                    scheduler_api.router,
                    calendar_api.router,
                    waitlist_api.router,
                    scheduler_pages.router,
                    scheduler_fhir.router,
                ],
            ),
            SchedulerSettings(**common),
        ),
        "notifier": (
            _routes_only("notifier", [notifier_api.router, sms_replies_api.router]),
            NotifierSettings(**common),
        ),
        "dashboard": (_dashboard, DashboardSettings(**common)),
    }


Seeds = dict[str, str]  # path parameter -> the id of a record that exists


async def seed_intake(http: httpx.AsyncClient, app: FastAPI) -> Seeds:
    """A client, through the intake API as a front desk would."""
    answer = await http.post("/v1/intakes", json=INTAKE_EXAMPLE, headers=FRONT_DESK)
    assert answer.status_code == 202, answer.text
    client_id = answer.json()["client_id"]
    return {"client_id": client_id, "patient_id": client_id, "location_id": "beaverton"}


async def seed_scheduler(http: httpx.AsyncClient, app: FastAPI) -> Seeds:
    """A plan's booked visits, handed to the scheduler as its consumer would."""
    runtime: Runtime = app.state.runtime
    plan = a_plan("fuzz")
    cause = wrap(
        plan,
        event_id=str(uuid.uuid4()),
        service="planner",
        subject=plan.plan_id,
        trace=Trace(chainid=runtime.chain.chain.id, correlationid=plan.plan_id),
        time=runtime.clock.now(),
    )
    published = await scheduler_handlers(runtime)[plan.event_type](cause, plan)
    events = [o.envelope.model_dump(mode="json") for o in published]
    visits = [VisitBooked.model_validate(e["data"]) for e in events if e["type"] == "visit.booked"]
    assert visits, "the plan booked no visit"
    return {
        "visit_id": visits[0].visit_id,
        "appointment_id": visits[0].visit_id,
        "plan_id": plan.plan_id,
        "client_id": plan.client_id,
        "location_id": "beaverton",
    }


async def seed_location(http: httpx.AsyncClient, app: FastAPI) -> Seeds:
    return {"location_id": "beaverton"}


SEEDS: dict[str, Callable[[httpx.AsyncClient, FastAPI], Awaitable[Seeds]]] = {
    "intake": seed_intake,
    "scheduler": seed_scheduler,
}


@dataclass
class Findings:
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)  # answers of the API, by status


def fuzz(base_url: str, seeds: Seeds, findings: Findings) -> None:
    """Every operation of the service at ``base_url``: positive and negative cases,
    without and with a key, and positive cases with the key on the records in
    ``seeds`` (so that answers other than errors are checked against the schema
    too); each failing check is recorded once per operation."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in ENDLESS:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for headers in ({}, ADMIN):
                _fuzz_operation(operation, mode, headers, base_url, findings)
        known = {n: seeds[n] for n in re.findall(r"\{(\w+)\}", operation.path) if n in seeds}
        if known:
            _fuzz_operation(
                operation, GenerationMode.POSITIVE, ADMIN, base_url, findings, path=known
            )


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    headers: dict[str, str],
    base_url: str,
    findings: Findings,
    *,
    path: Seeds | None = None,
) -> None:
    label = f"{operation.method.upper()} {operation.path} [{mode.value}, key={bool(headers)}"
    label += f", records={sorted(path)}]" if path else "]"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path))
    def run(case: Any) -> None:
        findings.requests += 1
        answer = case.call_and_validate(
            base_url=base_url, headers=headers, checks=CHECKS, timeout=30
        )
        if operation.path.startswith("/v1/"):  # the API, not health and metrics
            findings.statuses[answer.status_code] = findings.statuses.get(answer.status_code, 0) + 1

    try:
        run()
    except Unsatisfiable:
        pass  # nothing to make invalid (no parameters, or strings that take anything)
    except (Exception, BaseExceptionGroup) as failure:  # keep going: report every one
        findings.failures.append(f"{label}: {str(failure)[:1500]}")


@pytest.mark.parametrize("name", ["intake", "planner", "scheduler", "notifier", "dashboard"])
async def test_no_input_yields_a_server_error_or_breaks_the_schema(infra: Infra, name: str) -> None:
    build, service_settings = services(infra, f"test-fuzz-{uuid.uuid4().hex[:8]}")[name]
    built: list[FastAPI] = []

    def keep(settings: Any) -> FastAPI:
        built.append(build(settings))
        return built[0]

    findings = Findings()
    async with served(keep, service_settings) as url, httpx.AsyncClient(base_url=url) as http:
        seeds = await SEEDS.get(name, seed_location)(http, built[0])
        # schemathesis is synchronous (requests): it runs beside the server's event loop
        await asyncio.to_thread(fuzz, url, seeds, findings)
    assert findings.requests > 0
    assert not findings.failures, "\n\n".join(findings.failures)
    if name in SEEDS:  # the records were found: answers other than errors were checked too
        assert any(200 <= status < 300 for status in findings.statuses), findings.statuses


NASTY_BODIES: list[tuple[str, bytes]] = [
    ("application/json", b"\xff\xfe\x00\x80 not utf-8"),
    ("application/json", b'{"a": "\\ud800"}'),  # a lone surrogate
    ("application/json", b"[" * 5000),
    ("application/x-www-form-urlencoded", b"\xff=\xfe&%zz=%"),
    ("multipart/form-data", b"--x\r\n\xff"),  # no boundary
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\n\xff"),
    ("text/plain; charset=utf-7", b"+AGEAYgBj-"),
    ("", b"\x00\x01\x02"),
]
ODD_QUERY = "?sig=%FF%FE%00&date=%ZZ&from=\u2603&limit=-1&location=%00"


@pytest.mark.parametrize("name", ["intake", "planner", "scheduler", "notifier", "dashboard"])
async def test_hand_made_malformed_requests_get_a_json_4xx(infra: Infra, name: str) -> None:
    """Every operation, every method it has, with bodies no generator thinks of:
    not UTF-8, lone surrogates, deep nesting, broken forms, odd content types."""
    build, service_settings = services(infra, f"test-fuzz-{uuid.uuid4().hex[:8]}")[name]
    async with served(build, service_settings) as url, httpx.AsyncClient(base_url=url) as http:
        document = (await http.get("/openapi.json")).json()
        for path, methods in document["paths"].items():
            concrete = re.sub(r"\{[^}]+\}", "x%E2%98%83", path)
            for method in methods:
                if (method.upper(), path) in ENDLESS:
                    continue
                for key in ({}, ADMIN):
                    for content_type, body in NASTY_BODIES:
                        headers = {
                            **key,
                            **({"content-type": content_type} if content_type else {}),
                        }
                        answer = await http.request(
                            method.upper(), concrete + ODD_QUERY, content=body, headers=headers
                        )
                        where = f"{method.upper()} {path} {content_type!r} key={bool(key)}"
                        assert answer.status_code < 500, (where, answer.text)
                        if answer.status_code >= 400:
                            body = answer.json()
                            # the FHIR routes answer their own errors as FHIR does
                            fhir_error = path.startswith("/fhir/") and (
                                body.get("resourceType") == "OperationOutcome"
                            )
                            assert "detail" in body or fhir_error, (where, answer.text)
