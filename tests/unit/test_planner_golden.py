"""Golden plans: realistic intakes, screened the way intake screens them, and the
plan the planner must produce for each, written out as literal data.

Every expected value below was checked against DOMAIN.md before it was written
down: section 2 (screening), 3 (who refers pain where), 4 (techniques, order,
pressure), 5 (course and cadence) and 6 (home program). A change to any of them
is a change to what the clinic does and should be reviewed as such.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.intake.screening import screen
from services.intake.submission import findings_for
from services.planner.domain import decide
from shared import body_map
from shared.chain import Policy
from shared.envelope import derived_id
from shared.events.intake import ClientRecord, IntakeDocument, IntakeSubmitted
from shared.events.plans import PlanCreated, PlanDeclined

# Beaverton, a Monday morning just after the end of daylight saving time.
SUBMITTED = datetime(2026, 11, 2, 9, 30, tzinfo=ZoneInfo("America/Los_Angeles"))
TODAY = SUBMITTED.date()
POLICY = Policy()

# DOMAIN.md 5, as written there (not read from knowledge.py).
DOMAIN_5_SESSIONS = {"acute": (3, 5), "chronic": (6, 12)}
DOMAIN_5_REVIEW_SESSIONS = 4
DOMAIN_5_REVIEW_DAYS = 14

Golden = dict[str, Any]

AFTERCARE = [
    "Drink plenty of water after each session.",
    "Some soreness for 24-48 hours is normal.",
    "Light, gentle movement helps more than complete rest.",
]
ASSESS_FIRST = "Visit 1: assess first"
# DOMAIN.md 4: an NMT visit warms first and stretches last; an FMM visit reads the
# region's defensive pattern first and ends with the self-regulation practice (seed 004)
OPENS_AND_ENDS = {
    "nmt": ("warming_strokes", "stretching"),
    "fmm": ("defensive_pattern_assessment", "self_regulation_practice"),
}


def submitted(document: dict[str, Any], *, intake_id: str) -> IntakeSubmitted:
    """What intake publishes for a document: the same screening and findings
    ``services.intake.submission.accept`` computes, on the location's date."""
    doc = IntakeDocument.model_validate(document)
    screening = screen(doc, today=TODAY)
    return IntakeSubmitted(
        intake_id=intake_id,
        client=ClientRecord(client_id=f"client-{intake_id}", **doc.client.model_dump()),
        location_id=doc.location_id,
        complaints=doc.complaints,
        health=doc.health,
        goals=doc.goals,
        preferences=doc.preferences,
        history=doc.history,
        consent=doc.consent,
        findings=findings_for(doc, screening, today=TODAY),
        screening=screening,
        submitted_at=SUBMITTED,
    )


def plan_for(intake: IntakeSubmitted) -> PlanCreated:
    decision = decide(intake, policy=POLICY)
    assert isinstance(decision, PlanCreated), decision
    return decision


def assert_golden(plan: PlanCreated, golden: Golden, *, intake: IntakeSubmitted) -> None:
    """The plan matches its golden, part by part, plus what DOMAIN.md 5 and 6 bound."""
    # identity
    assert plan.plan_id == derived_id("plan", intake.intake_id)
    assert (plan.version, plan.intake_id, plan.location_id) == (1, intake.intake_id, "beaverton")
    assert plan.client_id == intake.client.client_id
    assert plan.created_at == SUBMITTED
    assert plan.visit_minutes == 60

    # DOMAIN.md 1 and 5: condition, course and cadence
    assert plan.condition == golden["condition"]
    low, high = DOMAIN_5_SESSIONS[plan.condition]
    assert low <= plan.sessions_total <= high
    assert plan.sessions_total == golden["sessions_total"]
    phases = [
        (p.name, p.sessions, p.interval_days, p.per_week, p.weeks, p.rrule) for p in plan.phases
    ]
    assert phases == golden["phases"]
    assert sum(p.sessions for p in plan.phases) == plan.sessions_total
    assert all(p.interval_days >= 2 for p in plan.phases)  # 24-48 h soreness gap
    assert plan.review_after_sessions == golden["review_after_sessions"]
    assert plan.review_after_sessions <= DOMAIN_5_REVIEW_SESSIONS
    assert plan.review_by == golden["review_by"]
    assert TODAY < plan.review_by <= TODAY + timedelta(days=DOMAIN_5_REVIEW_DAYS)

    # DOMAIN.md 4: modality and the visit, step by step
    assert plan.modality == golden["modality"]
    steps = [(s.technique, s.hold_seconds, s.pressure_target, s.targets) for s in plan.protocol]
    assert steps == golden["protocol"]
    assert [s.order for s in plan.protocol] == list(range(1, len(plan.protocol) + 1))
    opens, ends = OPENS_AND_ENDS[plan.modality]
    first = plan.protocol[0]
    assert first.technique == opens
    assert first.notes is not None and ASSESS_FIRST in first.notes
    assert plan.protocol[-1].technique == ends

    # DOMAIN.md 2: modifications, excluded and treated areas
    assert [(m.code, m.detail) for m in plan.modifications] == golden["modifications"]
    assert plan.excluded_regions == golden["excluded_regions"]
    assert plan.target_regions == golden["target_regions"]

    # DOMAIN.md 6: home program
    home = plan.home_program
    stretches = [(s.name, s.region) for s in home.stretches]
    assert 2 <= len(stretches) <= 3
    assert stretches == golden["stretches"]
    assert all(s.how for s in home.stretches)
    assert home.self_massage == golden["self_massage"]
    assert home.advice == golden["advice"]

    # what the scheduler must honour
    assert plan.scheduling.model_dump() == golden["scheduling"]

    # every item explains itself by a DOMAIN.md rule
    assert [r.rule for r in plan.rationale] == golden["rationale_rules"]
    assert all(re.fullmatch(r"DOMAIN\.md [1-7]: .+", r.rule) for r in plan.rationale)
    pairs = [(r.rule, r.detail) for r in plan.rationale]
    for expected in golden["rationale_details"]:
        assert expected in pairs, expected


