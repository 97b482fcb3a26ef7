"""Who may reach what in the intake service: clients, assessments, location
scope on every endpoint that takes an id, rate limits, body limits, and the
OpenAPI document that tells integrators all of it."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
import yaml

from services.intake.app import build_app
from services.intake.docs import INTAKE_EXAMPLE
from shared.infra import Infra
from shared.vocabulary import ContraindicationCode, PrecautionCode, Quality, Region
from tests.conftest import DEMO_CHAIN
from tests.support import TopicLog, in_process_service, intake_settings

BEAVERTON = {"Authorization": "Bearer demo-frontdesk-beaverton"}
BROOKLYN = {"Authorization": "Bearer demo-frontdesk-brooklyn"}
ANA = {"Authorization": "Bearer demo-therapist-ana"}  # therapist at beaverton
CHLOE = {"Authorization": "Bearer demo-therapist-chloe"}  # therapist at brooklyn
OPS = {"Authorization": "Bearer demo-ops"}
LIMITED = {"Authorization": "Bearer test-limited-frontdesk"}
ADMIN_BROOKLYN = {"Authorization": "Bearer test-admin-brooklyn"}


@pytest.fixture(scope="module")
def chain_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chain = yaml.safe_load(DEMO_CHAIN.read_text())
    chain["api_keys"].append(
        {
            "key": "test-limited-frontdesk",
            "role": "frontdesk",
            "locations": ["beaverton"],
            "rate_limit_per_minute": 6,
            "rate_limit_burst": 3,
        }
    )
    chain["api_keys"].append(
        {"key": "test-admin-brooklyn", "role": "admin", "locations": ["brooklyn"]}
    )
    path = tmp_path_factory.mktemp("chain") / "chain.yaml"
    path.write_text(yaml.safe_dump(chain))
    return path


@pytest.fixture(scope="module")
async def intake(
    infra: Infra, namespace: str, chain_file: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = intake_settings(
        infra,
        namespace,
        CLINICFLOW_CHAIN_CONFIG=chain_file,
        INTAKE_MAX_BODY_BYTES=16_384,
    )
    async with in_process_service(build_app, settings) as http:
        yield http


def document(location: str = "beaverton", **client: Any) -> dict[str, Any]:
    body = copy.deepcopy(INTAKE_EXAMPLE)
    body["location_id"] = location
    body["client"] = {"name": "Riley Return", **client}
    return body


async def submitted(http: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str]) -> str:
    answer = await http.post("/v1/intakes", json=body, headers=headers)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["client_id"])


async def test_a_returning_client_keeps_their_id_and_staff_in_scope_see_them(
    intake: httpx.AsyncClient,
) -> None:
    email = f"riley-{uuid.uuid4().hex[:8]}@example.com"
    phone = f"+1503555{uuid.uuid4().int % 10_000:04d}"
    first = await submitted(intake, document(email=email), BEAVERTON)
    again = await submitted(intake, document(email=email.upper(), phone=phone), BEAVERTON)
    assert again == first

    view = await intake.get(f"/v1/clients/{first}", headers=BEAVERTON)
    assert view.status_code == 200
    body = view.json()
    # a returning client's record is not overwritten: the new phone waits for a front desk
    assert body["client"]["client_id"] == first and body["client"]["phone"] is None
    assert [c["proposed"]["phone"] for c in body["contact_changes"]] == [phone]
    assert body["locations"] == ["beaverton"] and len(body["intakes"]) == 2
    assert (await intake.get(f"/v1/clients/{first}", headers=BROOKLYN)).status_code == 404
    assert (await intake.get(f"/v1/clients/{first}", headers=OPS)).status_code == 200
    assert (await intake.get(f"/v1/clients/{first}")).status_code == 401

    # the same name and e-mail at another location of the chain is the same client, and
    # that location sees what was recorded there, not the whole history
    moved = await submitted(intake, document("brooklyn", email=email), BROOKLYN)
    assert moved == first
    seen = await intake.get(f"/v1/clients/{first}", headers=BROOKLYN)
    assert seen.status_code == 200 and seen.json()["locations"] == ["brooklyn"]
    assert len(seen.json()["intakes"]) == 1 and seen.json()["contact_changes"] == []
    assert (await intake.get(f"/v1/clients/{uuid.uuid4()}", headers=OPS)).status_code == 404


async def test_a_therapist_records_an_assessment(
    intake: httpx.AsyncClient, topics: TopicLog
) -> None:
    client_id = await submitted(
        intake, document(email=f"assess-{uuid.uuid4().hex[:8]}@example.com"), BEAVERTON
    )
    assessment = {
        "location_id": "beaverton",
        "posture_findings": ["forward head posture"],
        "range_of_motion_limits": ["head rotation right 45 degrees"],
        "trigger_points": [
            {
                "muscle": "upper trapezius",
                "side": "right",
                "type": "active",
                "referral_zone": "head",
            },
            {"muscle": "sternocleidomastoid", "side": "right", "type": "latent"},
        ],
        "nerve_signs": [],
        "notes": "headache reproduced by pressure on the right upper trapezius",
    }
    url = f"/v1/clients/{client_id}/assessments"
    retry = {**ANA, "Idempotency-Key": f"assess-{client_id}"}
    recorded = await intake.post(url, json=assessment, headers=retry)
    assert recorded.status_code == 202, recorded.text
    assessment_id = recorded.json()["assessment_id"]
    replayed = await intake.post(url, json=assessment, headers=retry)
    assert replayed.json() == {"assessment_id": assessment_id}

    events = await topics.wait_for(
        lambda: topics.events(type="assessment.recorded", correlationid=assessment_id)
    )
    data = events[0]["data"]
    assert events[0]["subject"] == client_id and events[0]["locationid"] == "beaverton"
    assert data["therapist_id"] == "t-ana"
    assert data["trigger_points"][0]["tissue"] == "myofascial"
    view = (await intake.get(f"/v1/clients/{client_id}", headers=ANA)).json()
    assert [a["assessment_id"] for a in view["assessments"]] == [assessment_id]
    await topics.caught_up()
    assert len(topics.events(type="assessment.recorded", correlationid=assessment_id)) == 1

    assert (await intake.post(url, json=assessment, headers=BEAVERTON)).status_code == 403
    assert (await intake.post(url, json=assessment, headers=CHLOE)).status_code == 404
    elsewhere = {**assessment, "location_id": "brooklyn"}
    assert (await intake.post(url, json=elsewhere, headers=ANA)).status_code == 403
    bad = {**assessment, "trigger_points": [{"muscle": "x", "side": "up", "type": "active"}]}
    refused = await intake.post(url, json=bad, headers=ANA)
    assert refused.status_code == 422
    assert [e["loc"] for e in refused.json()["detail"]] == [
        ["body", "trigger_points", 0, "muscle"],  # no muscle the body map knows
        ["body", "trigger_points", 0, "side"],
    ]
    unknown = f"/v1/clients/{uuid.uuid4()}/assessments"
    assert (await intake.post(unknown, json=assessment, headers=ANA)).status_code == 404


async def test_every_endpoint_with_an_id_hides_other_locations_records(
    intake: httpx.AsyncClient,
) -> None:
    email = f"scope-{uuid.uuid4().hex[:8]}@example.com"
    client_id = await submitted(intake, document(email=email), BEAVERTON)
    changed = await intake.post(
        "/v1/intakes", json=document(email=email, phone="+15035550111"), headers=BEAVERTON
    )
    change = changed.json()["contact_change_id"]
    other = await submitted(
        intake, document(email=f"scope-{uuid.uuid4().hex[:8]}@example.com"), BEAVERTON
    )
    created = await intake.post(
        "/v1/intake-sessions", json={"location_id": "beaverton"}, headers=BEAVERTON
    )
    session = created.json()["session_id"]
    assessment = {"location_id": "brooklyn", "notes": "n"}
    recorded = await intake.post(
        f"/v1/clients/{client_id}/assessments",
        json={"location_id": "beaverton", "notes": "n"},
        headers=ANA,
    )
    assessment_id = recorded.json()["assessment_id"]
    # (method, route, concrete path, body, key of another location)
    probes: list[tuple[str, str, str, Any, dict[str, str]]] = [
        (
            "GET",
            "/v1/intake-sessions/{session_id}",
            f"/v1/intake-sessions/{session}",
            None,
            BROOKLYN,
        ),
        (
            "PATCH",
            "/v1/intake-sessions/{session_id}",
            f"/v1/intake-sessions/{session}",
            {"goals": ["x"]},
            BROOKLYN,
        ),
        (
            "POST",
            "/v1/intake-sessions/{session_id}/submit",
            f"/v1/intake-sessions/{session}/submit",
            None,
            BROOKLYN,
        ),
        ("GET", "/v1/clients/{client_id}", f"/v1/clients/{client_id}", None, BROOKLYN),
        (
            "GET",
            "/v1/clients/{client_id}/assessments/{assessment_id}",
            f"/v1/clients/{client_id}/assessments/{assessment_id}",
            None,
            BROOKLYN,
        ),
        (
            "POST",
            "/v1/clients/{client_id}/assessments",
            f"/v1/clients/{client_id}/assessments",
            assessment,
            CHLOE,
        ),
        (
            "POST",
            "/v1/clients/{client_id}/medical-checks",
            f"/v1/clients/{client_id}/medical-checks",
            {"location_id": "brooklyn", "outcome": "cleared"},
            CHLOE,
        ),
        (
            "POST",
            "/v1/clients/{client_id}/keep-apart",
            f"/v1/clients/{client_id}/keep-apart",
            {"other_client_id": other},
            BROOKLYN,
        ),
        (
            "POST",
            "/v1/clients/{client_id}/merge",
            f"/v1/clients/{client_id}/merge",
            {"merged_client_id": other},
            ADMIN_BROOKLYN,
        ),
        (
            "POST",
            "/v1/clients/{client_id}/contact-changes/{change_id}/confirm",
            f"/v1/clients/{client_id}/contact-changes/{change}/confirm",
            None,
            BROOKLYN,
        ),
        (
            "POST",
            "/v1/clients/{client_id}/contact-changes/{change_id}/decline",
            f"/v1/clients/{client_id}/contact-changes/{change}/decline",
            None,
            BROOKLYN,
        ),
        ("GET", "/fhir/r4/Patient/{patient_id}", f"/fhir/r4/Patient/{client_id}", None, BROOKLYN),
    ]
    spec = (await intake.get("/openapi.json")).json()
    app_routes = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        if "{" in path
        for method in operations
    }
    assert app_routes == {(method, route) for method, route, *_ in probes}, (
        "every endpoint that takes an id needs a cross-location probe here"
    )
    for method, _, path, body, elsewhere in probes:
        answer = await intake.request(method, path, json=body, headers=elsewhere)
        assert answer.status_code == 404, (method, path, answer.text)
        assert (await intake.request(method, path, json=body)).status_code == 401


async def test_a_key_over_its_rate_limit_gets_429_with_retry_after(
    intake: httpx.AsyncClient,
) -> None:
    answers = await asyncio.gather(
        *(intake.get(f"/v1/clients/{uuid.uuid4()}", headers=LIMITED) for _ in range(6))
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [404, 404, 404, 429, 429, 429]
    refused = next(a for a in answers if a.status_code == 429)
    assert int(refused.headers["Retry-After"]) >= 1
    assert "rate limit" in refused.json()["detail"]
    # other keys have budgets of their own
    assert (await intake.get(f"/v1/clients/{uuid.uuid4()}", headers=BEAVERTON)).status_code == 404


async def test_an_oversized_body_is_refused_with_413(intake: httpx.AsyncClient) -> None:
    body = document(email="big@example.com")
    body["history"]["notes"] = "x" * 1_900
    body["goals"] = ["y" * 1_000] * 20
    answer = await intake.post("/v1/intakes", json=body, headers=BEAVERTON)
    assert answer.status_code == 413
    assert "larger than 16384 bytes" in answer.json()["detail"]


async def test_the_openapi_document_covers_codes_errors_and_examples(
    intake: httpx.AsyncClient,
) -> None:
    spec = (await intake.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    operations = [
        (path, method, op)
        for path, item in spec["paths"].items()
        if path.startswith("/v1/")
        for method, op in item.items()
    ]
    assert len(operations) == 14
    for path, method, op in operations:
        assert op.get("description") or op.get("summary"), (path, method)
        for code in ("401", "422", "429"):
            assert code in op["responses"], (path, method, code)
        assert op["responses"]["401"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/ErrorBody"
        )
        assert op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/ValidationErrorBody"
        )
        if "{" in path:
            assert "404" in op["responses"], (path, method)
    intake_body = spec["paths"]["/v1/intakes"]["post"]["requestBody"]["content"]
    assert intake_body["application/json"]["example"]["location_id"] == "beaverton"
    patch_body = spec["paths"]["/v1/intake-sessions/{session_id}"]["patch"]["requestBody"]
    assert {"client", "complaints", "health", "consent"} <= set(
        patch_body["content"]["application/json"]["examples"]
    )

    def enum_of(schema: dict[str, Any], field: str) -> set[str]:
        prop = schema["properties"][field]
        found = prop.get("enum") or prop.get("items", {}).get("enum")
        return set(found)

    assert enum_of(schemas["Complaint"], "region") == set(get_args(Region))
    assert enum_of(schemas["Complaint"], "qualities") == set(get_args(Quality))
    assert enum_of(schemas["Contraindication"], "code") == set(get_args(ContraindicationCode))
    assert enum_of(schemas["Precaution"], "code") == set(get_args(PrecautionCode))
    assert {"history", "consent", "health", "preferences"} <= set(
        schemas["IntakeDocument"]["properties"]
    )


async def test_a_future_onset_or_a_therapist_from_elsewhere_is_a_422(
    intake: httpx.AsyncClient,
) -> None:
    body = document(email=f"future-{uuid.uuid4().hex[:8]}@example.com")
    body["complaints"][0]["onset"] = "2099-01-01"
    body["preferences"]["therapist_id"] = "t-chloe"
    answer = await intake.post("/v1/intakes", json=body, headers=BEAVERTON)
    assert answer.status_code == 422
    assert [e["loc"] for e in answer.json()["detail"]] == [
        ["body", "complaints", 0, "onset"],
        ["body", "preferences", "therapist_id"],
    ]
