"""What every client message says, per kind, channel and language (DESIGN.md "Minimum necessary").

Pure: a context in, subject and text out; the only I/O is reading template files.
Templates live in ``templates/<lang>/<kind>.<email|sms>.{subject,txt}.j2``; ``webhook``
and ``console`` use the email ones, and sms has no subject. With an override folder,
the first match wins: ``<override>/<location_id>/<lang>/``, ``<override>/<lang>/``,
then the packaged templates; a language without the file falls back to English.

Nothing clinical can be printed because nothing clinical is passed in: the context
types carry no complaint, condition, precaution, medication or technique.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, pass_context
from jinja2.runtime import Context

from shared.local_time import LANGUAGES, language_of, when_local
from shared.vocabulary import Channel, NotificationKind

SMS_MAX_CHARS: Final = 480
"""About three concatenated GSM-7 segments; longer texts are refused, not cut."""

PACKAGED_DIR: Final = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Clinic:
    """Who the message is from: the chain and the location."""

    chain_name: str
    location_name: str
    address: str | None
    phone: str | None
    timezone: str  # IANA zone of the location


@dataclass(frozen=True)
class StretchText:
    name: str
    how: str


@dataclass(frozen=True)
class PhaseText:
    """One cadence of a plan, e.g. 2 per week for 3 weeks (6 sessions)."""

    per_week: float
    weeks: int
    sessions: int

    @property
    def whole_per_week(self) -> int | None:
        """``2`` for twice a week; None when the cadence is not a whole number a week."""
        per_week = float(self.per_week)
        return int(per_week) if per_week >= 1 and per_week.is_integer() else None

    @property
    def interval_days(self) -> int:
        """Days between visits (``4`` for 1.75 per week)."""
        return max(1, round(7 / self.per_week))

    @property
    def interval_weeks(self) -> int | None:
        """``2`` for every two weeks; None when the interval is not whole weeks."""
        days = self.interval_days
        return days // 7 if days % 7 == 0 else None


@dataclass(frozen=True)
class ReminderContext:
    clinic: Clinic
    visit_start: datetime
    confirm_url: str


@dataclass(frozen=True)
class AftercareContext:
    """``advice``: lines beyond the generic aftercare the templates always give
    (water, soreness, movement, breathing practice), in the client's language."""

    clinic: Clinic
    visit_start: datetime
    stretches: list[StretchText]
    self_massage: list[str]
    advice: list[str]
    breathing_practice: bool  # FMM plans (DOMAIN.md 6)
    checkin_after_hours: int


@dataclass(frozen=True)
class CheckinContext:
    clinic: Clinic
    visit_start: datetime
    reply_url: str


@dataclass(frozen=True)
class WaitlistOfferContext:
    clinic: Clinic
    visit_start: datetime
    hold_until: datetime
    accept_url: str
    decline_url: str


@dataclass(frozen=True)
class PlanSummaryContext:
    """``awaiting_medical_check``: the course waits for a doctor's check (a red flag,
    never told): the first visit assesses, and the rest waits for the doctor."""

    clinic: Clinic
    sessions_total: int
    phases: list[PhaseText]
    stretches: list[StretchText]
    self_massage: list[str]
    first_visit: datetime | None
    awaiting_medical_check: bool = False


@dataclass(frozen=True)
class ReferralContext:
    """A notice to see a physician first; never the reasons."""

    clinic: Clinic


@dataclass(frozen=True)
class VisitTime:
    """A visit as the client reads it: when, which session of the course (3 of 8), and
    whether it makes up one missed."""

    start: datetime
    sequence: int | None = None
    sessions_total: int | None = None
    makeup: bool = False


@dataclass(frozen=True)
class MovedVisit:
    previous: datetime
    start: datetime


@dataclass(frozen=True)
class ChangesContext:
    """A booking confirmation, change notice, plan update or accepted offer: the plan's
    changes gathered while the notice was held (services/notifier/batches.py), netted.
    ``outcome`` is a code the templates word (reassessment, taper, referral, completed,
    lapsed, cleared, review); never its reasons. ``visit_url``: the page of the first
    visit named; ``calendar_url``: the client's calendar feed."""

    clinic: Clinic
    booked: list[VisitTime]
    moved: list[MovedVisit]
    cancelled: list[datetime]
    waitlisted: int
    outcome: str | None
    maintenance: bool
    calendar_url: str
    visit_url: str | None


MessageContext = (
    ChangesContext
    | ReminderContext
    | AftercareContext
    | CheckinContext
    | WaitlistOfferContext
    | PlanSummaryContext
    | ReferralContext
)

CONTEXT_FOR: Final[dict[NotificationKind, type[MessageContext]]] = {
    "reminder": ReminderContext,
    "aftercare": AftercareContext,
    "checkin": CheckinContext,
    "waitlist_offer": WaitlistOfferContext,
    "plan_summary": PlanSummaryContext,
    "referral": ReferralContext,
    "booking_confirmation": ChangesContext,
    "visit_change": ChangesContext,
    "plan_update": ChangesContext,
    "offer_accepted": ChangesContext,
}


@dataclass(frozen=True)
class Rendered:
    subject: str  # "" for sms
    text: str


