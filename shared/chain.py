"""The chain configuration (DESIGN.md "Chain configuration"): YAML validated by
pydantic. A bad file stops start-up with the file, the field path and the reason."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from shared.vocabulary import WEEKDAYS, NotificationKind, Role, Weekday


class ChainConfigError(ValueError):
    """A chain configuration that cannot be used, with where and why."""


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _time_range(value: str) -> tuple[time, time]:
    try:
        start_text, end_text = value.split("-")
        start, end = time.fromisoformat(start_text.strip()), time.fromisoformat(end_text.strip())
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a range like '09:00-18:00'") from exc
    return start, end


def _opening_range(value: str) -> str:
    start, end = _time_range(value)
    if start >= end:
        raise ValueError(f"{value!r}: opening ranges must end after they start")
    return value


def _quiet_range(value: str) -> str:
    _time_range(value)  # may wrap past midnight, e.g. 21:00-08:00
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


def _contact_wait(value: timedelta) -> timedelta:
    if not timedelta(0) < value <= timedelta(hours=24):
        raise ValueError("contact_wait must be positive and at most PT24H")
    return value


def _late_lead(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("late_reminder_min_lead must not be negative")
    return value


def _turnover(value: timedelta) -> timedelta:
    if not timedelta(0) <= value <= timedelta(hours=2):
        raise ValueError("turnover must be between PT0S and PT2H")
    return value


def _notice_grace(value: timedelta) -> timedelta:
    if not timedelta(0) <= value <= timedelta(hours=1):
        raise ValueError("notice_grace must be between PT0S and PT1H")
    return value


ContactWait = Annotated[timedelta, AfterValidator(_contact_wait)]
NoticeGrace = Annotated[timedelta, AfterValidator(_notice_grace)]
LateLead = Annotated[timedelta, AfterValidator(_late_lead)]
Turnover = Annotated[timedelta, AfterValidator(_turnover)]
OpeningRange = Annotated[str, AfterValidator(_opening_range)]
QuietRange = Annotated[str, AfterValidator(_quiet_range)]
TimeZoneName = Annotated[str, AfterValidator(_timezone)]
WeeklyHours = dict[Weekday, list[OpeningRange]]


def ranges_on(hours: WeeklyHours, weekday: Weekday) -> list[tuple[time, time]]:
    """The opening ranges of one weekday, as times."""
    return parse_ranges(hours.get(weekday, []))


def parse_ranges(texts: Iterable[str]) -> list[tuple[time, time]]:
    """Ranges like '09:00-13:00', as times."""
    return [_time_range(text) for text in texts]


def parse_quiet_hours(value: str) -> tuple[time, time]:
    return _time_range(value)


class MessageRule(_Config):
    """Whether a kind of message is sent at all, and whether it waits out quiet hours."""

    send: bool = True
    quiet_hours: bool = True


# A waitlist offer's hold is short: it goes now or not at all. Everything else waits for
# a decent hour.
DEFAULT_MESSAGE_RULES: dict[NotificationKind, MessageRule] = {
    "waitlist_offer": MessageRule(quiet_hours=False),
}


class Policy(_Config):
    """Clinic policy; every number is a default from DOMAIN.md, overridable."""

    visit_minutes: int = Field(default=60, ge=15, le=240)
    min_notice: timedelta = timedelta(hours=12)
    min_gap_same_area: timedelta = timedelta(hours=48)  # DOMAIN.md 5: soreness 24-48 h
    reminders: list[timedelta] = Field(
        default_factory=lambda: [timedelta(days=2), timedelta(hours=2)]
    )
    quiet_hours: QuietRange = "21:00-08:00"
    aftercare_checkin_after: timedelta = timedelta(hours=24)
    max_sessions_per_week: int = Field(default=2, ge=1, le=7)
    horizon: timedelta = timedelta(weeks=16)
    late_cancel_window: timedelta = timedelta(hours=24)
    slot_step_minutes: int = Field(default=30, ge=5, le=120)
    # how long a waiting client holds a freed slot offered to them
    waitlist_hold: timedelta = timedelta(hours=2)
    # how long after its visit a link in a message still opens (shared/links.py)
    link_valid_after_visit: timedelta = timedelta(days=30)
    # how long a message waits for the contact of a client the notifier has not heard
    # of yet (their intake is on another topic), before it is suppressed (no_contact_data)
    contact_wait: ContactWait = timedelta(minutes=5)
    # a reminder that missed its time is sent late only this long before the visit or more
    late_reminder_min_lead: LateLead = timedelta(hours=1)
    # how long a booking confirmation or change notice is held before it goes, gathering
    # every change of the plan meanwhile, so a quick undo sends nothing
    notice_grace: NoticeGrace = timedelta(minutes=5)
    # per kind of message: sent or not, quiet hours or not (kinds not named: both on)
    messages: dict[NotificationKind, MessageRule] = Field(default_factory=dict)
    # the buffer after each visit before its therapist and its room take the next
    turnover: Turnover = timedelta(0)
    # the most visits one therapist takes in a local day (None: as many as fit)
    max_visits_per_day: int | None = Field(default=None, ge=1, le=20)
    # how long a finished course (plan completed or declined), its visits and its
    # notifications stay in the hot state after it ended, by the policy of the plan's
    # location (shared/retention.py)
    keep_finished_courses: timedelta = Field(default=timedelta(days=90), ge=timedelta(days=1))

    def message_rule(self, kind: NotificationKind) -> MessageRule:
        given: MessageRule | dict[str, Any] | None = self.messages.get(kind)
        if isinstance(given, dict):  # a location's override, copied in as plain data
            given = MessageRule.model_validate(given)
        return given or DEFAULT_MESSAGE_RULES.get(kind) or MessageRule()


class PolicyOverride(_Config):
    """Per-location policy: any key given replaces the chain's value."""

    visit_minutes: int | None = Field(default=None, ge=15, le=240)
    min_notice: timedelta | None = None
    min_gap_same_area: timedelta | None = None
    reminders: list[timedelta] | None = None
    quiet_hours: QuietRange | None = None
    aftercare_checkin_after: timedelta | None = None
    max_sessions_per_week: int | None = Field(default=None, ge=1, le=7)
    horizon: timedelta | None = None
    late_cancel_window: timedelta | None = None
    slot_step_minutes: int | None = Field(default=None, ge=5, le=120)
    waitlist_hold: timedelta | None = None
    link_valid_after_visit: timedelta | None = None
    contact_wait: ContactWait | None = None
    late_reminder_min_lead: LateLead | None = None
    notice_grace: NoticeGrace | None = None
    messages: dict[NotificationKind, MessageRule] | None = None
    turnover: Turnover | None = None
    max_visits_per_day: int | None = Field(default=None, ge=1, le=20)
    keep_finished_courses: timedelta | None = Field(default=None, ge=timedelta(days=1))


