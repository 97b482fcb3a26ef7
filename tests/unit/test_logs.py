"""Structured logs (shared/logs.py) and the PHI net under them (shared/redaction.py):
the JSON shape, context bound per record and per request and never leaking, stdlib
records in the same shape, exceptions without the inputs that failed."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from shared import logs
from shared.clock import parse_clock
from shared.codec import DecodeError, decode_data, encode, wrap
from shared.envelope import Envelope, Trace
from shared.events import EventData, PlanCompleted
from shared.events.intake import ClientDetails, IntakeDocument
from shared.http import service_app
from shared.kafka import Outgoing
from shared.redaction import (
    REDACTED,
    describe_error,
    exception_dicts,
    exception_text,
    scrub,
    scrub_text,
)
from shared.runtime import StartupError, load_settings
from shared.settings import IntakeSettings
from shared.streams import RawRecord, StreamProcessor

NAME = "Quillonia Vexmarrow"
EMAIL = "quillonia.vexmarrow@phi-marker.example"
PHONE = "+15039876543"
COMPLAINT = "zyglotic throbbing at dawn"
MARKERS = ("quillonia", "vexmarrow", "phi-marker", "5039876543", "987-6543", "zyglotic")
NOW = datetime(2027, 3, 8, 16, tzinfo=UTC)


class Captured:
    def __init__(self, buffer: io.StringIO) -> None:
        self.buffer = buffer

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        """Every line, parsed; httpx's own request lines left out."""
        parsed = [json.loads(line) for line in self.text.splitlines()]
        return [line for line in parsed if line["logger"] != "httpx"]

    def find(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["event"] == event]


@pytest.fixture
def captured() -> Iterator[Captured]:
    root = logging.getLogger()
    level = root.level
    buffer = io.StringIO()
    logs.configure_logging("DEBUG", service="test-service", stream=buffer)
    yield Captured(buffer)
    logs.reset_logging()
    root.setLevel(level)


def assert_no_phi(text: str) -> None:
    lowered = text.lower()
    assert not [m for m in MARKERS if m in lowered], text


def phi_validation_error() -> ValidationError:
    """A pydantic error whose message quotes client data as the input that failed."""
    try:
        IntakeDocument.model_validate(
            {
                "location_id": "beaverton",
                "client": {"name": NAME, "email": "quillonia at phi-marker", "phone": NAME},
                "complaints": [{"region": COMPLAINT, "intensity": 11, "onset": "2026-01-01"}],
            }
        )
    except ValidationError as exc:
        return exc
    raise AssertionError("the document was valid")


# --- the shape of a line ----------------------------------------------------------------


def test_structlog_and_stdlib_lines_are_one_json_object_each(captured: Captured) -> None:
    logs.get_logger("shared.example").info("plan built", plan_id="p-1", sessions=6)
    logging.getLogger("aiokafka.example").warning("broker %s away", "b-1", extra={"tries": 3})
    first, second = captured.lines()
    assert list(first)[:5] == ["timestamp", "level", "logger", "event", "service"]
    assert first | {"timestamp": None} == {
        "timestamp": None,
        "level": "info",
        "logger": "shared.example",
        "event": "plan built",
        "service": "test-service",
        "plan_id": "p-1",
        "sessions": 6,
    }
    assert datetime.fromisoformat(first["timestamp"]).utcoffset() == UTC.utcoffset(None)
    assert second["level"] == "warning" and second["logger"] == "aiokafka.example"
    assert second["event"] == "broker b-1 away" and second["tries"] == 3
    assert second["service"] == "test-service"


def test_the_level_filters_both_kinds_and_noisy_libraries_stay_at_warning(
    captured: Captured,
) -> None:
    logs.configure_logging("INFO", service="s", stream=captured.buffer)
    logs.get_logger("a").debug("hidden")
    logging.getLogger("b").debug("hidden too")
    logging.getLogger("faust.worker").info("chatter")
    logging.getLogger("uvicorn.access").info("GET /v1/clients/c-1 200")
    logging.getLogger("aiokafka.conn").warning("shown")
    assert [line["event"] for line in captured.lines()] == ["shown"]


