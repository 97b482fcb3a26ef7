"""Golden case: FMM is its own method (DOMAIN.md 4, seed 004).

Seed 004: "The FMM views muscle contractions as regional defensive patterns rather than
isolated trigger points." An FMM plan is not the NMT trigger point protocol with FMM
steps around it: the visit reads the region's defensive pattern, the client breathes
with a sigh of relief, senses the pattern and releases it while the deep muscles beside
the spine are worked, and learns to self-regulate. The plan's precautions still hold.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from services.planner import knowledge
from services.planner.domain import revise_for_assessment
from shared.chain import load_chain_config
from shared.events.intake import AssessmentRecorded, TriggerPoint
from tests.conftest import DEMO_CHAIN
from tests.unit.test_planner_golden import (
    AFTERCARE,
    CHRONIC_8_PHASES,
    CHRONIC_CADENCE,
    CHRONIC_COURSE,
    CLIENT,
    CONDITION_RULE,
    CONSENT,
    HOME_RULE,
    MODALITY_RULE,
    PRESSURE_RULE,
    REVIEW_DETAIL,
    REVIEW_RULE,
    SCREENING_RULE,
    Golden,
    assert_golden,
    plan_for,
    submitted,
)

SEED_004 = (
    "The FMM views muscle contractions as regional defensive patterns rather than isolated "
    "trigger points."
)
SEED_004_PARTICIPATION = (
    "clients are taught to breathe with a sigh of relief, connect to their reactive "
    "contraction patterns, and release them"
)
SEED_004_SPINE = (
    "FMM focuses on releasing the deepest layers of skeletal muscles, especially those "
    "adjacent to the spine where larger muscles originate or are innervated."
)
SEED_004_TRAPS = "For example, the traps-neck-shoulders area often develops a defensive pattern."

PATTERN_RULE = (
    "DOMAIN.md 4: FMM works regional defensive patterns, not isolated trigger points (seed 004)"
)
FMM_ORDER_RULE = (
    "DOMAIN.md 4: FMM is participatory: breathe, sense, release, self-regulate (seed 004)"
)
FMM_STEPS = [
    "defensive_pattern_assessment",
    "sigh_of_relief_breathing",
    "sensing_the_pattern",
    "deep_spinal_release",
    "participatory_release",
    "self_regulation_practice",
]
NMT_TECHNIQUES = {t.code for t in knowledge.TECHNIQUES}
FMM_ADVICE = [
    *AFTERCARE,
    "Practise breathing with a sigh of relief every day.",
    "Practise sensing and releasing the contraction pattern learned in the session.",
]


# --- chronic mid back, FMM preferred ------------------------------------------------

MID_BACK_FMM = {
    "location_id": "beaverton",
    "client": CLIENT,
    "complaints": [
        {
            "region": "mid_back",
            "side": "center",
            "intensity": 5,
            "qualities": ["ache", "tender"],
            "frequency": "daily, worse under stress",
            "onset": "2026-06-01",
        }
    ],
    "goals": ["learn to release the tension myself"],
    "preferences": {
        "modality": "fmm",
        "therapist_id": "t-ana",
        "days": ["tue", "thu"],
        "times": ["evening"],
    },
    "consent": CONSENT,
}
GOLDEN_MID_BACK_FMM: Golden = {
    "condition": "chronic",
    "modality": "fmm",
    "sessions_total": 8,
    "phases": CHRONIC_8_PHASES,
    "review_after_sessions": 4,
    "review_by": date(2026, 11, 16),
    "protocol": [
        ("defensive_pattern_assessment", None, None, ["mid_back"]),
        ("sigh_of_relief_breathing", None, None, []),
        ("sensing_the_pattern", None, None, ["mid_back"]),
        ("deep_spinal_release", None, 6, ["thoracic erector spinae"]),
        ("participatory_release", None, 6, ["mid_back"]),
        ("self_regulation_practice", None, None, []),
    ],
    "modifications": [],
    "excluded_regions": [],
    "target_regions": ["mid_back"],
    "stretches": [("seated thoracic rotation", "mid_back"), ("cat-cow", "mid_back")],
    "self_massage": ["foam roller: along the mid back beside the spine"],
    "advice": FMM_ADVICE,
    "scheduling": {
        "required_skills": ["fmm"],
        "therapist_id": "t-ana",
        "days": ["tue", "thu"],
        "times": ["evening"],
        "max_sessions_per_week": 2,
    },
    "rationale_rules": [
        CONDITION_RULE,
        CHRONIC_COURSE,
        CHRONIC_CADENCE,
        MODALITY_RULE,
        PATTERN_RULE,
        FMM_ORDER_RULE,
        PRESSURE_RULE,
        HOME_RULE,
        REVIEW_RULE,
    ],
    "rationale_details": [
        (CONDITION_RULE, "mid_back pain since 2026-06-01 (5 months) -> chronic"),
        (MODALITY_RULE, "client prefers fmm -> fmm, skills fmm"),
        (
            PATTERN_RULE,
            "mid_back -> the mid back pattern: mid_back worked as one region from the deep "
            "muscles beside the spine (thoracic erector spinae); visit 1 assesses first",
        ),
        (FMM_ORDER_RULE, " -> ".join(FMM_STEPS)),
        (PRESSURE_RULE, "no precautions -> 6/10"),
        (REVIEW_RULE, REVIEW_DETAIL),
    ],
}


def test_golden_fmm_is_its_own_method_not_the_trigger_point_protocol() -> None:
    """Seed 004 (see SEED_004): regional defensive patterns, not isolated trigger points."""
    intake = submitted(MID_BACK_FMM, intake_id="golden-mid-back-fmm")
    assert intake.screening.outcome == "clear"
    plan = plan_for(intake)
    assert_golden(plan, GOLDEN_MID_BACK_FMM, intake=intake)
    # no NMT step: no warming strokes, no trigger point pressure, no fascial work
    assert NMT_TECHNIQUES.isdisjoint(s.technique for s in plan.protocol)
    # a therapist who practises FMM, and only that
    assert plan.scheduling.required_skills == ["fmm"]


def test_golden_fmm_the_client_takes_part() -> None:
    """Seed 004 (see SEED_004_PARTICIPATION): breathe with a sigh of relief, connect to
    the pattern, release it; and self-regulation homework."""
    plan = plan_for(submitted(MID_BACK_FMM, intake_id="golden-mid-back-fmm"))
    notes = {s.technique: s.notes or "" for s in plan.protocol}
    assert notes["sigh_of_relief_breathing"] == "the client breathes out with a sigh of relief"
    assert "overriding dissociation" in notes["sensing_the_pattern"]
    assert "the client consciously releases the pattern" in notes["participatory_release"]
    assert "practise at home" in notes["self_regulation_practice"]
    assert notes["defensive_pattern_assessment"].startswith("Visit 1: assess first")
    assert "not isolated trigger points" in notes["defensive_pattern_assessment"]
    # seed 004 (see SEED_004_SPINE): released from the deep muscles beside the spine
    spine = next(s for s in plan.protocol if s.technique == "deep_spinal_release")
    assert "beside the spine" in (spine.notes or "")


# --- neck under stress: the traps-neck-shoulders pattern, with precautions -----------

NECK_FMM = {
    "location_id": "beaverton",
    "client": CLIENT,
    "complaints": [
        {
            "region": "neck",
            "side": "both",
            "intensity": 8,
            "qualities": ["ache", "tingling"],
            "frequency": "daily, tight under stress",
            "onset": "2026-09-14",
        }
    ],
    "health": {
        "contraindications": [{"code": "skin_condition", "region": "shoulder"}],
        "precautions": [{"code": "hypertension"}],
    },
    "goals": ["stop bracing my shoulders"],
    "preferences": {"modality": "fmm"},
    "consent": CONSENT,
}
NECK_PATTERN = ["neck", "shoulder_blade", "upper_back"]  # the shoulder's skin is excluded
NERVE_NOTE = "ease off at once if pressure provokes tingling, numbness or burning in the neck"


def test_golden_fmm_neck_works_the_traps_neck_shoulders_pattern_within_the_precautions() -> None:
    """Seed 004 (see SEED_004_TRAPS): the traps-neck-shoulders area as one pattern; the
    hypertension cap, the excluded shoulder and the nerve caution still apply."""
    intake = submitted(NECK_FMM, intake_id="golden-neck-fmm")
    assert intake.screening.outcome == "modify"
    plan = plan_for(intake)
    steps = [(s.technique, s.pressure_target, s.targets) for s in plan.protocol]
    assert steps == [
        ("defensive_pattern_assessment", None, NECK_PATTERN),
        ("sigh_of_relief_breathing", None, []),
        ("sensing_the_pattern", None, NECK_PATTERN),
        ("deep_spinal_release", 5, ["suboccipitals", "cervical multifidi"]),
        ("participatory_release", 5, NECK_PATTERN),
        ("self_regulation_practice", None, []),
    ]
    assert plan.excluded_regions == ["shoulder"]
    hands_on = [s for s in plan.protocol if s.pressure_target is not None]
    for step in hands_on:
        assert step.notes is not None
        assert step.notes.startswith(
            "gentle in the neck: too painful for direct pressure (DOMAIN.md 4); " + NERVE_NOTE
        ), step
    assert ("lower_pressure", "pressure target 5/10 instead of 6/10 (hypertension)") in [
        (m.code, m.detail) for m in plan.modifications
    ]
    pairs = [(r.rule, r.detail) for r in plan.rationale]
    assert (
        PATTERN_RULE,
        "neck -> the traps, neck and shoulders pattern: neck, shoulder_blade, upper_back "
        "worked as one region from the deep muscles beside the spine (suboccipitals, "
        "cervical multifidi); visit 1 assesses first",
    ) in pairs
    assert (PRESSURE_RULE, "hypertension -> 5/10") in pairs
    assert any(rule == SCREENING_RULE for rule, _ in pairs)


PREGNANT_LOW_BACK_FMM = {
    "location_id": "beaverton",
    "client": {**CLIENT, "name": "Maya Chen", "email": "maya@example.com"},
    "complaints": [
        {
            "region": "low_back",
            "side": "center",
            "intensity": 5,
            "qualities": ["ache"],
            "onset": "2026-10-05",
        }
    ],
    "health": {"precautions": [{"code": "pregnancy", "detail": "second trimester"}]},
    "preferences": {"modality": "fmm"},
    "consent": CONSENT,
}


def test_golden_fmm_keeps_pressure_off_the_low_back_in_pregnancy() -> None:
    """DOMAIN.md 2: no low-back pressure in pregnancy holds for FMM too: the deep release
    beside the lumbar spine is left out, the rest of the pattern is worked at 4/10."""
    plan = plan_for(submitted(PREGNANT_LOW_BACK_FMM, intake_id="golden-pregnant-fmm"))
    steps = [(s.technique, s.pressure_target, s.targets) for s in plan.protocol]
    assert steps == [
        ("defensive_pattern_assessment", None, ["low_back", "glute", "hip"]),
        ("sigh_of_relief_breathing", None, []),
        ("sensing_the_pattern", None, ["low_back", "glute", "hip"]),
        ("participatory_release", 4, ["glute", "hip"]),
        ("self_regulation_practice", None, []),
    ]


def test_an_assessment_does_not_turn_an_fmm_plan_into_trigger_point_work() -> None:
    """Seed 004 (see SEED_004): trigger points found at assessment do not retarget FMM."""
    intake = submitted(MID_BACK_FMM, intake_id="golden-mid-back-fmm")
    plan = plan_for(intake)
    assessment = AssessmentRecorded(
        assessment_id="a-1",
        client_id=plan.client_id,
        therapist_id="t-ana",
        location_id="beaverton",
        trigger_points=[TriggerPoint(muscle="latissimus dorsi", side="left", type="active")],
        recorded_at=datetime(2026, 11, 5, 18, 0, tzinfo=ZoneInfo("America/Los_Angeles")),
    )
    now = datetime(2026, 11, 5, 19, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert revise_for_assessment(plan, intake, assessment, sessions_done=1, now=now) is None


def test_the_demo_chain_has_therapists_for_fmm_plans() -> None:
    """DOMAIN.md 4: a plan for FMM needs a therapist who practises it."""
    chain = load_chain_config(DEMO_CHAIN)
    needed = set(knowledge.SKILLS_FOR_MODALITY["fmm"])
    able = [t for t in chain.therapists if needed <= set(t.skills)]
    assert able
    assert "beaverton" in {location for t in able for location in t.locations}


def test_an_fmm_visit_holds_nothing_so_hypertension_asks_no_shorter_holds() -> None:
    """Hypertension's care still applies to FMM; its shorter holds are about NMT holds."""
    document = {**MID_BACK_FMM, "health": {"precautions": [{"code": "hypertension"}]}}
    plan = plan_for(submitted(document, intake_id="golden-fmm-hypertension"))
    assert not any(step.hold_seconds for step in plan.protocol)
    codes = [m.code for m in plan.modifications]
    assert "hypertension_care" in codes and "shorter_holds" not in codes
    nmt = plan_for(
        submitted(
            {**document, "preferences": {"modality": "nmt"}}, intake_id="golden-nmt-hypertension"
        )
    )
    assert "shorter_holds" in [m.code for m in nmt.modifications]
