"""The notifier's minimum-necessary rule end to end on the pure path, whatever the
intake says (DESIGN.md "Minimum necessary").

A random intake is screened the way intake screens it, the planner decides on it,
the notifier remembers the plan the way ``handlers.on_plan`` does, and every
notification kind is composed the way the dispatcher composes it: the reminder
for e-mail and SMS, every other kind for SMS, in English and in Spanish. No such
message may carry any of the intake's free texts (complaint descriptions, goals,
medications, precaution and contraindication details, history), its codes
(contraindications, precautions, regions, pain qualities), the condition, or
anything of the plan's protocol (techniques, targets, modifications, rationale).

Free texts carry a marker (``zx...``) so that no template wording can contain one
by accident, and are also drawn from real clinical words. The checker is shown to
catch a leak with a deliberately leaking template override.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo

from hypothesis import event, given, settings
from hypothesis import strategies as st

from services.intake.screening import screen
from services.intake.submission import findings_for
from services.notifier import batches
from services.notifier.batches import BATCH_KINDS
from services.notifier.channels import OutboundMessage
from services.notifier.compose import Links, compose
from services.notifier.delivery import Route
from services.notifier.messages import Templates
from services.planner.domain import decide
from shared.chain import load_chain_config
from shared.envelope import derived_id
from shared.events.intake import (
    ClientDetails,
    ClientRecord,
    Complaint,
    Contraindication,
    Health,
    History,
    IntakeDocument,
    IntakeSubmitted,
    Precaution,
    Preferences,
)
from shared.events.plans import PlanCreated, PlanDeclined
from shared.vocabulary import (
    Condition,
    ContraindicationCode,
    Modality,
    NotificationKind,
    PrecautionCode,
    Quality,
    Region,
    Side,
)
from tests.conftest import DEMO_CHAIN

CHAIN = load_chain_config(DEMO_CHAIN)
LOCATIONS = tuple(location.id for location in CHAIN.locations)
TEMPLATES = Templates()
URLS = Links(
    secret="minimum-necessary-test-secret",
    confirm="https://clinic.example/v/{visit_id}.ics?sig={sig}",
    offer="https://clinic.example/o/{offer_id}/{action}?sig={sig}",
    checkin="https://clinic.example/c/{notification_id}?sig={sig}",
    calendar="https://clinic.example/k/{client_id}.ics?sig={sig}",
)
LANGUAGES = ("en", "es")

SUBMITTED = datetime(2026, 11, 2, 17, 30, tzinfo=UTC)
VISIT_START = datetime(2026, 11, 10, 18, 0, tzinfo=UTC)
COMPLETED_AT = VISIT_START + timedelta(hours=1)
OFFER_START = datetime(2026, 11, 12, 16, 0, tzinfo=UTC)
VISIT_ID = "visit-minimum-necessary"
OFFER_ID = "offer-minimum-necessary"

EMAIL_REMINDER = Route("email", "x@example.com", "email")
SMS = Route("sms", "+15035550100", "sms")

REGIONS: tuple[Region, ...] = get_args(Region)
SIDES: tuple[Side, ...] = get_args(Side)
QUALITIES: tuple[Quality, ...] = get_args(Quality)
PRECAUTIONS: tuple[PrecautionCode, ...] = get_args(PrecautionCode)
CONTRAINDICATIONS: tuple[ContraindicationCode, ...] = get_args(ContraindicationCode)
MODALITIES: tuple[Modality, ...] = get_args(Modality)
CONDITIONS: tuple[Condition, ...] = get_args(Condition)

# What a client would call each area in a Spanish message; checked as whole words too.
REGION_WORDS_ES: dict[Region, tuple[str, ...]] = {
    "head": ("cabeza",),
    "jaw": ("mandibula",),
    "neck": ("cuello",),
    "shoulder": ("hombro",),
    "shoulder_blade": ("omoplato", "escapula"),
    "upper_back": ("espalda alta",),
    "mid_back": ("espalda media",),
    "low_back": ("espalda baja", "lumbar", "lumbago"),
    "glute": ("gluteo",),
    "hip": ("cadera",),
    "arm": ("brazo",),
    "elbow": ("codo",),
    "forearm": ("antebrazo",),
    "wrist_hand": ("muneca", "mano"),
    "thigh": ("muslo",),
    "knee": ("rodilla",),
    "leg": ("pierna",),
    "foot": ("pie",),
}

# Real clinical wording a client might type, next to the unmistakable markers.
CLINICAL_WORDS = (
    "sciatica",
    "migraine",
    "herniated disc",
    "fibromyalgia",
    "warfarin",
    "apixaban",
    "gabapentin",
    "ibuprofen 800 mg",
    "sertraline",
    "whiplash",
    "scoliosis",
    "plantar fasciitis",
    "carpal tunnel syndrome",
    "rotator cuff tear",
    "psoriasis",
    "eczema",
    "first trimester",
    "deep vein thrombosis",
    "osteoporosis",
    "breast cancer",
    "chemotherapy",
    "lifting my toddler",
    "desk job with two monitors",
    "run a half marathon",
)


# --- the checker -------------------------------------------------------------------------


def fold(text: str) -> str:
    """Text as compared: accents dropped (SMS drops those GSM-7 lacks), case folded,
    whitespace collapsed (SMS joins lines into one paragraph)."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def spelled(code: str) -> set[str]:
    """A code as written in code and in prose: ``low_back`` and ``low back``."""
    return {code, code.replace("_", " ")}


