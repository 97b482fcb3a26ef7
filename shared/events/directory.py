"""Events of ``clinic.directory``: the chain's staff-and-location directory as it
changes (seeded from the chain YAML at first start; each change by HTTP is one event).

The record key is the chain id, not a client id: the directory belongs to the
chain, and one key keeps its changes in order."""

from __future__ import annotations

from datetime import date
from typing import Any, Self

from pydantic import AwareDatetime, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from shared.chain import OpeningRange, Turnover, WeeklyHours
from shared.events.base import EventData
from shared.vocabulary import StaffExceptionKind

# the kinds that say where the therapist works those days (location_id required)
WORKING_KINDS: frozenset[StaffExceptionKind] = frozenset({"extra_shift", "changed_hours"})


def _field_error(model: EventData, field: str, kind: str, message: str, value: Any) -> None:
    """Raise a validation error located at ``field`` (a model validator's own errors
    carry no field path otherwise)."""
    raise ValidationError.from_exception_data(
        type(model).__name__,
        [InitErrorDetails(type=PydanticCustomError(kind, message), loc=(field,), input=value)],
    )


def _check_dates(model: EventData, start_date: date, end_date: date) -> None:
    if end_date < start_date:
        _field_error(
            model,
            "end_date",
            "date_order",
            f"end_date {end_date.isoformat()} is before start_date {start_date.isoformat()}",
            end_date.isoformat(),
        )


class DirectoryChange(EventData):
    """What every change of the directory carries: who made it, when, and the
    directory version it made."""

    changed_by: str = Field(
        min_length=1,
        description='the name of the API key that made the change, or "chain configuration" '
        "for the directory seeded from the chain file",
    )
    changed_at: AwareDatetime
    version: int = Field(ge=1, description="the directory version this change made")


class DirectoryHoursSet(DirectoryChange):
    """A therapist's weekly hours at one location, from now on."""

    event_type = "directory.hours_set"

    therapist_id: str
    location_id: str
    hours: WeeklyHours = Field(
        description="the therapist's weekly hours at the location from now on: ranges like "
        '"09:00-13:00" per weekday; an empty mapping: no regular hours there',
    )


class DirectoryExceptionAdded(DirectoryChange):
    """A dated exception to a therapist's regular hours: time off, sick, an extra
    shift, or changed hours."""

    event_type = "directory.exception_added"

    exception_id: str
    therapist_id: str
    kind: StaffExceptionKind
    start_date: date = Field(description="the first day it holds (the location's local date)")
    end_date: date = Field(description="the last day it holds, inclusive (>= start_date)")
    location_id: str | None = Field(
        default=None,
        description="where the therapist works those days: required for extra_shift and "
        "changed_hours; ignored for time_off and sick, which hold at every location",
    )
    ranges: list[OpeningRange] = Field(
        default_factory=list,
        description="time_off and sick: the hours off (empty: the whole day); extra_shift: "
        "the hours added; changed_hours: the day's hours instead of the regular ones "
        "(empty: not working)",
    )
    note: str | None = Field(
        default=None,
        max_length=500,
        description="the note of an extra shift or changed hours; never carried for time "
        "off or a sick day (why someone is off stays in the directory)",
    )
    replanned: int = Field(
        default=0, ge=0, description="how many booked visits the change moved or cancelled"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_dates(self, self.start_date, self.end_date)
        if self.kind in WORKING_KINDS and self.location_id is None:
            _field_error(
                self,
                "location_id",
                "missing",
                f"{self.kind} needs location_id: where the therapist works those days",
                None,
            )
        return self


class DirectoryExceptionRemoved(DirectoryChange):
    """A therapist's exception withdrawn: their regular hours hold again on its days."""

    event_type = "directory.exception_removed"

    exception_id: str
    therapist_id: str


class DirectoryClosureAdded(DirectoryChange):
    """A location closed, or open on holiday hours, on a run of days."""

    event_type = "directory.closure_added"

    closure_id: str
    location_id: str
    start_date: date = Field(description="the first day it holds (the location's local date)")
    end_date: date = Field(description="the last day it holds, inclusive (>= start_date)")
    hours: list[OpeningRange] = Field(
        default_factory=list,
        description="empty: closed all day; otherwise the holiday hours of those days",
    )
    note: str | None = Field(default=None, max_length=500)
    replanned: int = Field(
        default=0, ge=0, description="how many booked visits the change moved or cancelled"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_dates(self, self.start_date, self.end_date)
        return self


class DirectoryClosureRemoved(DirectoryChange):
    """A closure withdrawn: the location's regular hours hold again on its days."""

    event_type = "directory.closure_removed"

    closure_id: str
    location_id: str


class DirectoryPolicySet(DirectoryChange):
    """The staff policy of one location, or the chain's default: turnover between
    visits and a cap on visits per therapist and day."""

    event_type = "directory.policy_set"

    location_id: str | None = Field(
        default=None, description="the location it applies to; absent: the chain's default"
    )
    turnover: Turnover = Field(
        description="the buffer after each visit before the therapist and the room take the "
        "next (ISO 8601 duration, PT0S to PT2H)",
    )
    max_visits_per_day: int | None = Field(
        default=None,
        ge=1,
        le=20,
        description="the most visits one therapist takes in a local day; absent: no cap",
    )
    replanned: int = Field(
        default=0, ge=0, description="how many booked visits the change moved or cancelled"
    )
