"""Client messages from templates: every kind, channel and language; local times across DST;
overrides; the SMS limit; and that only context fields are ever printed (DESIGN.md
"Minimum necessary", DOMAIN.md 6 aftercare)."""

from __future__ import annotations

import re
from dataclasses import field, fields, make_dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast, get_args

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jinja2 import Environment, UndefinedError, meta

from services.notifier.messages import (
    CONTEXT_FOR,
    LANGUAGES,
    PACKAGED_DIR,
    SMS_MAX_CHARS,
    AftercareContext,
    ChangesContext,
    CheckinContext,
    Clinic,
    MessageContext,
    MovedVisit,
    PhaseText,
    PlanSummaryContext,
    ReferralContext,
    ReminderContext,
    Rendered,
    SmsTooLong,
    StretchText,
    Templates,
    VisitTime,
    WaitlistOfferContext,
    language_of,
    sms_text,
    when_local,
)
from shared.vocabulary import (
    Channel,
    ContraindicationCode,
    NotificationKind,
    PrecautionCode,
    Quality,
    Region,
)

KINDS: tuple[NotificationKind, ...] = get_args(NotificationKind)
CHANNELS: tuple[Channel, ...] = get_args(Channel)
LA = "America/Los_Angeles"
NEW_YORK = "America/New_York"
SUMMER_TIME = datetime(2027, 3, 16, 17, 0, tzinfo=UTC)  # LA switched to PDT on 14 March 2027
WINTER_TIME = datetime(2027, 3, 9, 18, 0, tzinfo=UTC)
CLINIC = Clinic(
    chain_name="Veeva Chiropractic",
    location_name="Beaverton",
    address="4500 SW Main St, Beaverton, OR",
    phone="+15035550100",
    timezone=LA,
)
STRETCHES = [
    StretchText("upper trapezius stretch", "Sit tall, tilt ear to shoulder; 30 s a side."),
    StretchText("chin tuck", "Glide the chin straight back, hold 5 s; 10 times."),
]
TOOLS = ["tennis ball: against a wall, at the base of the skull"]
PHASES = [PhaseText(2, 3, 6), PhaseText(1, 2, 2), PhaseText(0.5, 4, 2)]

# The GSM 03.38 alphabet, written out here rather than imported: an independent oracle.
GSM_7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


def aftercare(**changes: Any) -> AftercareContext:
    context = AftercareContext(
        clinic=CLINIC,
        visit_start=SUMMER_TIME,
        stretches=STRETCHES,
        self_massage=TOOLS,
        advice=[],
        breathing_practice=False,
        checkin_after_hours=24,
    )
    return replace(context, **changes)


def plan_summary(**changes: Any) -> PlanSummaryContext:
    context = PlanSummaryContext(
        clinic=CLINIC,
        sessions_total=10,
        phases=PHASES,
        stretches=STRETCHES,
        self_massage=TOOLS,
        first_visit=SUMMER_TIME,
    )
    return replace(context, **changes)


def contexts(
    clinic: Clinic = CLINIC, visit_start: datetime = SUMMER_TIME
) -> dict[NotificationKind, MessageContext]:
    return {
        "reminder": ReminderContext(clinic, visit_start, "https://clinic.example/c/abc123"),
        "aftercare": aftercare(clinic=clinic, visit_start=visit_start),
        "checkin": CheckinContext(clinic, visit_start, "https://clinic.example/p/xyz"),
        "waitlist_offer": WaitlistOfferContext(
            clinic=clinic,
            visit_start=visit_start,
            hold_until=visit_start - timedelta(days=1, hours=16),
            accept_url="https://clinic.example/w/yes",
            decline_url="https://clinic.example/w/no",
        ),
        "plan_summary": plan_summary(clinic=clinic, first_visit=visit_start),
        "referral": ReferralContext(clinic),
        **{
            kind: changes_context(clinic, visit_start)
            for kind in ("booking_confirmation", "visit_change", "plan_update", "offer_accepted")
        },
    }


