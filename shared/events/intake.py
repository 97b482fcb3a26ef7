"""The intake document (DESIGN.md) and the events of ``clinic.intake``."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from pydantic import AwareDatetime, EmailStr, Field, TypeAdapter, field_validator, model_validator
from pydantic_core import PydanticCustomError

from shared.events.base import EventData, Part
from shared.vocabulary import (
    Condition,
    ContraindicationCode,
    MedicalCheckOutcome,
    Modality,
    PrecautionCode,
    Quality,
    Region,
    ScreeningOutcome,
    Side,
    TimeOfDay,
    TissueType,
    TriggerPointType,
    Weekday,
)

Phone = str  # E.164, checked by the pattern below
PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"
PHONE_SEPARATORS = str.maketrans("", "", " -.()")
ShortText = Annotated[str, Field(min_length=1, max_length=300)]
"""One item of a free-text list (a goal, a medication, an aggravating factor)."""


class ContactConsent(Part):
    """Per-channel opt-in for reminders and aftercare; nothing is sent without it."""

    email: bool = Field(default=False, description="may we e-mail reminders and aftercare")
    sms: bool = Field(default=False, description="may we text reminders")


class ClientDetails(Part):
    """Who the client is and how to reach them."""

    name: str = Field(min_length=1, max_length=200, examples=["Jordan Rivera"])
    email: EmailStr | None = Field(
        default=None, description="also identifies a returning client in the chain"
    )
    phone: Phone | None = Field(
        default=None,
        pattern=PHONE_PATTERN,
        description="E.164; also identifies a returning client in the chain",
        examples=["+15035550142"],
    )
    date_of_birth: date | None = None
    language: str = Field(
        default="en", pattern=r"^[a-z]{2}$", description="ISO 639-1 code for messages"
    )
    contact_consent: ContactConsent = ContactConsent()

    @field_validator("phone", mode="before")
    @classmethod
    def _without_separators(cls, value: Any) -> Any:
        """'+1 (503) 555-0142' is the E.164 number +15035550142."""
        return value.translate(PHONE_SEPARATORS) if isinstance(value, str) else value

    @field_validator("language", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class Complaint(Part):
    """One painful area as the client describes it (DOMAIN.md section 1)."""

    region: Region = Field(description="where it hurts")
    side: Side | None = None
    intensity: int = Field(ge=0, le=10, description="0 no pain .. 10 worst imaginable")
    qualities: list[Quality] = Field(
        default_factory=list,
        max_length=9,
        description="tingling, numbness and burning are flagged as nerve signs",
    )
    frequency: str | None = Field(
        default=None,
        max_length=500,
        description="when it occurs: morning, night, constant, intermittent",
        examples=["daily, worse in the morning"],
    )
    onset: date | None = Field(
        default=None, description="when it started; under 3 months is acute, else chronic"
    )
    duration_weeks: int | None = Field(
        default=None, ge=0, le=5200, description="how long it has lasted, when no onset date"
    )
    episode_duration: str | None = Field(
        default=None, max_length=200, description="how long one episode lasts", examples=["hours"]
    )
    aggravating: list[ShortText] = Field(
        default_factory=list, max_length=20, description="what makes it worse"
    )
    relieving: list[ShortText] = Field(
        default_factory=list, max_length=20, description="what improves it"
    )
    provoking_movements: list[ShortText] = Field(
        default_factory=list, max_length=20, examples=[["rotation right"]]
    )
    improving: bool | None = Field(
        default=None, description="false with a new dull pain of 2+ weeks: medical referral"
    )

    @model_validator(mode="before")
    @classmethod
    def _duration_in_weeks(cls, data: Any) -> Any:
        """Accept ``duration`` as an ISO 8601 duration (``P6W``, ``P4M``) for duration_weeks."""
        if not isinstance(data, dict) or data.get("duration") is None:
            return data
        rest = {k: v for k, v in data.items() if k != "duration"}
        if rest.get("duration_weeks") is not None:
            raise PydanticCustomError("value_error", "give duration or duration_weeks, not both")
        try:
            lasted = _DURATION.validate_python(data["duration"])
        except ValueError as exc:
            raise PydanticCustomError(
                "value_error", "duration must be an ISO 8601 duration such as P6W or P4M"
            ) from exc
        return {**rest, "duration_weeks": round(lasted / timedelta(weeks=1))}

    @model_validator(mode="after")
    def _onset_or_duration(self) -> Complaint:
        if self.onset is None and self.duration_weeks is None:
            # "missing": an intake session lists it as still to be answered
            raise PydanticCustomError("missing", "give either onset (a date) or duration_weeks")
        return self


_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)


class Contraindication(Part):
    """A reason not to treat (DOMAIN.md 2); with a region it is local to that area."""

    code: ContraindicationCode
    region: Region | None = Field(
        default=None, description="local (e.g. a skin condition): only this area is excluded"
    )
    since: date | None = Field(default=None, description="e.g. the date of the surgery")
    detail: str | None = Field(default=None, max_length=500)


class Precaution(Part):
    """A reason to treat with modifications (DOMAIN.md 2)."""

    code: PrecautionCode
    detail: str | None = Field(default=None, max_length=500, examples=["first trimester"])


class DvtSigns(Part):
    """The DVT questions (DOMAIN.md 2: deep vein thrombosis), asked when the calf hurts
    or is swollen or warm; null means not asked or not answered."""

    calf_swelling: bool | None = Field(default=None, description="the calf has swollen lately")
    calf_warmth_redness: bool | None = Field(
        default=None, description="the calf is warm or red to the touch"
    )
    long_journey_recent: bool | None = Field(
        default=None,
        description="a long journey (flight, drive) or bed rest in the last few weeks",
    )


class Health(Part):
    """The screening questions; empty lists mean the client reports none."""

    contraindications: list[Contraindication] = Field(default_factory=list, max_length=20)
    precautions: list[Precaution] = Field(default_factory=list, max_length=20)
    medications: list[ShortText] = Field(default_factory=list, max_length=50)
    dvt_signs: DvtSigns = Field(
        default=DvtSigns(),
        description="the DVT questions: calf pain is not cleared until they are answered",
    )
    osteoporosis: bool | None = Field(
        default=None,
        description="asked of older clients; null: not answered (severe osteoporosis is the "
        "contraindication severe_osteoporosis)",
    )


class Preferences(Part):
    """How the client would like to be treated and booked."""

    modality: Modality = Field(
        default="either", description="fmm needs a therapist who practises it (DOMAIN.md 4)"
    )
    therapist_id: str | None = Field(default=None, description="a therapist of the chain")
    days: list[Weekday] = Field(default_factory=list, description="empty: any day")
    times: list[TimeOfDay] = Field(default_factory=list, description="empty: any time")
    max_sessions_per_week: int | None = Field(default=None, ge=1, le=7)


class History(Part):
    """What lies behind the pain (DOMAIN.md 1): old injuries, strain, posture at work."""

    old_injuries: list[ShortText] = Field(default_factory=list, max_length=20)
    repetitive_strain: list[ShortText] = Field(default_factory=list, max_length=20)
    work_posture: list[ShortText] = Field(
        default_factory=list, max_length=20, examples=[["computer work", "heavy bag on one side"]]
    )
    other_practitioners: list[ShortText] = Field(
        default_factory=list,
        max_length=20,
        description="chiropractor, physical therapist, physician seen for this (DOMAIN.md 7)",
    )
    notes: str | None = Field(default=None, max_length=2000)


class Consent(Part):
    """The consent page of the intake."""

    treatment: bool = Field(description="informed consent to neuromuscular therapy")
    contact: ContactConsent | None = Field(
        default=None, description="channel opt-ins; when given they are the client's consent"
    )


class IntakeDocument(Part):
    """What ``POST /v1/intakes`` takes and a session's submit produces."""

    location_id: str = Field(min_length=1)
    client: ClientDetails
    complaints: list[Complaint] = Field(min_length=1, max_length=10)
    history: History = History()
    health: Health = Health()
    goals: list[ShortText] = Field(default_factory=list, max_length=20)
    preferences: Preferences = Preferences()
    consent: Consent | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_answer_for_contact_consent(cls, data: Any) -> Any:
        """The consent page's channel opt-ins are the client's contact consent."""
        if not isinstance(data, dict):
            return data
        consent, client = data.get("consent"), data.get("client")
        given = consent.get("contact") if isinstance(consent, dict) else None
        if given is None or not isinstance(client, dict):
            return data
        stated = client.get("contact_consent")
        if stated is not None and _as_dict(stated) != _as_dict(given):
            raise ValueError("client.contact_consent and consent.contact disagree; give one")
        return {**data, "client": {**client, "contact_consent": given}}