def nmt_scheduling(**overrides: Any) -> dict[str, Any]:
    return {
        "required_skills": ["nmt"],
        "therapist_id": None,
        "days": [],
        "times": [],
        "max_sessions_per_week": 2,
        **overrides,
    }


CONDITION_RULE = "DOMAIN.md 1: acute under 3 months, chronic from 3 months"
ACUTE_COURSE = "DOMAIN.md 5: acute course 3-5 sessions"
CHRONIC_COURSE = "DOMAIN.md 5: chronic course 6-12 sessions"
ACUTE_CADENCE = "DOMAIN.md 5: acute cadence 1-2 per week for 2-3 weeks; 24-48 h soreness gap"
CHRONIC_CADENCE = (
    "DOMAIN.md 5: chronic cadence 1-2 per week for 3-6 weeks, then every two weeks; "
    "24-48 h soreness gap"
)
MODALITY_RULE = "DOMAIN.md 4: modality choice; FMM needs a therapist who practises it"
SCREENING_RULE = "DOMAIN.md 2: screening"
REFERRERS_RULE = "DOMAIN.md 3: assess the muscles that commonly refer to the complaint area"
ORDER_RULE = "DOMAIN.md 4: least to most aggressive; warming first, stretching last"
PRESSURE_RULE = "DOMAIN.md 4: pressure target 6-7/10, lower under precautions"
TOO_PAINFUL_RULE = "DOMAIN.md 4: positional release first where too painful for pressure"
PINCER_RULE = "DOMAIN.md 4: pincer pressure where no bone lies beneath"
HOME_RULE = "DOMAIN.md 6: 2-3 stretches, self-massage, aftercare"
REVIEW_RULE = "DOMAIN.md 5: relief expected within 4-14 days, up to 4 sessions"
REVIEW_DETAIL = "review after 4 sessions or by 2026-11-16"

CLIENT = {"name": "Jordan Rivera", "email": "jordan@example.com", "language": "en"}
CONSENT = {"treatment": True, "contact": {"email": True, "sms": False}}


# --- acute neck pain with headache ---------------------------------------------------