def changes_context(clinic: Clinic, visit_start: datetime) -> ChangesContext:
    """A plan change with one of everything: the longest such a message gets."""
    return ChangesContext(
        clinic=clinic,
        booked=[VisitTime(visit_start + timedelta(days=3 * n), n + 1, 8) for n in range(8)],
        moved=[MovedVisit(visit_start - timedelta(days=1), visit_start)],
        cancelled=[visit_start + timedelta(days=1)],
        waitlisted=2,
        outcome="completed",
        maintenance=True,
        calendar_url="https://clinic.example/v1/clients/c-123/calendar.ics?sig=1790000000.abcdefghijklmnopqrstuvwx",
        visit_url="https://clinic.example/v1/visits/v-123/manage?sig=1790000000.abcdefghijklmnopqrstuvwx&lang=es",
    )


def render(
    kind: NotificationKind,
    channel: Channel = "email",
    language: str = "en",
    *,
    context: MessageContext | None = None,
    templates: Templates | None = None,
    location_id: str = "beaverton",
) -> Rendered:
    chosen = context if context is not None else contexts()[kind]
    return (templates or Templates()).render(
        kind, channel, language=language, location_id=location_id, context=chosen
    )


# --- every kind x channel x language ------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("language", ["en", "es"])
def test_every_message_renders(kind: NotificationKind, channel: Channel, language: str) -> None:
    rendered = render(kind, channel, language)

    assert "Veeva Chiropractic" in rendered.text
    assert "None" not in rendered.text and "None" not in rendered.subject
    if channel == "sms":
        assert rendered.subject == ""
        assert len(rendered.text) <= SMS_MAX_CHARS
        assert set(rendered.text) <= GSM_7, set(rendered.text) - GSM_7
        assert "\n" not in rendered.text
    else:
        assert rendered.subject and "\n" not in rendered.subject
        assert rendered.text.endswith("\n")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("channel", ["email", "sms"])
def test_english_and_spanish_differ(kind: NotificationKind, channel: Channel) -> None:
    assert render(kind, channel, "en") != render(kind, channel, "es")


@pytest.mark.parametrize("kind", KINDS)
def test_webhook_and_console_carry_the_email_message(kind: NotificationKind) -> None:
    assert render(kind, "webhook") == render(kind, "console") == render(kind, "email")


@pytest.mark.parametrize("kind", KINDS)
def test_regional_spanish_is_spanish_and_unknown_languages_are_english(
    kind: NotificationKind,
) -> None:
    assert render(kind, "email", "es-MX") == render(kind, "email", "es")
    assert render(kind, "sms", "fr") == render(kind, "sms", "en")
    assert render(kind, "email", "fr-CA") == render(kind, "email", "en")


@pytest.mark.parametrize(
    ("tag", "language"),
    [("es-MX", "es"), ("ES", "es"), ("es_419", "es"), ("en-GB", "en"), ("fr", "en"), (None, "en")],
)
def test_language_of(tag: str | None, language: str) -> None:
    assert language_of(tag) == language


def test_every_packaged_language_has_every_template() -> None:
    assert sorted(p.name for p in PACKAGED_DIR.iterdir()) == sorted(LANGUAGES)
    for language in LANGUAGES:
        names = {p.name for p in (PACKAGED_DIR / language).glob("*.j2")}
        for kind in KINDS:
            assert {
                f"{kind}.email.subject.j2",
                f"{kind}.email.txt.j2",
                f"{kind}.sms.txt.j2",
            } <= names
            assert f"{kind}.sms.subject.j2" not in names


def test_a_context_of_another_kind_is_refused() -> None:
    with pytest.raises(TypeError, match="ReminderContext"):
        render("reminder", context=ReferralContext(CLINIC))


