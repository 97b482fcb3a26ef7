"""No log line carries PHI (DESIGN.md "Guarantees": minimum necessary).

A client with a recognisable name, e-mail address, phone number, complaint, goals,
medications and notes goes through the four services in-process against the real
broker and Redis: intake over HTTP (whole document, a session, a 422, an
assessment), the planner, scheduler and notifier handling the records as their
consumers do (the same ``StreamProcessor``, fed the records read back from the
topics), a visit completed with notes, the reminder sent and an SMS reply. Records
carrying the same data are dead-lettered: invalid data, a rejected event, a
handler that fails on it. Everything logged at DEBUG goes through the configured
JSON logging; every line must parse, none may contain a marker, and the lines
that tell the story must be there with their ids."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.intake.app import build_app as build_intake
from services.notifier.api import router as notifier_routes
from services.notifier.channels import channels_from
from services.notifier.dispatcher import Dispatcher
from services.notifier.handlers import handlers as notifier_handlers
from services.notifier.sms_inbound import twilio_signature
from services.planner.api import router as planner_routes
from services.planner.handlers import handlers as planner_handlers
from services.scheduler import calendar_api
from services.scheduler.api import router as scheduler_routes
from services.scheduler.handlers import handlers as scheduler_handlers
from services.scheduler.outbox import relay
from shared import logs
from shared.codec import wrap
from shared.envelope import Envelope, Trace
from shared.events import EventData, IntakeSubmitted
from shared.events.intake import ClientDetails
from shared.infra import Infra
from shared.kafka import Outgoing
from shared.runtime import Runtime, stream_processor
from shared.service import build_service
from shared.settings import NotifierSettings, PlannerSettings, SchedulerSettings
from shared.streams import Handler, RawRecord, StreamProcessor
from shared.topics import INTAKE, PLANS, VISITS
from tests.conftest import DEMO_CHAIN
from tests.support import Record, SettableClock, TopicLog, intake_settings

pytestmark = pytest.mark.integration

START = datetime(2027, 3, 1, 16, tzinfo=UTC)  # a Monday, 08:00 in Beaverton
FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
THERAPIST = {"Authorization": "Bearer demo-therapist-ana"}
ADMIN = {"Authorization": "Bearer demo-admin"}
INBOUND_URL = "http://notifier/v1/sms/inbound"
SMS_TOKEN = "sms-auth-token-for-log-tests"

NAME = "Quillonia Vexmarrow"
EMAIL = "quillonia.vexmarrow@phi-marker.example"
PHONE = "+1 (503) 987-6543"
E164 = "+15039876543"
COMPLAINT = "zyglotic throbbing after every kayak portage"
# every one must be absent from the logs, in any case
MARKERS = (
    "quillonia",
    "vexmarrow",
    "phi-marker",
    "5039876543",
    "987-6543",
    "zyglotic",
    "quorvalex",
    "thrumbleweed",
    "vexnote",
    "brindlefoot",
)


def document(**overrides: Any) -> dict[str, Any]:
    """A whole intake carrying a marker in every free-text and contact field."""
    doc: dict[str, Any] = {
        "location_id": "beaverton",
        "client": {
            "name": NAME,
            "email": EMAIL,
            "phone": PHONE,
            "date_of_birth": "1984-02-01",
            "contact_consent": {"email": True, "sms": False},
        },
        "complaints": [
            {
                "region": "neck",
                "side": "right",
                "intensity": 7,
                "qualities": ["dull", "ache"],
                "frequency": COMPLAINT,
                "onset": "2026-06-01",
                "episode_duration": "zyglotic hours",
                "aggravating": ["zyglotic paddling"],
                "relieving": ["Thrumbleweed tea"],
                "provoking_movements": ["zyglotic rotation"],
            }
        ],
        "history": {"old_injuries": ["Brindlefoot fall 2019"], "notes": "Vexnote history"},
        "health": {
            "contraindications": [],
            "precautions": [{"code": "hypertension", "detail": "Quorvalex managed"}],
            "medications": ["Quorvalex 20mg"],
        },
        "goals": ["paddle Brindlefoot creek without zyglotic pain"],
        "preferences": {"modality": "either"},
        "consent": {"treatment": True},
    }
    doc.update(overrides)
    return doc


# --- capturing the logs -----------------------------------------------------------------


class Captured:
    def __init__(self, buffer: io.StringIO) -> None:
        self.buffer = buffer

    def lines(self) -> list[dict[str, Any]]:
        """Every line, parsed: one that is not JSON fails the test here."""
        return [json.loads(line) for line in self.buffer.getvalue().splitlines()]

    def find(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines()
            if line["event"] == event and all(line.get(k) == v for k, v in fields.items())
        ]


@pytest.fixture
def captured() -> Iterator[Captured]:
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *logs.NOISY_LOGGERS)}
    buffer = io.StringIO()
    logs.configure_logging("DEBUG", service="clinic-under-test", stream=buffer)
    yield Captured(buffer)
    logs.reset_logging()
    for name, level in levels.items():
        (logging.getLogger(name) if name else root).setLevel(level)


# --- the four services in-process -------------------------------------------------------

CONSUMES = {"planner": (INTAKE, VISITS), "scheduler": (PLANS,), "notifier": (INTAKE, PLANS, VISITS)}


@dataclass
class Clinic:
    http: dict[str, httpx.AsyncClient]
    runtimes: dict[str, Runtime]
    processors: dict[str, StreamProcessor]
    clock: SettableClock
    topics: TopicLog
    bootstrap: str

    async def consume(self, records: Sequence[Record]) -> None:
        """Hand records to every service that consumes their topic, as faust would."""
        for record in records:
            for service, specs in CONSUMES.items():
                if record.topic in {spec.name for spec in specs}:
                    await self.processors[service].process(raw(record))

    async def follow(self, event_type: str, correlation: str, *, at_least: int = 1) -> list[Record]:
        """Wait for events of one story on the topics and hand them on."""

        def arrived() -> list[Record]:
            found = [
                r
                for r in self.topics.records
                if r.value is not None
                and _matches(r.value, event_type=event_type, correlation=correlation)
            ]
            return found if len(found) >= at_least else []

        records = await self.topics.wait_for(arrived)
        await self.consume(records)
        return records

    async def publish(self, envelope: Envelope, *, key: str) -> Record:
        """Put an envelope on its topic as another service would; the record as read back."""
        await self.runtimes["intake"].publisher.publish([Outgoing(key=key, envelope=envelope)])
        found = await self.topics.wait_for(
            lambda: [r for r in self.topics.records if _matches(r.value, event_id=envelope.id)]
        )
        return found[0]

    async def publish_raw(self, topic: str, *, key: str, value: bytes) -> Record:
        """Put any bytes on a topic, as a broken producer would; the record as read back."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            sent = await producer.send_and_wait(topic, key=key.encode(), value=value)
        finally:
            await producer.stop()
        found = await self.topics.wait_for(
            lambda: [
                r
                for r in self.topics.records
                if (r.topic, r.partition, r.offset) == (topic, sent.partition, sent.offset)
            ]
        )
        return found[0]