NECK_HEADACHE = {
    "location_id": "beaverton",
    "client": CLIENT,
    "complaints": [
        {
            "region": "neck",
            "side": "both",
            "intensity": 6,
            "qualities": ["ache", "tender"],
            "frequency": "daily, worse late in the working day",
            "onset": "2026-09-28",  # five weeks before the intake
            "aggravating": ["long hours at the laptop"],
            "relieving": ["heat"],
            "provoking_movements": ["rotation right"],
        },
        {
            "region": "head",
            "side": "right",
            "intensity": 5,
            "qualities": ["ache", "deep"],
            "frequency": "most afternoons",
            "episode_duration": "hours",
            "onset": "2026-09-28",
        },
    ],
    "history": {"work_posture": ["computer work", "text neck"]},
    "goals": ["work a full day without a headache"],
    "consent": CONSENT,
}
NECK_HEAD_MUSCLES = [
    "upper trapezius",
    "levator scapulae",
    "splenius capitis",
    "cervical multifidi",
    "sternocleidomastoid",
    "suboccipitals",
    "temporalis",
]
NECK_HEAD_AGAINST_BONE = [
    "levator scapulae",
    "splenius capitis",
    "cervical multifidi",
    "suboccipitals",
    "temporalis",
]
NECK_HEAD_AREAS = ["head", "neck", "shoulder", "shoulder_blade"]
GOLDEN_NECK_HEADACHE: Golden = {
    "condition": "acute",
    "modality": "nmt",
    "sessions_total": 4,
    "phases": [("initial", 4, 3, 2.0, 2, "FREQ=DAILY;INTERVAL=3;COUNT=4")],
    "review_after_sessions": 4,
    "review_by": date(2026, 11, 16),
    "protocol": [
        ("warming_strokes", None, None, NECK_HEAD_AREAS),
        ("myofascial_release", None, None, NECK_HEAD_AREAS),
        ("positional_release", [90, 90], None, NECK_HEAD_MUSCLES),
        ("direct_manipulation", None, None, NECK_HEAD_MUSCLES),
        ("pir_pnf", None, None, NECK_HEAD_MUSCLES),
        ("ischemic_compression", [10, 30], 6, NECK_HEAD_AGAINST_BONE),
        ("sustained_pressure", [30, 90], 6, NECK_HEAD_AGAINST_BONE),
        ("pincer_compression", [10, 90], 6, ["upper trapezius", "sternocleidomastoid"]),
        ("cross_fiber_friction", None, 6, NECK_HEAD_MUSCLES),
        ("stretching", None, None, NECK_HEAD_MUSCLES),
    ],
    "modifications": [],
    "excluded_regions": [],
    "target_regions": ["neck", "head"],
    "stretches": [("upper trapezius stretch", "neck"), ("levator scapulae stretch", "neck")],
    "self_massage": [
        "tennis ball: against a wall, on the muscles beside (never on) the neck bones",
        "tennis ball: against a wall, at the base of the skull",
    ],
    "advice": AFTERCARE,
    "scheduling": nmt_scheduling(),
    "rationale_rules": [
        CONDITION_RULE,
        CONDITION_RULE,
        ACUTE_COURSE,
        ACUTE_CADENCE,
        MODALITY_RULE,
        REFERRERS_RULE,
        ORDER_RULE,
        PRESSURE_RULE,
        PINCER_RULE,
        HOME_RULE,
        REVIEW_RULE,
    ],
    "rationale_details": [
        (CONDITION_RULE, "neck pain since 2026-09-28 (1 months) -> acute"),
        (CONDITION_RULE, "head pain since 2026-09-28 (1 months) -> acute"),
        (
            ACUTE_COURSE,
            "neck pain since 2026-09-28 (1 months) at intensity 6 with 2 region(s) -> 4 sessions",
        ),
        (ACUTE_CADENCE, "policy at most 2/week -> initial: 4 every 3 days"),
        (MODALITY_RULE, "client prefers either -> nmt, skills nmt"),
        (
            REFERRERS_RULE,
            "neck -> upper trapezius, levator scapulae, splenius capitis, cervical multifidi; "
            "head -> upper trapezius, sternocleidomastoid, suboccipitals, splenius capitis, "
            "temporalis; visit 1 assesses first",
        ),
        (PRESSURE_RULE, "no precautions -> 6/10"),
        (PINCER_RULE, "upper trapezius, sternocleidomastoid -> pincer"),
        (REVIEW_RULE, REVIEW_DETAIL),
    ],
}


def test_acute_neck_pain_with_headache() -> None:
    intake = submitted(NECK_HEADACHE, intake_id="golden-neck-headache")
    assert intake.screening.outcome == "clear"
    assert not intake.screening.referral_recommended
    plan = plan_for(intake)
    assert_golden(plan, GOLDEN_NECK_HEADACHE, intake=intake)
    # DOMAIN.md 3: upper trapezius -> headache; SCM has no bone beneath (DOMAIN.md 4)
    pincer = next(s for s in plan.protocol if s.technique == "pincer_compression")
    assert {"upper trapezius", "sternocleidomastoid"} == set(pincer.targets)
    # an acute course is 1-2 per week for 2-3 weeks
    assert 2 <= sum(p.weeks for p in plan.phases) <= 3


# --- chronic low back with sciatica-like signs ---------------------------------------