# --- times in the location's zone ---------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "zone", "english", "spanish"),
    [
        (
            SUMMER_TIME,
            LA,
            "Tuesday, March 16 at 10:00 AM PDT",
            "martes 16 de marzo a las 10:00 PDT",
        ),
        (WINTER_TIME, LA, "Tuesday, March 9 at 10:00 AM PST", "martes 9 de marzo a las 10:00 PST"),
        (
            datetime(2027, 3, 16, 14, 0, tzinfo=UTC),
            NEW_YORK,
            "Tuesday, March 16 at 10:00 AM EDT",
            "martes 16 de marzo a las 10:00 EDT",
        ),
        (
            datetime(2027, 3, 9, 15, 0, tzinfo=UTC),
            NEW_YORK,
            "Tuesday, March 9 at 10:00 AM EST",
            "martes 9 de marzo a las 10:00 EST",
        ),
        (
            datetime(2027, 11, 7, 8, 30, tzinfo=UTC),  # the first 01:30 of fall-back night
            LA,
            "Sunday, November 7 at 1:30 AM PDT",
            "domingo 7 de noviembre a la 1:30 PDT",
        ),
        (
            datetime(2027, 11, 7, 9, 30, tzinfo=UTC),  # ... and the second one
            LA,
            "Sunday, November 7 at 1:30 AM PST",
            "domingo 7 de noviembre a la 1:30 PST",
        ),
        (
            datetime(2027, 7, 1, 19, 5, tzinfo=UTC),
            "America/Sao_Paulo",
            "Thursday, July 1 at 4:05 PM UTC-03",
            "jueves 1 de julio a las 16:05 UTC-03",
        ),
    ],
)
def test_when_local(moment: datetime, zone: str, english: str, spanish: str) -> None:
    assert when_local(moment, zone, "en") == english
    assert when_local(moment, zone, "es-MX") == spanish


def test_when_local_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        when_local(datetime(2027, 3, 16, 10, 0), LA, "en")


@pytest.mark.parametrize(("visit", "zone_name"), [(SUMMER_TIME, "PDT"), (WINTER_TIME, "PST")])
@pytest.mark.parametrize("kind", ["reminder", "aftercare", "checkin", "waitlist_offer"])
def test_messages_show_the_visit_on_the_locations_clock(
    kind: NotificationKind, visit: datetime, zone_name: str
) -> None:
    context = contexts(visit_start=visit)[kind]
    # The aftercare SMS names no time at all: generic advice and a phone number only.
    for channel in ("email",) if kind == "aftercare" else ("email", "sms"):
        assert f"10:00 AM {zone_name}" in render(kind, channel, context=context).text
        assert f"a las 10:00 {zone_name}" in render(kind, channel, "es", context=context).text


def test_the_same_instant_reads_in_each_locations_zone() -> None:
    new_york = replace(CLINIC, location_name="Brooklyn", timezone=NEW_YORK)
    context = ReminderContext(new_york, SUMMER_TIME, "https://clinic.example/c/abc123")

    assert "Tuesday, March 16 at 1:00 PM EDT" in render("reminder", context=context).subject


def test_waitlist_hold_is_in_local_time() -> None:
    text = render("waitlist_offer").text

    # Held until 01:00 UTC on 15 March = 18:00 PDT on 14 March, the evening of the DST change.
    assert "until Sunday, March 14 at 6:00 PM PDT" in text
    assert "https://clinic.example/w/yes" in text and "https://clinic.example/w/no" in text
    assert (
        "hasta el domingo 14 de marzo a las 18:00 PDT"
        in render("waitlist_offer", language="es").text
    )


# --- what each kind says (DOMAIN.md 6; DESIGN.md minimum necessary) -----------------------


def test_reminder_says_where_when_whom_to_call_and_how_to_confirm() -> None:
    for channel in ("email", "sms"):
        text = render("reminder", channel).text
        for part in ("Beaverton", "4500 SW Main St", "+15035550100", "/c/abc123", "10:00 AM PDT"):
            assert part in text