class ChainInfo(_Config):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str


class ApiKey(_Config):
    key: str = Field(min_length=8)
    role: Role
    locations: list[str] = Field(min_length=1)
    therapist_id: str | None = None
    name: str | None = None
    rate_limit_per_minute: int | None = Field(
        default=None, ge=1, description="overrides API_RATE_LIMIT_PER_MINUTE for this key"
    )
    rate_limit_burst: int | None = Field(
        default=None, ge=1, description="overrides API_RATE_LIMIT_BURST for this key"
    )

    @model_validator(mode="after")
    def _therapist_keys_name_a_therapist(self) -> ApiKey:
        if self.role == "therapist" and not self.therapist_id:
            raise ValueError("a therapist key needs therapist_id")
        return self

    def reaches(self, location_id: str) -> bool:
        return "*" in self.locations or location_id in self.locations


class Location(_Config):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    timezone: TimeZoneName
    hours: WeeklyHours
    rooms: int = Field(ge=1, le=100)
    closed: list[date] = Field(default_factory=list)
    address: str | None = None
    phone: str | None = None
    # the location's own address: the ORGANIZER of its visits' calendar entries
    email: str | None = Field(default=None, pattern=r"^[^@\s<>:]+@[^@\s<>:]+$")
    policy: PolicyOverride = PolicyOverride()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Therapist(_Config):
    id: str = Field(min_length=1)
    name: str
    locations: list[str] = Field(min_length=1)
    skills: list[str] = Field(default_factory=lambda: ["nmt"])
    hours: WeeklyHours | None = None  # None: the hours of the location
    # hours per location, where they differ (a location not named takes ``hours``); a
    # therapist works at one location a day, so two locations never share a weekday
    hours_at: dict[str, WeeklyHours] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_location_a_day(self) -> Therapist:
        for location_id in self.hours_at:
            if location_id not in self.locations:
                raise ValueError(f"hours_at names {location_id!r}, not one of their locations")
        seen: dict[str, str] = {}
        for location_id, hours in self.hours_at.items():
            for weekday, ranges in hours.items():
                if ranges and weekday in seen:
                    raise ValueError(
                        f"hours_at: {weekday} at both {seen[weekday]!r} and {location_id!r}; "
                        "a therapist works at one location a day"
                    )
                if ranges:
                    seen[weekday] = location_id
        return self