def test_reconfiguring_replaces_the_handler_instead_of_doubling_lines(captured: Captured) -> None:
    logs.configure_logging("DEBUG", service="test-service", stream=captured.buffer)
    logging.getLogger("x").info("once")
    assert len(captured.find("once")) == 1


def test_the_console_format_is_readable_and_scrubbed() -> None:
    buffer = io.StringIO()
    logs.configure_logging("DEBUG", service="desk", json=False, stream=buffer)
    try:
        logs.get_logger("shared.example").info("sent", to=EMAIL, notification_id="n-1")
        try:
            raise phi_validation_error()
        except ValidationError:
            logging.getLogger("shared.example").exception("failed")
    finally:
        logs.reset_logging()
    text = buffer.getvalue()
    assert "sent" in text and "notification_id=n-1" in text and "service=desk" in text
    assert "Traceback (most recent call last)" in text and "ValidationError" in text
    assert_no_phi(text)
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_the_format_is_a_setting_and_a_bad_one_stops_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLINICFLOW_LOG_FORMAT", "console")
    assert load_settings(IntakeSettings).log_format == "console"
    monkeypatch.setenv("CLINICFLOW_LOG_FORMAT", "yaml")
    with pytest.raises(StartupError, match="CLINICFLOW_LOG_FORMAT"):
        load_settings(IntakeSettings)


# --- context ----------------------------------------------------------------------------


def test_bound_context_is_on_every_line_inside_and_gone_after(captured: Captured) -> None:
    with logs.bound(correlation_id="c-1", location_id="beaverton"):
        logs.get_logger("a").info("inside")
        logging.getLogger("b").info("stdlib inside")
        with logs.bound(correlation_id="c-2"):
            logging.getLogger("b").info("nested")
        logging.getLogger("b").info("restored")
    logging.getLogger("b").info("outside")
    by_event = {line["event"]: line for line in captured.lines()}
    assert by_event["inside"]["correlation_id"] == "c-1"
    assert by_event["stdlib inside"]["location_id"] == "beaverton"
    assert by_event["nested"]["correlation_id"] == "c-2"
    assert by_event["restored"]["correlation_id"] == "c-1"
    assert "correlation_id" not in by_event["outside"]
    assert structlog.contextvars.get_contextvars() == {}


async def test_concurrent_work_keeps_its_own_context(captured: Captured) -> None:
    async def work(correlation: str) -> None:
        with logs.bound(correlation_id=correlation):
            for step in range(3):
                logging.getLogger("w").info("step", extra={"step": step, "expect": correlation})
                await asyncio.sleep(0)

    await asyncio.gather(*(work(f"c-{n}") for n in range(4)))
    lines = captured.find("step")
    assert len(lines) == 12
    assert all(line["correlation_id"] == line["expect"] for line in lines)


class FakePublisher:
    max_message_bytes = 1_048_576

    def __init__(self) -> None:
        self.published: list[Outgoing] = []

    async def publish(self, items: Sequence[Outgoing]) -> None:
        self.published.extend(items)

    async def publish_each(self, items: Sequence[Outgoing]) -> list[None]:
        self.published.extend(items)
        return [None for _ in items]


class FakeProcessed:
    def __init__(self) -> None:
        self.ids: set[str] = set()

    async def seen(self, event: Envelope) -> bool:
        return event.id in self.ids

    async def seen_among(self, events: Sequence[Envelope]) -> set[str]:
        return self.ids & {event.id for event in events}

    async def mark_all(self, events: Iterable[Envelope]) -> None:
        self.ids.update(event.id for event in events)


def plan_completed(*, location: str | None = "beaverton") -> Envelope:
    data = PlanCompleted(
        plan_id="p-1",
        version=1,
        client_id="c-1",
        location_id="beaverton",
        reason="sessions done",
        completed_at=NOW,
    )
    trace = Trace(chainid="northwest-nmt", correlationid=f"i-{uuid.uuid4()}", locationid=location)
    return wrap(data, event_id=str(uuid.uuid4()), service="t", subject="p-1", trace=trace, time=NOW)


