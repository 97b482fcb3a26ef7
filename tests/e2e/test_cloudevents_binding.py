"""Every record on the public topics reads as a CloudEvent in structured content mode
with the CloudEvents SDKs' own Kafka bindings - Python's and JavaScript's (run with
node) - while a client's journey runs through the four services: intake, plan,
visits, one moved and one cancelled, reminders. Our own consumers still read a
record without the header, as records from before it was added are."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from icalendar import Calendar

from shared.binding import is_structured
from shared.codec import decode_envelope
from shared.stack import Stack
from shared.topics import PUBLIC_TOPICS
from tests.support import Record, TopicLog, intake_record

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "tests" / "js"
# the JavaScript SDK is installed here by the test itself, once per lockfile
JS_CACHE = ROOT / ".cache" / "js-cloudevents"
FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
Offsets = dict[tuple[str, int], int]


async def end_offsets(bootstrap: str) -> Offsets:
    """The next offset of every partition of the public topics, now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            await consumer.topics()  # a metadata round trip: every topic's partitions
            partitions = [
                TopicPartition(spec.name, partition)
                for spec in PUBLIC_TOPICS
                for partition in sorted(consumer.partitions_for_topic(spec.name) or ())
            ]
            ends = await consumer.end_offsets(partitions)
        return {(tp.topic, tp.partition): end for tp, end in ends.items()}
    finally:
        await consumer.stop()


def between(topics: TopicLog, start: Offsets, end: Offsets) -> list[Record]:
    """The records read from ``start`` (inclusive) to ``end`` (exclusive), every partition."""
    return [
        r
        for r in topics.records
        if start.get((r.topic, r.partition), 0) <= r.offset < end.get((r.topic, r.partition), 0)
    ]


async def submit_intake(stack: Stack, email: str) -> dict[str, Any]:
    document = {
        "location_id": "beaverton",
        "client": {"name": "Robin Binding", "email": email, "contact_consent": {"email": True}},
        "complaints": [
            {
                "region": "neck",
                "side": "left",
                "intensity": 6,
                "qualities": ["ache"],
                "onset": "2026-05-01",
            }
        ],
        "goals": ["sleep without neck pain"],
        "preferences": {"modality": "either"},
    }
    async with httpx.AsyncClient(base_url=stack.urls["intake"], timeout=30) as http:
        response = await http.post("/v1/intakes", json=document, headers=FRONT_DESK)
    assert response.status_code == 202, response.text
    return dict(response.json())


async def visit_calendar(stack: Stack, visit_id: str) -> Any:
    async with httpx.AsyncClient(base_url=stack.urls["scheduler"], timeout=30) as http:
        answer = await http.get(f"/v1/visits/{visit_id}.ics", headers=FRONT_DESK)
    assert answer.status_code == 200, answer.text
    return Calendar.from_ical(answer.content)


async def journey(stack: Stack, topics: TopicLog) -> str:
    """One client from intake to reminders, with one visit moved and one cancelled;
    its correlation id. The moved and cancelled visits' calendar files carry a
    SEQUENCE above the booking's."""
    accepted = await submit_intake(stack, f"binding-{uuid.uuid4().hex[:8]}@example.com")
    correlation = accepted["intake_id"]
    plan = (
        await topics.wait_for(lambda: topics.events(type="plan.created", correlationid=correlation))
    )[0]
    total = plan["data"]["sessions_total"]
    booked = await topics.wait_for(
        lambda: (
            len(v := topics.events(type="visit.booked", correlationid=correlation)) >= total and v
        )
    )
    # the last two visits are weeks away on the simulated clock: still to come
    *_, moved, cancelled = sorted(booked, key=lambda e: str(e["data"]["start"]))
    moved_id, cancelled_id = moved["data"]["visit_id"], cancelled["data"]["visit_id"]
    assert (await visit_calendar(stack, moved_id)).walk("VEVENT")[0]["SEQUENCE"] == 0
    async with httpx.AsyncClient(base_url=stack.urls["scheduler"], timeout=30) as http:
        rescheduled = await http.post(
            f"/v1/visits/{moved_id}/reschedule", json={}, headers=FRONT_DESK
        )
        assert rescheduled.status_code == 202, rescheduled.text
        gone = await http.post(
            f"/v1/visits/{cancelled_id}/cancel",
            json={"by": "client", "reason": "travelling"},
            headers=FRONT_DESK,
        )
        assert gone.status_code == 202, gone.text
    for event_type in ("visit.rescheduled", "visit.cancelled"):
        await topics.wait_for(lambda t=event_type: topics.events(type=t, correlationid=correlation))
    await topics.wait_for(
        lambda: topics.events(type="notification.scheduled", correlationid=correlation)
    )
    moved_event = (await visit_calendar(stack, moved_id)).walk("VEVENT")[0]
    assert moved_event["SEQUENCE"] == 1 and moved_event["STATUS"] == "CONFIRMED"
    cancel_file = await visit_calendar(stack, cancelled_id)
    cancel_event = cancel_file.walk("VEVENT")[0]
    assert cancel_event["SEQUENCE"] == 1 and cancel_event["STATUS"] == "CANCELLED"
    assert cancel_file["METHOD"] == "CANCEL" and "ORGANIZER" in cancel_event
    return correlation