def test_missing_address_and_phone_are_left_out() -> None:
    bare = replace(CLINIC, address=None, phone=None)
    for kind, context in contexts(bare).items():
        for channel in ("email", "sms"):
            for language in LANGUAGES:
                text = render(kind, channel, language, context=context).text
                assert "None" not in text and "+1503" not in text and "call us at" not in text


def test_aftercare_email_lists_the_home_program() -> None:
    text = render("aftercare").text

    assert "water" in text and "24-48 hours" in text and "movement" in text
    assert "- upper trapezius stretch: Sit tall, tilt ear to shoulder; 30 s a side." in text
    assert "- chin tuck: Glide the chin straight back" in text
    assert TOOLS[0] in text
    assert "About 24 hours after your visit" in text
    assert "breath" not in text.lower()


def test_aftercare_sms_gives_only_the_generic_advice() -> None:
    for language in LANGUAGES:
        text = render("aftercare", "sms", language).text
        for secret in ("trapezius", "chin tuck", "tennis ball", "skull", "Sit tall"):
            assert secret not in text
        assert "24" in text and "48" in text and "+15035550100" in text
    assert "water" in render("aftercare", "sms").text
    assert "agua" in render("aftercare", "sms", "es").text


def test_fmm_aftercare_adds_the_breathing_practice() -> None:
    fmm = aftercare(breathing_practice=True)

    assert "Your breathing practice" in render("aftercare", context=fmm).text
    assert "Su práctica de respiración" in render("aftercare", language="es", context=fmm).text
    assert "breath" not in render("aftercare", "sms", context=fmm).text


def test_aftercare_extra_advice_and_checkin_hours() -> None:
    context = aftercare(advice=["Keep the heat pack for the evening."], checkin_after_hours=1)

    text = render("aftercare", context=context).text
    assert "- Keep the heat pack for the evening." in text
    assert "About 1 hour after your visit" in text
    assert (
        "Una hora después de su visita" in render("aftercare", language="es", context=context).text
    )


def test_checkin_asks_for_a_score_from_0_to_10() -> None:
    assert "reply with a number from 0 to 10" in render("checkin", "sms").text
    assert "responda con un numero del 0 al 10" in render("checkin", "sms", "es").text.lower()
    email = render("checkin").text
    assert "0 (no pain) to 10" in email and "https://clinic.example/p/xyz" in email


def test_plan_summary_gives_sessions_cadence_home_program_and_first_visit() -> None:
    email = render("plan_summary").text
    for line in (
        "Sessions: 10",
        "- 2 per week for 3 weeks (6 sessions)",
        "- 1 per week for 2 weeks (2 sessions)",
        "- 1 every 2 weeks for 4 weeks (2 sessions)",
        "- chin tuck: Glide the chin straight back",
        TOOLS[0],
        "Your first visit: Tuesday, March 16 at 10:00 AM PDT at Beaverton",
    ):
        assert line in email
    assert (
        "- 2 por semana durante 3 semanas (6 sesiones)"
        in render("plan_summary", language="es").text
    )

    sms = render("plan_summary", "sms").text
    assert "10 sessions: 2 per week for 3 weeks, then 1 per week for 2 weeks, then" in sms
    assert "+15035550100" in sms
    assert "chin tuck" not in sms and "tennis" not in sms and "March" not in sms


def test_plan_summary_without_a_first_visit_or_home_program() -> None:
    context = plan_summary(
        first_visit=None,
        stretches=[],
        self_massage=[],
        phases=[PhaseText(1.75, 2, 3)],
    )

    text = render("plan_summary", context=context).text
    assert "A booking confirmation with the dates and times of your visits will follow" in text
    assert "let you know the time" not in text and "home program" not in text
    assert "- 1 every 4 days for 2 weeks (3 sessions)" in text
    spanish = render("plan_summary", language="es", context=context).text
    assert "la confirmación de sus citas, con las fechas y las horas" in spanish