@dataclass
class Forbidden:
    """What no reminder and no SMS may contain.

    ``phrases`` are matched anywhere (free texts and long generated sentences);
    ``words`` only as whole words, since a short code such as ``arm`` is inside
    ``pharmacy`` and ``leg`` inside ``legal``."""

    phrases: set[str] = field(default_factory=set)
    words: set[str] = field(default_factory=set)

    def add_phrases(self, texts: Iterable[str | None]) -> None:
        self.phrases.update(t for t in texts if t and t.strip())

    def add_words(self, texts: Iterable[str]) -> None:
        self.words.update(texts)


def leaks(text: str, forbidden: Forbidden) -> list[str]:
    """Every forbidden phrase or whole word found in ``text``, case-insensitively."""
    haystack = fold(text)
    found = [p for p in sorted(forbidden.phrases) if fold(p) in haystack]
    for word in sorted(forbidden.words):
        if re.search(rf"(?<![a-z0-9]){re.escape(fold(word))}(?![a-z0-9])", haystack):
            found.append(word)
    return found


def intake_secrets(intake: IntakeSubmitted) -> Forbidden:
    """Everything clinical the intake says, and what intake derived from it."""
    out = Forbidden()
    for c in intake.complaints:
        out.add_phrases([c.frequency, c.episode_duration])
        out.add_phrases([*c.aggravating, *c.relieving, *c.provoking_movements])
        out.add_words(spelled(c.region))
        out.add_words(REGION_WORDS_ES[c.region])
        out.add_words(c.qualities)
    health = intake.health
    out.add_phrases(health.medications)
    for precaution in health.precautions:
        out.add_phrases([precaution.detail])
        out.add_words(spelled(precaution.code))
    for contraindication in health.contraindications:
        out.add_phrases([contraindication.detail])
        out.add_words(spelled(contraindication.code))
        if contraindication.region is not None:
            out.add_words(spelled(contraindication.region))
    out.add_phrases(intake.goals)
    history = intake.history
    out.add_phrases(
        [
            *history.old_injuries,
            *history.repetitive_strain,
            *history.work_posture,
            *history.other_practitioners,
            history.notes,
        ]
    )
    screening = intake.screening
    out.add_phrases(screening.modifications)
    out.add_phrases(r.detail for r in screening.reasons)
    out.add_words(c for r in screening.reasons for c in spelled(r.code))
    for finding in intake.findings:
        out.add_words([finding.condition, *finding.assess_first])
    out.add_words(CONDITIONS)  # "acute" / "chronic": never, whatever the intake
    return out


