"""Intake sessions against the real broker and Redis: drafts that survive a
restart and concurrent edits, an idempotent submit, and expiry."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.intake.app import build_app
from shared.infra import Infra
from tests.support import TopicLog, in_process_service, intake_settings

FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
BROOKLYN = {"Authorization": "Bearer demo-frontdesk-brooklyn"}
OPS = {"Authorization": "Bearer demo-ops"}

CLIENT = {"name": "Sam Draft", "phone": "+15035550101"}
COMPLAINTS = [
    {
        "region": "head",
        "side": "both",
        "intensity": 6,
        "qualities": ["ache", "tingling"],
        "onset": "2026-10-01",
        "aggravating": ["screen work"],
    }
]


@pytest.fixture
async def intake(infra: Infra, namespace: str) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_service(build_app, intake_settings(infra, namespace)) as http:
        yield http


async def open_session(http: httpx.AsyncClient, location: str = "beaverton") -> str:
    created = await http.post(
        "/v1/intake-sessions", json={"location_id": location}, headers=FRONT_DESK
    )
    assert created.status_code == 201, created.text
    assert created.headers["ETag"] == '"0"'
    return str(created.json()["session_id"])


async def patch(
    http: httpx.AsyncClient, session: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await http.patch(
        f"/v1/intake-sessions/{session}", json=body, headers={**FRONT_DESK, **headers}
    )


def entered(section: dict[str, Any]) -> dict[str, Any]:
    """A section as entered: the view lists unanswered fields as null."""
    return {k: v for k, v in section.items() if v is not None}


def missing_of(view: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {tuple(item["loc"]) for item in view["missing"]}


async def test_a_session_lists_what_is_missing_until_it_is_complete(
    intake: httpx.AsyncClient,
) -> None:
    session = await open_session(intake)
    empty = (await intake.get(f"/v1/intake-sessions/{session}", headers=FRONT_DESK)).json()
    assert {("client",), ("complaints",), ("health",), ("consent", "treatment")} <= missing_of(
        empty
    )
    assert empty["complete"] is False

    partial = await patch(intake, session, {"client": {"phone": "+15035550101"}})
    assert partial.status_code == 200, partial.text
    assert ("client", "name") in missing_of(partial.json())

    await patch(intake, session, {"client": {"name": "Sam Draft"}, "complaints": COMPLAINTS})
    await patch(intake, session, {"health": {"contraindications": [], "precautions": []}})
    done = await patch(intake, session, {"consent": {"treatment": True}})
    view = done.json()
    assert view["missing"] == [] and view["complete"] is True
    assert entered(view["draft"]["client"]) == {"name": "Sam Draft", "phone": "+15035550101"}
    assert done.headers["ETag"] == f'"{view["revision"]}"' and view["revision"] == 4


async def test_a_bad_code_in_a_patch_is_a_422_naming_the_field(
    intake: httpx.AsyncClient,
) -> None:
    session = await open_session(intake)
    bad = [{**COMPLAINTS[0], "region": "elbowz", "intensity": 12}]
    answer = await patch(intake, session, {"complaints": bad, "client": {"shoe_size": 44}})
    assert answer.status_code == 422
    paths = {tuple(error["loc"]) for error in answer.json()["detail"]}
    assert ("body", "complaints", 0, "region") in paths
    assert ("body", "complaints", 0, "intensity") in paths
    assert ("body", "client", "shoe_size") in paths
    view = (await intake.get(f"/v1/intake-sessions/{session}", headers=FRONT_DESK)).json()
    assert view["revision"] == 0 and view["draft"]["complaints"] is None


async def test_concurrent_patches_of_different_sections_both_survive(
    intake: httpx.AsyncClient,
) -> None:
    session = await open_session(intake)
    seen = '"0"'
    answers = await asyncio.gather(
        patch(intake, session, {"client": CLIENT}, **{"If-Match": seen}),
        patch(intake, session, {"complaints": COMPLAINTS}, **{"If-Match": seen}),
        patch(intake, session, {"goals": ["sleep through"]}, **{"If-Match": seen}),
        patch(intake, session, {"history": {"work_posture": ["laptop"]}}, **{"If-Match": seen}),
    )
    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    draft = (await intake.get(f"/v1/intake-sessions/{session}", headers=FRONT_DESK)).json()
    assert entered(draft["draft"]["client"]) == CLIENT
    assert draft["draft"]["complaints"][0]["region"] == "head"
    assert draft["draft"]["goals"] == ["sleep through"]
    assert entered(draft["draft"]["history"]) == {"work_posture": ["laptop"]}
    assert draft["revision"] == 4


async def test_a_stale_write_to_the_same_section_is_refused(intake: httpx.AsyncClient) -> None:
    session = await open_session(intake)
    first = await patch(intake, session, {"client": CLIENT}, **{"If-Match": '"0"'})
    assert first.status_code == 200
    stale = await patch(intake, session, {"client": {"name": "Other"}}, **{"If-Match": '"0"'})
    assert stale.status_code == 412
    assert "client" in stale.json()["detail"]
    fresh = await patch(
        intake, session, {"client": {"name": "Sam B. Draft"}}, **{"If-Match": first.headers["ETag"]}
    )
    assert fresh.status_code == 200
    assert fresh.json()["draft"]["client"]["name"] == "Sam B. Draft"
    assert fresh.json()["draft"]["client"]["phone"] == CLIENT["phone"]


async def test_concurrent_merges_of_one_section_without_if_match_lose_nothing(
    intake: httpx.AsyncClient,
) -> None:
    session = await open_session(intake)
    fields = {
        "name": "Sam Draft",
        "phone": "+15035550101",
        "email": "sam@example.com",
        "language": "es",
        "date_of_birth": "1990-05-05",
    }
    answers = await asyncio.gather(
        *(patch(intake, session, {"client": {k: v}}) for k, v in fields.items())
    )
    assert {a.status_code for a in answers} == {200}
    view = (await intake.get(f"/v1/intake-sessions/{session}", headers=FRONT_DESK)).json()
    assert entered(view["draft"]["client"]) == fields


async def test_submit_is_idempotent_and_publishes_once(
    intake: httpx.AsyncClient, topics: TopicLog
) -> None:
    session = await open_session(intake)
    email = f"sam-{uuid.uuid4().hex[:8]}@example.com"
    await patch(intake, session, {"client": {**CLIENT, "phone": None, "email": email}})
    await patch(intake, session, {"complaints": COMPLAINTS, "health": {}})
    early = await intake.post(f"/v1/intake-sessions/{session}/submit", headers=FRONT_DESK)
    assert early.status_code == 422
    assert {tuple(e["loc"]) for e in early.json()["detail"]} == {("draft", "consent", "treatment")}
    await patch(intake, session, {"consent": {"treatment": True, "contact": {"email": True}}})

    url = f"/v1/intake-sessions/{session}/submit"
    racing = await asyncio.gather(*(intake.post(url, headers=FRONT_DESK) for _ in range(3)))
    assert {r.status_code for r in racing} <= {202, 409}
    accepted = [r.json() for r in racing if r.status_code == 202]
    again = await intake.post(url, headers=FRONT_DESK)
    assert again.status_code == 202
    answer = again.json()
    assert all(a == answer for a in accepted)

    head = answer["findings"][0]
    assert head["condition"] == "acute" and head["nerve_signs"] == ["tingling"]
    assert {"upper trapezius", "sternocleidomastoid", "suboccipitals"} <= set(head["assess_first"])
    assert answer["screening"]["outcome"] == "modify"  # the nerve signs

    submitted = await topics.wait_for(
        lambda: topics.events(type="intake.submitted", correlationid=answer["intake_id"])
    )
    event = submitted[0]["data"]
    assert event["client"]["contact_consent"] == {"email": True, "sms": False}
    assert event["consent"]["treatment"] is True
    assert event["findings"] == answer["findings"]
    view = (await intake.get(f"/v1/intake-sessions/{session}", headers=FRONT_DESK)).json()
    assert view["state"] == "submitted" and view["submission"] == answer
    locked = await patch(intake, session, {"goals": ["too late"]})
    assert locked.status_code == 409
    await topics.caught_up()
    assert len(topics.events(type="intake.submitted", correlationid=answer["intake_id"])) == 1


async def test_a_draft_survives_a_restart_of_the_service(infra: Infra, namespace: str) -> None:
    async with in_process_service(build_app, intake_settings(infra, namespace)) as before:
        session = await open_session(before)
        await patch(before, session, {"client": CLIENT, "complaints": COMPLAINTS})
    async with in_process_service(build_app, intake_settings(infra, namespace)) as after:
        view = await after.get(f"/v1/intake-sessions/{session}", headers=FRONT_DESK)
    assert view.status_code == 200
    assert entered(view.json()["draft"]["client"]) == CLIENT
    assert view.json()["revision"] == 1


async def test_activity_refreshes_the_expiry_and_an_idle_draft_expires(
    infra: Infra, namespace: str
) -> None:
    # one simulated hour per real second; a session lives two simulated hours
    fast = intake_settings(
        infra,
        namespace,
        CLINICFLOW_CLOCK="sim:2027-01-04T15:00:00Z@3600x",
        INTAKE_SESSION_TTL_S=7200,
    )
    async with in_process_service(build_app, fast) as http:
        session = await open_session(http)
        first = (await http.get(f"/v1/intake-sessions/{session}", headers=FRONT_DESK)).json()

        async def refreshed() -> dict[str, Any] | None:
            view = await patch(http, session, {"goals": ["walk the dog"]})
            body: dict[str, Any] = view.json()
            return body if body["expires_at"] > first["expires_at"] else None

        later = await _poll(refreshed)
        assert later["draft"]["goals"] == ["walk the dog"]

        async def gone() -> int | None:
            status = (
                await http.get(f"/v1/intake-sessions/{session}", headers=FRONT_DESK)
            ).status_code
            return status if status in (404, 410) else None

        assert await _poll(gone, timeout=20) in (404, 410)


async def test_sessions_are_invisible_outside_the_keys_locations(
    intake: httpx.AsyncClient,
) -> None:
    session = await open_session(intake)
    base = f"/v1/intake-sessions/{session}"
    assert (await intake.get(base, headers=BROOKLYN)).status_code == 404
    assert (await intake.patch(base, json={"goals": ["x"]}, headers=BROOKLYN)).status_code == 404
    assert (await intake.post(f"{base}/submit", headers=BROOKLYN)).status_code == 404
    assert (await intake.get(base, headers=OPS)).status_code == 200
    assert (await intake.patch(base, json={"goals": ["x"]}, headers=OPS)).status_code == 403
    assert (await intake.get(base)).status_code == 401
    elsewhere = await intake.post(
        "/v1/intake-sessions", json={"location_id": "brooklyn"}, headers=FRONT_DESK
    )
    assert elsewhere.status_code == 403
    unknown = await intake.post(
        "/v1/intake-sessions", json={"location_id": "atlantis"}, headers=FRONT_DESK
    )
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "location_id"]


async def _poll(probe: Any, *, timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout:.0f} s")
        await asyncio.sleep(0.05)
