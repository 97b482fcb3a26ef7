"""The record published to ``clinic.deadletter`` for anything a consumer could not process."""

from __future__ import annotations

from pydantic import AwareDatetime

from shared.events.base import EventData


class RecordDeadLettered(EventData):
    event_type = "record.deadlettered"

    source_topic: str
    partition: int
    offset: int
    key: str | None = None
    error: str
    payload: str
    payload_encoding: str  # "utf-8" or "base64"
    service: str
    failed_at: AwareDatetime
    # the whole record value as it was on its topic, however much of it ``payload`` keeps
    payload_bytes: int | None = None
    payload_sha256: str | None = None  # hex digest of the whole value
    # True: ``payload`` is only the value's first bytes (the whole would not fit in a record)
    payload_truncated: bool = False
    key_truncated: bool = False  # True: ``key`` is only the key's first bytes