def plan_secrets(decision: PlanCreated | PlanDeclined) -> Forbidden:
    """The plan's clinical content: protocol, modifications, rationale, condition,
    regions; or a declined plan's reasons and referral."""
    out = Forbidden()
    if isinstance(decision, PlanDeclined):
        out.add_phrases(r.detail for r in decision.reasons)
        out.add_phrases(r.rule for r in decision.reasons)
        out.add_phrases([decision.referral.detail, decision.referral.to])
        return out
    for step in decision.protocol:
        out.add_words(spelled(step.technique))
        out.add_words(step.targets)
        out.add_phrases([step.notes])
    for modification in decision.modifications:
        out.add_words(spelled(modification.code))
        out.add_phrases([modification.detail])
    out.add_phrases(r.detail for r in decision.rationale)
    out.add_phrases(r.rule for r in decision.rationale)
    out.add_words([decision.condition])
    for region in [*decision.target_regions, *decision.excluded_regions]:
        out.add_words(spelled(region))
    return out


# --- the path: intake -> plan -> what the notifier remembers -> messages -----------------


def remembered(plan: PlanCreated | PlanDeclined) -> dict[str, Any] | None:
    """What ``handlers.on_plan`` stores of a plan (a declined one stores nothing)."""
    if not isinstance(plan, PlanCreated):
        return None
    return {
        "version": plan.version,
        "modality": plan.modality,
        "sessions_total": plan.sessions_total,
        "phases": [p.model_dump(mode="json") for p in plan.phases],
        "home_program": plan.home_program.model_dump(mode="json"),
        "awaiting_medical_check": plan.awaiting_medical_check is not None,
    }


def record(
    kind: NotificationKind, *, client_id: str, location_id: str, plan_id: str | None
) -> dict[str, Any]:
    """One notification as the handlers arm it (``arm`` / ``arm_soon``)."""
    visit_id: str | None = VISIT_ID
    context: dict[str, Any]
    if kind == "reminder":
        cause: tuple[str, ...] = (VISIT_ID, "P2D", VISIT_START.isoformat())
        context = {"visit_start": VISIT_START.isoformat(), "plan_id": plan_id}
    elif kind in ("aftercare", "checkin"):
        cause = (VISIT_ID,)
        context = {"plan_id": plan_id, "completed_at": COMPLETED_AT.isoformat()}
    elif kind == "plan_summary":
        cause, visit_id = (f"{plan_id}:1",), None
        context = {"plan_id": plan_id}
    elif kind == "referral":
        cause, visit_id = ("intake-minimum-necessary",), None
        context = {}
    elif kind in BATCH_KINDS:
        cause, visit_id = ("event-minimum-necessary",), None
        context = {"plan_id": plan_id}
    else:
        cause = (OFFER_ID,)
        context = {
            "offer_id": OFFER_ID,
            "visit_start": OFFER_START.isoformat(),
            "hold_until": (SUBMITTED + timedelta(hours=2)).isoformat(),
        }
    return {
        "notification_id": derived_id(kind, *cause),
        "client_id": client_id,
        "location_id": location_id,
        "visit_id": visit_id,
        "kind": kind,
        "channel": "email" if kind == "reminder" else "sms",
        "due_at": SUBMITTED.isoformat(),
        "context": context,
    }


