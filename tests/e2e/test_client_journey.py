"""One client's journey through all four services, as separate processes, on the
embedded broker and real Redis: intake -> plan -> visits -> reminders."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.chain import ChainConfig, load_chain_config, ranges_on
from shared.stack import Stack
from shared.vocabulary import WEEKDAYS
from tests.conftest import DEMO_CHAIN
from tests.support import CLOUDEVENTS_ATTRIBUTES, TopicLog, wait_committed_past

pytestmark = pytest.mark.e2e
FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}


@pytest.fixture(scope="module")
def chain() -> ChainConfig:
    return load_chain_config(DEMO_CHAIN)


def intake(email: str, **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "location_id": "beaverton",
        "client": {"name": "Jordan Client", "email": email, "contact_consent": {"email": True}},
        "complaints": [
            {
                "region": "neck",
                "side": "right",
                "intensity": 7,
                "qualities": ["dull", "ache"],
                "onset": "2026-06-01",
                "aggravating": ["computer work"],
                "improving": True,
            },
            {
                "region": "shoulder",
                "side": "right",
                "intensity": 5,
                "qualities": ["tender"],
                "onset": "2026-09-15",
            },
        ],
        "goals": ["turn my head without pain"],
        "preferences": {"modality": "either"},
    }
    document.update(overrides)
    return document


async def submit(stack: Stack, document: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.urls["intake"], timeout=30) as http:
        response = await http.post("/v1/intakes", json=document, headers=FRONT_DESK)
    assert response.status_code == 202, response.text
    return dict(response.json())


def _inside(ranges: list[tuple[Any, Any]], start: datetime, end: datetime) -> bool:
    return start.date() == end.date() and any(
        a <= start.time() and end.time() <= b for a, b in ranges
    )


async def test_a_chronic_client_gets_a_plan_every_visit_and_reminders(
    stack: Stack, topics: TopicLog, chain: ChainConfig
) -> None:
    accepted = await submit(stack, intake("jordan@example.com"))
    correlation = accepted["intake_id"]
    assert accepted["screening"]["outcome"] in ("clear", "modify")

    plan = (
        await topics.wait_for(lambda: topics.events(type="plan.created", correlationid=correlation))
    )[0]
    total = plan["data"]["sessions_total"]
    assert plan["data"]["condition"] == "chronic"
    assert 6 <= total <= 12  # DOMAIN.md 5
    assert sum(p["sessions"] for p in plan["data"]["phases"]) == total
    assert plan["data"]["rationale"]

    visits = await topics.wait_for(
        lambda: (
            (v := topics.events(type="visit.booked", correlationid=correlation))
            and len(v) >= total
            and v
        )
    )
    assert len(visits) == total
    assert not topics.events(type="booking.waitlisted", correlationid=correlation)
    assert sorted(v["data"]["sequence"] for v in visits) == list(range(1, total + 1))

    location = chain.location("beaverton")
    therapists = {t.id: t for t in chain.therapists}
    spans = []
    for visit in visits:
        data = visit["data"]
        start = datetime.fromisoformat(data["start"]).astimezone(location.zone)
        end = datetime.fromisoformat(data["end"]).astimezone(location.zone)
        day = WEEKDAYS[start.weekday()]
        assert data["timezone"] == "America/Los_Angeles"
        assert start.date() not in location.closed
        assert _inside(ranges_on(location.hours, day), start, end), (start, end)
        hours = chain.therapist_hours(therapists[data["therapist_id"]], location)
        assert _inside(ranges_on(hours, day), start, end), (data["therapist_id"], start)
        spans.append((start, end, data["therapist_id"], data["room"]))
    spans.sort()
    for earlier, later in itertools.pairwise(spans):
        assert later[0] >= earlier[1] + timedelta(hours=48), "soreness gap between visits"
    for a, b in itertools.combinations(spans, 2):
        overlap = a[0] < b[1] and b[0] < a[1]
        assert not (overlap and (a[2] == b[2] or a[3] == b[3]))

    def reminders(event_type: str) -> list[dict[str, Any]]:
        return [
            e
            for e in topics.events(type=event_type, correlationid=correlation)
            if e["data"]["kind"] == "reminder"
        ]

    scheduled = await topics.wait_for(
        lambda: (
            (n := reminders("notification.scheduled"))
            and len({e["data"]["visit_id"] for e in n}) == total
            and n
        )
    )
    for reminder in scheduled:
        due = datetime.fromisoformat(reminder["data"]["due_at"]).astimezone(location.zone)
        assert not (due.hour >= 21 or due.hour < 8), f"reminder in quiet hours: {due}"
        assert reminder["data"]["kind"] == "reminder"

    chain_of_events = [*topics.events(correlationid=correlation)]
    for event in chain_of_events:
        for attribute in CLOUDEVENTS_ATTRIBUTES:
            assert event.get(attribute), (event["type"], attribute)
        assert event["chainid"] == chain.chain.id
    causes = {e["id"] for e in chain_of_events}
    assert all(
        e["causationid"] in causes for e in chain_of_events if e["type"] != "intake.submitted"
    )

    # the simulated clock reaches the first reminder; the notifier sends it
    sent = await topics.wait_for(lambda: reminders("notification.sent"), timeout=120)
    first = sent[0]["data"]
    assert first["notification_id"] in {s["data"]["notification_id"] for s in scheduled}
    assert datetime.fromisoformat(first["sent_at"]) >= datetime.fromisoformat(first["due_at"])

    async with httpx.AsyncClient(timeout=30) as http:
        plan_view = await http.get(
            f"{stack.urls['planner']}/v1/clients/{accepted['client_id']}/plan", headers=FRONT_DESK
        )
        visit_view = await http.get(
            f"{stack.urls['scheduler']}/v1/clients/{accepted['client_id']}/visits",
            headers=FRONT_DESK,
        )
        other_location = await http.get(
            f"{stack.urls['scheduler']}/v1/clients/{accepted['client_id']}/visits",
            headers={"Authorization": "Bearer demo-frontdesk-brooklyn"},
        )
    assert plan_view.status_code == 200
    assert plan_view.json()["plan"]["plan_id"] == plan["data"]["plan_id"]

    # the reminder's link opens the visit's page without a key, and only that visit's
    outbox = Path(stack.environment["NOTIFIER_OUTBOX_PATH"])
    bodies = [
        json.loads(line)["body"]
        for line in (await asyncio.to_thread(outbox.read_text)).splitlines()
        if json.loads(line)["notification_id"] == first["notification_id"]
    ]
    link = re.search(r"https?://\S+/manage\?sig=\S+", bodies[0])
    assert link is not None, bodies[0]
    assert f"/v1/visits/{first['visit_id']}/manage?" in link.group(0)
    async with httpx.AsyncClient(timeout=30) as http:
        opened = await http.get(link.group(0))
        forged = await http.get(link.group(0).replace("sig=", "sig=x"))
    assert opened.status_code == 200 and opened.headers["content-type"].startswith("text/html")
    assert 'action="manage/confirm?' in opened.text
    assert forged.status_code == 401
    assert len(visit_view.json()["visits"]) == total
    assert other_location.status_code == 404


async def test_a_contraindication_declines_the_plan_and_books_nothing(
    stack: Stack, topics: TopicLog
) -> None:
    document = intake("dvt@example.com", health={"contraindications": [{"code": "dvt"}]})
    accepted = await submit(stack, document)
    assert accepted["screening"]["outcome"] == "refer"
    correlation = accepted["intake_id"]
    declined = (
        await topics.wait_for(
            lambda: topics.events(type="plan.declined", correlationid=correlation)
        )
    )[0]
    assert declined["data"]["referral"]["recommended"] is True
    record = topics.record_of(declined["id"])
    assert record is not None and record.topic == "clinic.plans"
    await wait_committed_past(
        stack.infra.kafka_bootstrap_servers,
        "clinicflow-scheduler",
        record.topic,
        record.partition,
        record.offset,
    )
    assert not topics.events(type="visit.booked", correlationid=correlation)
    assert not topics.events(type="plan.created", correlationid=correlation)


async def test_bad_intake_is_a_422_with_the_field_path(stack: Stack) -> None:
    document = intake("bad@example.com")
    document["complaints"][0]["region"] = "elbowz"
    document["complaints"][1]["intensity"] = 11
    async with httpx.AsyncClient(base_url=stack.urls["intake"], timeout=30) as http:
        response = await http.post("/v1/intakes", json=document, headers=FRONT_DESK)
        unauthenticated = await http.post("/v1/intakes", json=intake("x@example.com"))
        out_of_scope = await http.post(
            "/v1/intakes",
            json=intake("y@example.com"),
            headers={"Authorization": "Bearer demo-frontdesk-brooklyn"},
        )
    assert response.status_code == 422
    paths = {tuple(err["loc"]) for err in response.json()["detail"]}
    assert ("body", "complaints", 0, "region") in paths
    assert ("body", "complaints", 1, "intensity") in paths
    assert unauthenticated.status_code == 401
    assert out_of_scope.status_code == 403


async def test_every_service_is_ready_and_documents_itself(stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        for name, url in stack.urls.items():
            ready = await http.get(f"{url}/readyz")
            assert ready.status_code == 200, (name, ready.text)
            assert (await http.get(f"{url}/healthz")).json()["service"] == name
            assert (await http.get(f"{url}/openapi.json")).status_code == 200
            metrics = await http.get(f"{url}/metrics")
            assert "clinicflow_http_requests_total" in metrics.text


async def test_an_idempotency_key_submits_once(stack: Stack, topics: TopicLog) -> None:
    document = intake("retry@example.com")
    retry = {**FRONT_DESK, "Idempotency-Key": "front-desk-form-4711"}
    async with httpx.AsyncClient(base_url=stack.urls["intake"], timeout=30) as http:
        racing = await asyncio.gather(
            *(http.post("/v1/intakes", json=document, headers=retry) for _ in range(3))
        )
        accepted = [r.json() for r in racing if r.status_code == 202]
        assert accepted and all(r.status_code in (202, 409) for r in racing)
        later = await http.post("/v1/intakes", json=document, headers=retry)
        changed = await http.post("/v1/intakes", json=intake("other@example.com"), headers=retry)
    assert later.status_code == 202
    assert {a["intake_id"] for a in accepted} == {later.json()["intake_id"]}
    assert changed.status_code == 409
    await topics.wait_for(
        lambda: topics.events(type="plan.created", correlationid=later.json()["intake_id"])
    )
    submitted = topics.events(type="intake.submitted", subject=later.json()["client_id"])
    assert [e["data"]["intake_id"] for e in submitted] == [later.json()["intake_id"]]
