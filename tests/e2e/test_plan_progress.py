"""The planner follows a client's progress across visits, on the real topics:
a poor review revises the plan once, however often the outcome is redelivered
and even across a restart of the planner."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.codec import encode, wrap
from shared.envelope import Trace
from shared.events.visits import VisitCompleted
from shared.stack import Stack, restart
from tests.support import TopicLog, wait_committed_past

pytestmark = pytest.mark.e2e
FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}


def completed(plan: dict[str, Any], n: int, pain: int) -> tuple[bytes, bytes]:
    """A visit outcome as the scheduler publishes it."""
    data = plan["data"]
    done = VisitCompleted(
        visit_id=f"{data['plan_id']}-{n}",
        plan_id=data["plan_id"],
        client_id=data["client_id"],
        location_id=data["location_id"],
        therapist_id="t-ana",
        pain_before=pain,
        pain_after=max(0, pain - 3),
        techniques=["ischemic_compression"],
        completed_at=plan["time"],
    )
    envelope = wrap(
        done,
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, done.visit_id)),
        service="scheduler",
        subject=done.visit_id,
        trace=Trace(chainid=plan["chainid"], correlationid=plan["correlationid"]),
        time=done.completed_at + timedelta(days=n),
    )
    return data["client_id"].encode(), encode(envelope)


async def test_a_poor_review_revises_once_through_redelivery_and_restart(
    stack: Stack, topics: TopicLog, producer: AIOKafkaProducer
) -> None:
    document = {
        "location_id": "beaverton",
        "client": {"name": "Pat Progress", "email": f"pat-{uuid.uuid4().hex[:8]}@example.com"},
        "complaints": [{"region": "low_back", "intensity": 8, "onset": "2026-01-10"}],
    }
    async with httpx.AsyncClient(base_url=stack.urls["intake"], timeout=30) as http:
        accepted = await http.post("/v1/intakes", json=document, headers=FRONT_DESK)
    assert accepted.status_code == 202, accepted.text
    intake_id, client_id = accepted.json()["intake_id"], accepted.json()["client_id"]
    plans = await topics.wait_for(
        lambda: topics.events(type="plan.created", correlationid=intake_id)
    )
    plan = plans[0]
    assert plan["data"]["review_after_sessions"] == 4

    outcomes = [completed(plan, n, pain) for n, pain in enumerate([8, 8, 7, 7], start=1)]
    for key, value in outcomes[:3]:
        await producer.send_and_wait("clinic.visits", key=key, value=value)
    # the review visit, delivered twice
    await producer.send_and_wait("clinic.visits", key=outcomes[3][0], value=outcomes[3][1])
    again = await producer.send_and_wait("clinic.visits", key=outcomes[3][0], value=outcomes[3][1])
    revised = await topics.wait_for(
        lambda: topics.events(type="plan.revised", correlationid=intake_id)
    )
    assert revised[0]["data"]["change"] == "reassess" and revised[0]["data"]["version"] == 2
    await wait_committed_past(
        stack.infra.kafka_bootstrap_servers,
        "clinicflow-planner",
        "clinic.visits",
        again.partition,
        again.offset,
    )

    # after a restart, the state is intact: the same outcome again changes nothing,
    # and the read model still shows version 2
    restart(stack, "planner")
    await producer.send_and_wait("clinic.visits", key=outcomes[3][0], value=outcomes[3][1])
    marker = await producer.send_and_wait("clinic.visits", key=outcomes[2][0], value=outcomes[2][1])
    await wait_committed_past(
        stack.infra.kafka_bootstrap_servers,
        "clinicflow-planner",
        "clinic.visits",
        marker.partition,
        marker.offset,
    )
    await topics.caught_up()
    assert len(topics.events(type="plan.revised", correlationid=intake_id)) == 1
    async with httpx.AsyncClient(base_url=stack.urls["planner"], timeout=30) as http:
        current = await http.get(f"/v1/clients/{client_id}/plan", headers=FRONT_DESK)
        history = await http.get(f"/v1/clients/{client_id}/plan/history", headers=FRONT_DESK)
    assert current.status_code == 200, current.text
    assert current.json()["plan"]["version"] == 2
    assert current.json()["status"] == "active"
    progress = current.json()["progress"]
    assert progress["pain_carried_in"] == [8, 8, 7, 7]
    assert progress["sessions_done"] == 4 and progress["improvement"] == 0.125
    assert progress["next_review_after_sessions"] == 4 + revised[0]["data"]["review_after_sessions"]
    versions = history.json()["versions"]
    assert [(v["status"], v["plan"]["version"]) for v in versions] == [
        ("superseded", 1),
        ("active", 2),
    ]


async def test_an_outcome_for_an_unknown_plan_is_dead_lettered(
    stack: Stack, topics: TopicLog, producer: AIOKafkaProducer
) -> None:
    stranger = {
        "data": {
            "plan_id": f"no-such-plan-{uuid.uuid4()}",
            "client_id": str(uuid.uuid4()),
            "location_id": "beaverton",
        },
        "time": "2027-03-08T17:00:00Z",
        "chainid": "northwest-nmt",
        "correlationid": str(uuid.uuid4()),
    }
    key, value = completed(stranger, 1, 5)
    await producer.send_and_wait("clinic.visits", key=key, value=value)
    letters = await topics.wait_for(
        lambda: [
            e
            for e in topics.events(type="record.deadlettered")
            if e["data"].get("key") == key.decode() and e["data"].get("service") == "planner"
        ]
    )
    assert "unknown plan" in letters[0]["data"]["error"]
