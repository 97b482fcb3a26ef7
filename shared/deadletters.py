"""The dead letter of a record a consumer could not process (pure).

A dead letter keeps where the record was (topic, partition, offset), its key, the
reason and its value: as UTF-8 text when it is text, else base64. Wrapped like
that, a value near the broker's size limit grows past it (JSON escaping, base64's
third), and a dead letter the broker refuses would stop the consumer. So a dead
letter is cut to fit ``max_bytes``: it always keeps the position, the whole
value's size and SHA-256 digest, and as much of the value's beginning as fits
(``payload_truncated``). Everything taken from the record that could be large
(the key, the trace ids of its envelope, the reason) is bounded too.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime

from shared.binding import headers_bytes, structured_headers
from shared.codec import encode, wrap
from shared.envelope import Envelope, Trace, derived_id
from shared.events import RecordDeadLettered
from shared.kafka import Outgoing

# record framing, the batch header and the key's length prefix, over the key and value
RECORD_OVERHEAD_BYTES = 512
MAX_KEY_BYTES = 1024
MAX_ERROR_CHARS = 2000
MAX_TRACE_CHARS = 256


@dataclass(frozen=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def position(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


def record_bytes(item: Outgoing) -> int:
    """What ``item`` weighs against the producer's ``max_request_size``, with margin:
    its value, key and headers (shared/kafka.py sends every record with them)."""
    return (
        len(encode(item.envelope))
        + len(item.key.encode())
        + headers_bytes(structured_headers())
        + RECORD_OVERHEAD_BYTES
    )


def dead_letter(
    record: RawRecord,
    *,
    error: str,
    service: str,
    chain_id: str,
    envelope: Envelope | None,
    now: datetime,
    max_bytes: int,
) -> Outgoing:
    """The dead letter of ``record``, as much of it as fits in ``max_bytes``.

    ``envelope`` (when the record was one) gives the dead letter its story: the
    correlation, the location, the event that failed as its cause. The dead letter
    belongs to this deployment's chain (``chain_id``) whatever the record claimed.
    ``max_bytes=0`` gives the smallest dead letter: no payload, only its facts."""
    value = record.value or b""
    digest = hashlib.sha256(value).hexdigest()
    encoding = "utf-8" if _is_utf8(value) else "base64"
    raw_key = record.key
    key = raw_key[:MAX_KEY_BYTES].decode("utf-8", "replace") if raw_key is not None else None
    trace = _trace(record, envelope, chain_id)
    event_id = derived_id("deadletter", service, record.position)

    def letter(kept: int) -> Outgoing:
        data = RecordDeadLettered(
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=key,
            error=_bounded_error(error),
            payload=_payload(value[:kept], encoding),
            payload_encoding=encoding,
            service=service,
            failed_at=now,
            payload_bytes=len(value),
            payload_sha256=digest,
            payload_truncated=kept < len(value),
            key_truncated=raw_key is not None and len(raw_key) > MAX_KEY_BYTES,
        )
        event = wrap(
            data,
            event_id=event_id,
            service=service,
            subject=record.position,
            trace=trace,
            time=now,
        )
        return Outgoing(key=key or record.position, envelope=event)

    whole = letter(len(value))
    if record_bytes(whole) <= max_bytes:
        return whole
    # the longest beginning of the value that fits: the size grows with what is kept
    low, high = 0, len(value)
    while low < high:
        middle = (low + high + 1) // 2
        if record_bytes(letter(middle)) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    return letter(low)


def _trace(record: RawRecord, envelope: Envelope | None, chain_id: str) -> Trace:
    if envelope is None:
        return Trace(chainid=chain_id, correlationid=derived_id("record", record.position))
    return Trace(
        chainid=chain_id,
        correlationid=_bounded(envelope.correlationid) or derived_id("record", record.position),
        causationid=_bounded(envelope.id),
        locationid=_bounded(envelope.locationid),
    )


def _bounded(text: str | None) -> str | None:
    """An id taken from a record, unless it is too long to be one."""
    return text if text is not None and len(text) <= MAX_TRACE_CHARS else None


def _bounded_error(error: str) -> str:
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 1] + "…"


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _payload(value: bytes, encoding: str) -> str:
    if encoding == "base64":
        return base64.b64encode(value).decode()
    # the value is UTF-8 as a whole: only a character cut at the end can be incomplete
    return value.decode("utf-8", "ignore")