def consumer(handler: Any) -> tuple[StreamProcessor, FakePublisher]:
    publisher = FakePublisher()
    processor = StreamProcessor(
        service="planner",
        chain_id="northwest-nmt",
        locations=["beaverton"],
        handlers={"plan.completed": handler, "intake.submitted": handler},
        publisher=publisher,  # type: ignore[arg-type]
        processed=FakeProcessed(),  # type: ignore[arg-type]
        clock=parse_clock("system"),
    )
    return processor, publisher


def raw(value: bytes, offset: int = 5) -> RawRecord:
    return RawRecord(topic="clinic.plans", partition=2, offset=offset, key=b"c-1", value=value)


async def test_a_handled_record_puts_its_ids_on_every_line_of_its_handler(
    captured: Captured,
) -> None:
    async def handler(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        logging.getLogger("services.planner.handlers").info("handling")
        await asyncio.sleep(0)
        logs.get_logger("services.planner.store").debug("stored")
        return []

    event = plan_completed()
    processor, _ = consumer(handler)
    await processor.process(raw(encode(event)))
    logging.getLogger("after").info("next")
    (handling,) = captured.find("handling")
    (stored,) = captured.find("stored")
    (handled,) = captured.find("record handled")
    (after,) = captured.find("next")
    expected = {
        "service": "planner",
        "topic": "clinic.plans",
        "partition": 2,
        "offset": 5,
        "event_id": event.id,
        "event_type": "plan.completed",
        "correlation_id": event.correlationid,
        "causation_id": event.id,
        "location_id": "beaverton",
        "chain_id": "northwest-nmt",
    }
    assert handling.items() >= expected.items()
    assert stored.items() >= expected.items()
    assert handled.items() >= expected.items() and handled["level"] == "debug"
    assert not expected.keys() - {"service"} & after.keys()
    assert after["service"] == "test-service"
    assert structlog.contextvars.get_contextvars() == {}


async def test_a_record_with_invalid_data_is_dead_lettered_without_the_values(
    captured: Captured,
) -> None:
    async def handler(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        raise AssertionError("invalid data never reaches the handler")

    trace = Trace(chainid="northwest-nmt", correlationid="intake-7", locationid="beaverton")
    envelope = Envelope(
        id=str(uuid.uuid4()),
        source="/clinicflow/intake",
        type="intake.submitted",
        subject="c-1",
        time=NOW,
        dataschema="urn:clinicflow:schema:intake.submitted:v1",
        chainid=trace.chainid,
        locationid=trace.locationid,
        correlationid=trace.correlationid,
        data={
            "intake_id": "intake-7",
            "client": {"client_id": "c-1", "name": NAME, "email": EMAIL, "phone": PHONE},
            "location_id": "beaverton",
            "complaints": [{"region": COMPLAINT, "intensity": "Vexmarrow", "frequency": COMPLAINT}],
        },
    )
    processor, publisher = consumer(handler)
    await processor.process(raw(encode(envelope)))
    (line,) = captured.find("record dead-lettered")
    assert line["level"] == "warning"
    assert line["correlation_id"] == "intake-7" and line["event_type"] == "intake.submitted"
    assert "complaints.0.region" in line["reason"]
    (letter,) = publisher.published
    error = letter.envelope.data["error"]
    assert "invalid intake.submitted data" in error and "complaints.0.intensity" in error
    assert_no_phi(error)
    assert_no_phi(captured.text)


async def test_a_failing_handler_logs_the_exception_without_the_input_it_quotes(
    captured: Captured,
) -> None:
    async def handler(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        try:
            ClientDetails.model_validate({"name": NAME, "email": EMAIL, "phone": COMPLAINT})
        except ValidationError as exc:
            raise RuntimeError(f"client at {EMAIL} / {PHONE}: bad record") from exc
        return []

    event = plan_completed()
    processor, publisher = consumer(handler)
    await processor.process(raw(encode(event)))
    (failed,) = captured.find("handler failed")
    assert failed["level"] == "error" and failed["causation_id"] == event.id
    outer, cause = failed["exception"]
    assert outer["exc_type"] == "RuntimeError" and outer["frames"]
    assert cause["exc_type"] == "ValidationError" and cause["is_cause"]
    assert "phone: String should match pattern" in cause["exc_value"]
    assert outer["exc_value"] == "client at [email] / [phone]: bad record"
    (dead,) = captured.find("record dead-lettered")
    assert dead["reason"].startswith("handler error: RuntimeError")
    assert_no_phi(publisher.published[0].envelope.data["error"])
    assert_no_phi(captured.text)


# --- HTTP -------------------------------------------------------------------------------


@asynccontextmanager
async def no_runtime(app: FastAPI) -> AsyncIterator[None]:
    yield


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = service_app(service="calendar", title="t", description="t", lifespan=no_runtime)

    @app.get("/v1/locations/{location_id}/clients/{client_id}")
    async def read(location_id: str, client_id: str) -> dict[str, str]:
        logging.getLogger("services.example").info("reading")
        return {"ok": "yes"}

    @app.get("/v1/broken")
    async def broken() -> None:
        raise RuntimeError(f"broken for {EMAIL}")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://calendar") as client:
        yield client


async def test_a_request_binds_its_route_and_ids_and_closes_with_a_status_line(
    captured: Captured, http: httpx.AsyncClient
) -> None:
    response = await http.get(
        "/v1/locations/beaverton/clients/client-42",
        headers={"X-Request-ID": "req-1", "X-Correlation-ID": "intake-9"},
    )
    assert response.status_code == 200
    reading, handled = captured.lines()
    context = {
        "service": "calendar",
        "method": "GET",
        "route": "/v1/locations/{location_id}/clients/{client_id}",
        "location_id": "beaverton",
        "request_id": "req-1",
        "correlation_id": "intake-9",
    }
    assert reading.items() >= context.items()
    assert handled.items() >= (context | {"event": "request handled", "status": 200}).items()
    assert handled["level"] == "info" and handled["duration_ms"] >= 0
    assert "client-42" not in json.dumps(captured.lines())
    assert structlog.contextvars.get_contextvars() == {}


async def test_caller_ids_that_are_not_ids_are_not_copied_and_probes_log_at_debug(
    captured: Captured, http: httpx.AsyncClient
) -> None:
    await http.get("/healthz", headers={"X-Request-ID": f"{NAME} <{EMAIL}>"})
    await http.get("/v1/nowhere", headers={"X-Correlation-ID": "x" * 200})
    probe, unmatched = captured.lines()
    assert probe["level"] == "debug" and probe["route"] == "/healthz"
    assert "request_id" not in probe
    assert unmatched["route"] == "unmatched" and unmatched["status"] == 404
    assert "correlation_id" not in unmatched
    assert_no_phi(captured.text)


async def test_a_request_that_raises_is_logged_as_failed_and_answered_as_json_500(
    captured: Captured, http: httpx.AsyncClient
) -> None:
    answer = await http.get("/v1/broken")
    assert answer.status_code == 500 and "detail" in answer.json()
    (failed,) = captured.find("request failed")
    assert failed["status"] == 500 and failed["route"] == "/v1/broken"
    assert failed["error"] == "RuntimeError" and failed["where"]
    assert structlog.contextvars.get_contextvars() == {}


# --- the net ----------------------------------------------------------------------------


def test_phi_keys_are_redacted_at_any_depth_and_in_any_case(captured: Captured) -> None:
    logs.get_logger("x").info(
        "oops",
        client={"name": NAME},
        record={"Email": EMAIL, "nested": [{"PHONE": PHONE, "notes": "Vexmarrow"}], "id": "n-1"},
        goals=["zyglotic"],
        body="Vexmarrow",
    )
    (line,) = captured.lines()
    assert line["client"] == REDACTED and line["goals"] == REDACTED and line["body"] == REDACTED
    assert line["record"] == {
        "Email": REDACTED,
        "nested": [{"PHONE": REDACTED, "notes": REDACTED}],
        "id": "n-1",
    }


def test_models_and_dataclasses_are_scrubbed_as_their_fields() -> None:
    class Contact(BaseModel):
        client_id: str
        email: str
        language: str

    assert scrub(Contact(client_id="c-1", email=EMAIL, language="en")) == {
        "client_id": "c-1",
        "email": REDACTED,
        "language": "en",
    }
    assert scrub(KeyError(EMAIL)) == "KeyError: '[email]'"


@pytest.mark.parametrize(
    "text",
    [
        f"write to {EMAIL} today",
        "call +1 503 987 6543",
        "call +1 (503) 987-6543.",
        f"sms from {PHONE}",
        "call (503) 987-6543",
        "call 503.987.6543 or 503-987-6543",
        "1 validation error [type=string_type, input_value='zyglotic, 987-6543', input_type=int]",
    ],
)
def test_contact_data_inside_text_is_masked(text: str) -> None:
    assert_no_phi(scrub_text(text))


@pytest.mark.parametrize(
    "text",
    [
        "visit 2027-03-08T16:00:00+00:00 booked",
        "due 2027-03-13",
        "clinic.plans[2]@12345678",
        "id 12345678-1234-5678-1234-123456789012",
        "id 6f1c2b7e-93c4-4d1a-9a57-3f0e4c1d2b8a",
        "epoch 1773000000.25 took 12.5 ms",
        "broker 127.0.0.1:9092",
        "smtp: 550 at recipient",
    ],
)
def test_ids_times_and_numbers_are_left_alone(text: str) -> None:
    assert scrub_text(text) == text


# --- errors -----------------------------------------------------------------------------


def test_validation_errors_are_described_by_field_and_rule_only() -> None:
    exc = phi_validation_error()
    assert "quillonia" in str(exc).lower()  # what pydantic itself would print
    described = describe_error(exc)
    assert described.startswith("ValidationError: IntakeDocument: ")
    assert "client.phone: String should match pattern" in described
    assert "complaints.0.intensity" in described
    assert_no_phi(described)


def test_request_validation_errors_do_not_quote_the_body() -> None:
    exc = RequestValidationError(
        [{"loc": ("body", "client", "name"), "msg": "too long", "type": "x", "input": NAME}]
    )
    assert describe_error(exc) == "RequestValidationError: body.client.name: too long"


def test_tracebacks_keep_frames_and_chain_but_not_locals_or_inputs() -> None:
    def failing(secret: str) -> None:
        try:
            raise phi_validation_error()
        except ValidationError as exc:
            raise ValueError(f"could not read {secret}") from exc

    with pytest.raises(ValueError) as caught:
        failing(EMAIL)
    stacks = exception_dicts(caught.value)
    assert [s["exc_type"] for s in stacks] == ["ValueError", "ValidationError"]
    assert stacks[0]["exc_value"] == "could not read [email]"
    assert any(f["function"] == "failing" for f in stacks[0]["frames"])
    assert all("locals" not in f for s in stacks for f in s["frames"])
    assert_no_phi(json.dumps(stacks))
    text = exception_text(caught.value)
    assert "The above exception was the direct cause" in text
    assert_no_phi(text)


def test_stdlib_exceptions_come_out_structured_and_scrubbed(captured: Captured) -> None:
    try:
        raise phi_validation_error()
    except ValidationError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    (line,) = captured.lines()
    assert line["exception"][0]["exc_type"] == "ValidationError"
    assert_no_phi(captured.text)


def test_dead_letter_reasons_from_the_codec_name_fields_not_values() -> None:
    data = {
        "plan_id": NAME,
        "version": NAME,
        "client_id": EMAIL,
        "location_id": "beaverton",
        "reason": COMPLAINT,
        "completed_at": f"{NAME} yesterday",
    }
    envelope = plan_completed().model_copy(update={"data": data})
    with pytest.raises(DecodeError) as caught:
        decode_data(envelope)
    assert "version: Input should be a valid integer" in str(caught.value)
    assert "completed_at: Input should be a valid datetime" in str(caught.value)
    assert_no_phi(str(caught.value))