def test_a_plan_waiting_for_a_doctor_says_to_see_one_and_that_the_first_visit_assesses() -> None:
    waiting = plan_summary(first_visit=None, awaiting_medical_check=True)
    for channel in ("email", "sms"):
        shown = sms_text if channel == "sms" else str  # SMS drops accents GSM-7 lacks
        english = render("plan_summary", channel, context=waiting).text
        spanish = render("plan_summary", channel, "es", context=waiting).text
        assert "see your doctor" in english and shown("consulte a su médico") in spanish
        if channel == "email":
            assert "first visit is an assessment" in english
            assert "primera visita será una valoración" in spanish
        else:  # an SMS names no technique, and the assessment is the visit's
            assert "at your first visit we gently look at how you move" in english.lower()
            assert "assessment" not in english
        for text in (english, spanish):
            assert "red flag" not in text.lower() and "not improving" not in text
        plain = render("plan_summary", channel, context=plan_summary(first_visit=None)).text
        assert "doctor" not in plain and "assessment" not in plain
    assert len(render("plan_summary", "sms", "es", context=waiting).text) <= SMS_MAX_CHARS


def test_referral_recommends_a_physician_and_a_call_nothing_more() -> None:
    for channel in ("email", "sms"):
        text = render("referral", channel).text
        assert "physician" in text and "+15035550100" in text
        assert "médico" in render("referral", channel, "es").text


# --- overrides and strictness -------------------------------------------------------------


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_a_location_override_replaces_the_template_for_that_location_only(tmp_path: Path) -> None:
    write(tmp_path / "beaverton/en/reminder.sms.txt.j2", "Beaverton says {{ visit_start | when }}")
    templates = Templates(tmp_path)

    assert render("reminder", "sms", templates=templates).text == (
        "Beaverton says Tuesday, March 16 at 10:00 AM PDT"
    )
    assert render("reminder", "sms", templates=templates, location_id="brooklyn") == render(
        "reminder", "sms"
    )
    # The other language and the other channel of that location are still the packaged ones.
    assert render("reminder", "sms", "es", templates=templates) == render("reminder", "sms", "es")
    assert render("reminder", templates=templates) == render("reminder")


def test_a_language_override_applies_everywhere_but_a_location_override_wins(
    tmp_path: Path,
) -> None:
    write(tmp_path / "es/referral.email.subject.j2", "Antes de empezar: {{ clinic.chain_name }}")
    write(tmp_path / "downtown/es/referral.email.subject.j2", "Centro: {{ clinic.location_name }}")
    templates = Templates(tmp_path)

    assert render("referral", language="es", templates=templates).subject == (
        "Antes de empezar: Veeva Chiropractic"
    )
    assert render(
        "referral", language="es", templates=templates, location_id="downtown"
    ).subject == ("Centro: Beaverton")
    assert render("referral", templates=templates) == render("referral")


def test_a_template_naming_a_missing_variable_fails_loudly(tmp_path: Path) -> None:
    write(tmp_path / "beaverton/en/checkin.email.txt.j2", "Your {{ diagnosis }} today?\n")

    with pytest.raises(UndefinedError, match="diagnosis"):
        render("checkin", templates=Templates(tmp_path))


def test_a_location_id_cannot_climb_out_of_the_override_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="override folder"):
        render("reminder", templates=Templates(tmp_path / "overrides"), location_id="../etc")


def test_sms_over_the_limit_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "en/referral.sms.txt.j2", "{{ clinic.chain_name }} " + "x" * SMS_MAX_CHARS)

    with pytest.raises(
        SmsTooLong, match=r"referral sms for location 'beaverton' is 499 characters"
    ):
        render("referral", "sms", templates=Templates(tmp_path))