def messages_for(
    intake: IntakeSubmitted,
    plan: PlanCreated | PlanDeclined,
    *,
    language: str,
    templates: Templates = TEMPLATES,
) -> dict[str, OutboundMessage]:
    """The reminder by e-mail and by SMS, and every other kind by SMS, in ``language``;
    the notices of a plan change by e-mail and SMS, with every plan outcome."""
    plan_id = plan.plan_id if isinstance(plan, PlanCreated) else None
    batched = [
        (f"{kind}.{outcome}.{way.template}", kind, way, outcome)
        for kind in sorted(BATCH_KINDS)
        for outcome in get_args(batches.Outcome)
        for way in (EMAIL_REMINDER, SMS)
    ]
    notices = {
        name: compose(
            record(
                kind,
                client_id=intake.client.client_id,
                location_id=intake.location_id,
                plan_id=plan_id or "plan-minimum-necessary",
            ),
            way=way,
            language=language,
            chain=CHAIN,
            plan=remembered(plan),
            urls=URLS,
            templates=templates,
            sent_at=SUBMITTED,
            members=plan_change(outcome),
        )
        for name, kind, way, outcome in batched
    }
    ways: list[tuple[str, NotificationKind, Route]] = [
        ("reminder.email", "reminder", EMAIL_REMINDER),
        ("reminder.sms", "reminder", SMS),
        *(
            (f"{kind}.sms", kind, SMS)
            for kind in ("aftercare", "checkin", "plan_summary", "referral", "waitlist_offer")
        ),
    ]
    return {
        name: compose(
            record(
                kind,
                client_id=intake.client.client_id,
                location_id=intake.location_id,
                plan_id=plan_id,
            ),
            way=way,
            language=language,
            chain=CHAIN,
            plan=remembered(plan),
            urls=URLS,
            templates=templates,
            sent_at=SUBMITTED,
        )
        for name, kind, way in ways
    } | notices


def plan_change(outcome: str) -> list[dict[str, Any]]:
    """A plan change with one of everything, as the notifier gathers it."""
    later = VISIT_START + timedelta(days=3)
    return [
        {"event_id": "e1", "type": "booked", "visit_id": "v-new", "start": later.isoformat(),
         "known_start": None, "sequence": 2, "sessions_total": 6, "makeup": True},
        {"event_id": "e2", "type": "rescheduled", "visit_id": VISIT_ID,
         "start": (VISIT_START + timedelta(hours=2)).isoformat(),
         "known_start": VISIT_START.isoformat()},
        {"event_id": "e3", "type": "cancelled", "visit_id": "v-old",
         "known_start": (VISIT_START + timedelta(days=7)).isoformat(), "cause": "plan_revised"},
        {"event_id": "e4", "type": "waitlisted", "sequence": 6, "sessions_total": 6,
         "makeup": False},
        {"event_id": "e5", "type": "plan", "outcome": outcome, "maintenance": True},
    ]  # fmt: skip


def full_text(message: OutboundMessage) -> str:
    return f"{message.subject}\n{message.body}"


def submitted(document: IntakeDocument) -> IntakeSubmitted:
    """``intake.submitted`` for a document, screened the way intake screens it."""
    today = SUBMITTED.astimezone(ZoneInfo(CHAIN.location(document.location_id).timezone)).date()
    screening = screen(document, today=today)
    return IntakeSubmitted(
        intake_id="intake-minimum-necessary",
        client=ClientRecord(client_id="client-minimum-necessary", **document.client.model_dump()),
        location_id=document.location_id,
        complaints=document.complaints,
        health=document.health,
        goals=document.goals,
        preferences=document.preferences,
        history=document.history,
        consent=document.consent,
        findings=findings_for(document, screening, today=today),
        screening=screening,
        submitted_at=SUBMITTED,
    )


# --- strategies ----------------------------------------------------------------------------

markers = st.text(alphabet=string.ascii_lowercase, min_size=5, max_size=12).map(lambda s: "zx" + s)
free_texts = st.one_of(
    markers,
    st.sampled_from(CLINICAL_WORDS),
    st.tuples(st.sampled_from(CLINICAL_WORDS), markers).map(" ".join),
)
few_texts = st.lists(free_texts, max_size=3)
TODAY = SUBMITTED.date()
onsets = st.one_of(
    st.dates(min_value=TODAY - timedelta(days=120), max_value=TODAY),  # around 3 months
    st.dates(min_value=date(2016, 1, 1), max_value=TODAY),
)


