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