def test_sms_limit_counts_the_rendered_text() -> None:
    long_name = replace(CLINIC, chain_name="V" * SMS_MAX_CHARS)

    with pytest.raises(SmsTooLong):
        render("referral", "sms", context=ReferralContext(long_name))
    assert render("referral", context=ReferralContext(long_name)).text  # email has no limit


def test_sms_text_is_plain_gsm_where_it_can_be() -> None:
    quoted = "\N{LEFT DOUBLE QUOTATION MARK}Sábado\N{RIGHT DOUBLE QUOTATION MARK}"
    text = sms_text(f"{quoted} \N{EN DASH} ¿Sí?\n\tMás\N{HORIZONTAL ELLIPSIS} ñ é ü\x07 東京")

    assert text == '"Sabado" - ¿Si? Mas... ñ é ü 東京'


def test_templates_name_only_their_contexts_fields() -> None:
    environment = Environment()
    environment.filters["when"] = str  # parsing needs the filter to exist, not to work
    for path in PACKAGED_DIR.glob("*/*.j2"):
        names = meta.find_undeclared_variables(environment.parse(path.read_text("utf-8")))
        kind = cast(NotificationKind, path.name.split(".")[0])
        allowed = {"language"}
        if kind in CONTEXT_FOR:
            allowed |= {f.name for f in fields(CONTEXT_FOR[kind])}
        else:
            assert path.name in ("_plan.j2", "_changes.j2")  # macros: they name their parameters
        assert names <= allowed, (path, names - allowed)


# --- properties ---------------------------------------------------------------------------

CLINICAL_WORDS = frozenset(
    {*get_args(ContraindicationCode), *get_args(PrecautionCode), *get_args(Quality)}
    | {region for region in get_args(Region) if len(region) > 3}
    | {"diagnosis", "condition", "complaint", "medication", "contraindication", "technique"}
)
# Arbitrary text without "|#", which no template writes: the marker below can only come
# from a leak.
names = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="|#"),
    min_size=1,
    max_size=40,
).filter(str.strip)
markers = st.from_regex(r"\A\|#[a-z]{4}_[0-9]{4}#\|\Z")
clinics = st.builds(
    Clinic,
    chain_name=names,
    location_name=names,
    address=st.none() | names,
    phone=st.none() | st.from_regex(r"\A\+1[0-9]{10}\Z"),
    timezone=st.sampled_from([LA, NEW_YORK, "Europe/Madrid", "Australia/Sydney", "UTC"]),
)
instants = st.datetimes(datetime(2026, 1, 1), datetime(2030, 12, 31), timezones=st.just(UTC))
urls = st.from_regex(r"\Ahttps://clinic\.example/[a-z]/[A-Za-z0-9_-]{8,40}\Z")
# Recognisable stretch names and tools, so that not finding them in an SMS means something.
stretches = st.lists(
    st.builds(StretchText, name=st.from_regex(r"\AST[0-9]{6}\Z"), how=names), max_size=3
)
tools = st.lists(st.from_regex(r"\ATOOL[0-9]{6}\Z"), max_size=3)
random_contexts: st.SearchStrategy[MessageContext] = st.one_of(
    st.builds(ReminderContext, clinic=clinics, visit_start=instants, confirm_url=urls),
    st.builds(CheckinContext, clinic=clinics, visit_start=instants, reply_url=urls),
    st.builds(
        AftercareContext,
        clinic=clinics,
        visit_start=instants,
        stretches=stretches,
        self_massage=tools,
        advice=st.lists(names, max_size=3),
        breathing_practice=st.booleans(),
        checkin_after_hours=st.integers(1, 72),
    ),
    st.builds(
        WaitlistOfferContext,
        clinic=clinics,
        visit_start=instants,
        hold_until=instants,
        accept_url=urls,
        decline_url=urls,
    ),
    st.builds(
        PlanSummaryContext,
        clinic=clinics,
        sessions_total=st.integers(1, 12),
        phases=st.lists(
            st.builds(
                PhaseText,
                per_week=st.sampled_from([0.5, 1, 1.75, 2, 2.33]),
                weeks=st.integers(1, 6),
                sessions=st.integers(1, 12),
            ),
            max_size=3,
        ),
        stretches=stretches,
        self_massage=tools,
        first_visit=st.none() | instants,
    ),
    st.builds(ReferralContext, clinic=clinics),
)
KIND_OF = {context_type: kind for kind, context_type in CONTEXT_FOR.items()}


