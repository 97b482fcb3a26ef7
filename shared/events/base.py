"""Base classes for event data and for the records they are built from."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class Part(BaseModel):
    """A piece of a document we own (intake, plan, ...): unknown keys are errors,
    so a misspelt field is a 422 or a dead letter instead of a silent drop."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class EventData(BaseModel):
    """The ``data`` of one event type at one schema version.

    Top-level fields we do not know yet (from a newer producer) are ignored, so
    adding a field is not a breaking change for existing consumers."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1

    def to_data(self) -> dict[str, Any]:
        """The JSON-ready ``data`` object of the envelope."""
        return self.model_dump(mode="json", exclude_none=True)