LOW_BACK_SCIATICA = {
    "location_id": "beaverton",
    "client": CLIENT,
    "complaints": [
        {
            "region": "low_back",
            "side": "left",
            "intensity": 8,
            "qualities": ["deep", "ache"],
            "frequency": "constant, worse in the morning",
            "onset": "2025-11-02",  # a year ago
            "aggravating": ["sitting more than an hour", "bending to lift"],
            "provoking_movements": ["forward bend"],
        },
        {
            "region": "leg",
            "side": "left",
            "intensity": 6,
            "qualities": ["tingling", "shooting"],
            "frequency": "intermittent, after sitting",
            "onset": "2025-11-02",
        },
    ],
    "history": {"old_injuries": ["lifting injury 2019"], "work_posture": ["desk job"]},
    # DOMAIN.md 2: leg (calf) pain is cleared once the DVT questions are answered no
    "health": {
        "dvt_signs": {
            "calf_swelling": False,
            "calf_warmth_redness": False,
            "long_journey_recent": False,
        }
    },
    "goals": ["sit through a meeting", "walk the dog"],
    "consent": CONSENT,
}
LOW_BACK_LEG_MUSCLES = [
    "quadratus lumborum",
    "lumbar erector spinae",
    "lumbar multifidi",
    "gluteus medius",
    "gluteus minimus",
    "piriformis",
    "gastrocnemius",
    "soleus",
    "tibialis anterior",
    "peroneus longus",
]
LOW_BACK_LEG_AREAS = ["low_back", "glute", "hip", "knee", "leg"]
NERVE_CAUTION = (
    "leg: assess for nerve entrapment; no sustained pressure that provokes "
    "tingling, numbness or burning"
)
NERVE_SCREENING = f"modify: {NERVE_CAUTION}"
NERVE_RULE = "DOMAIN.md 1: tingling, numbness, burning suggest nerve compression/entrapment"
GOLDEN_LOW_BACK_SCIATICA: Golden = {
    "condition": "chronic",
    "modality": "nmt",
    "sessions_total": 10,
    "phases": [
        ("intensive", 6, 3, 2.0, 3, "FREQ=DAILY;INTERVAL=3;COUNT=6"),
        ("step-down", 2, 7, 1.0, 2, "FREQ=WEEKLY;INTERVAL=1;COUNT=2"),
        ("taper", 2, 14, 0.5, 4, "FREQ=WEEKLY;INTERVAL=2;COUNT=2"),
    ],
    "review_after_sessions": 4,
    "review_by": date(2026, 11, 16),
    "protocol": [
        ("warming_strokes", None, None, LOW_BACK_LEG_AREAS),
        ("myofascial_release", None, None, LOW_BACK_LEG_AREAS),
        ("positional_release", [90, 90], None, LOW_BACK_LEG_MUSCLES),
        ("direct_manipulation", None, None, LOW_BACK_LEG_MUSCLES),
        ("pir_pnf", None, None, LOW_BACK_LEG_MUSCLES),
        ("ischemic_compression", [10, 30], 6, LOW_BACK_LEG_MUSCLES),
        ("sustained_pressure", [30, 90], 6, LOW_BACK_LEG_MUSCLES),
        ("cross_fiber_friction", None, 6, LOW_BACK_LEG_MUSCLES),
        ("stretching", None, None, LOW_BACK_LEG_MUSCLES),
    ],
    "modifications": [("nerve_entrapment", NERVE_CAUTION)],
    "excluded_regions": [],
    "target_regions": ["low_back", "leg"],
    "stretches": [("knee-to-chest stretch", "low_back"), ("wall calf stretch", "leg")],
    "self_massage": [
        "tennis ball: lying down, beside (never on) the lower spine",
        "foam roller: along the calf",
    ],
    "advice": AFTERCARE,
    "scheduling": nmt_scheduling(),
    "rationale_rules": [
        CONDITION_RULE,
        CONDITION_RULE,
        CHRONIC_COURSE,
        CHRONIC_CADENCE,
        MODALITY_RULE,
        SCREENING_RULE,
        REFERRERS_RULE,
        ORDER_RULE,
        PRESSURE_RULE,
        TOO_PAINFUL_RULE,
        NERVE_RULE,
        HOME_RULE,
        REVIEW_RULE,
    ],
    "rationale_details": [
        (CONDITION_RULE, "low_back pain since 2025-11-02 (12 months) -> chronic"),
        (CONDITION_RULE, "leg pain since 2025-11-02 (12 months) -> chronic"),
        (
            CHRONIC_COURSE,
            "low_back pain since 2025-11-02 (12 months) at intensity 8 with 2 region(s), "
            "nerve signs (tingling) -> 10 sessions",
        ),
        (
            CHRONIC_CADENCE,
            "policy at most 2/week -> intensive: 6 every 3 days; step-down: 2 every 7 days; "
            "taper: 2 every 14 days",
        ),
        (SCREENING_RULE, NERVE_SCREENING),
        (TOO_PAINFUL_RULE, "low_back at intensity 8"),
        (NERVE_RULE, NERVE_CAUTION),
        (PRESSURE_RULE, "no precautions -> 6/10"),
        (REVIEW_RULE, REVIEW_DETAIL),
    ],
}


def low_back_sciatica_plan() -> tuple[IntakeSubmitted, PlanCreated]:
    intake = submitted(LOW_BACK_SCIATICA, intake_id="golden-low-back-sciatica")
    return intake, plan_for(intake)


def test_chronic_low_back_with_sciatica_like_signs() -> None:
    intake, plan = low_back_sciatica_plan()
    assert intake.screening.outcome == "modify"
    assert [r.code for r in intake.screening.reasons] == ["nerve_signs", "dvt_questions_answered"]
    assert_golden(plan, GOLDEN_LOW_BACK_SCIATICA, intake=intake)
    # DOMAIN.md 3: trigger points -> sciatica-like leg pain (gluteus minimus, piriformis)
    release = next(s for s in plan.protocol if s.technique == "positional_release")
    assert {"gluteus minimus", "piriformis"} <= set(release.targets)
    # DOMAIN.md 4: positional release is the first choice where too painful (8/10)
    assert release.notes is not None
    assert release.notes.startswith("First choice for low_back: too painful for direct pressure")
    # a chronic course: 1-2/week for 3-6 weeks, then every two weeks
    assert 3 <= sum(p.weeks for p in plan.phases if p.name != "taper") <= 6
    assert plan.phases[-1].interval_days == 14


