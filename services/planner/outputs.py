"""What a handled event produced, kept as references to the history records it wrote
(pure: events in, references out, and back).

The planner keeps each plan version once (``store.py``), so the record of what an
event produced - which a redelivered event republishes, the same ids and the same
contents - names the records instead of copying them, each by its history field
(which holds the plan and version it records). Each record also names its
**course** (the plan the event acted on; a decline's course is the plan id its
intake would have had, ``course_of``), so a retired course's records leave with it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.envelope import derived_id
from shared.events import EventData, PlanDeclined
from shared.events.plans import PlanCompleted, PlanData


def course_of(intake_id: str) -> str:
    """The plan id an intake's course has (``domain.decide``), also when it was declined."""
    return derived_id("plan", intake_id)


def field_of(event: EventData) -> str:
    """The history field (``plans:<client>``) the event is recorded under: in the order
    things happened, then by plan and version."""
    if isinstance(event, PlanData):
        return f"{event.created_at.timestamp():020.6f}:{event.plan_id}:{event.version:04d}"
    if isinstance(event, PlanCompleted):
        return f"{event.completed_at.timestamp():020.6f}:{event.plan_id}:completed"
    if isinstance(event, PlanDeclined):
        return f"{event.declined_at.timestamp():020.6f}:declined:{event.intake_id}"
    raise ValueError(f"{event.event_type} is not a record of the plan history")


@dataclass(frozen=True)
class Ref:
    """One event an event produced: its type and its history field."""

    type: str
    field: str


@dataclass(frozen=True)
class Outputs:
    """What one event produced: its course, the client whose history holds the
    records, and the records."""

    course: str
    client: str
    refs: tuple[Ref, ...]

    def encode(self) -> str:
        """The course alone for an event that produced nothing (most of them: a
        visit's outcome, a check-in), else JSON."""
        if not self.refs:
            return self.course
        refs = [[ref.type, ref.field] for ref in self.refs]
        return json.dumps({"course": self.course, "client": self.client, "events": refs})

    @classmethod
    def decode(cls, raw: str | bytes) -> Outputs:
        text = raw.decode() if isinstance(raw, bytes) else raw
        if not text.startswith("{"):
            return cls(text, "", ())
        stored = json.loads(text)
        refs = tuple(Ref(str(kind), str(field)) for kind, field in stored["events"])
        return cls(str(stored["course"]), str(stored["client"]), refs)


def outputs_of(produced: list[EventData], *, course: str, client: str) -> Outputs:
    refs = tuple(Ref(event.event_type, field_of(event)) for event in produced)
    return Outputs(course, client, refs)


def course_of_record(record: dict[str, Any]) -> str | None:
    """The course a history record belongs to: its plan, or for a decline the plan id
    its intake would have had; None for a record of neither kind."""
    if "current" in record:  # the stand-in of a plan's current version (``store.py``)
        return str(record["current"])
    body = record.get("plan") or record.get("completion") or {}
    if body.get("plan_id") is not None:
        return str(body["plan_id"])
    decline = record.get("decline") or {}
    return None if decline.get("intake_id") is None else course_of(str(decline["intake_id"]))
