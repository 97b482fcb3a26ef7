"""The example billing subscriber (``examples/visits_subscriber.py``) against the run's
broker, as the separate program another team would run: it bills each completed
visit and no-show once, parks what it cannot read with the reason, survives event
types and schema versions from the future, and resumes after a restart without
losing or repeating a ledger line."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import signal
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from shared.codec import encode, wrap
from shared.envelope import Envelope, Trace, make_envelope
from shared.events import EventData
from shared.events.visits import (
    TriggerPointOutcome,
    VisitBooked,
    VisitCancelled,
    VisitCompleted,
    VisitNoShow,
)
from shared.infra import Infra
from shared.kafka import ensure_topics
from tests.support import committed_offset, eventually

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "visits_subscriber.py"
TOPIC = "clinic.visits"
NOW = datetime(2027, 3, 8, 16, tzinfo=UTC)
RUN_TIMEOUT_S = 120.0
# the embedded broker's values, as examples/README.md gives them
EMBEDDED_BROKER = (
    "--fetch-max-wait-ms=25",
    "--rebalance-timeout-ms=2000",
    "--session-timeout-ms=6000",
    "--heartbeat-interval-ms=1000",
)


def test_the_example_imports_nothing_from_clinicflow() -> None:
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            roots.add((node.module or "").split(".")[0])
    assert not roots & {"shared", "services", "tests"}
    assert roots <= set(sys.stdlib_module_names) | {"aiokafka", "jsonschema"}, roots


@dataclass(frozen=True)
class Sent:
    partition: int
    offset: int


class Visits:
    """One client's visit events for this run (ids unique to the run)."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:10]
        self.client_id = f"billing-{self.run}"
        self.plan_id = f"p-{self.run}"
        self.trace = Trace(
            chainid="northwest-nmt", correlationid=f"i-{self.run}", locationid="beaverton"
        )

    def visit(self, n: int) -> str:
        return f"v-{self.run}-{n}"

    def wrap(self, data: EventData, subject: str) -> Envelope:
        return wrap(
            data,
            event_id=str(uuid.uuid4()),
            service="scheduler",
            subject=subject,
            trace=self.trace,
            time=NOW,
        )

    def raw(self, event_type: str, version: int, data: dict[str, Any]) -> Envelope:
        """An envelope around ``data`` the models would not build (bad, or from the future)."""
        return make_envelope(
            event_id=str(uuid.uuid4()),
            service="scheduler",
            event_type=event_type,
            schema_version=version,
            subject=str(data.get("visit_id", self.client_id)),
            time=NOW,
            trace=self.trace,
            data=data,
        )

    def booked(self, n: int) -> Envelope:
        data = VisitBooked(
            visit_id=self.visit(n),
            plan_id=self.plan_id,
            client_id=self.client_id,
            location_id="beaverton",
            therapist_id="t-ana",
            room=1,
            start=NOW - timedelta(hours=2),
            end=NOW - timedelta(hours=1),
            timezone="America/Los_Angeles",
            sequence=n,
            sessions_total=6,
        )
        return self.wrap(data, data.visit_id)

    def completed_data(self, n: int) -> VisitCompleted:
        return VisitCompleted(
            visit_id=self.visit(n),
            plan_id=self.plan_id,
            client_id=self.client_id,
            location_id="beaverton",
            therapist_id="t-ana",
            pain_before=7,
            pain_after=4,
            techniques=["ischemic_compression"],
            trigger_points=[
                TriggerPointOutcome(
                    muscle="upper_trapezius", side="right", type="active", released=True
                )
            ],
            completed_at=NOW,
        )

    def completed(self, n: int) -> Envelope:
        data = self.completed_data(n)
        return self.wrap(data, data.visit_id)

    def no_show(self, n: int) -> Envelope:
        data = VisitNoShow(
            visit_id=self.visit(n),
            plan_id=self.plan_id,
            client_id=self.client_id,
            location_id="beaverton",
            recorded_at=NOW,
        )
        return self.wrap(data, data.visit_id)

    def cancelled(self, n: int) -> Envelope:
        data = VisitCancelled(
            visit_id=self.visit(n),
            plan_id=self.plan_id,
            client_id=self.client_id,
            location_id="beaverton",
            by="client",
            late=True,
            reason="sick",
            cancelled_at=NOW,
        )
        return self.wrap(data, data.visit_id)


