"""The HTTP front door every service shares, through real apps on the real broker
and Redis: a key is checked before the body is read, unknown keys are limited per
client address, malformed input is a JSON 4xx, an unhandled error is a counted
JSON 500, and every answer carries the security headers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY

from services.dashboard import api as dashboard_api
from services.dashboard.probes import Prober
from services.intake.app import build_app as build_intake
from shared.headers import DATA_POLICY, DOCS_POLICY, PAGE_POLICY
from shared.infra import Infra, free_port
from shared.service import build_service
from shared.settings import DashboardSettings, IntakeSettings
from tests.support import intake_settings

pytestmark = pytest.mark.integration

FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
JSON = {"content-type": "application/json"}
SECURITY = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


@asynccontextmanager
async def running(app: FastAPI, *, address: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(address, 50_000))
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
            yield http


def intake(infra: Infra, **overrides: Any) -> IntakeSettings:
    return intake_settings(infra, f"test-door-{uuid.uuid4().hex[:8]}", **overrides)


@pytest.fixture
async def http(infra: Infra) -> AsyncIterator[httpx.AsyncClient]:
    async with running(build_intake(intake(infra))) as client:
        yield client


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    """A body sent chunked: without a Content-Length to refuse it by."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_a_missing_or_unknown_key_is_a_401_whatever_the_body(
    http: httpx.AsyncClient,
) -> None:
    bodies: list[Callable[[], dict[str, Any]]] = [
        lambda: {"content": b"{not json"},
        lambda: {"content": b"\xff\xfe\x00 not utf-8", "headers": JSON},
        lambda: {"content": b"<xml/>", "headers": {"content-type": "text/xml"}},
        lambda: {"json": {"location_id": 7}},
        lambda: {"content": chunks(b"x" * (1024 * 1024), 64 * 1024)},  # over the limit
    ]
    for body in bodies:
        for key in ({}, {"Authorization": "Bearer not-a-key-at-all"}):
            sent = body()
            headers = {**sent.pop("headers", {}), **key}
            answer = await http.post("/v1/intakes", **sent, headers=headers)
            assert answer.status_code == 401, (sent, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
            assert isinstance(answer.json()["detail"], str)


async def test_malformed_input_with_a_key_is_a_json_4xx(http: httpx.AsyncClient) -> None:
    cases: list[tuple[dict[str, Any], int]] = [
        ({"content": b"{not json", "headers": JSON}, 422),
        ({"content": b"\xff\xfe\x00", "headers": JSON}, 400),
        ({"content": b"<xml/>", "headers": {"content-type": "text/xml"}}, 422),
        ({"content": b"a=1", "headers": {"content-type": "multipart/form-data"}}, 422),
        ({"content": chunks(b"x" * (1024 * 1024), 64 * 1024)}, 413),
    ]
    for body, expected in cases:
        headers = {**body.pop("headers", {}), **FRONT_DESK}
        answer = await http.post("/v1/intakes", **body, headers=headers)
        assert answer.status_code == expected, (body, answer.text)
        assert "detail" in answer.json()
    for path in ("/v1/clients/%00%ff%fe", "/v1/clients/..%2f..%2fetc", "/v1/%E2%98%83?x=%ff"):
        odd = await http.get(path, headers=FRONT_DESK)
        assert odd.status_code == 404 and "detail" in odd.json(), (path, odd.text)


async def test_unknown_keys_from_one_address_are_limited_and_then_so_is_every_key(
    infra: Infra,
) -> None:
    settings = intake(infra, API_FAILED_KEYS_BURST=3, API_FAILED_KEYS_PER_MINUTE=1)
    app = build_intake(settings)
    async with running(app, address="192.0.2.10") as guesser:
        for n in range(3):
            guess = await guesser.get("/v1/clients/c-1", headers={"Authorization": f"Bearer g{n}"})
            assert guess.status_code == 401
        limited = await guesser.get("/v1/clients/c-1", headers={"Authorization": "Bearer g4"})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        # a valid key found by guessing must not be told apart: it is refused too
        found = await guesser.get("/v1/clients/c-1", headers=FRONT_DESK)
        assert found.status_code == 429
        # a missing key alone never counts as a guess, and routes without a key still answer
        assert (await guesser.get("/healthz")).status_code == 200
    async with running(app, address="192.0.2.11") as neighbour:
        other = await neighbour.get("/v1/clients/c-1", headers=FRONT_DESK)
        assert other.status_code == 404  # authenticated; the client does not exist


async def test_a_missing_key_never_counts_as_a_guess(infra: Infra) -> None:
    settings = intake(infra, API_FAILED_KEYS_BURST=1, API_FAILED_KEYS_PER_MINUTE=1)
    async with running(build_intake(settings), address="192.0.2.12") as caller:
        for missing in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}):
            for _ in range(3):
                answer = await caller.get("/v1/clients/c-1", headers=missing)
                assert answer.status_code == 401, (missing, answer.text)
        guess = await caller.get("/v1/clients/c-1", headers={"Authorization": "Bearer g1"})
        assert guess.status_code == 401  # the allowance of one failed key was untouched
        again = await caller.get("/v1/clients/c-1", headers={"Authorization": "Bearer g2"})
        assert again.status_code == 429


