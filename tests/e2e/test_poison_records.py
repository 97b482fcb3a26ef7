"""A 1 MB poison record on every consumed topic, with the whole stack running: each
service that consumes the topic dead-letters it (position, size, digest, as much of
it as fits) and handles the record behind it; the dashboard projects past it."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from functools import partial
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from services.dashboard.store import DashboardStore
from shared.redis_store import Keys, connect
from shared.settings import CommonSettings
from shared.stack import Stack
from tests.support import TopicLog, intake_record, until, wait_committed_past

pytestmark = pytest.mark.e2e
POISON_BYTES = 1_000_000
CONSUMERS = {
    "clinic.intake": ("planner", "scheduler", "notifier"),
    "clinic.plans": ("scheduler", "notifier"),
    "clinic.visits": ("planner", "scheduler", "notifier"),
    "clinic.notifications": ("planner",),
}


def letter(topics: TopicLog, service: str, position: tuple[str, int, int]) -> Any:
    return [
        e["data"]
        for e in topics.events(type="record.deadlettered")
        if e["data"]["service"] == service
        and (e["data"]["source_topic"], e["data"]["partition"], e["data"]["offset"]) == position
    ]


async def test_a_poison_record_on_each_topic_is_dead_lettered_and_the_flow_goes_on(
    stack: Stack, topics: TopicLog, producer: AIOKafkaProducer, namespace: str
) -> None:
    client_id = str(uuid.uuid4())
    key = client_id.encode()
    poison = os.urandom(POISON_BYTES)
    digest = hashlib.sha256(poison).hexdigest()
    placed = {}
    for topic in CONSUMERS:
        placed[topic] = await producer.send_and_wait(topic, key=key, value=poison)
    await producer.send_and_wait(
        "clinic.intake",
        key=key,
        value=intake_record(
            client_id, name="Pat Poison", email=f"{client_id}@example.com", region="neck"
        ),
    )

    for topic, services in CONSUMERS.items():
        position = (topic, placed[topic].partition, placed[topic].offset)
        for service in services:
            found = await topics.wait_for(partial(letter, topics, service, position), timeout=90)
            data = found[0]
            assert data["payload_truncated"] is True
            assert data["payload_bytes"] == POISON_BYTES
            assert data["payload_sha256"] == digest
            assert poison.startswith(base64.b64decode(data["payload"]))
            assert data["key"] == client_id

    # behind the poison on clinic.intake: planned (planner); behind it on clinic.plans:
    # booked (scheduler); behind it on clinic.visits: reminded (notifier)
    plans = await topics.wait_for(lambda: topics.for_client("plan.created", client_id))
    booked = await topics.wait_for(lambda: topics.for_client("visit.booked", client_id))
    await topics.wait_for(lambda: topics.for_client("notification.scheduled", client_id))
    assert plans and booked
    bootstrap = stack.infra.kafka_bootstrap_servers
    visits = [r for r in topics.records if r.topic == "clinic.visits" and r.key == client_id]
    first_visit = min(r.offset for r in visits if r.offset > placed["clinic.visits"].offset)
    # the planner reads clinic.visits too: it went past the poison and the record behind it
    await wait_committed_past(
        bootstrap,
        "clinicflow-planner",
        "clinic.visits",
        placed["clinic.visits"].partition,
        first_visit,
    )

    # the dashboard projects every topic, clinic.notifications included
    redis = connect(CommonSettings(REDIS_URL=stack.infra.redis_url))
    store = DashboardStore(redis, Keys(namespace, "dashboard"))
    try:

        async def projected_past_the_poison() -> bool:
            offsets = await store.offsets(await store.generation())
            return all(
                offsets.get((topic, sent.partition), 0) > sent.offset
                for topic, sent in placed.items()
            )

        await until(projected_past_the_poison, timeout=60)
    finally:
        await redis.aclose()
    assert not stack.dead()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"locationid": "atlantis"}, "unknown location 'atlantis'"),
        ({"chainid": "another-chain"}, "foreign chain 'another-chain'"),
        (
            {"dataschema": "urn:clinicflow:schema:intake.submitted:v2"},
            "unknown dataschema 'urn:clinicflow:schema:intake.submitted:v2'",
        ),
    ],
)
async def test_an_intake_no_service_can_read_correctly_is_dead_lettered_by_each_reader(
    stack: Stack,
    topics: TopicLog,
    producer: AIOKafkaProducer,
    change: dict[str, str],
    reason: str,
) -> None:
    client_id = str(uuid.uuid4())
    unreadable = {**json.loads(intake_record(client_id)), **change}
    sent = await producer.send_and_wait(
        "clinic.intake", key=client_id.encode(), value=json.dumps(unreadable).encode()
    )
    position = ("clinic.intake", sent.partition, sent.offset)
    # every reader of intake.submitted dead-letters it: the planner, the notifier and
    # the scheduler (which keeps the client's name for its views)
    for service in ("planner", "notifier", "scheduler"):
        found = await topics.wait_for(partial(letter, topics, service, position), timeout=60)
        assert reason in found[0]["error"]
        assert found[0]["payload_truncated"] is False
    assert not topics.for_client("plan.created", client_id)