def with_additions(envelope: Envelope, **data: Any) -> bytes:
    """``envelope`` as a newer producer might send it: fields this reader never saw,
    at the top of ``data``, inside a nested object, and as an extension attribute."""
    document = json.loads(encode(envelope))
    document["data"].update(data)
    for point in document["data"].get("trigger_points", []):
        point["grade"] = 2
    document["billingregion"] = "us-west"
    return json.dumps(document).encode()


@pytest.fixture
async def producer(infra: Infra) -> AsyncIterator[AIOKafkaProducer]:
    await ensure_topics(infra.kafka_bootstrap_servers)
    producer = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap_servers, acks="all", linger_ms=0
    )
    await producer.start()
    yield producer
    await producer.stop()


async def send(producer: AIOKafkaProducer, key: str, value: bytes) -> Sent:
    meta = await asyncio.wait_for(
        producer.send_and_wait(TOPIC, key=key.encode(), value=value), timeout=30
    )
    return Sent(meta.partition, meta.offset)


@dataclass
class Subscriber:
    """A run of the example program: its files and the group it consumes as."""

    bootstrap: str
    workdir: Path
    group: str

    @property
    def db(self) -> Path:
        return self.workdir / "billing.sqlite3"

    @property
    def rejected(self) -> Path:
        return self.workdir / "rejected.jsonl"

    async def start(self, name: str, *extra: str) -> tuple[asyncio.subprocess.Process, Path, Path]:
        out, err = self.workdir / f"{name}.out", self.workdir / f"{name}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(SCRIPT),
                f"--bootstrap={self.bootstrap}",
                f"--group={self.group}",
                f"--db={self.db}",
                f"--rejected={self.rejected}",
                f"--schemas={ROOT / 'schemas'}",
                *EMBEDDED_BROKER,
                *extra,
                stdout=stdout,
                stderr=stderr,
                cwd=self.workdir,
                env=dict(os.environ),
            )
        return process, out, err

    def ledger(self, client_id: str) -> list[dict[str, Any]]:
        if not self.db.exists():
            return []
        with sqlite3.connect(self.db) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT * FROM ledger WHERE client_id = ? ORDER BY visit_id", (client_id,)
            ).fetchall()
        return [dict(row) for row in rows]

    def parked(self, sent: Sequence[Sent]) -> list[dict[str, Any]]:
        wanted = {(s.partition, s.offset) for s in sent}
        if not self.rejected.exists():
            return []
        lines = [json.loads(line) for line in self.rejected.read_text().splitlines()]
        return [p for p in lines if p["topic"] == TOPIC and (p["partition"], p["offset"]) in wanted]


async def finished(process: asyncio.subprocess.Process) -> int:
    """The exit status, or the process killed and the test failed at the deadline."""
    try:
        return await asyncio.wait_for(process.wait(), timeout=RUN_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"subscriber still running after {RUN_TIMEOUT_S:.0f} s") from None


def summary(err: Path) -> dict[str, Any]:
    last = [line for line in err.read_text().splitlines() if "stopped: " in line][-1]
    return dict(json.loads(last.split("stopped: ", 1)[1]))


