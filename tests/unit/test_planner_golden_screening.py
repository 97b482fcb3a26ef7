"""Golden cases: screening asks what the seeds imply (DOMAIN.md 2 and 5).

Seed 002: "If you have a malignancy or undiagnosed lumps, deep vein thrombosis, severe
osteoporosis, acute infections, or certain skin conditions in the treatment area, we'll
recommend alternative approaches." Calf pain with a recent swelling, warmth or a long
journey may be a DVT: screening asks the DVT questions before it clears the intake, and
a yes is referred promptly with no treatment. Seed 002 on personal factors: "Things like
your age, overall health, stress levels, and how diligently you follow home care
recommendations all play important roles in your recovery timeline." An older client
is asked about osteoporosis, and the pressure is gentler.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from services.planner.domain import decide
from shared.events.plans import PlanCreated, PlanDeclined
from tests.unit.test_planner_golden import (
    CLIENT,
    CONSENT,
    POLICY,
    PRESSURE_RULE,
    SCREENING_RULE,
    SUBMITTED,
    TODAY,
    plan_for,
    submitted,
)

SEED_002_CONTRAINDICATIONS = (
    "If you have a malignancy or undiagnosed lumps, deep vein thrombosis, severe "
    "osteoporosis, acute infections, or certain skin conditions in the treatment area, "
    "we\u2019ll recommend alternative approaches."
)
SEED_002_AGE = (
    "Things like your age, overall health, stress levels, and how diligently you follow "
    "home care recommendations all play important roles in your recovery timeline."
)
DVT_RULE = "DOMAIN.md 2: deep vein thrombosis"
AGE_RULE = "DOMAIN.md 2: severe osteoporosis; DOMAIN.md 5: personal factors (age)"
PRESSURE_STEPS = {
    "ischemic_compression",
    "sustained_pressure",
    "pincer_compression",
    "cross_fiber_friction",
}


# --- calf pain with swelling ----------------------------------------------------------


def calf_pain(dvt_signs: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "location_id": "beaverton",
        "client": CLIENT,
        "complaints": [
            {
                "region": "leg",
                "side": "left",
                "intensity": 6,
                "qualities": ["ache", "tender"],
                "frequency": "worse when walking",
                "onset": "2026-10-26",  # a week before the intake
            }
        ],
        "health": {} if dvt_signs is None else {"dvt_signs": dvt_signs},
        "goals": ["walk without calf pain"],
        "consent": CONSENT,
    }


def test_golden_calf_pain_with_swelling_is_referred_promptly_with_no_treatment() -> None:
    """Seed 002 (see SEED_002_CONTRAINDICATIONS): a possible DVT is not treated."""
    signs = {"calf_swelling": True, "calf_warmth_redness": None, "long_journey_recent": True}
    intake = submitted(calf_pain(signs), intake_id="golden-calf-swelling")
    screening = intake.screening
    assert (screening.outcome, screening.referral_recommended) == ("refer", True)
    assert [(r.rule, r.code, r.region) for r in screening.reasons] == [
        (DVT_RULE, "dvt_signs", "leg")
    ]
    assert screening.front_desk == [
        "Ask the client to see a physician promptly: the calf may have a blood clot (DVT). "
        "No treatment is booked."
    ]
    decision = decide(intake, policy=POLICY)
    assert isinstance(decision, PlanDeclined)
    assert decision.outcome == "refer"
    assert [(r.rule, r.detail) for r in decision.reasons] == [
        (
            DVT_RULE,
            "DVT questions answered yes (a swollen calf, a recent long journey): possibly a "
            "deep vein thrombosis; NMT is not performed; refer to a physician promptly",
        )
    ]
    assert decision.referral.model_dump() == {
        "recommended": True,
        "to": "a physician, promptly",
        "detail": "no NMT for now (dvt_signs)",
    }
    assert decision.recheck_on is None
    assert decision.declined_at == SUBMITTED


def test_golden_calf_pain_waits_for_the_dvt_questions() -> None:
    intake = submitted(calf_pain(None), intake_id="golden-calf-unasked")
    screening = intake.screening
    assert (screening.outcome, screening.recheck_on) == ("defer", TODAY)
    assert screening.front_desk == [
        "Ask the client these DVT questions and submit the intake again with the answers "
        "(health.dvt_signs); nothing is booked until then:",
        "Has the calf swollen up lately?",
        "Is the calf warm or red to the touch?",
        "Has the client had a long journey (a flight or a long drive) or bed rest in the "
        "last few weeks?",
    ]
    decision = decide(intake, policy=POLICY)
    assert isinstance(decision, PlanDeclined)
    assert (decision.outcome, decision.recheck_on) == ("defer", TODAY)
    assert decision.referral.recommended is False


def test_golden_calf_pain_answered_no_is_planned_with_the_answers_on_record() -> None:
    no = {"calf_swelling": False, "calf_warmth_redness": False, "long_journey_recent": False}
    intake = submitted(calf_pain(no), intake_id="golden-calf-cleared")
    assert intake.screening.outcome == "clear"
    assert [(r.code, r.action) for r in intake.screening.reasons] == [
        ("dvt_questions_answered", "clear")
    ]
    plan = plan_for(intake)
    assert plan.target_regions == ["leg"]
    assert {s.pressure_target for s in plan.protocol if s.pressure_target} == {6}


# --- an older client: the osteoporosis question and gentler pressure -----------------

OLDER_SHOULDER: dict[str, Any] = {
    "location_id": "beaverton",
    "client": {
        **CLIENT,
        "name": "Ruth Okafor",
        "email": "ruth@example.com",
        "date_of_birth": "1946-05-20",  # 80 on the intake date
    },
    "complaints": [
        {
            "region": "shoulder",
            "side": "left",
            "intensity": 5,
            "qualities": ["ache", "tender"],
            "frequency": "reaching up to shelves",
            "onset": "2026-09-21",
            "provoking_movements": ["reaching overhead"],
        }
    ],
    "goals": ["reach the top shelf"],
    "consent": CONSENT,
}
SHOULDER_AGAINST_BONE = ["infraspinatus", "supraspinatus", "deltoid", "subscapularis"]
SHOULDER_MUSCLES = [*SHOULDER_AGAINST_BONE, "pectoralis major"]


def older(**health: Any) -> dict[str, Any]:
    return {**OLDER_SHOULDER, "health": health}


def pressure_steps(plan: PlanCreated) -> list[tuple[str, int | None, list[str]]]:
    return [
        (s.technique, s.pressure_target, s.targets)
        for s in plan.protocol
        if s.technique in PRESSURE_STEPS
    ]


def test_golden_older_client_is_asked_about_osteoporosis_and_treated_gently() -> None:
    """Seed 002 (see SEED_002_AGE and SEED_002_CONTRAINDICATIONS): age matters, and
    severe osteoporosis is not treated; until the client says, the pressure is gentle."""
    intake = submitted(older(), intake_id="golden-older-client")
    screening = intake.screening
    assert screening.outcome == "modify"
    assert [(r.rule, r.code, r.detail) for r in screening.reasons] == [
        (
            AGE_RULE,
            "osteoporosis_unanswered",
            "aged 80: whether the client has osteoporosis is not answered; gentle pressure "
            "until it is",
        )
    ]
    assert screening.front_desk == [
        "Ask the client this question and tell the therapist the answer; until it is "
        "answered the pressure is gentle:",
        "Has a doctor told the client they have osteoporosis (thinning bones)?",
    ]
    plan = plan_for(intake)
    assert pressure_steps(plan) == [
        ("ischemic_compression", 4, SHOULDER_AGAINST_BONE),
        ("sustained_pressure", 4, SHOULDER_AGAINST_BONE),
        ("pincer_compression", 4, ["pectoralis major"]),
        ("cross_fiber_friction", 4, SHOULDER_MUSCLES),
    ]
    for step in plan.protocol:
        if step.pressure_target is not None:
            assert step.notes is not None
            assert step.notes.startswith(
                "gentle: whether the client has osteoporosis is not answered"
            )
    assert [(m.code, m.detail) for m in plan.modifications] == [
        ("lower_pressure", "pressure target 4/10 instead of 6/10 (osteoporosis_not_answered)"),
        (
            "osteoporosis_not_answered",
            "aged 80: whether the client has osteoporosis is not answered; gentle pressure "
            "until it is; ask the client at the first visit",
        ),
    ]
    pairs = [(r.rule, r.detail) for r in plan.rationale]
    assert (PRESSURE_RULE, "osteoporosis_not_answered -> 4/10") in pairs
    assert (
        SCREENING_RULE,
        "modify: gentle pressure until the osteoporosis question is answered; lower pressure "
        "target than the usual 6-7 of 10 (DOMAIN.md 4)",
    ) in pairs
    assert any(rule == AGE_RULE for rule, _ in pairs)


def test_golden_older_client_without_osteoporosis_has_gentler_pressure_with_age() -> None:
    plan = plan_for(submitted(older(osteoporosis=False), intake_id="golden-older-no-op"))
    assert {p for _, p, _ in pressure_steps(plan)} == {5}
    assert [(m.code, m.detail) for m in plan.modifications] == [
        ("lower_pressure", "pressure target 5/10 instead of 6/10 (gentler_with_age)"),
        ("gentler_with_age", "aged 80, no osteoporosis: gentler pressure with age"),
    ]


def test_golden_older_client_with_osteoporosis_nothing_heavy_against_bone() -> None:
    plan = plan_for(submitted(older(osteoporosis=True), intake_id="golden-older-op"))
    assert {p for _, p, _ in pressure_steps(plan)} == {4}
    against_bone = next(s for s in plan.protocol if s.technique == "sustained_pressure")
    assert against_bone.notes is not None
    assert against_bone.notes.startswith("gentle, nothing heavy against bone: osteoporosis")


def test_golden_older_client_with_a_precaution_takes_the_lower_cap() -> None:
    """DOMAIN.md 4: under precautions the target is lower; the strictest cap wins."""
    document = older(osteoporosis=False, precautions=[{"code": "blood_thinners"}])
    plan = plan_for(submitted(document, intake_id="golden-older-thinners"))
    assert {p for _, p, _ in pressure_steps(plan)} == {4}
    assert (
        "lower_pressure",
        "pressure target 4/10 instead of 6/10 (blood_thinners, gentler_with_age)",
    ) in [(m.code, m.detail) for m in plan.modifications]


def test_the_intake_date_decides_the_age() -> None:
    a_day_short = {**OLDER_SHOULDER["client"], "date_of_birth": date(1961, 11, 3).isoformat()}
    intake = submitted({**OLDER_SHOULDER, "client": a_day_short}, intake_id="golden-64")
    assert intake.screening.reasons == []  # 64 until tomorrow
    assert intake.screening.outcome == "clear"