@st.composite
def complaints(draw: st.DrawFn) -> Complaint:
    """A complaint with every free-text field possibly filled."""
    by_date = draw(st.booleans())
    return Complaint(
        region=draw(st.sampled_from(REGIONS)),
        side=draw(st.none() | st.sampled_from(SIDES)),
        intensity=draw(st.integers(0, 10)),
        qualities=draw(st.lists(st.sampled_from(QUALITIES), max_size=4, unique=True)),
        frequency=draw(st.none() | free_texts),
        onset=draw(onsets) if by_date else None,
        duration_weeks=None if by_date else draw(st.integers(0, 520)),
        episode_duration=draw(st.none() | free_texts),
        aggravating=draw(few_texts),
        relieving=draw(few_texts),
        provoking_movements=draw(few_texts),
        improving=draw(st.none() | st.booleans()),
    )


@st.composite
def documents(draw: st.DrawFn) -> IntakeDocument:
    """A valid intake that mostly leads to a plan: skin conditions are local, and a
    contraindication that declines the plan is drawn only now and then."""
    found = draw(st.lists(complaints(), min_size=1, max_size=3))
    # a skin condition may exclude any area but the first complaint's: something is treatable
    elsewhere = [r for r in REGIONS if r != found[0].region]
    skin_on = draw(st.lists(st.sampled_from(elsewhere), max_size=2, unique=True))
    contraindications = [
        Contraindication(code="skin_condition", region=region, detail=draw(st.none() | free_texts))
        for region in skin_on
    ]
    if draw(st.sampled_from([False, False, False, True])):  # now and then: plan.declined
        contraindications.append(
            Contraindication(
                code=draw(st.sampled_from(CONTRAINDICATIONS)), detail=draw(st.none() | free_texts)
            )
        )
    precautions = [
        Precaution(code=code, detail=draw(st.none() | free_texts))
        for code in draw(st.lists(st.sampled_from(PRECAUTIONS), max_size=3, unique=True))
    ]
    return IntakeDocument(
        location_id=draw(st.sampled_from(LOCATIONS)),
        client=ClientDetails(
            name="Dana Property",
            email="dana@example.com",
            phone="+15035550142",
            language=draw(st.sampled_from(LANGUAGES)),
        ),
        complaints=found,
        history=History(
            old_injuries=draw(few_texts),
            repetitive_strain=draw(few_texts),
            work_posture=draw(few_texts),
            other_practitioners=draw(few_texts),
            notes=draw(st.none() | free_texts),
        ),
        health=Health(
            contraindications=contraindications,
            precautions=precautions,
            medications=draw(few_texts),
        ),
        goals=draw(few_texts),
        preferences=Preferences(
            modality=draw(st.sampled_from(MODALITIES)),
            max_sessions_per_week=draw(st.none() | st.integers(1, 7)),
        ),
    )


# --- the property ------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(documents())
def test_no_reminder_and_no_sms_carries_anything_clinical(document: IntakeDocument) -> None:
    intake = submitted(document)
    location = CHAIN.location(intake.location_id)
    plan = decide(intake, policy=CHAIN.policy_for(intake.location_id))
    event(type(plan).__name__)
    forbidden = intake_secrets(intake)
    clinical = plan_secrets(plan)
    forbidden.add_phrases(clinical.phrases)
    forbidden.add_words(clinical.words)

    for language in LANGUAGES:
        rendered = messages_for(intake, plan, language=language)
        for name, message in rendered.items():
            assert leaks(full_text(message), forbidden) == [], (language, name, message.body)
            assert fold(CHAIN.chain.name) in fold(full_text(message)), (language, name)

        # ...and they do say what they are for.
        for name in ("reminder.email", "reminder.sms"):
            text = fold(full_text(rendered[name]))
            assert location.address is not None and fold(location.address) in text, name
        assert fold(location.name) in fold(rendered["reminder.sms"].body)
        assert fold(CHAIN.chain.name) in fold(rendered["reminder.email"].subject)
        if isinstance(plan, PlanCreated):
            summary = fold(rendered["plan_summary.sms"].body)
            assert re.search(rf"\b{plan.sessions_total} (sessions?|sesion(es)?)\b", summary)


