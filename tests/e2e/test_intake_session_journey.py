"""A front desk fills in an intake session step by step, submits it, and the
planner picks it up: every service as its own process."""

from __future__ import annotations

import httpx
import pytest

from shared.stack import Stack
from tests.support import TopicLog

pytestmark = pytest.mark.e2e
FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}


async def test_a_session_from_first_page_to_a_plan(stack: Stack, topics: TopicLog) -> None:
    pages = [
        {"client": {"name": "Morgan Steps", "email": "morgan.steps@example.com"}},
        {
            "complaints": [
                {
                    "region": "low_back",
                    "side": "center",
                    "intensity": 6,
                    "qualities": ["ache", "deep"],
                    "frequency": "evenings",
                    "onset": "2026-05-01",
                    "provoking_movements": ["bending forward"],
                }
            ]
        },
        {"history": {"work_posture": ["standing all day"], "old_injuries": ["fall 2020"]}},
        {"health": {"precautions": [{"code": "hypertension"}]}},
        {"goals": ["garden again"], "preferences": {"modality": "nmt", "times": ["morning"]}},
        {"consent": {"treatment": True, "contact": {"email": True}}},
    ]
    async with httpx.AsyncClient(base_url=stack.urls["intake"], timeout=30) as http:
        created = await http.post(
            "/v1/intake-sessions", json={"location_id": "beaverton"}, headers=FRONT_DESK
        )
        assert created.status_code == 201, created.text
        url = f"/v1/intake-sessions/{created.json()['session_id']}"
        etag = created.headers["ETag"]
        for page in pages:
            answer = await http.patch(url, json=page, headers={**FRONT_DESK, "If-Match": etag})
            assert answer.status_code == 200, answer.text
            etag = answer.headers["ETag"]
        assert answer.json()["complete"] is True
        submitted = await http.post(f"{url}/submit", headers=FRONT_DESK)
    assert submitted.status_code == 202, submitted.text
    accepted = submitted.json()
    assert accepted["screening"]["outcome"] == "modify"
    assert accepted["findings"][0]["condition"] == "chronic"
    assert "quadratus lumborum" in accepted["findings"][0]["assess_first"]

    intake_id = accepted["intake_id"]
    events = await topics.wait_for(
        lambda: topics.events(type="intake.submitted", correlationid=intake_id)
    )
    data = events[0]["data"]
    assert events[0]["subject"] == accepted["client_id"]
    assert data["history"]["work_posture"] == ["standing all day"]
    assert data["client"]["contact_consent"]["email"] is True
    assert data["screening"]["outcome"] == "modify"
    assert [r["code"] for r in data["screening"]["reasons"]] == ["hypertension"]
    plans = await topics.wait_for(
        lambda: topics.events(type="plan.created", correlationid=intake_id)
    )
    assert plans[0]["data"]["condition"] == "chronic"
