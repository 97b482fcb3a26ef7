"""What the therapist records can be read back (DOMAIN.md 3): ``GET`` an assessment
answers the whole record, to staff whose key reaches its location, under the client's
id or a merged one; an unknown muscle is a 422 that lists the known names, and
nothing is recorded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.intake.app import build_app
from shared import body_map
from shared.infra import Infra
from tests.conftest import DEMO_CHAIN
from tests.integration.test_intake_access import document, submitted
from tests.support import in_process_service, intake_settings

BEAVERTON = {"Authorization": "Bearer demo-frontdesk-beaverton"}
BROOKLYN = {"Authorization": "Bearer demo-frontdesk-brooklyn"}
ANA = {"Authorization": "Bearer demo-therapist-ana"}  # therapist at beaverton
OPS = {"Authorization": "Bearer demo-ops"}
ADMIN = {"Authorization": "Bearer demo-admin"}
SERVICE = {"Authorization": "Bearer test-service-everywhere"}

ASSESSMENT = {
    "location_id": "beaverton",
    "posture_findings": ["forward head posture", "rounded shoulders"],
    "range_of_motion_limits": ["head rotation right limited to 45°"],
    "trigger_points": [
        {"muscle": "upper trapezius", "side": "right", "type": "active", "referral_zone": "head"},
        {"muscle": "Levator Scapulae", "side": "right", "type": "latent", "tissue": "fascial"},
    ],
    "nerve_signs": ["tingling into the right thumb"],
    "notes": "headache reproduced by pressure on the right upper trapezius",
}


@pytest.fixture(scope="module")
def chain_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chain = yaml.safe_load(DEMO_CHAIN.read_text())
    chain["api_keys"].append(
        {"key": "test-service-everywhere", "role": "service", "locations": ["*"]}
    )
    path = tmp_path_factory.mktemp("chain") / "chain.yaml"
    path.write_text(yaml.safe_dump(chain))
    return path


@pytest.fixture(scope="module")
async def intake(
    infra: Infra, namespace: str, chain_file: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = intake_settings(infra, namespace, CLINICFLOW_CHAIN_CONFIG=chain_file)
    async with in_process_service(build_app, settings) as http:
        yield http


def email() -> str:
    return f"record-{uuid.uuid4().hex[:8]}@example.com"


async def recorded(http: httpx.AsyncClient, client_id: str, body: dict[str, Any]) -> str:
    answer = await http.post(f"/v1/clients/{client_id}/assessments", json=body, headers=ANA)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["assessment_id"])


async def test_an_assessment_reads_back_as_recorded(intake: httpx.AsyncClient) -> None:
    client_id = await submitted(intake, document(email=email()), BEAVERTON)
    assessment_id = await recorded(intake, client_id, ASSESSMENT)
    url = f"/v1/clients/{client_id}/assessments/{assessment_id}"

    answer = await intake.get(url, headers=ANA)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert datetime.fromisoformat(body.pop("recorded_at")).tzinfo is not None
    assert body == {
        "assessment_id": assessment_id,
        "client_id": client_id,
        "location_id": "beaverton",
        "therapist_id": "t-ana",
        "posture_findings": ["forward head posture", "rounded shoulders"],
        "range_of_motion_limits": ["head rotation right limited to 45°"],
        "trigger_points": [
            {
                "muscle": "upper trapezius",
                "side": "right",
                "type": "active",
                "tissue": "myofascial",
                "referral_zone": "head",
            },
            {
                "muscle": "Levator Scapulae",
                "side": "right",
                "type": "latent",
                "tissue": "fascial",
                "referral_zone": None,
            },
        ],
        "nerve_signs": ["tingling into the right thumb"],
        "notes": "headache reproduced by pressure on the right upper trapezius",
    }
    # the client's view still lists it by its summary
    view = (await intake.get(f"/v1/clients/{client_id}", headers=BEAVERTON)).json()
    assert view["assessments"] == [
        {k: answer.json()[k] for k in ("assessment_id", "location_id", "therapist_id")}
        | {"recorded_at": answer.json()["recorded_at"]}
    ]

    # staff whose key reaches the location; no one else learns that it exists
    assert (await intake.get(url, headers=BEAVERTON)).status_code == 200
    assert (await intake.get(url, headers=OPS)).status_code == 200
    assert (await intake.get(url, headers=BROOKLYN)).status_code == 404
    assert (await intake.get(url, headers=SERVICE)).status_code == 403
    assert (await intake.get(url)).status_code == 401
    unknown_id = f"/v1/clients/{client_id}/assessments/{uuid.uuid4()}"
    assert (await intake.get(unknown_id, headers=ANA)).status_code == 404
    other_client = f"/v1/clients/{uuid.uuid4()}/assessments/{assessment_id}"
    assert (await intake.get(other_client, headers=ANA)).status_code == 404


async def test_a_merged_clients_id_reads_the_assessment_of_the_survivor(
    intake: httpx.AsyncClient,
) -> None:
    survivor = await submitted(intake, document(email=email()), BEAVERTON)
    retired = await submitted(intake, document(email=email()), BEAVERTON)
    assessment_id = await recorded(intake, retired, {"location_id": "beaverton", "notes": "n"})
    merged = await intake.post(
        f"/v1/clients/{survivor}/merge", json={"merged_client_id": retired}, headers=ADMIN
    )
    assert merged.status_code == 202, merged.text
    for named in (retired, survivor):
        answer = await intake.get(f"/v1/clients/{named}/assessments/{assessment_id}", headers=ANA)
        assert answer.status_code == 200, answer.text
        assert (answer.json()["client_id"], answer.json()["notes"]) == (survivor, "n")


async def test_an_unknown_muscle_is_a_422_listing_the_known_names(
    intake: httpx.AsyncClient,
) -> None:
    client_id = await submitted(intake, document(email=email()), BEAVERTON)
    url = f"/v1/clients/{client_id}/assessments"
    points = [
        {"muscle": "upper trapezius", "side": "right", "type": "active"},
        {"muscle": "trapezius major", "side": "left", "type": "latent"},
    ]
    refused = await intake.post(
        url, json={"location_id": "beaverton", "trigger_points": points}, headers=ANA
    )
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "trigger_points", 1, "muscle"]
    assert error["type"] == "unknown_muscle" and error["input"] == "trapezius major"
    assert error["ctx"]["known"] == sorted(body_map.MUSCLES)
    assert all(name in error["msg"] for name in body_map.MUSCLES)
    # nothing was recorded
    view = (await intake.get(f"/v1/clients/{client_id}", headers=ANA)).json()
    assert view["assessments"] == []

    # a known muscle in another case is the same muscle
    points[1]["muscle"] = " Sternocleidomastoid"
    assert (
        await intake.post(
            url, json={"location_id": "beaverton", "trigger_points": points}, headers=ANA
        )
    ).status_code == 202