def _as_dict(consent: Any) -> Any:
    if isinstance(consent, ContactConsent):
        return consent.model_dump()
    if isinstance(consent, dict):
        return {"email": False, "sms": False, **consent}
    return consent


class ScreeningReason(Part):
    """One finding of the screening, naming the rule that produced it."""

    rule: str = Field(examples=["DOMAIN.md 2: deep vein thrombosis"])
    code: str = Field(description="the contraindication or precaution code, or the finding")
    action: ScreeningOutcome
    detail: str
    region: Region | None = None


class Screening(Part):
    """The safety screening of an intake (DOMAIN.md 1 and 2)."""

    outcome: ScreeningOutcome = Field(
        description="the most severe action: clear < modify < defer < refer"
    )
    reasons: list[ScreeningReason] = Field(default_factory=list)
    excluded_regions: list[Region] = Field(
        default_factory=list, description="areas never worked (local contraindications)"
    )
    modifications: list[str] = Field(default_factory=list, description="for the therapist")
    recheck_on: date | None = Field(default=None, description="when a deferral is looked at again")
    referral_recommended: bool = Field(
        default=False, description="refer, or a red flag: recommend seeing a doctor"
    )
    medical_check_required: bool = Field(
        default=False,
        description="a red flag (DOMAIN.md 1): the first visit is an assessment at gentle "
        "pressure and the rest of the course waits for a doctor's check",
    )
    front_desk: list[str] = Field(
        default_factory=list,
        description="what the front desk must do or tell the client, in plain words",
    )


