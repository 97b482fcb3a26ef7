"""The pure parts of "no record stops a consumer": which publish failures are
permanent, how a dead letter is cut to fit the broker's limit, and which events a
consumer refuses to read (another chain, an unknown schema version or location)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import errors
from hypothesis import given
from hypothesis import strategies as st

from services.dashboard.projection import observe
from shared.admission import refusal
from shared.broker_errors import publish_failure_kind
from shared.codec import DecodeError, decode_data, decode_envelope, encode, wrap
from shared.deadletters import (
    MAX_ERROR_CHARS,
    MAX_KEY_BYTES,
    RawRecord,
    dead_letter,
    record_bytes,
)
from shared.envelope import Envelope, Trace
from shared.events import PlanCompleted, RecordDeadLettered
from shared.kafka import PublishError, PublishRejected, publish_failure

NOW = datetime(2027, 3, 8, 16, tzinfo=UTC)
LIMIT = 1_048_576  # the producer's max_request_size default, and the setting's


@pytest.mark.parametrize(
    "error",
    [
        errors.MessageSizeTooLargeError(),
        errors.RecordTooLargeError(),
        errors.RecordListTooLargeError(),
        errors.InvalidTopicError(),
        errors.TopicAuthorizationFailedError(),
        errors.ClusterAuthorizationFailedError(),
        errors.SaslAuthenticationFailed(),
        errors.InvalidTimestampError(),
        errors.CorruptRecordException(),
    ],
)
def test_a_send_the_broker_refuses_for_what_it_is_is_permanent(error: Exception) -> None:
    assert publish_failure_kind(error) == "permanent"
    failure = publish_failure(error, "clinic.deadletter")
    assert isinstance(failure, PublishRejected) and failure.permanent
    assert failure.reason == type(error).__name__
    assert failure.topic == "clinic.deadletter"


@pytest.mark.parametrize(
    "error",
    [
        errors.KafkaConnectionError(),
        errors.NoBrokersAvailable(),
        errors.KafkaTimeoutError(),
        errors.RequestTimedOutError(),
        errors.NotLeaderForPartitionError(),
        errors.LeaderNotAvailableError(),
        errors.UnknownTopicOrPartitionError(),
        errors.NotEnoughReplicasError(),
        errors.NodeNotReadyError(),
        TimeoutError(),
        ConnectionResetError(),
        errors.UnknownError(),  # not known to be permanent: waiting loses nothing
        errors.KafkaError("something new"),
    ],
)
def test_a_failure_that_can_pass_is_transient(error: Exception) -> None:
    assert publish_failure_kind(error) == "transient"
    failure = publish_failure(error, "clinic.plans")
    assert type(failure) is PublishError and not failure.permanent


def record(value: bytes | None, *, key: bytes | None = b"c-1") -> RawRecord:
    return RawRecord(topic="clinic.intake", partition=3, offset=42, key=key, value=value)


def letter(raw: RawRecord, max_bytes: int = LIMIT, **kwargs: object) -> RecordDeadLettered:
    options: dict[str, object] = {
        "error": "value is not JSON",
        "service": "planner",
        "chain_id": "northwest-nmt",
        "envelope": None,
        "now": NOW,
        "max_bytes": max_bytes,
        **kwargs,
    }
    item = dead_letter(raw, **options)  # type: ignore[arg-type]
    assert record_bytes(item) <= max_bytes or max_bytes == 0
    return RecordDeadLettered.model_validate(item.envelope.data)


def test_a_small_record_is_kept_whole_with_its_size_and_digest() -> None:
    value = b'{"specversion": "1.0", "type": '
    data = letter(record(value))
    assert data.payload == value.decode()
    assert data.payload_encoding == "utf-8"
    assert not data.payload_truncated and not data.key_truncated
    assert data.payload_bytes == len(value)
    assert data.payload_sha256 == hashlib.sha256(value).hexdigest()
    assert (data.source_topic, data.partition, data.offset, data.key) == (
        "clinic.intake",
        3,
        42,
        "c-1",
    )


def test_a_one_megabyte_binary_record_keeps_as_much_as_fits_in_base64() -> None:
    value = bytes(range(256)) * 3907  # 1,000,192 bytes: 1.33 MB once in base64
    data = letter(record(value))
    assert data.payload_truncated
    assert data.payload_encoding == "base64"
    kept = base64.b64decode(data.payload)
    assert value.startswith(kept) and len(kept) > 700_000
    assert data.payload_bytes == len(value)
    assert data.payload_sha256 == hashlib.sha256(value).hexdigest()


def test_a_one_megabyte_text_record_grown_by_escaping_keeps_a_text_prefix() -> None:
    value = ('{"notes": "' + 'é"\\\n' * 250_000 + '"}').encode()  # 1.25 MB, doubles escaped
    data = letter(record(value))
    assert data.payload_truncated and data.payload_encoding == "utf-8"
    assert value.decode().startswith(data.payload) and len(data.payload) > 300_000


def test_the_smallest_dead_letter_keeps_only_the_facts() -> None:
    value = b"x" * 5000
    data = letter(record(value), max_bytes=0)
    assert data.payload == "" and data.payload_truncated
    assert data.payload_bytes == 5000
    assert data.payload_sha256 == hashlib.sha256(value).hexdigest()


def test_a_tombstone_is_an_empty_payload_not_a_truncated_one() -> None:
    data = letter(record(None))
    assert data.payload == "" and not data.payload_truncated and data.payload_bytes == 0


def test_what_the_record_brings_that_could_be_large_is_bounded() -> None:
    huge = "x" * 500_000
    envelope = Envelope(
        id=huge,
        source="/elsewhere",
        type="plan.completed",
        subject="s",
        time=NOW,
        dataschema="urn:clinicflow:schema:plan.completed:v1",
        chainid="another-chain",
        locationid=huge,
        correlationid=huge,
        data={},
    )
    raw = record(encode(envelope), key=huge.encode())
    item = dead_letter(
        raw,
        error="refused: " + huge,
        service="planner",
        chain_id="northwest-nmt",
        envelope=envelope,
        now=NOW,
        max_bytes=64 * 1024,
    )
    assert record_bytes(item) <= 64 * 1024
    data = RecordDeadLettered.model_validate(item.envelope.data)
    assert data.key_truncated and data.key is not None and len(data.key) == MAX_KEY_BYTES
    assert len(data.error) == MAX_ERROR_CHARS and data.error.endswith("…")
    # the dead letter is this deployment's, whatever chain the record claimed
    assert item.envelope.chainid == "northwest-nmt"
    assert item.envelope.locationid is None and item.envelope.causationid is None


def test_a_dead_letter_follows_the_event_that_failed() -> None:
    event = plan_completed()
    item = dead_letter(
        record(encode(event)),
        error="e",
        service="planner",
        chain_id="northwest-nmt",
        envelope=event,
        now=NOW,
        max_bytes=LIMIT,
    )
    assert item.envelope.correlationid == event.correlationid
    assert item.envelope.causationid == event.id
    assert item.envelope.locationid == event.locationid
    assert item.key == "c-1"
    # the same failure of the same record is the same dead letter (redelivery)
    again = dead_letter(
        record(encode(event)),
        error="e",
        service="planner",
        chain_id="northwest-nmt",
        envelope=event,
        now=NOW,
        max_bytes=LIMIT,
    )
    assert again.envelope.id == item.envelope.id


@given(
    value=st.binary(max_size=20_000) | st.text(max_size=8_000).map(str.encode),
    max_bytes=st.integers(min_value=4_000, max_value=40_000),
)
def test_a_dead_letter_always_fits_and_keeps_a_beginning_of_the_record(
    value: bytes, max_bytes: int
) -> None:
    data = letter(record(value), max_bytes=max_bytes)
    kept = (
        base64.b64decode(data.payload)
        if data.payload_encoding == "base64"
        else data.payload.encode()
    )
    assert value.startswith(kept)
    assert data.payload_truncated == (kept != value)
    assert data.payload_bytes == len(value)


def plan_completed(
    *, chain: str = "northwest-nmt", location: str | None = "beaverton", in_data: str = "beaverton"
) -> Envelope:
    data = PlanCompleted(
        plan_id="p-1",
        version=1,
        client_id="c-1",
        location_id=in_data,
        reason="sessions done",
        completed_at=NOW,
    )
    trace = Trace(chainid=chain, correlationid="i-1", locationid=location)
    return wrap(data, event_id=str(uuid.uuid4()), service="t", subject="p-1", trace=trace, time=NOW)


LOCATIONS = frozenset({"beaverton", "pearl"})


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (plan_completed(), None),
        (plan_completed(location=None), None),
        (plan_completed(chain="other-chain"), "foreign chain 'other-chain'"),
        (plan_completed(location="atlantis"), "unknown location 'atlantis' (locationid)"),
        (plan_completed(in_data="atlantis"), "unknown location 'atlantis' (data.location_id)"),
    ],
)
def test_events_of_another_chain_or_an_unknown_location_are_refused(
    event: Envelope, reason: str | None
) -> None:
    found = refusal(event, decode_data(event), chain_id="northwest-nmt", locations=LOCATIONS)
    assert found == reason if reason is None else (found is not None and reason in found)


def test_a_dead_letter_may_carry_a_location_the_chain_does_not_know() -> None:
    failed = plan_completed(location="atlantis")
    item = dead_letter(
        record(encode(failed)),
        error="refused",
        service="planner",
        chain_id="northwest-nmt",
        envelope=failed,
        now=NOW,
        max_bytes=LIMIT,
    )
    envelope = item.envelope
    assert envelope.locationid == "atlantis"
    assert (
        refusal(envelope, decode_data(envelope), chain_id="northwest-nmt", locations=LOCATIONS)
        is None
    )


def test_an_unknown_schema_version_is_not_read() -> None:
    event = plan_completed()
    newer = event.model_copy(update={"dataschema": "urn:clinicflow:schema:plan.completed:v2"})
    with pytest.raises(DecodeError, match=r"unknown dataschema .*plan\.completed:v2"):
        decode_data(newer)
    other = event.model_copy(update={"dataschema": "urn:clinicflow:schema:plan.created:v1"})
    with pytest.raises(DecodeError, match="unknown dataschema"):
        decode_data(other)
    assert json.loads(encode(event))["dataschema"].endswith("plan.completed:v1")
    assert decode_data(event).location_id == "beaverton"  # type: ignore[attr-defined]


def test_json_nested_too_deeply_is_a_decode_error_not_a_crash() -> None:
    nested = b"[" * 1_000_000
    with pytest.raises(DecodeError, match="nested too deeply"):
        decode_envelope(nested)
    assert observe("clinic.intake", nested, timestamp_ms=0).type == "undecodable"
