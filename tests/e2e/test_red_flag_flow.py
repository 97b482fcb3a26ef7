"""A red flag on the simulated clock, through the four services: the intake answer
tells the front desk, the plan opens with an assessment-only visit and the rest of
the course waits; once the assessment visit is done and the therapist records the
doctor's check, the course goes on with its full protocol."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from services.planner.knowledge import TECHNIQUES
from shared.stack import Stack
from tests.e2e.conftest import sim_now
from tests.support import TopicLog, wait_committed_past

pytestmark = pytest.mark.e2e
FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
THERAPIST = {"Authorization": "Bearer demo-therapist-ana"}  # t-ana, at beaverton
ADMIN = {"Authorization": "Bearer demo-admin"}
DIRECT_PRESSURE = {t.code for t in TECHNIQUES if t.direct_pressure}
# seed 000, the rule the gate rests on
SEED_000 = (
    "If you have a new, dull pain that doesn't improve in two to three weeks, bring it "
    "to your doctor's attention."
)


async def clock_reaches(stack: Stack, moment: datetime, *, timeout: float = 180.0) -> None:
    """Wait until the shared simulated clock has passed ``moment``."""
    deadline = time.monotonic() + timeout
    while sim_now(stack) < moment:
        if time.monotonic() > deadline:
            raise AssertionError(f"the simulated clock did not reach {moment}")
        await asyncio.sleep(0.2)


async def committed(stack: Stack, topics: TopicLog, group: str, event: dict[str, Any]) -> None:
    """Wait until ``group`` has handled the record that carried ``event``."""
    record = topics.record_of(event["id"])
    assert record is not None, event["id"]
    await wait_committed_past(
        stack.infra.kafka_bootstrap_servers, group, record.topic, record.partition, record.offset
    )


def for_plan(topics: TopicLog, event_type: str, plan_id: str) -> list[dict[str, Any]]:
    return [e for e in topics.events(type=event_type) if e["data"].get("plan_id") == plan_id]


async def test_a_red_flag_waits_for_the_doctors_check_then_the_course_goes_on(
    stack: Stack, topics: TopicLog
) -> None:
    assert "new, dull pain" in SEED_000 and "doctor's attention" in SEED_000
    onset = (sim_now(stack) - timedelta(days=20)).date()  # three weeks, not improving
    document = {
        "location_id": "beaverton",
        "client": {"name": "Robin Redflag", "email": f"robin-{uuid.uuid4().hex[:8]}@example.com"},
        "complaints": [
            {
                "region": "low_back",
                "intensity": 5,
                "qualities": ["dull"],
                "onset": onset.isoformat(),
                "improving": False,
            }
        ],
    }
    async with httpx.AsyncClient(base_url=stack.urls["intake"], timeout=30) as http:
        accepted = await http.post("/v1/intakes", json=document, headers=FRONT_DESK)
    assert accepted.status_code == 202, accepted.text
    answer = accepted.json()
    intake_id, client_id = answer["intake_id"], answer["client_id"]
    # the intake answer tells the front desk plainly
    assert answer["screening"]["medical_check_required"] is True
    assert any("doctor" in line for line in answer["screening"]["front_desk"])

    created = await topics.wait_for(
        lambda: topics.events(type="plan.created", correlationid=intake_id)
    )
    plan = created[0]["data"]
    plan_id, total = plan["plan_id"], plan["sessions_total"]
    assert plan["awaiting_medical_check"]["book_through"] == 1
    assert plan["protocol"][0]["technique"] == "assessment"
    assert not DIRECT_PRESSURE & {step["technique"] for step in plan["protocol"]}
    assert total > 1

    # the scheduler books the assessment visit and nothing more
    await committed(stack, topics, "clinicflow-scheduler", created[0])
    await topics.caught_up()
    booked = for_plan(topics, "visit.booked", plan_id)
    assert [v["data"]["sequence"] for v in booked] == [1]
    assert for_plan(topics, "booking.waitlisted", plan_id) == []
    first = booked[0]["data"]

    # the assessment visit takes place on the shared clock
    await clock_reaches(stack, datetime.fromisoformat(first["start"]) + timedelta(minutes=5))
    completer = THERAPIST if first["therapist_id"] == "t-ana" else ADMIN
    async with httpx.AsyncClient(base_url=stack.urls["scheduler"], timeout=30) as http:
        done = await http.post(
            f"/v1/visits/{first['visit_id']}/complete",
            json={"pain_before": 5, "pain_after": 4, "techniques": ["myofascial_release"]},
            headers=completer,
        )
    assert done.status_code == 202, done.text
    completed = await topics.wait_for(lambda: for_plan(topics, "visit.completed", plan_id))
    await committed(stack, topics, "clinicflow-planner", completed[0])
    await topics.caught_up()
    # still waiting: no revision, no further visit
    assert for_plan(topics, "plan.revised", plan_id) == []
    assert len(for_plan(topics, "visit.booked", plan_id)) == 1

    # the front desk may not record it; the therapist does, once
    check = {"location_id": "beaverton", "outcome": "cleared"}
    async with httpx.AsyncClient(base_url=stack.urls["intake"], timeout=30) as http:
        refused = await http.post(
            f"/v1/clients/{client_id}/medical-checks", json=check, headers=FRONT_DESK
        )
        recorded = await http.post(
            f"/v1/clients/{client_id}/medical-checks",
            json=check,
            headers={**THERAPIST, "Idempotency-Key": f"check-{intake_id}"},
        )
    assert refused.status_code == 403
    assert recorded.status_code == 202, recorded.text

    revised = await topics.wait_for(
        lambda: [
            e
            for e in for_plan(topics, "plan.revised", plan_id)
            if e["data"]["change"] == "medical_check"
        ]
    )
    going_on = revised[0]["data"]
    assert going_on.get("awaiting_medical_check") is None
    assert going_on["sessions_done"] == 1
    assert DIRECT_PRESSURE & {step["technique"] for step in going_on["protocol"]}
    assert going_on["review_by"] >= plan["review_by"]

    # the rest of the course is placed: every session after the first, once
    def placed() -> set[int] | None:
        sequences = {
            e["data"]["sequence"]
            for kind in ("visit.booked", "booking.waitlisted")
            for e in for_plan(topics, kind, plan_id)
        }
        return sequences if sequences == set(range(1, total + 1)) else None

    assert await topics.wait_for(placed, timeout=90) == set(range(1, total + 1))
    await committed(stack, topics, "clinicflow-scheduler", revised[0])
    await topics.caught_up()
    later = [e["data"] for e in for_plan(topics, "visit.booked", plan_id)[1:]]
    assert all(v["plan_version"] == going_on["version"] for v in later)
    assert len({v["sequence"] for v in later}) == len(later)
    assert all(
        datetime.fromisoformat(v["start"]) > datetime.fromisoformat(first["start"]) for v in later
    )
