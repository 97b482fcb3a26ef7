"""Bad records never stop a consumer, and redelivered records produce nothing new."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaProducer

from shared.envelope import derived_id
from shared.stack import Stack
from tests.support import TopicLog, intake_record, wait_committed_past

pytestmark = pytest.mark.e2e


async def test_a_malformed_intake_is_dead_lettered_and_the_next_record_is_planned(
    stack: Stack, topics: TopicLog, producer: AIOKafkaProducer
) -> None:
    client_id = str(uuid.uuid4())
    key = client_id.encode()
    bad = await producer.send_and_wait(
        "clinic.intake", key=key, value=b'{"specversion": "1.0", "type": '
    )
    good_value = intake_record(client_id)
    good = await producer.send_and_wait("clinic.intake", key=key, value=good_value)
    assert (bad.partition, bad.offset + 1) == (good.partition, good.offset)

    letters = await topics.wait_for(
        lambda: [
            e
            for e in topics.events(type="record.deadlettered")
            if e["data"]["source_topic"] == "clinic.intake"
            and e["data"]["offset"] == bad.offset
            and e["data"]["partition"] == bad.partition
            and e["data"]["service"] == "planner"
        ]
    )
    letter = letters[0]["data"]
    assert "not JSON" in letter["error"]
    assert letter["key"] == client_id
    assert letter["payload"] == '{"specversion": "1.0", "type": '

    plans = await topics.wait_for(lambda: topics.for_client("plan.created", client_id))
    assert plans[0]["causationid"] == derived_id("intake.submitted", plans[0]["correlationid"])


async def test_a_redelivered_intake_yields_one_plan(
    stack: Stack, topics: TopicLog, producer: AIOKafkaProducer
) -> None:
    client_id = str(uuid.uuid4())
    value = intake_record(client_id)
    await producer.send_and_wait("clinic.intake", key=client_id.encode(), value=value)
    again = await producer.send_and_wait("clinic.intake", key=client_id.encode(), value=value)
    await wait_committed_past(
        stack.infra.kafka_bootstrap_servers,
        "clinicflow-planner",
        "clinic.intake",
        again.partition,
        again.offset,
    )
    await topics.wait_for(lambda: topics.for_client("plan.created", client_id))
    plans = topics.for_client("plan.created", client_id)
    assert len(plans) == 1
    total = plans[0]["data"]["sessions_total"]
    visits = await topics.wait_for(
        lambda: len(v := topics.for_client("visit.booked", client_id)) >= total and v
    )
    assert len({v["data"]["visit_id"] for v in visits}) == len(visits) == total
