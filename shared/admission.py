"""Whether a consumer reads a well-formed event at all (pure).

An event from another deployment's chain, or naming a location this chain does
not have, would be acted on with the wrong policy, hours and staff, or not at
all: it goes to the dead letters with the reason, whichever service reads it.
(An unknown schema version is refused when its data is decoded: shared/codec.py.)
"""

from __future__ import annotations

from collections.abc import Collection

from shared.envelope import Envelope
from shared.events import EventData, RecordDeadLettered


def refusal(
    envelope: Envelope, data: EventData, *, chain_id: str, locations: Collection[str]
) -> str | None:
    """Why ``envelope`` must not be handled here, or None when it may be."""
    if envelope.chainid != chain_id:
        return f"foreign chain {envelope.chainid!r} (this deployment is {chain_id!r})"
    if envelope.type == RecordDeadLettered.event_type:
        return None  # a dead letter keeps the failed record's location, known or not
    named = (
        ("locationid", envelope.locationid),
        ("data.location_id", getattr(data, "location_id", None)),
    )
    for where, location in named:
        if isinstance(location, str) and location not in locations:
            return f"unknown location {location!r} ({where})"
    return None