def _matches(
    value: bytes | None,
    *,
    event_type: str | None = None,
    correlation: str | None = None,
    event_id: str | None = None,
) -> bool:
    try:
        event = json.loads(value or b"")
    except (ValueError, RecursionError):  # poison records other tests leave on the topics
        return False
    return (
        isinstance(event, dict)
        and (event_type is None or event.get("type") == event_type)
        and (correlation is None or event.get("correlationid") == correlation)
        and (event_id is None or event.get("id") == event_id)
    )


def raw(record: Record) -> RawRecord:
    key = record.key.encode() if record.key is not None else None
    return RawRecord(record.topic, record.partition, record.offset, key, record.value)


def processor(runtime: Runtime, handlers: Mapping[str, Handler]) -> StreamProcessor:
    """The consumer of ``runtime``'s service, built as shared/runtime.py builds it."""
    return stream_processor(runtime, handlers)


@asynccontextmanager
async def clinic_on(infra: Infra, topics: TopicLog, outbox: Path) -> AsyncIterator[Clinic]:
    namespace = f"test-logs-{uuid.uuid4().hex[:8]}"
    env: dict[str, Any] = {
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap_servers,
        "REDIS_URL": infra.redis_url,
        "CLINICFLOW_REDIS_NAMESPACE": namespace,
        "CLINICFLOW_CHAIN_CONFIG": str(DEMO_CHAIN),
        "CLINICFLOW_ENV": "test",
        "API_RATE_LIMIT_PER_MINUTE": 60_000,
        "API_RATE_LIMIT_BURST": 10_000,
    }
    notifier_settings = NotifierSettings(
        **env,
        NOTIFIER_OUTBOX_PATH=str(outbox),
        NOTIFIER_POLL_INTERVAL_S=0.05,
        NOTIFIER_SMS_INBOUND_URL=INBOUND_URL,
        NOTIFIER_SMS_AUTH_TOKEN=SMS_TOKEN,
    )
    channels = channels_from(notifier_settings)

    async def dispatch(runtime: Runtime) -> None:
        await Dispatcher(runtime, notifier_settings, channels).run()

    apps: dict[str, FastAPI] = {
        "intake": build_intake(intake_settings(infra, namespace)),
        "planner": build_service(
            service="planner",
            settings=PlannerSettings(**env),
            description="planner under test",
            routers=[planner_routes],
        ),
        "scheduler": build_service(
            service="scheduler",
            settings=SchedulerSettings(**env),
            description="scheduler under test",
            routers=[scheduler_routes, calendar_api.router],
            background=[relay],
        ),
        "notifier": build_service(
            service="notifier",
            settings=notifier_settings,
            description="notifier under test",
            routers=[notifier_routes],
            background=[dispatch],
        ),
    }
    clock = SettableClock(START)
    async with AsyncExitStack() as stack:
        http: dict[str, httpx.AsyncClient] = {}
        runtimes: dict[str, Runtime] = {}
        for name, app in apps.items():
            await stack.enter_async_context(app.router.lifespan_context(app))
            runtimes[name] = app.state.runtime
            runtimes[name].base.clock = clock
            transport = httpx.ASGITransport(app=app)
            http[name] = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=f"http://{name}")
            )
        configured = frozenset(channels)
        processors = {
            "planner": processor(runtimes["planner"], planner_handlers(runtimes["planner"])),
            "scheduler": processor(
                runtimes["scheduler"], scheduler_handlers(runtimes["scheduler"])
            ),
            "notifier": processor(
                runtimes["notifier"],
                notifier_handlers(runtimes["notifier"], configured),  # type: ignore[arg-type]
            ),
        }
        yield Clinic(http, runtimes, processors, clock, topics, infra.kafka_bootstrap_servers)


