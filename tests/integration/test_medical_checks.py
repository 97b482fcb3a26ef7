"""The therapist records the doctor's check a red flag asked for: who may, what an
override needs, and that a retried request records it once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.intake.app import build_app
from shared.clock import SystemClock
from shared.infra import Infra
from tests.support import TopicLog, in_process_service, intake_settings

BEAVERTON = {"Authorization": "Bearer demo-frontdesk-beaverton"}
ANA = {"Authorization": "Bearer demo-therapist-ana"}  # therapist at beaverton
CHLOE = {"Authorization": "Bearer demo-therapist-chloe"}  # therapist at brooklyn


@pytest.fixture(scope="module")
async def intake(infra: Infra, namespace: str) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_service(build_app, intake_settings(infra, namespace)) as http:
        yield http


async def red_flag_client(http: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    onset = (SystemClock().now() - timedelta(days=18)).date()
    document = {
        "location_id": "beaverton",
        "client": {"name": "Casey Check", "email": f"casey-{uuid.uuid4().hex[:8]}@example.com"},
        "complaints": [
            {
                "region": "low_back",
                "intensity": 4,
                "qualities": ["dull"],
                "onset": onset.isoformat(),
                "improving": False,
            }
        ],
    }
    answer = await http.post("/v1/intakes", json=document, headers=BEAVERTON)
    assert answer.status_code == 202, answer.text
    return answer.json()["client_id"], answer.json()["screening"]


async def test_the_intake_answer_tells_the_front_desk_to_send_the_client_to_a_doctor(
    intake: httpx.AsyncClient,
) -> None:
    _, screening = await red_flag_client(intake)
    assert screening["medical_check_required"] is True
    assert screening["referral_recommended"] is True
    assert [r["code"] for r in screening["reasons"]] == ["red_flag_new_dull_pain"]
    assert any("see their doctor" in line for line in screening["front_desk"])


async def test_a_therapist_records_the_check_once_and_an_override_needs_a_reason(
    intake: httpx.AsyncClient, topics: TopicLog
) -> None:
    client_id, _ = await red_flag_client(intake)
    url = f"/v1/clients/{client_id}/medical-checks"
    cleared = {"location_id": "beaverton", "outcome": "cleared"}

    no_reason = await intake.post(url, json={**cleared, "outcome": "override"}, headers=ANA)
    assert no_reason.status_code == 422
    assert no_reason.json()["detail"][0]["loc"] == ["body", "reason"]
    blank = await intake.post(
        url, json={**cleared, "outcome": "override", "reason": "  "}, headers=ANA
    )
    assert blank.status_code == 422
    wrong = await intake.post(url, json={**cleared, "outcome": "maybe"}, headers=ANA)
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "outcome"]

    assert (await intake.post(url, json=cleared, headers=BEAVERTON)).status_code == 403
    assert (await intake.post(url, json=cleared)).status_code == 401
    assert (await intake.post(url, json=cleared, headers=CHLOE)).status_code == 404
    elsewhere = {**cleared, "location_id": "brooklyn"}
    assert (await intake.post(url, json=elsewhere, headers=ANA)).status_code == 403
    stranger = f"/v1/clients/{uuid.uuid4()}/medical-checks"
    assert (await intake.post(stranger, json=cleared, headers=ANA)).status_code == 404

    retry = {**ANA, "Idempotency-Key": f"check-{client_id}"}
    override = {
        "location_id": "beaverton",
        "outcome": "override",
        "reason": "client's GP reviewed the pain by phone; written note to follow",
    }
    first = await intake.post(url, json=override, headers=retry)
    assert first.status_code == 202, first.text
    check_id = first.json()["check_id"]
    again = await intake.post(url, json=override, headers=retry)
    assert again.json() == {"check_id": check_id}
    changed = await intake.post(url, json={**override, "reason": "other"}, headers=retry)
    assert changed.status_code == 409

    events = await topics.wait_for(
        lambda: topics.events(type="medical_check.recorded", correlationid=check_id)
    )
    data = events[0]["data"]
    assert events[0]["subject"] == client_id and events[0]["locationid"] == "beaverton"
    assert data["client_id"] == client_id and data["therapist_id"] == "t-ana"
    assert data["outcome"] == "override" and data["reason"] == override["reason"]
    await topics.caught_up()
    assert len(topics.events(type="medical_check.recorded", correlationid=check_id)) == 1
