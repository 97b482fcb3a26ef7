"""Events of ``clinic.plans``: a treatment plan and what becomes of it."""

from __future__ import annotations

from datetime import date

from pydantic import AwareDatetime, Field

from shared.events.base import EventData, Part
from shared.vocabulary import Condition, Modality, Region, ScreeningOutcome, TimeOfDay, Weekday


class RationaleItem(Part):
    """Why a plan element is what it is: the DOMAIN.md rule and the input that triggered it."""

    rule: str
    detail: str


class Phase(Part):
    """A stretch of the course at one cadence, e.g. 2 per week for 3 weeks."""

    name: str
    sessions: int = Field(ge=1)
    interval_days: int = Field(ge=1, description="days between visits inside the phase")
    per_week: float = Field(gt=0)
    weeks: int = Field(ge=1)
    rrule: str = Field(description="RFC 5545 recurrence rule of the phase")


class ProtocolStep(Part):
    order: int = Field(ge=1)
    technique: str
    targets: list[str] = Field(default_factory=list)
    hold_seconds: list[int] | None = Field(default=None, min_length=2, max_length=2)
    pressure_target: int | None = Field(default=None, ge=0, le=10)
    notes: str | None = None


class Modification(Part):
    code: str
    detail: str


class Stretch(Part):
    name: str
    region: Region
    how: str
    code: str | None = Field(
        default=None,
        description="the stretch's stable code, which shared/home_texts.py STRETCHES words "
        "in each language; name and how are its English",
    )


class HomeItem(Part):
    """One self-massage or advice line of the home program as a stable code of
    shared/home_texts.py, with the area and the reasons the line names."""

    code: str
    region: Region | None = None
    reasons: list[str] = Field(
        default_factory=list,
        description="the precautions or home rules (codes) the line gives as its reason",
    )


class HomeProgram(Part):
    stretches: list[Stretch] = Field(default_factory=list, max_length=3)
    self_massage: list[str] = Field(default_factory=list)
    advice: list[str] = Field(default_factory=list)
    self_massage_items: list[HomeItem] = Field(
        default_factory=list,
        description="self_massage as codes, line for line (empty from older producers)",
    )
    advice_items: list[HomeItem] = Field(
        default_factory=list,
        description="advice as codes, line for line (empty from older producers)",
    )


class SchedulingNeeds(Part):
    """What the scheduler must honour when booking the plan's visits."""

    required_skills: list[str] = Field(default_factory=list)
    therapist_id: str | None = None
    days: list[Weekday] = Field(default_factory=list)
    times: list[TimeOfDay] = Field(default_factory=list)
    max_sessions_per_week: int | None = None


class Referral(Part):
    recommended: bool
    to: str
    detail: str


class MedicalCheck(Part):
    """A red flag (DOMAIN.md 1): the course waits for a doctor's check.

    While a plan carries one, only sessions ``1..book_through`` are booked (the
    assessment-only visit at gentle pressure); the rest of the course is booked once
    a ``plan.revised`` with change ``medical_check`` clears it."""

    reason: str = Field(description="the red flag, in screening's words")
    book_through: int = Field(
        default=1, ge=1, description="the sessions booked before the check is recorded"
    )
    since: date = Field(description="when the plan began to wait")


class PlanData(EventData):
    plan_id: str
    version: int = Field(ge=1)
    client_id: str
    location_id: str
    intake_id: str
    condition: Condition
    modality: Modality
    sessions_total: int = Field(ge=1)
    phases: list[Phase] = Field(min_length=1)
    visit_minutes: int = Field(ge=15, le=240)
    protocol: list[ProtocolStep]
    modifications: list[Modification] = Field(default_factory=list)
    excluded_regions: list[Region] = Field(default_factory=list)
    target_regions: list[Region] = Field(default_factory=list)
    home_program: HomeProgram
    review_after_sessions: int = Field(ge=1, le=4)
    review_by: date
    scheduling: SchedulingNeeds = SchedulingNeeds()
    rationale: list[RationaleItem] = Field(min_length=1)
    created_at: AwareDatetime
    awaiting_medical_check: MedicalCheck | None = Field(
        default=None,
        description="set while the course waits for a doctor's check (a red flag): book "
        "only the sessions up to book_through",
    )


class PlanCreated(PlanData):
    event_type = "plan.created"


class PlanRevised(PlanData):
    """A new version of a plan. ``phases`` are the visits still to come after the
    ``sessions_done`` already completed; ``sessions_total`` counts the whole course."""

    event_type = "plan.revised"

    reason: str
    change: str = Field(
        default="revised",
        description="reassess (no meaningful improvement), refer (still none after a "
        "re-assessment), taper (good progress), protocol (a new assessment), "
        "medical_check (the doctor's check or the therapist's override was recorded: the "
        "course goes on), review_overdue (the review date passed with nothing to judge)",
    )
    sessions_done: int = Field(default=0, ge=0)
    referral: Referral | None = Field(
        default=None, description="with change refer: to whom, and why"
    )


class PlanDeclined(EventData):
    event_type = "plan.declined"

    client_id: str
    intake_id: str
    location_id: str
    outcome: ScreeningOutcome
    reasons: list[RationaleItem] = Field(min_length=1)
    referral: Referral
    recheck_on: date | None = None
    declined_at: AwareDatetime


class PlanCompleted(EventData):
    event_type = "plan.completed"

    plan_id: str
    version: int
    client_id: str
    location_id: str
    reason: str
    outcome: str = Field(
        default="course_complete",
        description="course_complete, goals_met, referred (no meaningful relief at the end "
        "of the course, or the doctor advised against treatment: never with maintenance) "
        "or lapsed (the review date passed twice with no visit to judge)",
    )
    sessions_done: int = Field(default=0, ge=0)
    maintenance: str | None = None
    referral: Referral | None = Field(default=None, description="with outcome referred")
    completed_at: AwareDatetime
