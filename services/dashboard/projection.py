"""What one record on a public topic tells the ops dashboard (pure).

The dashboard's read model is a fold of the public topics from offset 0: event
flow per minute, totals per type, bookings and notification outcomes per
location, and the dead letters. ``observe`` turns one record into the facts the
store adds up; it never fails, because a record the services could not read is
exactly what an operator needs to see. Nothing here keeps a client's name,
contact data or complaint: only ids, types, codes and reasons.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.vocabulary import BOOKING_OUTCOMES

UNKNOWN = "unknown"

# notification statuses an operator has to look at
PROBLEMS = ("failed", "suppressed")


@dataclass(frozen=True)
class NotificationFact:
    notification_id: str
    status: str  # scheduled, sent, failed, cancelled, suppressed
    kind: str
    channel: str
    reason: str | None
    at: datetime
    # a reminder sent late (it missed its time): when it was due
    planned_due_at: str | None = None

    @property
    def problem(self) -> bool:
        """Whether an operator has to look at it: failed, suppressed or late."""
        return self.status in PROBLEMS or self.planned_due_at is not None


@dataclass(frozen=True)
class DeadLetter:
    """A record some service could not process, as kept for inspection and replay."""

    id: str
    service: str
    source_topic: str
    partition: int
    offset: int
    key: str | None
    error: str
    payload: str
    payload_encoding: str  # utf-8 or base64
    failed_at: datetime
    location: str
    correlation_id: str | None
    original_type: str | None  # the type inside the payload, when it is readable
    # True: ``payload`` is only the record's beginning (the whole did not fit a dead letter)
    payload_truncated: bool = False
    payload_bytes: int | None = None  # the whole record value's size and SHA-256
    payload_sha256: str | None = None

    @property
    def position(self) -> str:
        """The failed record's place; every service that failed on it shares it, and a
        replay is of the record, so of all of them at once."""
        return f"{self.source_topic}/{self.partition}/{self.offset}"

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "failed_at": self.failed_at.isoformat()}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DeadLetter:
        return cls(**{**raw, "failed_at": datetime.fromisoformat(raw["failed_at"])})


@dataclass(frozen=True)
class Observation:
    topic: str
    type: str  # the CloudEvents type, or "undecodable"
    location: str
    at: datetime  # the event's time (the shared clock), else the record's timestamp
    booking: str | None = None
    notification: NotificationFact | None = None
    dead_letter: DeadLetter | None = None

    @property
    def minute(self) -> int:
        return int(self.at.timestamp() // 60)


def observe(topic: str, value: bytes | None, *, timestamp_ms: int) -> Observation:
    """The facts in one record; an unreadable record is counted as ``undecodable``."""
    fallback = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
    envelope = _json_object(value)
    if envelope is None or not isinstance(envelope.get("type"), str):
        return Observation(topic=topic, type="undecodable", location=UNKNOWN, at=fallback)
    kind = envelope["type"]
    location = _text(envelope.get("locationid")) or UNKNOWN
    at = _instant(envelope.get("time")) or fallback
    data = envelope.get("data") if isinstance(envelope.get("data"), dict) else {}
    assert isinstance(data, dict)
    # built once: a replay observes every record of the topics' history
    return Observation(
        topic=topic,
        type=kind,
        location=location,
        at=at,
        booking=BOOKING_OUTCOMES.get(kind),
        notification=_notification(kind, data, at) if kind.startswith("notification.") else None,
        dead_letter=(
            _dead_letter(envelope, data, location, at) if kind == "record.deadlettered" else None
        ),
    )


def _notification(kind: str, data: dict[str, Any], at: datetime) -> NotificationFact:
    return NotificationFact(
        notification_id=_text(data.get("notification_id")) or UNKNOWN,
        status=kind.removeprefix("notification."),
        kind=_text(data.get("kind")) or UNKNOWN,
        channel=_text(data.get("channel")) or UNKNOWN,
        reason=_text(data.get("reason")),
        at=at,
        planned_due_at=_text(data.get("planned_due_at")),
    )


def _dead_letter(
    envelope: dict[str, Any], data: dict[str, Any], location: str, at: datetime
) -> DeadLetter | None:
    event_id = _text(envelope.get("id"))
    source = _text(data.get("source_topic"))
    if not event_id or not source:
        return None
    payload = _text(data.get("payload")) or ""
    encoding = _text(data.get("payload_encoding")) or "utf-8"
    inner = _json_object(payload.encode()) if encoding == "utf-8" else None
    return DeadLetter(
        id=event_id,
        service=_text(data.get("service")) or UNKNOWN,
        source_topic=source,
        partition=_integer(data.get("partition")),
        offset=_integer(data.get("offset")),
        key=_text(data.get("key")),
        error=_text(data.get("error")) or "",
        payload=payload,
        payload_encoding=encoding,
        failed_at=_instant(data.get("failed_at")) or at,
        location=location,
        correlation_id=_text(envelope.get("correlationid")),
        original_type=_text(inner.get("type")) if inner else None,
        payload_truncated=data.get("payload_truncated") is True,
        payload_bytes=_integer(data["payload_bytes"]) if "payload_bytes" in data else None,
        payload_sha256=_text(data.get("payload_sha256")),
    )


def _json_object(value: bytes | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        found = json.loads(value)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested too deeply: unreadable
        return None
    return found if isinstance(found, dict) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _integer(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        return None
    return found if found.tzinfo is not None else None