def python_sdk_reads(record: Record) -> None:
    """The record as the Python SDK's Kafka binding reads it, against our envelope."""
    assert record.value is not None, record
    assert is_structured(record.headers), (record.topic, record.offset, record.headers)
    message = ce_kafka.KafkaMessage(
        headers=dict(record.headers), key=record.key, value=record.value
    )
    event = ce_kafka.from_kafka(message, JSONFormat())
    ours = decode_envelope(record.value)
    assert event.get_specversion() == "1.0"
    assert event.get_id() == ours.id
    assert event.get_type() == ours.type
    assert event.get_source() == ours.source
    assert event.get_subject() == ours.subject
    assert event.get_time() == ours.time
    assert event.get_data() == ours.data
    assert event.get_extension("partitionkey") == record.key


def js_sdk_install() -> Path:
    """node_modules with the pinned JavaScript SDK, installed once per lockfile."""
    lock = (JS_DIR / "package-lock.json").read_bytes()
    target = JS_CACHE / hashlib.sha256(lock).hexdigest()[:16]
    if (target / "node_modules" / "cloudevents" / "package.json").exists():
        return target / "node_modules"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(JS_DIR / name, target / name)
    npm = shutil.which("npm")
    assert npm, "npm is missing: node 20 and npm come with the machine (Debian's nodejs)"
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=target,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target / "node_modules"


def js_sdk_reads(records: list[Record], workdir: Path) -> list[dict[str, Any]]:
    """What the JavaScript SDK's Kafka binding makes of each record (its own script)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JavaScript SDK check needs it")
    modules = js_sdk_install()
    exported = workdir / "records.json"
    exported.write_text(
        json.dumps(
            [
                {
                    "topic": r.topic,
                    "partition": r.partition,
                    "offset": r.offset,
                    "key": r.key,
                    "headers": {name: value.decode() for name, value in r.headers},
                    "value": (r.value or b"").decode(),
                }
                for r in records
            ]
        ),
        "utf-8",
    )
    ran = subprocess.run(
        [node, str(JS_DIR / "read_kafka_records.mjs"), str(exported), str(modules)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    return [json.loads(line) for line in ran.stdout.splitlines()]


async def test_every_record_of_a_journey_reads_with_the_cloudevents_sdks(
    stack: Stack, topics: TopicLog, tmp_path: Path
) -> None:
    bootstrap = stack.infra.kafka_bootstrap_servers
    start = await end_offsets(bootstrap)
    correlation = await journey(stack, topics)
    end = await end_offsets(bootstrap)
    await topics.caught_up()
    records = between(topics, start, end)

    types = {r.event["type"] for r in records if r.event.get("correlationid") == correlation}
    assert types >= {
        "intake.submitted",
        "plan.created",
        "visit.booked",
        "visit.rescheduled",
        "visit.cancelled",
        "notification.scheduled",
    }, types
    assert len(records) == sum(end[p] - start.get(p, 0) for p in end), "every record read"

    for record in records:
        python_sdk_reads(record)

    read = js_sdk_reads(records, tmp_path)
    assert len(read) == len(records)
    refused = [r for r in read if not r["ok"] or r["mode"] != "structured"]
    assert not refused, refused[:5]
    for record, result in zip(records, read, strict=True):
        ours = decode_envelope(record.value)
        event = result["event"]
        assert result["position"] == f"{record.topic}/{record.partition}/{record.offset}"
        assert (event["id"], event["type"], event["source"], event["subject"]) == (
            ours.id,
            ours.type,
            ours.source,
            ours.subject,
        )
        assert event["data"] == ours.data
        assert event["partitionkey"] == record.key


async def test_a_record_without_the_header_is_still_read(
    stack: Stack, topics: TopicLog, producer: AIOKafkaProducer
) -> None:
    # as a producer from before the header wrote it: the value alone
    client_id = str(uuid.uuid4())
    sent = await producer.send_and_wait(
        "clinic.intake", key=client_id.encode(), value=intake_record(client_id)
    )
    plans = await topics.wait_for(lambda: topics.for_client("plan.created", client_id))
    (record,) = [
        r
        for r in topics.records
        if (r.topic, r.partition, r.offset) == ("clinic.intake", sent.partition, sent.offset)
    ]
    assert record.headers == ()
    # what the planner published in answer carries the header
    answer = topics.record_of(plans[0]["id"])
    assert answer is not None and is_structured(answer.headers)
