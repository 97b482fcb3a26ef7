"""CloudEvents 1.0 structured-mode envelope carried by every public record.

Extension attributes (DESIGN.md "Topics and events"): ``chainid``,
``locationid``, ``correlationid`` (the intake or request that started the chain
of events) and ``causationid`` (the event that directly caused this one).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# Namespace for ids derived from their cause: the same cause always yields the
# same id, which is what makes redelivery harmless downstream.
CLINICFLOW_NAMESPACE = uuid.UUID("6f1c2b7e-93c4-4d1a-9a57-3f0e4c1d2b8a")


def derived_id(*parts: object) -> str:
    """A deterministic UUID (v5) from the parts that identify a fact's cause."""
    return str(uuid.uuid5(CLINICFLOW_NAMESPACE, "\x1f".join(str(p) for p in parts)))


def schema_id(event_type: str, version: int) -> str:
    """The ``dataschema`` of an event type at a schema version."""
    return f"urn:clinicflow:schema:{event_type}:v{version}"


class Envelope(BaseModel):
    """A CloudEvent; unknown extension attributes from newer producers are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str = Field(min_length=1)
    chainid: str = Field(min_length=1)
    locationid: str | None = None
    correlationid: str = Field(min_length=1)
    causationid: str | None = None
    data: dict[str, Any]


class Trace(BaseModel):
    """Where an event sits in its story: which chain, location and cause."""

    model_config = ConfigDict(frozen=True)

    chainid: str
    correlationid: str
    causationid: str | None = None
    locationid: str | None = None

    @classmethod
    def following(cls, cause: Envelope, *, locationid: str | None = None) -> Trace:
        """The trace of an event caused directly by ``cause``."""
        return cls(
            chainid=cause.chainid,
            correlationid=cause.correlationid,
            causationid=cause.id,
            locationid=locationid if locationid is not None else cause.locationid,
        )


def make_envelope(
    *,
    event_id: str,
    service: str,
    event_type: str,
    schema_version: int,
    subject: str,
    time: datetime,
    trace: Trace,
    data: dict[str, Any],
) -> Envelope:
    """Wrap event data in a CloudEvents envelope."""
    return Envelope(
        id=event_id,
        source=f"/clinicflow/{service}",
        type=event_type,
        subject=subject,
        time=time,
        dataschema=schema_id(event_type, schema_version),
        chainid=trace.chainid,
        locationid=trace.locationid,
        correlationid=trace.correlationid,
        causationid=trace.causationid,
        data=data,
    )