# --- the checker catches a leak ---------------------------------------------------------

EXAMPLE = IntakeDocument(
    location_id="beaverton",
    client=ClientDetails(name="Dana Example", language="en"),
    complaints=[
        Complaint(
            region="neck",
            intensity=7,
            qualities=["ache", "tingling"],
            duration_weeks=20,
            frequency="zxmornings worst",
            aggravating=["whiplash"],
        )
    ],
    health=Health(
        precautions=[Precaution(code="blood_thinners", detail="warfarin")],
        medications=["zxpillname"],
    ),
    goals=["run a half marathon"],
)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_the_packaged_templates_pass_on_a_known_example() -> None:
    intake = submitted(EXAMPLE)
    plan = decide(intake, policy=CHAIN.policy_for("beaverton"))
    assert isinstance(plan, PlanCreated)
    forbidden = intake_secrets(intake)
    clinical = plan_secrets(plan)
    assert {"neck", "blood_thinners", "blood thinners", "chronic"} <= forbidden.words
    assert {"zxmornings worst", "whiplash", "warfarin", "zxpillname"} <= forbidden.phrases
    assert {"warming_strokes", "upper trapezius"} <= clinical.words
    for language in LANGUAGES:
        for name, message in messages_for(intake, plan, language=language).items():
            assert leaks(full_text(message), forbidden) == [], (language, name)
            assert leaks(full_text(message), clinical) == [], (language, name)


def test_a_template_that_prints_the_home_program_in_an_sms_is_caught(tmp_path: Path) -> None:
    """The plan summary context holds the stretches and self-massage (for the e-mail); an
    SMS override printing them names the area and the muscles, and the checker says so."""
    write(
        tmp_path / "beaverton/en/plan_summary.sms.txt.j2",
        "{{ clinic.chain_name }}: {% for s in stretches %}{{ s.name }}. {% endfor %}"
        "{% for line in self_massage %}{{ line }}. {% endfor %}",
    )
    intake = submitted(EXAMPLE)
    plan = decide(intake, policy=CHAIN.policy_for("beaverton"))
    assert isinstance(plan, PlanCreated)

    leaky = messages_for(intake, plan, language="en", templates=Templates(tmp_path))
    found = leaks(leaky["plan_summary.sms"].body, plan_secrets(plan))
    assert "upper trapezius" in found  # a protocol target, in the stretch's name
    assert "neck" in leaks(leaky["plan_summary.sms"].body, intake_secrets(intake))
    # the other messages of that location are still the packaged, clean ones
    assert leaks(leaky["reminder.sms"].body, intake_secrets(intake)) == []


def test_a_reminder_override_naming_the_complaint_is_caught(tmp_path: Path) -> None:
    """Wording hard-coded in an override (a clinic "personalising" its reminder) is a
    leak the property reports, case-insensitively and across line breaks."""
    write(
        tmp_path / "es/reminder.sms.txt.j2",
        "{{ clinic.chain_name }}: su sesion para el Dolor de CUELLO\ny la Chronic\npain.",
    )
    intake = submitted(EXAMPLE)
    plan = decide(intake, policy=CHAIN.policy_for("beaverton"))
    leaky = messages_for(intake, plan, language="es", templates=Templates(tmp_path))
    assert leaks(leaky["reminder.sms"].body, intake_secrets(intake)) == ["chronic", "cuello"]


def test_the_checker_matches_words_whole_and_phrases_anywhere() -> None:
    forbidden = Forbidden(phrases={"zxqwerty", "herniated disc"}, words={"arm", "low back"})
    assert leaks("Visit our pharmacy at the Farmers Market", forbidden) == []
    assert leaks("Your ARM, today", forbidden) == ["arm"]
    assert leaks("the Low\nBack again", forbidden) == ["low back"]
    assert leaks("note: ZXQWERTYuiop", forbidden) == ["zxqwerty"]
    assert leaks("a Herniated  Disc", forbidden) == ["herniated disc"]