class ComplaintFinding(Part):
    """What the intake already tells the therapist about one complaint."""

    region: Region
    side: Side | None = None
    condition: Condition = Field(description="acute under 3 months, chronic after (DOMAIN.md 1)")
    nerve_signs: list[Quality] = Field(
        default_factory=list, description="tingling, numbness, burning (DOMAIN.md 1)"
    )
    assess_first: list[str] = Field(
        default_factory=list,
        description="muscles that commonly refer pain to this region (DOMAIN.md 3)",
    )


class ClientRecord(ClientDetails):
    """The client as carried in ``intake.submitted``: the details plus the chain's id.

    For a returning client these are the details on record, never the intake's own:
    a change the intake states waits to be confirmed (the intake service's
    ``contact-changes``); only a withdrawal of consent applies at once."""

    client_id: str
    possible_duplicate_of: list[str] = Field(
        default_factory=list,
        description="clients sharing this client's e-mail or phone under another name or "
        "date of birth: kept apart until staff merge them (client.merged)",
    )


class IntakeSubmitted(EventData):
    event_type = "intake.submitted"

    intake_id: str
    client: ClientRecord
    location_id: str
    complaints: list[Complaint]
    health: Health
    goals: list[str] = Field(default_factory=list)
    preferences: Preferences = Preferences()
    history: History = History()
    consent: Consent | None = None
    findings: list[ComplaintFinding] = Field(default_factory=list)
    screening: Screening
    submitted_at: AwareDatetime


class TriggerPoint(Part):
    """A trigger point the therapist found (DOMAIN.md 3)."""

    muscle: str = Field(min_length=1, max_length=100, examples=["upper trapezius"])
    side: Side
    type: TriggerPointType = Field(
        description="active: refers pain without pressure; latent: only when pressed"
    )
    tissue: TissueType = "myofascial"
    referral_zone: Region | None = Field(default=None, description="where it refers pain")


class AssessmentRecorded(EventData):
    event_type = "assessment.recorded"

    assessment_id: str
    client_id: str
    therapist_id: str
    location_id: str
    posture_findings: list[str] = Field(default_factory=list)
    range_of_motion_limits: list[str] = Field(default_factory=list)
    trigger_points: list[TriggerPoint] = Field(default_factory=list)
    nerve_signs: list[str] = Field(default_factory=list)
    notes: str | None = None
    recorded_at: datetime


class ClientMerged(EventData):
    """Staff found two client records to be one person: ``merged_client_id`` is
    retired and everything recorded under it now belongs to ``client_id``.

    Keyed (and ordered) by the surviving ``client_id``; each service moves what it
    holds under the retired id and answers for it under the surviving one."""

    event_type = "client.merged"

    merge_id: str
    client_id: str = Field(description="the surviving client")
    merged_client_id: str = Field(description="the retired client, now an alias")
    location_ids: list[str] = Field(
        default_factory=list, description="locations where either client has been seen"
    )
    merged_by: str = Field(description="the staff key's id (a digest, never the key)")
    reason: str | None = Field(default=None, max_length=500)
    merged_at: AwareDatetime


class ClientUpdated(EventData):
    """A known client's details changed by a staff decision (a contact change an
    intake brought, confirmed at the front desk): ``client`` is the record as it now
    stands. Keyed by ``client.client_id``."""

    event_type = "client.updated"

    change_id: str
    client: ClientRecord
    location_id: str = Field(description="where the change was confirmed")
    changed_by: str = Field(description="the staff key's id (a digest, never the key)")
    changed_at: AwareDatetime


class MedicalCheckRecorded(EventData):
    """The therapist recorded the doctor's check a red flag asked for (DOMAIN.md 1), or
    overrode the wait with a reason: the planner clears the course to go on, or ends it
    referred when the doctor advised against treatment."""

    event_type = "medical_check.recorded"

    check_id: str
    client_id: str
    therapist_id: str
    location_id: str
    outcome: MedicalCheckOutcome = Field(
        description="cleared (the doctor found no reason not to treat), override (the "
        "therapist goes on without it; reason required), not_cleared (the doctor advised "
        "against treatment)"
    )
    reason: str | None = Field(default=None, max_length=1000)
    recorded_at: AwareDatetime