def with_clinical_field(context: MessageContext, marker: str) -> MessageContext:
    """The same context as a richer object that also carries a diagnosis: what a careless
    caller might pass. Only the declared fields may reach a template."""
    richer = make_dataclass(
        "Richer" + type(context).__name__,
        [("diagnosis", str, field(default=""))],
        bases=(type(context),),
        frozen=True,
    )
    values = {f.name: getattr(context, f.name) for f in fields(context)}
    return cast(MessageContext, richer(**values, diagnosis=marker))


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z_]+", text.lower()))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    context=random_contexts,
    channel=st.sampled_from(CHANNELS),
    language=st.sampled_from(["en", "es", "es-MX", "fr", None]),
    marker=markers,
)
def test_random_contexts_render_and_print_only_their_fields(
    context: MessageContext, channel: Channel, language: str | None, marker: str
) -> None:
    clinic = context.clinic
    if channel == "sms":  # three names of 40 odd characters can fold to far more GSM text
        folded = [sms_text(text) for text in (clinic.chain_name, clinic.location_name)]
        assume(sum(map(len, folded)) + len(sms_text(clinic.address or "")) <= 120)
    kind = KIND_OF[type(context)]

    rendered = Templates().render(
        kind,
        channel,
        language=language or "",
        location_id="anywhere",
        context=with_clinical_field(context, marker),
    )

    text = rendered.subject + "\n" + rendered.text
    shown = sms_text if channel == "sms" else str
    # What it says: who it is from and, where there is a visit, when on the location's clock.
    assert shown(clinic.chain_name) in text
    if isinstance(context, ReminderContext | CheckinContext | WaitlistOfferContext):
        assert (
            shown(when_local(context.visit_start, clinic.timezone, language_of(language))) in text
        )
    if isinstance(context, ReminderContext):
        assert context.confirm_url in text
        assert clinic.phone is None or clinic.phone in text
    # What it never says: the diagnosis the object carried, or a clinical word from elsewhere.
    assert marker not in text
    from_fields = words(repr(context)) | words(sms_text(repr(context)))
    assert not {w for w in words(text) & CLINICAL_WORDS if w not in from_fields}
    if channel == "sms":
        assert len(rendered.text) <= SMS_MAX_CHARS
        assert not re.search(r"ST[0-9]{6}|TOOL[0-9]{6}", rendered.text)


def test_a_richer_context_object_leaks_nothing_even_to_a_template_that_asks(
    tmp_path: Path,
) -> None:
    write(tmp_path / "en/referral.email.txt.j2", "{{ diagnosis }}\n")
    richer = with_clinical_field(ReferralContext(CLINIC), "|#dvt_0001#|")

    with pytest.raises(UndefinedError, match="diagnosis"):
        render("referral", templates=Templates(tmp_path), context=richer)


@pytest.mark.parametrize("channel", ["email", "sms"])
@pytest.mark.parametrize("language", ["en", "es"])
def test_an_offer_whose_accept_and_decline_open_one_page_gives_that_page_once(
    channel: Channel, language: str
) -> None:
    page = "https://clinic.example/v1/waitlist-offers/o-1/manage?sig=1.abc&lang=es"
    offer = WaitlistOfferContext(
        clinic=CLINIC,
        visit_start=SUMMER_TIME,
        hold_until=SUMMER_TIME - timedelta(hours=20),
        accept_url=page,
        decline_url=page,
    )
    rendered = render("waitlist_offer", channel, language, context=offer)
    assert rendered.text.count(page) == 1
