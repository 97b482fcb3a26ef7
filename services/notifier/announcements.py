"""How a notification keeps the event that first announced it, so a redelivered cause
republishes the same bytes (the "effectively-once out" guarantee).

The record already holds most of the envelope: the subject is its notification id,
the trace its own (the announcement's id as ``causationid``), the source and schema
follow from the type. What is kept besides is what the record cannot say for sure
later (its client, channel and due time may move after a merge, a send or a retry):
the key, the event id, type and time, the cause, and the data as announced - about
a third of the encoded envelope, and stored as JSON rather than as an escaped
string. ``kept`` checks that the envelope it restores encodes to the bytes first
published; where it would not, the whole entry is kept instead, as before."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from shared.envelope import Trace, make_envelope
from shared.events import EVENT_MODELS
from shared.kafka import Outgoing
from shared.outbox import entry_of, item_of


def kept(outgoing: Outgoing, record: dict[str, Any]) -> dict[str, Any] | str:
    """What ``record`` keeps of the event announcing it (``restored`` gives it back)."""
    envelope = outgoing.envelope
    wire = json.loads(outgoing.value)
    compact = {
        "key": outgoing.key,
        "id": envelope.id,
        "type": envelope.type,
        "time": wire["time"],
        "cause": envelope.causationid,
        "data": wire.get("data"),
    }
    again = _restore(compact, record)
    if again is None or again.value != outgoing.value:
        return entry_of(outgoing)
    return compact


def restored(record: dict[str, Any]) -> Outgoing | None:
    """The event that first announced ``record``, in its first bytes (None for a
    record armed before announcements were kept)."""
    kept_as = record.get("announced")
    if not kept_as:
        return None
    if isinstance(kept_as, str):  # the whole entry
        return item_of(kept_as)
    return _restore(kept_as, record)


def _restore(compact: dict[str, Any], record: dict[str, Any]) -> Outgoing | None:
    model = EVENT_MODELS.get(str(compact["type"]))
    if model is None:
        return None
    trace = Trace.model_validate({**record["trace"], "causationid": compact["cause"]})
    envelope = make_envelope(
        event_id=compact["id"],
        service="notifier",
        event_type=compact["type"],
        schema_version=model.schema_version,
        subject=record["notification_id"],
        time=datetime.fromisoformat(str(compact["time"])),
        trace=trace,
        data=compact["data"],
    )
    return Outgoing(key=compact["key"], envelope=envelope)