async def test_answers_carry_the_security_headers(http: httpx.AsyncClient, infra: Infra) -> None:
    for answer in (
        await http.get("/v1/clients/c-1", headers=FRONT_DESK),
        await http.post("/v1/intakes", json={}),
        await http.get("/healthz"),
    ):
        assert answer.headers.items() >= SECURITY.items(), answer.headers
        assert answer.headers["content-security-policy"] == DATA_POLICY
    docs = await http.get("/docs")
    assert docs.headers["content-security-policy"] == DOCS_POLICY

    settings = DashboardSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
        REDIS_URL=infra.redis_url,
        CLINICFLOW_REDIS_NAMESPACE=f"test-door-{uuid.uuid4().hex[:8]}",
        CLINICFLOW_ENV="test",
    )
    app = build_service(
        service="dashboard", settings=settings, description="t", routers=[dashboard_api.router]
    )
    app.state.prober = Prober({}, settings.poll_interval_s)
    async with running(app) as dashboard:
        page = await dashboard.get("/")
        assert page.status_code == 200 and page.headers.items() >= SECURITY.items()
        assert page.headers["content-security-policy"] == PAGE_POLICY


def _count(service: str, route: str, status: str, method: str = "GET") -> float:
    labels = {"service": service, "method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("clinicflow_http_requests_total", labels) or 0.0


async def test_an_unhandled_error_is_a_counted_json_500(infra: Infra) -> None:
    broken = APIRouter()

    @broken.get("/v1/broken")
    async def fails() -> None:
        raise RuntimeError("a bug")

    service = f"door-{uuid.uuid4().hex[:6]}"
    app = build_service(service=service, settings=intake(infra), description="t", routers=[broken])
    async with running(app) as http:
        answer = await http.get("/v1/broken")
        refused = await http.get("/v1/clients/c-1")
    assert answer.status_code == 500
    assert answer.json() == {"detail": "internal error; it has been logged"}
    assert answer.headers.items() >= SECURITY.items()
    assert _count(service, "/v1/broken", "500") == 1
    assert refused.status_code == 404  # the route is not in this app: unmatched
    assert _count(service, "unmatched", "404") == 1


async def test_an_unreachable_state_store_is_a_503_before_the_body(infra: Infra) -> None:
    settings = intake(infra, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    async with running(build_intake(settings)) as http:
        answer = await http.post("/v1/intakes", content=b"{", headers=FRONT_DESK)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5" and "Redis" in answer.json()["detail"]


async def test_refusals_of_the_layers_inside_are_counted_under_their_route(
    http: httpx.AsyncClient,
) -> None:
    before = {code: _count("intake", "/v1/intakes", code, "POST") for code in ("401", "413")}
    unauthenticated = await http.post("/v1/intakes", content=b"{")
    too_large = await http.post("/v1/intakes", content=b"x" * (1024 * 1024), headers=FRONT_DESK)
    assert (unauthenticated.status_code, too_large.status_code) == (401, 413)
    assert _count("intake", "/v1/intakes", "401", "POST") == before["401"] + 1
    assert _count("intake", "/v1/intakes", "413", "POST") == before["413"] + 1