def test_low_back_sciatica_carries_the_nerve_entrapment_caution() -> None:
    """DOMAIN.md 1: tingling suggests nerve entrapment - every hold that presses
    tells the therapist to ease off when it provokes the leg symptoms."""
    _, plan = low_back_sciatica_plan()
    pressing = [s for s in plan.protocol if s.pressure_target is not None]
    assert {s.technique for s in pressing} >= {"ischemic_compression", "sustained_pressure"}
    for step in pressing:
        assert step.notes is not None
        assert step.notes.startswith(
            "ease off at once if pressure provokes tingling, numbness or burning in the leg"
        ), step


# --- shoulder pain in first-trimester pregnancy --------------------------------------

SHOULDER_PREGNANCY = {
    "location_id": "beaverton",
    "client": {**CLIENT, "name": "Maya Chen", "email": "maya@example.com"},
    "complaints": [
        {
            "region": "shoulder",
            "side": "right",
            "intensity": 5,
            "qualities": ["ache"],
            "frequency": "at night, lying on the right side",
            "onset": "2026-10-12",
            "provoking_movements": ["reaching overhead"],
        }
    ],
    "history": {"repetitive_strain": ["heavy bag on the right shoulder"]},
    "health": {"precautions": [{"code": "pregnancy", "detail": "first trimester"}]},
    "goals": ["sleep through the night"],
    "consent": CONSENT,
}
SHOULDER_MUSCLES = [
    "infraspinatus",
    "supraspinatus",
    "deltoid",
    "subscapularis",
    "pectoralis major",
]
SHOULDER_AGAINST_BONE = ["infraspinatus", "supraspinatus", "deltoid", "subscapularis"]
SHOULDER_AREAS = ["shoulder", "shoulder_blade", "arm"]
GOLDEN_SHOULDER_PREGNANCY: Golden = {
    "condition": "acute",
    "modality": "nmt",
    "sessions_total": 4,
    "phases": [("initial", 4, 3, 2.0, 2, "FREQ=DAILY;INTERVAL=3;COUNT=4")],
    "review_after_sessions": 4,
    "review_by": date(2026, 11, 16),
    "protocol": [
        ("warming_strokes", None, None, SHOULDER_AREAS),
        ("myofascial_release", None, None, SHOULDER_AREAS),
        ("positional_release", [90, 90], None, SHOULDER_MUSCLES),
        ("direct_manipulation", None, None, SHOULDER_MUSCLES),
        ("pir_pnf", None, None, SHOULDER_MUSCLES),
        ("ischemic_compression", [10, 30], 4, SHOULDER_AGAINST_BONE),
        ("sustained_pressure", [30, 90], 4, SHOULDER_AGAINST_BONE),
        ("pincer_compression", [10, 90], 4, ["pectoralis major"]),
        ("cross_fiber_friction", None, 4, SHOULDER_MUSCLES),
        ("stretching", None, None, SHOULDER_MUSCLES),
    ],
    "modifications": [
        ("pregnancy_positioning", "side-lying or semi-reclined with pillows, never flat prone"),
        (
            "no_deep_abdominal_low_back",
            "no deep abdominal or low-back pressure, above all in the first trimester",
        ),
        ("lower_pressure", "pressure target 4/10 instead of 6/10 (pregnancy)"),
    ],
    "excluded_regions": [],
    "target_regions": ["shoulder"],
    "stretches": [
        ("doorway chest stretch", "shoulder"),
        ("cross-body shoulder stretch", "shoulder"),
    ],
    "self_massage": ["tennis ball: against a wall, on the back of the shoulder"],
    "advice": [*AFTERCARE, "Self-massage: no pressure on the belly or the low back."],
    "scheduling": nmt_scheduling(),
    "rationale_rules": [
        CONDITION_RULE,
        ACUTE_COURSE,
        ACUTE_CADENCE,
        MODALITY_RULE,
        SCREENING_RULE,
        REFERRERS_RULE,
        ORDER_RULE,
        PRESSURE_RULE,
        PINCER_RULE,
        "DOMAIN.md 2: precaution pregnancy",
        HOME_RULE,
        REVIEW_RULE,
    ],
    "rationale_details": [
        (CONDITION_RULE, "shoulder pain since 2026-10-12 (0 months) -> acute"),
        (
            ACUTE_COURSE,
            "shoulder pain since 2026-10-12 (0 months) at intensity 5 with 1 region(s), "
            "1 precaution(s) -> 4 sessions",
        ),
        (
            SCREENING_RULE,
            "modify: side-lying positioning (no prone work); no deep abdominal or low-back "
            "pressure in the first trimester; lower pressure target than the usual 6-7 of 10 "
            "(DOMAIN.md 4)",
        ),
        (PRESSURE_RULE, "pregnancy -> 4/10"),
        (
            "DOMAIN.md 2: precaution pregnancy",
            "side-lying or semi-reclined with pillows, never flat prone; no deep abdominal or "
            "low-back pressure, above all in the first trimester",
        ),
        (REVIEW_RULE, REVIEW_DETAIL),
    ],
}