class ChainConfig(_Config):
    chain: ChainInfo
    api_keys: list[ApiKey] = Field(default_factory=list)
    locations: list[Location] = Field(min_length=1)
    therapists: list[Therapist] = Field(default_factory=list)
    policy: Policy = Policy()

    @model_validator(mode="after")
    def _references_resolve(self) -> ChainConfig:
        location_ids = [loc.id for loc in self.locations]
        if len(set(location_ids)) != len(location_ids):
            raise ValueError("location ids must be unique")
        therapist_ids = [t.id for t in self.therapists]
        if len(set(therapist_ids)) != len(therapist_ids):
            raise ValueError("therapist ids must be unique")
        for therapist in self.therapists:
            for loc in therapist.locations:
                if loc not in location_ids:
                    raise ValueError(f"therapist {therapist.id}: unknown location {loc!r}")
        keys = [k.key for k in self.api_keys]
        if len(set(keys)) != len(keys):
            raise ValueError("api keys must be unique")
        for key in self.api_keys:
            for loc in key.locations:
                if loc != "*" and loc not in location_ids:
                    raise ValueError(f"api key for role {key.role}: unknown location {loc!r}")
            if key.therapist_id and key.therapist_id not in therapist_ids:
                raise ValueError(f"api key: unknown therapist_id {key.therapist_id!r}")
        return self

    def location(self, location_id: str) -> Location:
        for loc in self.locations:
            if loc.id == location_id:
                return loc
        raise KeyError(location_id)

    def has_location(self, location_id: str) -> bool:
        return any(loc.id == location_id for loc in self.locations)

    def therapists_at(self, location_id: str) -> list[Therapist]:
        return [t for t in self.therapists if location_id in t.locations]

    def policy_for(self, location_id: str) -> Policy:
        """The chain policy with the location's overrides applied."""
        override = self.location(location_id).policy.model_dump(exclude_none=True)
        return self.policy.model_copy(update=override)

    def keep_finished_courses(self, location_id: str) -> timedelta:
        """How long a finished course of the location stays in the hot state; a
        location no longer in the chain (its courses outlive it) keeps the chain's."""
        if not self.has_location(location_id):
            return self.policy.keep_finished_courses
        return self.policy_for(location_id).keep_finished_courses

    def shortest_keep_finished_courses(self) -> timedelta:
        """The shortest of those periods: no course is due before it has passed."""
        return min(
            [self.policy.keep_finished_courses]
            + [self.keep_finished_courses(loc.id) for loc in self.locations]
        )

    def therapist_hours(self, therapist: Therapist, location: Location) -> WeeklyHours:
        """The therapist's weekly hours at a location as the file gives them."""
        if location.id in therapist.hours_at:
            return therapist.hours_at[location.id]
        return therapist.hours if therapist.hours is not None else location.hours


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid chain configuration"]
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def parse_chain_config(document: Any, *, source: Path) -> ChainConfig:
    try:
        return ChainConfig.model_validate(document)
    except ValidationError as exc:
        raise ChainConfigError(_format_errors(source, exc)) from exc


def load_chain_config(path: Path) -> ChainConfig:
    """Read and validate a chain configuration file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ChainConfigError(f"{path}: cannot read chain configuration: {exc}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ChainConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise ChainConfigError(f"{path}: (root): expected a mapping with chain, locations, ...")
    return parse_chain_config(document, source=path)


__all__ = [
    "WEEKDAYS",
    "ApiKey",
    "ChainConfig",
    "ChainConfigError",
    "Location",
    "Policy",
    "Therapist",
    "load_chain_config",
    "parse_quiet_hours",
    "parse_ranges",
    "ranges_on",
]
