"""The CloudEvents Kafka protocol binding, structured content mode (pure).

Every public record's value is a whole CloudEvent in the JSON event format
(shared/codec.py). The binding says how a reader knows that: the record's
``content-type`` header starts with ``application/cloudevents`` (Kafka protocol
binding 1.0, 3.1 and 3.3). A record without it is in binary content mode - the
value as the event's data, the attributes from ``ce_`` headers - which our records
are not, so a subscriber that follows the binding (the CloudEvents JavaScript SDK,
for one) would refuse every one. The key is the entity whose order matters
(``client_id``; the chain id on ``clinic.directory``), which SDKs hand over as the
``partitionkey`` extension; the value carries no ``partitionkey`` of its own.

Our own consumers read the value alone and never look at the headers: records
written before the header was added, and records from producers that leave it
out, are read as they always were.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Final

CONTENT_TYPE_HEADER: Final = "content-type"
STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json; charset=UTF-8"
STRUCTURED_MEDIA_TYPE: Final = "application/cloudevents"  # what readers test the start of

Headers = list[tuple[str, bytes]]


def structured_headers() -> Headers:
    """The headers of a structured-mode record (a new list: aiokafka keeps it)."""
    return [(CONTENT_TYPE_HEADER, STRUCTURED_CONTENT_TYPE.encode())]


def headers_bytes(headers: Iterable[tuple[str, bytes]]) -> int:
    """What ``headers`` add to a record: each name and value and their length prefixes."""
    return sum(len(name.encode()) + len(value) + 10 for name, value in headers)


def is_structured(headers: Iterable[tuple[str, bytes | None]]) -> bool:
    """Whether a record with ``headers`` is in structured content mode, as a reader
    following the binding decides it (header names are case-insensitive)."""
    for name, value in headers:
        if name.lower() == CONTENT_TYPE_HEADER and value is not None:
            return value.decode("utf-8", "replace").lower().startswith(STRUCTURED_MEDIA_TYPE)
    return False


def replay_headers(value: bytes | None) -> Headers:
    """The headers of a dead-lettered record sent back to its topic.

    A dead letter keeps the record's value, not its headers, so they are restored
    from what the value is: a CloudEvent in the JSON format (an object with a
    ``specversion``) gets the structured-mode header it was published with; anything
    else is sent without headers, claiming to be no CloudEvent."""
    if not value:
        return []
    try:
        document = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return []
    if isinstance(document, dict) and isinstance(document.get("specversion"), str):
        return structured_headers()
    return []