def test_shoulder_pain_in_first_trimester_pregnancy() -> None:
    intake = submitted(SHOULDER_PREGNANCY, intake_id="golden-shoulder-pregnancy")
    assert intake.screening.outcome == "modify"
    (reason,) = intake.screening.reasons
    assert (reason.code, reason.action) == ("pregnancy", "modify")
    assert reason.detail.endswith("(client: first trimester)")
    plan = plan_for(intake)
    assert_golden(plan, GOLDEN_SHOULDER_PREGNANCY, intake=intake)
    # DOMAIN.md 4: under a precaution the target is lower than 6-7, on every pressure step
    pressures = {s.pressure_target for s in plan.protocol if s.pressure_target is not None}
    assert pressures == {4}
    # DOMAIN.md 2: nothing in the low back is pressed
    pressed = {t for s in plan.protocol if s.pressure_target is not None for t in s.targets}
    assert all("low_back" not in body_map.MUSCLES[m].lies_in for m in pressed)


# --- DVT: a contraindication, declined with a referral -------------------------------

LEG_DVT = {
    "location_id": "beaverton",
    "client": CLIENT,
    "complaints": [
        {
            "region": "leg",
            "side": "left",
            "intensity": 6,
            "qualities": ["ache", "tender"],
            "onset": "2026-10-12",
        }
    ],
    "health": {
        "contraindications": [{"code": "dvt", "detail": "left calf, diagnosed 2026-10-20"}],
        "precautions": [{"code": "blood_thinners", "detail": "apixaban"}],
        "medications": ["apixaban"],
    },
    "goals": ["walk without calf pain"],
    "consent": CONSENT,
}
GOLDEN_LEG_DVT: Golden = {
    "outcome": "refer",
    "reasons": [
        (
            "DOMAIN.md 2: deep vein thrombosis",
            "deep vein thrombosis: NMT is not performed; refer to a physician "
            "(client: left calf, diagnosed 2026-10-20)",
        )
    ],
    "referral": {
        "recommended": True,
        "to": "a physician, promptly",
        "detail": "no NMT for now (dvt)",
    },
    "recheck_on": None,
}


def test_dvt_is_declined_with_a_referral() -> None:
    intake = submitted(LEG_DVT, intake_id="golden-leg-dvt")
    assert intake.screening.outcome == "refer"
    assert intake.screening.referral_recommended
    decision = decide(intake, policy=POLICY)
    assert isinstance(decision, PlanDeclined)
    assert decision.outcome == GOLDEN_LEG_DVT["outcome"]
    # only the contraindication stops the plan; the precaution is not a reason to decline
    assert [(r.rule, r.detail) for r in decision.reasons] == GOLDEN_LEG_DVT["reasons"]
    assert decision.referral.model_dump() == GOLDEN_LEG_DVT["referral"]
    assert decision.recheck_on == GOLDEN_LEG_DVT["recheck_on"]
    assert (decision.client_id, decision.intake_id, decision.location_id) == (
        "client-golden-leg-dvt",
        "golden-leg-dvt",
        "beaverton",
    )
    assert decision.declined_at == SUBMITTED
    assert all(r.rule.startswith("DOMAIN.md 2:") for r in decision.reasons)


# FMM has a golden of its own: test_planner_golden_fmm.py (seed 004).

CHRONIC_8_PHASES = [
    ("intensive", 4, 3, 2.0, 2, "FREQ=DAILY;INTERVAL=3;COUNT=4"),
    ("step-down", 2, 7, 1.0, 2, "FREQ=WEEKLY;INTERVAL=1;COUNT=2"),
    ("taper", 2, 14, 0.5, 4, "FREQ=WEEKLY;INTERVAL=2;COUNT=2"),
]


# --- plantar fasciitis (chronic foot) ------------------------------------------------

