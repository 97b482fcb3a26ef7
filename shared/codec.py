"""Topic values stay raw bytes on the wire; this module turns them into validated
envelopes and event data (and back), so every decode error has one place and one
clear message."""

from __future__ import annotations

import json
import re
from datetime import datetime

from pydantic import ValidationError

from shared.envelope import Envelope, Trace, make_envelope, schema_id
from shared.events import EVENT_MODELS, EventData


class DecodeError(ValueError):
    """A record that is not a valid envelope or event: it belongs in the dead-letter topic."""


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        path = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{path}: {err['msg']}")
    return "; ".join(parts)


def decode_envelope(raw: bytes | None) -> Envelope:
    if raw is None:
        raise DecodeError("empty record value (tombstone) on a public topic")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"value is not JSON: {exc}") from exc
    except RecursionError as exc:  # arrays or objects nested thousands deep
        raise DecodeError("value is not JSON this reads: nested too deeply") from exc
    try:
        return Envelope.model_validate(document)
    except ValidationError as exc:
        raise DecodeError(f"not a CloudEvents envelope: {_describe(exc)}") from exc


# an object key "type" with a plain string value; a '"' inside a JSON string is escaped,
# so a match is always a key of some object, never text inside a value
_TYPE_ATTRIBUTE = re.compile(rb'"type"\s*:\s*"([^"\\]{1,200})"')
PEEK_WITHIN = 1024  # the envelope's attributes come before its data


def peek_type(raw: bytes | None) -> str | None:
    """The envelope's ``type`` read without decoding the record, when the bytes leave
    no doubt: the first "type" key of the first ``PEEK_WITHIN`` bytes, with no nested
    object before it (so it is the envelope's own attribute, as ``encode`` writes
    them: attributes first, data last). None when it cannot be known that way; the
    record is then decoded in full."""
    if not raw or raw[:1] != b"{":
        return None
    found = _TYPE_ATTRIBUTE.search(raw, 0, PEEK_WITHIN)
    if found is None or b"{" in raw[1 : found.start()]:
        return None
    return found.group(1).decode("utf-8", "replace")


def decode_data(envelope: Envelope) -> EventData:
    """The event's data as its model; the ``dataschema`` must name the schema version
    this code reads: data of another version may look valid and mean something else."""
    model = EVENT_MODELS.get(envelope.type)
    if model is None:
        raise DecodeError(f"unknown event type {envelope.type!r}")
    expected = schema_id(envelope.type, model.schema_version)
    if envelope.dataschema != expected:
        raise DecodeError(
            f"unknown dataschema {envelope.dataschema!r} for {envelope.type} (read: {expected})"
        )
    try:
        return model.model_validate(envelope.data)
    except ValidationError as exc:
        raise DecodeError(f"invalid {envelope.type} data: {_describe(exc)}") from exc


def encode(envelope: Envelope) -> bytes:
    return envelope.model_dump_json(exclude_none=True).encode()


def wrap(
    data: EventData,
    *,
    event_id: str,
    service: str,
    subject: str,
    trace: Trace,
    time: datetime,
) -> Envelope:
    """The envelope for ``data``, typed and versioned from its model."""
    return make_envelope(
        event_id=event_id,
        service=service,
        event_type=data.event_type,
        schema_version=data.schema_version,
        subject=subject,
        time=time,
        trace=trace,
        data=data.to_data(),
    )