def intake_envelope(data: dict[str, Any], *, correlation: str, location: str) -> Envelope:
    """An ``intake.submitted`` envelope around ``data`` exactly as given (valid or not)."""
    return Envelope(
        id=str(uuid.uuid4()),
        source="/clinicflow/intake",
        type="intake.submitted",
        subject=str(data.get("client", {}).get("client_id", "c")),
        time=START,
        dataschema="urn:clinicflow:schema:intake.submitted:v1",
        chainid="northwest-nmt",
        locationid=location,
        correlationid=correlation,
        data=data,
    )


def assert_no_markers(text: str) -> None:
    lowered = text.lower()
    found = [marker for marker in MARKERS if marker in lowered]
    assert not found, f"PHI markers {found} in: " + next(
        line for line in text.splitlines() if any(m in line.lower() for m in found)
    )


# --- the journey ------------------------------------------------------------------------


async def test_a_whole_journey_and_its_failures_log_ids_but_no_client_data(
    infra: Infra, topics: TopicLog, captured: Captured, tmp_path: Path
) -> None:
    async with clinic_on(infra, topics, tmp_path / "outbox.jsonl") as clinic:
        intake = clinic.http["intake"]

        # a 422 quoting the client's data back to the caller, and only to the caller
        bad = document(complaints=[{"region": COMPLAINT, "intensity": 11, "onset": "someday"}])
        refused = await intake.post("/v1/intakes", json=bad, headers=FRONT_DESK)
        assert refused.status_code == 422

        # the whole document, with a correlation id of the caller's
        accepted = await intake.post(
            "/v1/intakes",
            json=document(),
            headers={**FRONT_DESK, "X-Correlation-ID": "crm-4711", "Idempotency-Key": "k-1"},
        )
        assert accepted.status_code == 202, accepted.text
        intake_id, client_id = accepted.json()["intake_id"], accepted.json()["client_id"]

        # the same client again through a session
        opened = await intake.post(
            "/v1/intake-sessions", json={"location_id": "beaverton"}, headers=FRONT_DESK
        )
        session = f"/v1/intake-sessions/{opened.json()['session_id']}"
        sections = {k: v for k, v in document().items() if k != "location_id"}
        sections["client"] = {**sections["client"], "phone": E164}
        patched = await intake.patch(session, json=sections, headers=FRONT_DESK)
        assert patched.status_code == 200, patched.text
        resubmitted = await intake.post(f"{session}/submit", headers=FRONT_DESK)
        assert resubmitted.status_code == 202, resubmitted.text
        assert resubmitted.json()["client_id"] == client_id

        # the planner, scheduler and notifier handle the story as their consumers would
        await clinic.follow("intake.submitted", intake_id)
        await clinic.follow("plan.created", intake_id)
        visits = await clinic.follow("visit.booked", intake_id)
        first = min((json.loads(r.value or b"")["data"] for r in visits), key=lambda v: v["start"])

        # the therapist's assessment, with notes, revises the plan
        assessed = await intake.post(
            f"/v1/clients/{client_id}/assessments",
            json={
                "location_id": "beaverton",
                "posture_findings": ["Vexnote forward head"],
                "nerve_signs": ["zyglotic tingling"],
                "notes": f"Vexnote: {NAME} mentioned {COMPLAINT}",
            },
            headers=THERAPIST,
        )
        assert assessed.status_code == 202, assessed.text
        assessment_id = assessed.json()["assessment_id"]
        await clinic.follow("assessment.recorded", assessment_id)
        await topics.caught_up()
        await clinic.consume(
            [
                r
                for r in topics.records
                if _matches(r.value, event_type="plan.revised", correlation=assessment_id)
            ]
        )

        # the visit took place: the therapist's notes, then the reminders fall due
        clinic.clock.at = datetime.fromisoformat(first["start"]) + timedelta(minutes=50)
        completed = await clinic.http["scheduler"].post(
            f"/v1/visits/{first['visit_id']}/complete",
            json={
                "pain_before": 7,
                "pain_after": 4,
                "techniques": ["ischemic_compression"],
                "notes": f"Vexnote: {NAME} says the zyglotic pain eased",
            },
            headers=ADMIN,
        )
        assert completed.status_code == 202, completed.text
        await clinic.follow("visit.completed", intake_id)
        await topics.wait_for(lambda: topics.for_client("notification.sent", client_id))

        # the client texts back with their name and complaint
        params = {
            "From": E164,
            "To": "+15035550100",
            "Body": f"this is {NAME}, the zyglotic pain is 4",
            "MessageSid": uuid.uuid4().hex,
        }
        texted = await clinic.http["notifier"].post(
            "/v1/sms/inbound",
            content=urlencode(params),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio_signature(SMS_TOKEN, INBOUND_URL, params),
            },
        )
        assert texted.status_code == 200

        # records carrying the same data that cannot be handled
        invalid = intake_envelope(
            {
                "intake_id": "i-invalid",
                "client": {"client_id": "c-invalid", "name": NAME, "email": EMAIL, "phone": E164},
                "location_id": "beaverton",
                "complaints": [{"region": COMPLAINT, "intensity": NAME, "frequency": COMPLAINT}],
                "goals": ["Thrumbleweed"],
            },
            correlation=f"corr-invalid-{uuid.uuid4().hex[:6]}",
            location="beaverton",
        )
        submitted = IntakeSubmitted.model_validate(
            json.loads(submitted_record(topics, intake_id).value or b"")["data"]
        )
        elsewhere = submitted.model_copy(update={"location_id": "atlantis"})
        rejected = wrap(
            elsewhere,
            event_id=str(uuid.uuid4()),
            service="intake",
            subject=client_id,
            trace=Trace(chainid="northwest-nmt", correlationid=f"corr-rejected-{uuid.uuid4()}"),
            time=START,
        )
        invalid_record = await clinic.publish(invalid, key="c-invalid")
        rejected_record = await clinic.publish(rejected, key=client_id)
        await clinic.consume([invalid_record, rejected_record])
        garbage = await clinic.publish_raw(
            INTAKE.name, key="c-garbage", value=f"{NAME} <{EMAIL}> {COMPLAINT}".encode()
        )
        await clinic.consume([garbage])

        # a handler that fails on the record, quoting its data in the exception
        async def failing(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
            assert isinstance(data, IntakeSubmitted)
            ClientDetails.model_validate({"name": data.client.name, "phone": data.client.name})
            return []

        broken = processor(clinic.runtimes["planner"], {"intake.submitted": failing})
        failed_event = wrap(
            submitted,
            event_id=str(uuid.uuid4()),
            service="intake",
            subject=client_id,
            trace=Trace(chainid="northwest-nmt", correlationid=f"corr-failing-{uuid.uuid4()}"),
            time=START,
        )
        failed_record = await clinic.publish(failed_event, key=client_id)
        await broken.process(raw(failed_record))

        positions = {
            (r.topic, r.partition, r.offset)
            for r in (invalid_record, rejected_record, failed_record, garbage)
        }

        def dead_letters() -> list[dict[str, Any]]:
            return [
                e
                for e in topics.events(type="record.deadlettered")
                if e["data"]["service"] == "planner"
                and (e["data"]["source_topic"], e["data"]["partition"], e["data"]["offset"])
                in positions
            ]

        letters = await topics.wait_for(lambda: len(dead_letters()) >= 4 and dead_letters())
        for letter in letters:
            assert_no_markers(letter["data"]["error"])

    lines = captured.lines()  # every line is JSON
    assert_no_markers(captured.buffer.getvalue())

    # the lines that tell the story are there, with their ids
    assert captured.find("request handled", route="/v1/intakes", status=422)
    (posted,) = captured.find("request handled", route="/v1/intakes", status=202)
    assert posted["correlation_id"] == "crm-4711" and posted["service"] == "intake"
    planned = captured.find(
        "record handled", service="planner", event_type="intake.submitted", correlation_id=intake_id
    )
    assert planned and planned[0]["causation_id"] == planned[0]["event_id"]
    assert planned[0]["location_id"] == "beaverton"
    assert captured.find("record handled", service="notifier", event_type="visit.booked")
    assert (
        captured.find("record handled", service="planner", event_type="assessment.recorded")[0][
            "correlation_id"
        ]
        == assessment_id
    )
    assert captured.find("request handled", service="scheduler", status=202)
    (dead_invalid,) = captured.find(
        "record dead-lettered", service="planner", correlation_id=invalid.correlationid
    )
    assert dead_invalid["level"] == "warning"
    assert dead_invalid["event_type"] == "intake.submitted"
    assert "invalid intake.submitted data" in dead_invalid["reason"]
    assert captured.find("record dead-lettered", causation_id=rejected.id)
    (handler_failed,) = captured.find("handler failed", correlation_id=failed_event.correlationid)
    assert handler_failed["exception"][0]["exc_type"] == "ValidationError"
    assert any(line["logger"] == "services.notifier.channels" for line in lines)
    (undecodable,) = captured.find(
        "record dead-lettered",
        service="planner",
        topic=garbage.topic,
        partition=garbage.partition,
        offset=garbage.offset,
    )
    assert "not JSON" in undecodable["reason"] and "correlation_id" not in undecodable


def submitted_record(topics: TopicLog, intake_id: str) -> Record:
    """The ``intake.submitted`` record of the story."""
    return next(
        r
        for r in topics.records
        if _matches(r.value, event_type="intake.submitted", correlation=intake_id)
    )
