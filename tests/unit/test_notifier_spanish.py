"""A Spanish client reads Spanish, whatever the plan: no Spanish message or page carries
the English of the home program's catalog (shared/home_texts.py), of the body map or of
the planner's knowledge. Every notification kind the packaged templates know is composed
by e-mail and by SMS from the plan the planner makes for a random intake, the way the
dispatcher composes it, and so are the check-in pages. The same messages in English do
carry that English: the check can fail.

Also here: what the aftercare e-mail carries (the stretches with how-to, the
self-massage and the advice the client's own precautions call for), what the aftercare
SMS does not, and that messages name the visit by its scheduled time."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, cast, get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from services.notifier import batches, checkin_pages
from services.notifier.compose import compose
from services.notifier.home_words import TOLD_BY_THE_TEMPLATES, home_words
from services.notifier.messages import PACKAGED_DIR, Clinic, Templates
from services.planner import knowledge as kb
from services.planner.domain import decide
from shared import body_map as bm
from shared import home_texts as texts
from shared.events.intake import IntakeDocument, IntakeSubmitted
from shared.events.plans import PlanCreated, PlanDeclined
from shared.vocabulary import NotificationKind, Region
from tests.unit.test_notifier_minimum_necessary import (
    CHAIN,
    EMAIL_REMINDER,
    SMS,
    SUBMITTED,
    URLS,
    VISIT_START,
    Forbidden,
    documents,
    fold,
    full_text,
    leaks,
    plan_change,
    record,
    remembered,
    submitted,
)

REGIONS: tuple[Region, ...] = get_args(Region)
# every kind the packaged (English) templates have a message for
KINDS = tuple(
    cast(NotificationKind, kind)
    for kind in sorted({p.name.split(".")[0] for p in (PACKAGED_DIR / "en").glob("[!_]*.j2")})
)
TEMPLATES = Templates()
OUTCOMES = get_args(batches.Outcome)
SCHEDULED = VISIT_START  # the visit's start; it was completed an hour later


def english_of_the_tables() -> Forbidden:
    """Every English text the catalog, the body map and the knowledge give the client.
    Single words (a tool's name) are matched as whole words, the rest anywhere."""
    out = Forbidden()
    for stretch in texts.STRETCHES.values():
        out.add_phrases([stretch.name.en, stretch.how.en])
    for table in (texts.SELF_MASSAGE, texts.GENTLE_SELF_MASSAGE):
        for region, massage in table.items():
            out.add_phrases([massage.where.en])
            for code in (texts.SELF_MASSAGE_ITEM, texts.GENTLE_SELF_MASSAGE_ITEM):
                out.add_phrases([texts.item_text(code, "en", region=region)])
    for tool in texts.TOOLS.values():
        (out.add_words if " " not in tool.en else out.add_phrases)([tool.en])
    for code, line in texts.ADVICE.items():
        if "{" not in line.en:
            out.add_phrases([line.en])
            continue
        for region in REGIONS:
            for reason in texts.REASONS:
                said = texts.item_text(code, "en", region=region, reasons=[reason])
                out.add_phrases([said, said.split(":")[0] if said else None])
    out.add_phrases(reason.en for reason in texts.REASONS.values())
    out.add_phrases([*bm.STRETCHES, *bm.STRETCHES.values()])
    for usual in (bm.SELF_MASSAGE, bm.GENTLE_SELF_MASSAGE):
        out.add_phrases(f"{tool}: {where}" for tool, where in usual.values())
    out.add_phrases([kb.MAINTENANCE, *(rule.why for rule in kb.HOME_RULES.values())])
    return out


ENGLISH = english_of_the_tables()


def the_record(kind: NotificationKind, intake: IntakeSubmitted, plan_id: str | None) -> Any:
    """The notification as the handlers arm it; a completed visit's also knows when the
    visit was scheduled."""
    made = record(
        kind, client_id=intake.client.client_id, location_id=intake.location_id, plan_id=plan_id
    )
    if kind in ("aftercare", "checkin"):
        made["context"]["visit_start"] = SCHEDULED.isoformat()
    return made


def every_message(
    intake: IntakeSubmitted, plan: PlanCreated | PlanDeclined, language: str
) -> dict[str, str]:
    """Every kind by e-mail and by SMS (the plan-change notices with every outcome)."""
    plan_id = plan.plan_id if isinstance(plan, PlanCreated) else "plan-spanish"
    out = {}
    for kind in KINDS:
        for way in (EMAIL_REMINDER, SMS):
            for outcome in OUTCOMES if kind in batches.BATCH_KINDS else (None,):
                message = compose(
                    the_record(kind, intake, plan_id),
                    way=way,
                    language=language,
                    chain=CHAIN,
                    plan=remembered(plan),
                    urls=URLS,
                    templates=TEMPLATES,
                    sent_at=SUBMITTED,
                    members=plan_change(outcome) if outcome else None,
                )
                out[f"{kind}.{way.template}.{outcome}"] = full_text(message)
    return out


def pages(intake: IntakeSubmitted, language: str) -> dict[str, str]:
    clinic = clinic_of(intake.location_id)
    return {
        "checkin.page": checkin_pages.question_page(
            language, clinic=clinic, visit_start=SCHEDULED, action="/v1/checkins/n/reply?sig=s"
        ),
        "checkin.thanks": checkin_pages.thanks_page(language, clinic=clinic, pain=3),
        "checkin.answered": checkin_pages.answered_page(language, clinic=clinic, pain=3),
    }


def clinic_of(location_id: str) -> Clinic:
    location = CHAIN.location(location_id)
    return Clinic(
        chain_name=CHAIN.chain.name,
        location_name=location.name,
        address=location.address,
        phone=location.phone,
        timezone=location.timezone,
    )


@st.composite
def intakes(draw: st.DrawFn) -> IntakeSubmitted:
    """The minimum-necessary test's random intakes, with an age (the home rules of an
    older client) and a stated stage of pregnancy or none."""
    document: IntakeDocument = draw(documents())
    born = draw(st.none() | st.dates(date(1930, 1, 1), date(2004, 12, 31)))
    stage = draw(st.sampled_from([None, "first trimester", "24 weeks"]))
    precautions = [
        p.model_copy(update={"detail": stage}) if p.code == "pregnancy" else p
        for p in document.health.precautions
    ]
    return submitted(
        document.model_copy(
            update={
                "client": document.client.model_copy(update={"date_of_birth": born}),
                "health": document.health.model_copy(update={"precautions": precautions}),
            }
        )
    )


@settings(max_examples=40, deadline=None)
@given(intakes())
def test_no_spanish_message_or_page_carries_the_english_of_the_tables(
    intake: IntakeSubmitted,
) -> None:
    plan = decide(intake, policy=CHAIN.policy_for(intake.location_id))
    spanish = every_message(intake, plan, "es") | pages(intake, "es")
    for name, text in spanish.items():
        assert leaks(text, ENGLISH) == [], (name, text)
    if not isinstance(plan, PlanCreated):
        return
    home = plan.home_program
    english = every_message(intake, plan, "en")
    # the English aftercare e-mail carries the tables' English: the check can fail
    assert leaks(english["aftercare.email.None"], ENGLISH)
    # ... and the Spanish one their Spanish: every stretch, self-massage, advice line
    aftercare = spanish["aftercare.email.None"]
    for stretch in home.stretches:
        assert stretch.code is not None
        name, how = texts.STRETCHES[stretch.code].name.es, texts.STRETCHES[stretch.code].how.es
        assert f"- {name}: {how}" in aftercare
    for item in home.self_massage_items:
        assert f"- {texts.item_text(item.code, 'es', region=item.region)}" in aftercare
    for item in home.advice_items:
        line = texts.item_text(item.code, "es", region=item.region, reasons=item.reasons)
        assert line is not None
        assert item.code in TOLD_BY_THE_TEMPLATES or f"- {line}" in aftercare, item
    summary = spanish["plan_summary.email.None"]
    assert all(texts.STRETCHES[s.code or ""].name.es in summary for s in home.stretches)
    # no SMS carries any of the home program, in either language
    program = [
        *(s.name for s in home.stretches),
        *(texts.STRETCHES[s.code or ""].name.es for s in home.stretches),
        *home.self_massage,
        *(line for item, line in zip(home.advice_items, home.advice, strict=True)
          if item.code not in TOLD_BY_THE_TEMPLATES),
    ]  # fmt: skip
    for messages in (spanish, english):
        for name, text in messages.items():
            if ".sms." in name:
                assert not [line for line in program if fold(line) in fold(text)], name


def test_the_aftercare_email_carries_the_home_program_and_the_precautions_advice() -> None:
    document = IntakeDocument.model_validate(
        {
            "location_id": "beaverton",
            "client": {"name": "Lucía Prueba", "language": "es"},
            "complaints": [
                {"region": "neck", "intensity": 6, "qualities": ["ache"], "duration_weeks": 30}
            ],
            "health": {"precautions": [{"code": "blood_thinners"}, {"code": "hypertension"}]},
        }
    )
    intake = submitted(document)
    plan = decide(intake, policy=CHAIN.policy_for("beaverton"))
    assert isinstance(plan, PlanCreated)
    spanish, english = every_message(intake, plan, "es"), every_message(intake, plan, "en")

    email = spanish["aftercare.email.None"]
    assert "Hágase el automasaje con suavidad: con anticoagulantes salen moratones" in email
    assert "Incorpórese despacio después de cualquier estiramiento o automasaje." in email
    assert "- estiramiento del trapecio superior: Siéntese con la espalda recta" in email
    assert "- yemas de los dedos: en una silla, círculos suaves" in email  # gentle: hypertension
    assert "Beba abundante agua durante el resto del día." in email  # the template's own
    assert "después de cada sesión" not in email  # the plan's line is not said twice
    # the visit by its scheduled time on the location's clock, not its completion
    assert "martes 10 de noviembre a las 10:00 PST" in email
    assert "a las 11:00" not in email
    assert "martes 10 de noviembre a las 10:00 PST" in spanish["checkin.email.None"]
    assert "Tuesday, November 10 at 10:00 AM PST" in english["aftercare.email.None"]
    assert "Tuesday, November 10 at 10:00 AM PST" in english["checkin.sms.None"]

    in_english = english["aftercare.email.None"]
    assert "- Self-massage gently: blood thinners make bruising easier." in in_english
    assert "- upper trapezius stretch: Sit tall, hold the chair seat" in in_english

    for messages in (spanish, english):
        sms = fold(messages["aftercare.sms.None"])
        for forbidden in ("anticoagul", "blood thinners", "trapec", "trapezius", "tennis"):
            assert forbidden not in sms
        for stretch in plan.home_program.stretches:
            assert fold(stretch.name) not in sms


def test_a_plan_remembered_before_the_codes_reads_in_its_english() -> None:
    """An older plan (no codes) or a code a newer planner made: the event's English."""
    old = {
        "stretches": [{"name": "chin tuck", "region": "neck", "how": "Glide the chin back."}],
        "self_massage": ["tennis ball: against a wall"],
        "advice": ["Drink plenty of water after each session.", "Something else."],
    }
    words = home_words(old, "es")
    assert [(s.name, s.how) for s in words.stretches] == [("chin tuck", "Glide the chin back.")]
    assert words.self_massage == ["tennis ball: against a wall"]
    assert words.advice == []  # English, and it repeats the template's own advice

    newer = {
        "stretches": [
            {"name": "new stretch", "region": "neck", "how": "New how.", "code": "zx_new"},
            {"name": "chin tuck", "region": "neck", "how": "x", "code": "chin_tuck"},
        ],
        "self_massage": ["x", "new tool: new place"],
        "self_massage_items": [
            {"code": "self_massage", "region": "neck"},
            {"code": "zx_roll", "region": "neck"},
        ],
        "advice": ["Drink.", "New advice."],
        "advice_items": [{"code": "drink_water"}, {"code": "zx_advice"}],
    }
    words = home_words(newer, "es")
    assert [s.name for s in words.stretches] == ["new stretch", "retracción de la barbilla"]
    assert words.self_massage == [
        "pelota de tenis: contra una pared, en los músculos junto a las vértebras del cuello "
        "(nunca sobre ellas)",
        "new tool: new place",
    ]
    assert words.advice == ["New advice."]


def test_a_client_who_changed_language_reads_the_plan_in_the_new_one() -> None:
    document = IntakeDocument.model_validate(
        {
            "location_id": "beaverton",
            "client": {"name": "Sam Change", "language": "en"},
            "complaints": [{"region": "low_back", "intensity": 5, "duration_weeks": 3}],
        }
    )
    intake = submitted(document)
    plan = decide(intake, policy=CHAIN.policy_for("beaverton"))
    assert isinstance(plan, PlanCreated)
    summary = every_message(intake, plan, "es")["plan_summary.email.None"]
    assert "estiramiento de rodilla al pecho" in summary and "knee-to-chest" not in summary
    assert "En un mensaje aparte le enviaremos la confirmación de sus citas" in summary


def test_a_red_flag_plan_summary_says_to_see_the_doctor_and_never_why() -> None:
    document = IntakeDocument.model_validate(
        {
            "location_id": "beaverton",
            "client": {"name": "Ana Bandera", "language": "es"},
            "complaints": [
                {
                    "region": "mid_back",
                    "intensity": 5,
                    "qualities": ["dull"],
                    "onset": (SUBMITTED.date() - timedelta(days=18)).isoformat(),
                    "improving": False,
                }
            ],
        }
    )
    intake = submitted(document)
    plan = decide(intake, policy=CHAIN.policy_for("beaverton"))
    assert isinstance(plan, PlanCreated) and plan.awaiting_medical_check is not None
    memory = remembered(plan)
    assert memory is not None and memory["awaiting_medical_check"] is True
    for language, says in (("es", "consulte a su médico"), ("en", "please see your doctor")):
        messages = every_message(intake, plan, language)
        for channel in ("email", "sms"):
            text = messages[f"plan_summary.{channel}.None"]
            assert fold(says) in fold(text), (language, channel)
            assert fold(plan.awaiting_medical_check.reason) not in fold(text)
            assert "dull" not in text and "sorda" not in text