PLANTAR_FASCIITIS = {
    "location_id": "beaverton",
    "client": CLIENT,
    "complaints": [
        {
            "region": "foot",
            "side": "left",
            "intensity": 6,
            "qualities": ["sharp", "tender"],
            "frequency": "the first steps in the morning",
            "onset": "2026-05-01",
            "aggravating": ["standing at work", "barefoot on hard floors"],
            "relieving": ["supportive shoes"],
        }
    ],
    "history": {"work_posture": ["standing all day (retail)"]},
    "goals": ["walk the first steps of the morning without pain"],
    "consent": CONSENT,
}
LOWER_LEG_FOOT_MUSCLES = [
    "soleus",
    "gastrocnemius",
    "tibialis anterior",
    "peroneus longus",
    "plantar intrinsics",
]
GOLDEN_PLANTAR_FASCIITIS: Golden = {
    "condition": "chronic",
    "modality": "nmt",
    "sessions_total": 8,
    "phases": CHRONIC_8_PHASES,
    "review_after_sessions": 4,
    "review_by": date(2026, 11, 16),
    "protocol": [
        ("warming_strokes", None, None, ["knee", "leg", "foot"]),
        ("myofascial_release", None, None, ["knee", "leg", "foot"]),
        ("positional_release", [90, 90], None, LOWER_LEG_FOOT_MUSCLES),
        ("direct_manipulation", None, None, LOWER_LEG_FOOT_MUSCLES),
        ("pir_pnf", None, None, LOWER_LEG_FOOT_MUSCLES),
        ("ischemic_compression", [10, 30], 6, LOWER_LEG_FOOT_MUSCLES),
        ("sustained_pressure", [30, 90], 6, LOWER_LEG_FOOT_MUSCLES),
        ("cross_fiber_friction", None, 6, LOWER_LEG_FOOT_MUSCLES),
        ("stretching", None, None, LOWER_LEG_FOOT_MUSCLES),
    ],
    "modifications": [],
    "excluded_regions": [],
    "target_regions": ["foot"],
    "stretches": [("wall calf stretch", "foot"), ("plantar fascia stretch", "foot")],
    "self_massage": ["tennis ball: underfoot, rolling the sole"],
    "advice": AFTERCARE,
    "scheduling": nmt_scheduling(),
    "rationale_rules": [
        CONDITION_RULE,
        CHRONIC_COURSE,
        CHRONIC_CADENCE,
        MODALITY_RULE,
        REFERRERS_RULE,
        ORDER_RULE,
        PRESSURE_RULE,
        HOME_RULE,
        REVIEW_RULE,
    ],
    "rationale_details": [
        (CONDITION_RULE, "foot pain since 2026-05-01 (6 months) -> chronic"),
        (
            CHRONIC_COURSE,
            "foot pain since 2026-05-01 (6 months) at intensity 6 with 1 region(s) -> 8 sessions",
        ),
        (
            CHRONIC_CADENCE,
            "policy at most 2/week -> intensive: 4 every 3 days; step-down: 2 every 7 days; "
            "taper: 2 every 14 days",
        ),
        (
            REFERRERS_RULE,
            "foot -> soleus, gastrocnemius, tibialis anterior, peroneus longus, "
            "plantar intrinsics; visit 1 assesses first",
        ),
        (PRESSURE_RULE, "no precautions -> 6/10"),
        (HOME_RULE, "wall calf stretch, plantar fascia stretch; self-massage for foot"),
        (REVIEW_RULE, REVIEW_DETAIL),
    ],
}


def test_plantar_fasciitis_chronic_foot() -> None:
    intake = submitted(PLANTAR_FASCIITIS, intake_id="golden-plantar-fasciitis")
    assert intake.screening.outcome == "clear"
    plan = plan_for(intake)
    assert_golden(plan, GOLDEN_PLANTAR_FASCIITIS, intake=intake)
    # calf and sole: the muscles that refer to the heel and sole are worked and stretched
    assert "plantar intrinsics" in plan.protocol[-1].targets
    assert 3 <= sum(p.weeks for p in plan.phases if p.name != "taper") <= 6


# --- chronic neck on blood thinners --------------------------------------------------