class SmsTooLong(ValueError):
    """A template rendered an SMS over ``SMS_MAX_CHARS``: shorten the template."""


class Templates:
    """Renders client messages from the packaged templates and optional overrides."""

    def __init__(self, override_dir: Path | None = None) -> None:
        self._override_dir = override_dir
        self._environments: dict[str, Environment] = {}

    def render(
        self,
        kind: NotificationKind,
        channel: Channel,
        *,
        language: str,
        location_id: str,
        context: MessageContext,
    ) -> Rendered:
        """The message of ``kind`` for ``channel``, in ``language`` (a tag such as ``es-MX``)."""
        expected = CONTEXT_FOR[kind]
        if not isinstance(context, expected):
            given = type(context).__name__  # not the value: it holds signed links
            raise TypeError(f"a {kind} message needs a {expected.__name__}, not a {given}")
        lang = language_of(language)
        # The declared fields only: a richer object passed in by mistake leaks nothing more.
        variables = {f.name: getattr(context, f.name) for f in fields(expected)}
        variables["language"] = lang
        environment = self._environment(location_id)
        if channel == "sms":
            text = sms_text(_template(environment, lang, f"{kind}.sms.txt.j2").render(variables))
            if len(text) > SMS_MAX_CHARS:
                raise SmsTooLong(
                    f"the {lang} {kind} sms for location {location_id!r} is {len(text)} "
                    f"characters; at most {SMS_MAX_CHARS} are allowed"
                )
            return Rendered(subject="", text=text)
        subject = _template(environment, lang, f"{kind}.email.subject.j2").render(variables)
        text = _template(environment, lang, f"{kind}.email.txt.j2").render(variables)
        # One line whatever a name contains: a line break in a subject would be a new header.
        return Rendered(subject=" ".join(subject.split()), text=text)

    def _environment(self, location_id: str) -> Environment:
        key = location_id if self._override_dir is not None else ""
        environment = self._environments.get(key)
        if environment is None:
            environment = _environment(self._search_path(location_id))
            self._environments[key] = environment
        return environment

    def _search_path(self, location_id: str) -> list[Path]:
        if self._override_dir is None:
            return [PACKAGED_DIR]
        if not _FOLDER_NAME.fullmatch(location_id):
            raise ValueError(f"location id {location_id!r} cannot name an override folder")
        return [self._override_dir / location_id, self._override_dir, PACKAGED_DIR]


def sms_text(text: str) -> str:
    """One paragraph of GSM-7 text where a faithful spelling exists: typographic quotes and
    dashes made plain, accents GSM lacks dropped (``sábado`` -> ``sabado``; ``é``, ``ñ``
    stay), control characters removed. A character with no such spelling (another script)
    is kept: the message then goes as UCS-2, which beats question marks."""
    kept: list[str] = []
    for char in text.translate(_PLAIN):
        if char in _GSM or char.isspace():
            kept.append(char)
        elif unicodedata.category(char).startswith("C"):
            continue
        else:
            decomposed = unicodedata.normalize("NFKD", char)
            base = "".join(c for c in decomposed if not unicodedata.combining(c))
            kept.append(base if base and all(c in _GSM for c in base) else char)
    return " ".join("".join(kept).split())


_FOLDER_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_GSM: Final = frozenset(
    "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)
_QUOTES: Final = ("LEFT SINGLE", "RIGHT SINGLE", "SINGLE LOW-9", "LEFT DOUBLE", "RIGHT DOUBLE")
_DASHES: Final = (
    "HYPHEN",
    "NON-BREAKING HYPHEN",
    "FIGURE DASH",
    "EN DASH",
    "EM DASH",
    "MINUS SIGN",
)
_PLAIN: Final = str.maketrans(
    {
        unicodedata.lookup(f"{name} QUOTATION MARK"): "'" if "SINGLE" in name else '"'
        for name in _QUOTES
    }
    | {unicodedata.lookup(name): "-" for name in _DASHES}
    | {"\N{BULLET}": "-", "\N{HORIZONTAL ELLIPSIS}": "..."}
)


def _template(environment: Environment, language: str, name: str) -> Template:
    return environment.select_template(list(dict.fromkeys([f"{language}/{name}", f"en/{name}"])))


def _environment(search_path: list[Path]) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(search_path),
        undefined=StrictUndefined,
        autoescape=False,  # plain text: nothing here is HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = _when
    environment.globals["when"] = _when
    return environment


@pass_context
def _when(context: Context, moment: datetime) -> str:
    """The template's ``when``: ``moment`` on the clock of the message's location."""
    clinic: Clinic = context["clinic"]
    return when_local(moment, clinic.timezone, context["language"])


__all__ = [
    "CONTEXT_FOR",
    "LANGUAGES",
    "SMS_MAX_CHARS",
    "AftercareContext",
    "ChangesContext",
    "CheckinContext",
    "Clinic",
    "MessageContext",
    "MovedVisit",
    "PhaseText",
    "PlanSummaryContext",
    "ReferralContext",
    "ReminderContext",
    "Rendered",
    "SmsTooLong",
    "StretchText",
    "Templates",
    "VisitTime",
    "WaitlistOfferContext",
    "language_of",
    "sms_text",
    "when_local",
]
