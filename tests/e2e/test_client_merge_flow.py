"""A client merge on the real topics, followed by the running planner, scheduler
and notifier through their consumers: after ``client.merged`` on
``clinic.intake`` each answers for the retired client under the survivor, and a
visit outcome that still carries the retired id is handled under the survivor."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.codec import encode, wrap
from shared.envelope import Trace
from shared.events import ClientMerged, EventData, IntakeSubmitted
from shared.events.intake import (
    ClientRecord,
    Complaint,
    ContactConsent,
    Health,
    Preferences,
    Screening,
)
from shared.events.visits import VisitCompleted
from shared.stack import Stack
from tests.e2e.conftest import SIM_START
from tests.support import TopicLog, until

pytestmark = pytest.mark.e2e
ADMIN = {"Authorization": "Bearer demo-admin"}


async def publish(
    producer: AIOKafkaProducer, topic: str, data: EventData, *, key: str, at: Any
) -> str:
    """Publish ``data`` as its producing service would; the event id."""
    event_id = str(uuid.uuid4())
    envelope = wrap(
        data,
        event_id=event_id,
        service="intake",
        subject=key,
        trace=Trace(chainid="northwest-nmt", correlationid=event_id),
        time=at,
    )
    await producer.send_and_wait(topic, key=key.encode(), value=encode(envelope))
    return event_id


def intake(name: str, location_id: str, at: Any) -> IntakeSubmitted:
    return IntakeSubmitted(
        intake_id=f"e2e-merge-{name}-{uuid.uuid4().hex[:6]}",
        client=ClientRecord(
            client_id=f"client-{name}-{uuid.uuid4().hex[:8]}",
            name="Robin Merge",
            email=f"robin-{name}@example.com",
            contact_consent=ContactConsent(email=True),
        ),
        location_id=location_id,
        complaints=[
            Complaint(region="neck", intensity=7, qualities=["ache"], onset=date(2026, 6, 1))
        ],
        health=Health(),
        screening=Screening(outcome="clear"),
        preferences=Preferences(),
        submitted_at=at,
    )


async def test_the_consumers_follow_a_merge_and_later_events_of_the_retired_id(
    stack: Stack, topics: TopicLog, producer: AIOKafkaProducer
) -> None:
    sent_at = datetime.fromisoformat(SIM_START)
    kept, gone = intake("kept", "beaverton", sent_at), intake("gone", "brooklyn", sent_at)
    survivor, retired = kept.client.client_id, gone.client.client_id
    for document in (kept, gone):
        key = document.client.client_id
        await publish(producer, "clinic.intake", document, key=key, at=sent_at)
    booked = await topics.wait_for(lambda: topics.for_client("visit.booked", retired))
    await topics.wait_for(lambda: topics.for_client("visit.booked", survivor))
    [plan] = await topics.wait_for(lambda: topics.for_client("plan.created", retired))
    messages = await topics.wait_for(lambda: topics.for_client("notification.scheduled", retired))

    merge = ClientMerged(
        merge_id=f"merge-{uuid.uuid4().hex[:8]}",
        client_id=survivor,
        merged_client_id=retired,
        location_ids=["beaverton", "brooklyn"],
        merged_by="admin-key-digest",
        merged_at=sent_at,
    )
    await publish(producer, "clinic.intake", merge, key=survivor, at=sent_at)

    async with httpx.AsyncClient(timeout=30) as http:

        async def followed(service: str, path: str, check: Any) -> dict[str, Any]:
            async def probe() -> dict[str, Any] | None:
                response = await http.get(f"{stack.urls[service]}{path}", headers=ADMIN)
                body = response.json() if response.status_code == 200 else None
                return body if body is not None and check(body) else None

            return await until(probe, timeout=60)

        visit_ids = {e["data"]["visit_id"] for e in booked}
        wanted = {m["data"]["notification_id"] for m in messages}
        for client_id in (survivor, retired):
            visits = await followed(
                "scheduler",
                f"/v1/clients/{client_id}/visits",
                lambda b: visit_ids <= {v["visit_id"] for v in b["visits"]},
            )
            assert visits["client_id"] == survivor
            assert {v["client_id"] for v in visits["visits"]} == {survivor}
            history = await followed(
                "planner",
                f"/v1/clients/{client_id}/plan/history",
                lambda b: plan["data"]["plan_id"] in {v["plan"]["plan_id"] for v in b["versions"]},
            )
            assert history["client_id"] == survivor
            await followed(
                "notifier",
                f"/v1/clients/{client_id}/notifications",
                lambda b: wanted <= {n["notification_id"] for n in b["notifications"]},
            )

    # an outcome of the retired client's visit, keyed and named by the retired id
    first = booked[0]["data"]
    done = VisitCompleted(
        visit_id=first["visit_id"],
        plan_id=first["plan_id"],
        client_id=retired,
        location_id=first["location_id"],
        therapist_id=first["therapist_id"],
        pain_before=7,
        pain_after=4,
        techniques=["ischemic_compression"],
        completed_at=sent_at + timedelta(minutes=1),
    )
    await publish(producer, "clinic.visits", done, key=retired, at=sent_at)

    def aftercare() -> list[dict[str, Any]]:
        return [
            e
            for e in topics.events(type="notification.scheduled")
            if e["data"].get("visit_id") == done.visit_id and e["data"]["kind"] == "aftercare"
        ]

    [scheduled] = await topics.wait_for(aftercare)
    assert scheduled["data"]["client_id"] == survivor
