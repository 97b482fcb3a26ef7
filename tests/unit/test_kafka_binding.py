"""The CloudEvents Kafka binding of our records, checked against the CloudEvents
Python SDK: every record the publisher sends is in structured content mode, a
replayed dead letter is one only when its value is a CloudEvent, and our own
decoding reads a record whatever its headers."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from shared.binding import (
    STRUCTURED_CONTENT_TYPE,
    headers_bytes,
    is_structured,
    replay_headers,
    structured_headers,
)
from shared.codec import decode_envelope, encode, wrap
from shared.envelope import Trace
from shared.events import PlanCompleted
from shared.kafka import Outgoing, Publisher
from shared.settings import CommonSettings

NOW = datetime(2027, 3, 8, 16, tzinfo=UTC)


def completed(client_id: str = "c-1") -> Outgoing:
    data = PlanCompleted(
        plan_id="p-1",
        version=1,
        client_id=client_id,
        location_id="beaverton",
        reason="course complete",
        sessions_done=6,
        completed_at=NOW,
    )
    envelope = wrap(
        data,
        event_id="e-1",
        service="planner",
        subject=client_id,
        trace=Trace(chainid="northwest-nmt", correlationid="i-1", locationid="beaverton"),
        time=NOW,
    )
    return Outgoing(key=client_id, envelope=envelope)


def test_the_header_names_the_cloudevents_json_format() -> None:
    assert structured_headers() == [
        ("content-type", b"application/cloudevents+json; charset=UTF-8")
    ]
    # the SDK's own structured records carry its format's media type, which ours extends
    sdk = ce_kafka.to_structured_event(CloudEvent({"type": "t", "source": "/s"}, None))
    assert STRUCTURED_CONTENT_TYPE.startswith(sdk.headers["content-type"].decode())
    assert is_structured(list(sdk.headers.items()))


def test_the_sdk_reads_our_record_as_the_event_we_wrote() -> None:
    item = completed()
    message = ce_kafka.KafkaMessage(
        headers=dict(structured_headers()), key=item.key.encode(), value=item.value
    )
    event = ce_kafka.from_kafka(message, JSONFormat())
    assert event.get_id() == item.envelope.id
    assert event.get_type() == "plan.completed"
    assert event.get_source() == item.envelope.source
    assert event.get_subject() == "c-1"
    assert event.get_time() == NOW
    assert event.get_dataschema() == item.envelope.dataschema
    assert event.get_extension("correlationid") == "i-1"
    assert event.get_data() == item.envelope.data
    # the binding's key mapping: the record key surfaces as partitionkey
    assert event.get_extension("partitionkey") == "c-1"


@pytest.mark.parametrize(
    ("headers", "structured"),
    [
        ([("content-type", b"application/cloudevents+json; charset=UTF-8")], True),
        ([("Content-Type", b"application/cloudevents+json")], True),
        ([("content-type", b"application/json")], False),
        ([("ce_id", b"e-1"), ("content-type", b"application/json")], False),
        ([], False),
    ],
)
def test_structured_mode_is_told_by_the_content_type_alone(
    headers: list[tuple[str, bytes]], structured: bool
) -> None:
    assert is_structured(headers) is structured


def test_a_replayed_cloudevent_gets_the_header_and_anything_else_none() -> None:
    assert replay_headers(completed().value) == structured_headers()
    assert replay_headers(b'{"specversion": "1.0", "id": "x"}') == structured_headers()
    assert replay_headers(b"not json") == []
    assert replay_headers(b"\xff\xfe") == []
    assert replay_headers(b'{"id": "x", "type": "plan.completed"}') == []
    assert replay_headers(b'["specversion"]') == []
    assert replay_headers(b"") == []
    assert replay_headers(None) == []


def test_our_decoding_reads_the_value_whatever_the_headers() -> None:
    # records from before the header, and from producers without it, read the same
    item = completed()
    assert decode_envelope(item.value) == item.envelope


class _Producer:
    """Takes sends as aiokafka's producer does, each acknowledged at once."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, topic: str, **record: Any) -> asyncio.Future[object]:
        self.sent.append({"topic": topic, **record})
        acknowledged: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        acknowledged.set_result(None)
        return acknowledged


async def test_every_record_the_publisher_sends_is_structured() -> None:
    publisher = Publisher(CommonSettings(), client_id="planner")
    await publisher._producer.stop()  # never started: it only holds the settings
    producer = _Producer()
    publisher._producer = producer  # type: ignore[assignment]
    items = [completed("c-1"), completed("c-2")]
    assert await publisher.publish_each(items) == [None, None]
    assert [s["topic"] for s in producer.sent] == ["clinic.plans", "clinic.plans"]
    for item, sent in zip(items, producer.sent, strict=True):
        assert sent["key"] == item.key.encode() and sent["value"] == encode(item.envelope)
        assert is_structured(sent["headers"])
        assert json.loads(sent["value"])["specversion"] == "1.0"


def test_the_header_counts_against_the_record_size() -> None:
    assert headers_bytes(structured_headers()) >= len("content-type") + len(STRUCTURED_CONTENT_TYPE)