NECK_BLOOD_THINNERS = {
    "location_id": "beaverton",
    "client": CLIENT,
    "complaints": [
        {
            "region": "neck",
            "side": "both",
            "intensity": 6,
            "qualities": ["ache", "tender"],
            "frequency": "daily",
            "onset": "2025-05-01",
            "provoking_movements": ["looking up", "rotation left"],
        }
    ],
    "health": {
        "precautions": [{"code": "blood_thinners", "detail": "warfarin"}],
        "medications": ["warfarin"],
    },
    "history": {"work_posture": ["computer work"]},
    "goals": ["turn my head when driving"],
    "consent": CONSENT,
}
NECK_MUSCLES = ["upper trapezius", "levator scapulae", "splenius capitis", "cervical multifidi"]
NECK_AGAINST_BONE = ["levator scapulae", "splenius capitis", "cervical multifidi"]
NECK_AREAS = ["neck", "shoulder", "shoulder_blade"]
GOLDEN_NECK_BLOOD_THINNERS: Golden = {
    "condition": "chronic",
    "modality": "nmt",
    "sessions_total": 9,
    "phases": [
        ("intensive", 6, 3, 2.0, 3, "FREQ=DAILY;INTERVAL=3;COUNT=6"),
        ("step-down", 1, 7, 1.0, 1, "FREQ=WEEKLY;INTERVAL=1;COUNT=1"),
        ("taper", 2, 14, 0.5, 4, "FREQ=WEEKLY;INTERVAL=2;COUNT=2"),
    ],
    "review_after_sessions": 4,
    "review_by": date(2026, 11, 16),
    # no pincer (upper trapezius has no bone beneath), 4/10, and - screening's "no deep
    # friction ... (bruising risk)" - no cross-fibre friction
    "protocol": [
        ("warming_strokes", None, None, NECK_AREAS),
        ("myofascial_release", None, None, NECK_AREAS),
        ("positional_release", [90, 90], None, NECK_MUSCLES),
        ("direct_manipulation", None, None, NECK_MUSCLES),
        ("pir_pnf", None, None, NECK_MUSCLES),
        ("ischemic_compression", [10, 30], 4, NECK_AGAINST_BONE),
        ("sustained_pressure", [30, 90], 4, NECK_AGAINST_BONE),
        ("stretching", None, None, NECK_MUSCLES),
    ],
    "modifications": [
        ("no_pincer", "no pincer compression: bruising risk on blood thinners"),
        ("no_deep_friction", "no cross-fiber friction: bruising risk on blood thinners"),
        ("lower_pressure", "pressure target 4/10 instead of 6/10 (blood_thinners)"),
    ],
    "excluded_regions": [],
    "target_regions": ["neck"],
    "stretches": [("upper trapezius stretch", "neck"), ("levator scapulae stretch", "neck")],
    "self_massage": [
        "tennis ball: against a wall, on the muscles beside (never on) the neck bones"
    ],
    "advice": [*AFTERCARE, "Self-massage gently: blood thinners make bruising easier."],
    "scheduling": nmt_scheduling(),
    "rationale_rules": [
        CONDITION_RULE,
        CHRONIC_COURSE,
        CHRONIC_CADENCE,
        MODALITY_RULE,
        SCREENING_RULE,
        REFERRERS_RULE,
        ORDER_RULE,
        PRESSURE_RULE,
        PINCER_RULE,
        "DOMAIN.md 2: precaution blood_thinners",
        HOME_RULE,
        REVIEW_RULE,
    ],
    "rationale_details": [
        (CONDITION_RULE, "neck pain since 2025-05-01 (18 months) -> chronic"),
        (
            CHRONIC_COURSE,
            "neck pain since 2025-05-01 (18 months) at intensity 6 with 1 region(s), "
            "1 precaution(s) -> 9 sessions",
        ),
        (
            CHRONIC_CADENCE,
            "policy at most 2/week -> intensive: 6 every 3 days; step-down: 1 every 7 days; "
            "taper: 2 every 14 days",
        ),
        (
            SCREENING_RULE,
            "modify: no deep friction or heavy sustained pressure (bruising risk); lower "
            "pressure target than the usual 6-7 of 10 (DOMAIN.md 4)",
        ),
        (PRESSURE_RULE, "blood_thinners -> 4/10"),
        (PINCER_RULE, "upper trapezius -> no pincer: blood-thinning medication (DOMAIN.md 2)"),
        (
            "DOMAIN.md 2: precaution blood_thinners",
            "no pincer compression: bruising risk on blood thinners; no cross-fiber friction: "
            "bruising risk on blood thinners",
        ),
        (REVIEW_RULE, REVIEW_DETAIL),
    ],
}


def neck_blood_thinners_plan() -> tuple[IntakeSubmitted, PlanCreated]:
    intake = submitted(NECK_BLOOD_THINNERS, intake_id="golden-neck-blood-thinners")
    return intake, plan_for(intake)


def test_chronic_neck_on_blood_thinners() -> None:
    intake, plan = neck_blood_thinners_plan()
    assert intake.screening.outcome == "modify"
    assert [r.code for r in intake.screening.reasons] == ["blood_thinners"]
    assert_golden(plan, GOLDEN_NECK_BLOOD_THINNERS, intake=intake)
    techniques = [s.technique for s in plan.protocol]
    assert "pincer_compression" not in techniques
    pressures = {s.pressure_target for s in plan.protocol if s.pressure_target is not None}
    assert pressures and max(pressures) < 6  # DOMAIN.md 4: lower under precautions
    pressed = {t for s in plan.protocol if s.pressure_target is not None for t in s.targets}
    assert "upper trapezius" not in pressed  # only a pincer could reach it


def test_chronic_neck_on_blood_thinners_has_no_deep_friction() -> None:
    """DOMAIN.md 2, blood-thinning medication: bruising risk - no deep friction."""
    _, plan = neck_blood_thinners_plan()
    assert "cross_fiber_friction" not in [s.technique for s in plan.protocol]


# --- found while writing the goldens -------------------------------------------------

RED_FLAG_LOW_BACK = {
    "location_id": "beaverton",
    "client": CLIENT,
    "complaints": [
        {
            "region": "low_back",
            "intensity": 5,
            "qualities": ["dull"],
            "onset": "2026-10-05",  # four weeks, not improving
            "improving": False,
        }
    ],
    "consent": CONSENT,
}


def test_red_flag_medical_referral_reaches_the_plan() -> None:
    """DOMAIN.md 1: a new dull pain not improved in 2-3 weeks - the system recommends
    a medical referral; the plan carries it as a modification with its reason."""
    intake = submitted(RED_FLAG_LOW_BACK, intake_id="golden-red-flag")
    assert intake.screening.referral_recommended
    plan = plan_for(intake)
    assert [(m.code, m.detail) for m in plan.modifications] == [
        (
            "medical_check",
            "new dull pain in the low back not improving for 28 days: recommend a medical "
            "check; the client is advised to see a doctor (DOMAIN.md 1 red flag)",
        )
    ]
    assert (
        "DOMAIN.md 1: red flag, new dull pain not improved in 2-3 weeks",
        plan.modifications[0].detail,
    ) in [(r.rule, r.detail) for r in plan.rationale]