async def test_bills_once_parks_bad_records_and_resumes_after_a_restart(
    infra: Infra, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    visits = Visits()
    key = visits.client_id  # one key: one partition, in the order sent
    first = visits.completed(1)
    completed = with_additions(first, room_temperature_c=21)  # fields from a newer producer
    await send(producer, key, encode(visits.booked(1)))
    await send(producer, key, completed)
    await send(producer, key, completed)  # redelivered: the same event, the same id
    await send(producer, key, with_additions(visits.no_show(2)))
    await send(producer, key, encode(visits.cancelled(3)))
    future = {"visit_id": visits.visit(4), "client_id": visits.client_id, "to": "mars"}
    await send(producer, key, encode(visits.raw("visit.teleported", 1, future)))
    invalid = visits.completed_data(5).to_data()
    invalid["pain_before"] = 42
    del invalid["completed_at"]
    bad_data = await send(producer, key, encode(visits.raw("visit.completed", 1, invalid)))
    not_json = await send(producer, key, b"\x00\xff{not json")
    not_event = await send(producer, key, json.dumps({"visit_id": visits.visit(6)}).encode())
    newer = visits.raw("visit.completed", 2, visits.completed_data(7).to_data())
    newer_version = await send(producer, key, encode(newer))

    subscriber = Subscriber(
        infra.kafka_bootstrap_servers, tmp_path, group=f"billing-example-{visits.run}"
    )
    process, out, err = await subscriber.start("first", "--until-idle=3")
    assert await finished(process) == 0, err.read_text()

    ledger = subscriber.ledger(visits.client_id)
    assert [(e["visit_id"], e["kind"], e["billable"], e["late"]) for e in ledger] == [
        (visits.visit(1), "completed", 1, None),
        (visits.visit(2), "no_show", 1, None),
        (visits.visit(3), "cancelled", 0, 1),
    ]
    line = ledger[0]
    assert line["event_id"] == first.id
    assert (line["plan_id"], line["location_id"]) == (visits.plan_id, "beaverton")
    assert datetime.fromisoformat(line["at"]) == NOW
    printed = out.read_text()
    for n in (1, 2, 3):
        assert printed.count(f"visit={visits.visit(n)} ") == 1, printed
    assert visits.visit(4) not in printed and visits.visit(7) not in printed

    bad = [bad_data, not_json, not_event, newer_version]
    assert len(subscriber.parked(bad)) == len(bad)  # each parked once
    parked = {(p["partition"], p["offset"]): p for p in subscriber.parked(bad)}
    schema_error = parked[(bad_data.partition, bad_data.offset)]
    assert schema_error["kind"] == "rejected"
    assert "urn:clinicflow:schema:visit.completed:v1" in schema_error["reason"]
    assert "data.pain_before" in schema_error["reason"]
    assert "'completed_at' is a required property" in schema_error["reason"]
    assert json.loads(schema_error["value"])["data"]["visit_id"] == visits.visit(5)
    garbage = parked[(not_json.partition, not_json.offset)]
    assert "not JSON" in garbage["reason"]
    assert garbage["value_base64"] and garbage["key"] == visits.client_id
    assert "not a CloudEvent" in parked[(not_event.partition, not_event.offset)]["reason"]
    unsupported = parked[(newer_version.partition, newer_version.offset)]
    assert unsupported["kind"] == "unsupported"
    assert "visit.completed:v2" in unsupported["reason"]

    counts = summary(err)
    assert counts["skipped_types"].get("visit.teleported", 0) >= 1
    assert counts["skipped_types"].get("visit.booked", 0) >= 1
    assert counts.get("duplicates", 0) >= 1
    assert "visit.teleported" in err.read_text()

    # a restart with the same group and ledger: only what is new is added
    another = await send(producer, key, encode(visits.completed(8)))
    process, out, err = await subscriber.start("second")
    await eventually(
        lambda: (
            any(e["visit_id"] == visits.visit(8) for e in subscriber.ledger(visits.client_id))
            or process.returncode is not None
        ),
        timeout=RUN_TIMEOUT_S,
    )
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)  # stops cleanly: commits, leaves the group
    assert await finished(process) == 0, err.read_text()

    ledger = subscriber.ledger(visits.client_id)
    assert [(e["visit_id"], e["kind"]) for e in ledger] == [
        (visits.visit(1), "completed"),
        (visits.visit(2), "no_show"),
        (visits.visit(3), "cancelled"),
        (visits.visit(8), "completed"),
    ]
    printed = out.read_text()
    assert printed.count(f"visit={visits.visit(8)} ") == 1
    assert all(f"visit={visits.visit(n)} " not in printed for n in (1, 2, 3))
    # the bad records were committed past, not read and parked again
    assert len(subscriber.parked(bad)) == len(bad)
    committed = await committed_offset(
        infra.kafka_bootstrap_servers, subscriber.group, TOPIC, another.partition
    )
    assert committed > another.offset
