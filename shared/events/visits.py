"""Events of ``clinic.visits``: bookings and what happens to them."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from shared.events.base import EventData, Part
from shared.vocabulary import CancelCause, CancelledBy, ConfirmedVia, TriggerPointType


class VisitBooked(EventData):
    event_type = "visit.booked"

    visit_id: str
    plan_id: str
    plan_version: int = 1
    client_id: str
    location_id: str
    therapist_id: str
    room: int = Field(ge=1)
    start: AwareDatetime
    end: AwareDatetime
    timezone: str
    sequence: int = Field(ge=1)
    sessions_total: int = Field(ge=1)
    phase: str | None = None
    makeup_for: str | None = Field(
        default=None,
        description="a make-up visit: the id of the cancelled or missed visit of the plan "
        "it replaces",
    )
    cadence_note: str | None = Field(
        default=None,
        description="when the visit is not on the day the plan's cadence asks for: what "
        "was booked instead and why (skills, hours, the client's days and times, the "
        "weekly maximum, a full calendar); absent when the cadence is kept",
    )


class BookingWaitlisted(EventData):
    event_type = "booking.waitlisted"

    plan_id: str
    plan_version: int = 1
    client_id: str
    location_id: str
    sequence: int = Field(ge=1)
    sessions_total: int = Field(ge=1)
    reason: str
    detail: str
    makeup_for: str | None = Field(
        default=None,
        description="a make-up that could not be placed: the id of the cancelled or missed "
        "visit it replaces",
    )
    cadence_note: str | None = Field(
        default=None,
        description="when the sessions booked before this one already left the plan's "
        "cadence: what was booked instead and why",
    )


class WaitlistOffered(EventData):
    """A freed slot held for one waiting client until ``hold_until``: accepting
    in time books ``visit_id`` there (``visit.booked``); otherwise the slot goes
    to the next waiting client."""

    event_type = "waitlist.offered"

    offer_id: str
    visit_id: str
    freed_visit_id: str
    plan_id: str
    plan_version: int = 1
    client_id: str
    location_id: str
    therapist_id: str
    room: int = Field(ge=1)
    start: AwareDatetime
    end: AwareDatetime
    timezone: str
    sequence: int = Field(ge=1)
    sessions_total: int = Field(ge=1)
    hold_until: AwareDatetime
    offered_at: AwareDatetime


class VisitRescheduled(EventData):
    event_type = "visit.rescheduled"

    visit_id: str
    plan_id: str
    client_id: str
    location_id: str
    therapist_id: str
    room: int = Field(ge=1)
    previous_start: AwareDatetime
    start: AwareDatetime
    end: AwareDatetime
    timezone: str
    cause: str | None = Field(
        default=None,
        description="what made the move when the clinic made it: staff_unavailable (a "
        "directory change: time off, a closure, changed hours); absent for a move asked for",
    )


class VisitCancelled(EventData):
    event_type = "visit.cancelled"

    visit_id: str
    plan_id: str
    client_id: str
    location_id: str
    by: CancelledBy
    late: bool = False
    reason: str | None = None
    cancelled_at: AwareDatetime
    cause: CancelCause | None = Field(
        default=None,
        description="what made the cancel: client, clinic, plan_revised, plan_completed, "
        "makeup or staff_unavailable (absent on events from before it was carried)",
    )


class VisitConfirmed(EventData):
    """The client said they will come: from the message's link, a text reply ("Y"),
    or through the front desk. A visit is confirmed once; its start is the one
    confirmed (a later move needs confirming again)."""

    event_type = "visit.confirmed"

    visit_id: str
    plan_id: str
    client_id: str
    location_id: str
    start: AwareDatetime
    via: ConfirmedVia
    confirmed_at: AwareDatetime


class VisitNoShow(EventData):
    event_type = "visit.no_show"

    visit_id: str
    plan_id: str
    client_id: str
    location_id: str
    recorded_at: AwareDatetime


class TriggerPointOutcome(Part):
    muscle: str
    side: str | None = None
    type: TriggerPointType | None = None
    released: bool


class VisitCompleted(EventData):
    event_type = "visit.completed"

    visit_id: str
    plan_id: str
    client_id: str
    location_id: str
    therapist_id: str
    pain_before: int = Field(ge=0, le=10)
    pain_after: int = Field(ge=0, le=10)
    pressure_tolerance: int | None = Field(default=None, ge=0, le=10)
    techniques: list[str] = Field(default_factory=list)
    trigger_points: list[TriggerPointOutcome] = Field(default_factory=list)
    notes: str | None = None
    completed_at: AwareDatetime
