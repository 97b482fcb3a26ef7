"""Properties of the home program over random intakes and assessments: no item
contradicts a modification of the plan or touches an excluded area (DOMAIN.md 2, 5
and 6), and the stretches target what the therapist found limited (DOMAIN.md 3).

The intakes are those of ``test_planner_properties`` with a date of birth and a
stated (or unstated) stage of pregnancy; the oracle below is written from DOMAIN.md
and the plan's own modifications, not read from the planner's tables.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.planner.domain import decide, revise_for_assessment
from services.planner.pregnancy import after_first_trimester, trimester_of
from shared import body_map as bm
from shared.events.intake import AssessmentRecorded, IntakeDocument, IntakeSubmitted, TriggerPoint
from shared.events.plans import HomeProgram, PlanCreated
from shared.pain import OLDER_ADULT_AGE, age_on
from tests.unit.test_planner_properties import POLICY, SUBMITTED, TODAY, documents, submitted

# A stated stage of pregnancy, and whether it is past the first trimester (DOMAIN.md 2:
# "especially the first trimester"; weeks 1-13). Unstated counts as past: the safe side.
STAGES: list[tuple[str | None, bool]] = [
    (None, True),
    ("first trimester", False),
    ("8 weeks", False),
    ("12 weeks pregnant", False),
    ("week 13", False),
    ("second trimester", True),
    ("24 weeks", True),
    ("after the first trimester", True),
    ("5 months", True),
    ("third trimester", True),
    ("T3", True),
    ("34+2 weeks", True),
    ("expecting", True),
]
# What the plan's modifications rule out for self-massage (DOMAIN.md 2): pregnancy's
# "no deep abdominal or low-back pressure", "no direct work on varicose veins" (legs).
NO_SELF_MASSAGE_BY_MODIFICATION = {
    "no_deep_abdominal_low_back": {"low_back"},
    "avoid_varicose_veins": {"thigh", "knee", "leg"},
}
FLOOR = {"supine", "prone", "kneeling", "hands_and_knees"}
LIMITS = [
    "head rotation right limited to 45°",
    "neck side bending left limited",
    "raising the right arm overhead limited to 120°",
    "reaching behind the back",
    "trunk rotation left limited",
    "lumbar flexion limited, fingertips to knees",
    "bending backward painful",
    "hip internal rotation 10°",
    "straight leg raise 40° right",
    "knee flexion 100°",
    "ankle dorsiflexion 5°",
    "wrist extension 40°",
    "mouth opening 30 mm",
    "grip weak",
]
POSTURE = ["forward head posture", "rounded shoulders", "uneven pelvis, right high", "flat feet"]

LINES = {
    f"{tool}: {where}": region
    for table in (bm.SELF_MASSAGE, bm.GENTLE_SELF_MASSAGE)
    for region, (tool, where) in table.items()
}
GENTLE = {f"{tool}: {where}" for tool, where in bm.GENTLE_SELF_MASSAGE.values()}
USUAL = {r: f"{tool}: {where}" for r, (tool, where) in bm.SELF_MASSAGE.items()}
PRONE = {line for r, line in USUAL.items() if bm.SELF_MASSAGE_POSITIONS[r] == "prone"}
SUPINE = {line for r, line in USUAL.items() if bm.SELF_MASSAGE_POSITIONS[r] == "supine"}


@st.composite
def intakes(draw: st.DrawFn) -> IntakeSubmitted:
    document: IntakeDocument = draw(documents())
    stage, _ = draw(st.sampled_from(STAGES))
    precautions = [
        p.model_copy(update={"detail": stage}) if p.code == "pregnancy" else p
        for p in document.health.precautions
    ]
    born = draw(st.none() | st.dates(date(1926, 1, 1), date(2006, 12, 31)))
    document = document.model_copy(
        update={
            "client": document.client.model_copy(update={"date_of_birth": born}),
            "health": document.health.model_copy(update={"precautions": precautions}),
        }
    )
    return submitted(document)


@st.composite
def assessments(draw: st.DrawFn) -> AssessmentRecorded:
    return AssessmentRecorded(
        assessment_id="a-prop",
        client_id="client-prop",
        therapist_id="t-ana",
        location_id="beaverton",
        range_of_motion_limits=draw(st.lists(st.sampled_from(LIMITS), max_size=4)),
        posture_findings=draw(st.lists(st.sampled_from(POSTURE), max_size=2)),
        trigger_points=[
            TriggerPoint(muscle=m, side="right", type="active")
            for m in draw(st.lists(st.sampled_from(bm.KNOWN_MUSCLES), max_size=3))
        ],
        recorded_at=SUBMITTED + timedelta(days=3),
    )


def assert_keeps_the_plan(home: HomeProgram, plan: PlanCreated, intake: IntakeSubmitted) -> None:
    """No home program item contradicts the plan's modifications or its excluded areas."""
    codes = {m.code for m in plan.modifications}
    excluded = set(plan.excluded_regions)
    stretches = {s.name for s in home.stretches}
    at = {bm.STRETCH_POSITIONS[s] for s in stretches}
    assert 2 <= len(home.stretches) <= 3
    assert excluded.isdisjoint(s.region for s in home.stretches)
    # self-massage: only known lines, never on an excluded or ruled-out area
    no_massage = excluded.union(*(NO_SELF_MASSAGE_BY_MODIFICATION.get(c, ()) for c in codes))
    for line in home.self_massage:
        assert line in LINES, line
        assert LINES[line] not in no_massage, (line, codes)
    # pregnancy: "never flat prone"; after the first trimester not on the back either
    pregnant = [p for p in intake.health.precautions if p.code == "pregnancy"]
    if pregnant:
        assert "pregnancy_positioning" in codes
        assert "prone" not in at
        assert PRONE.isdisjoint(home.self_massage), home.self_massage
        if any(dict(STAGES)[p.detail] for p in pregnant):
            assert "supine" not in at, stretches
            assert SUPINE.isdisjoint(home.self_massage), home.self_massage
    # hypertension: "no head-down positions"; moderate: the gentle self-massage
    if "hypertension_care" in codes:
        assert stretches.isdisjoint(bm.HEAD_DOWN_STRETCHES), stretches
        assert set(home.self_massage) <= GENTLE
    # DOMAIN.md 5 age: seated or standing, gentle
    born = intake.client.date_of_birth
    if born is not None and age_on(born, TODAY) >= OLDER_ADULT_AGE:
        assert at.isdisjoint(FLOOR), stretches
        assert set(home.self_massage) <= GENTLE


@settings(deadline=None, max_examples=150)
@given(intakes())
def test_the_home_program_keeps_the_plans_precautions(intake: IntakeSubmitted) -> None:
    plan = decide(intake, policy=POLICY)
    if isinstance(plan, PlanCreated):
        assert_keeps_the_plan(plan.home_program, plan, intake)


@settings(deadline=None, max_examples=150)
@given(intakes(), assessments())
def test_an_assessment_aims_the_stretches_within_the_precautions(
    intake: IntakeSubmitted, assessment: AssessmentRecorded
) -> None:
    plan = decide(intake, policy=POLICY)
    if not isinstance(plan, PlanCreated):
        return
    revised = revise_for_assessment(plan, intake, assessment, sessions_done=0, now=SUBMITTED)
    home = plan.home_program if revised is None else revised.home_program
    assert_keeps_the_plan(home, plan, intake)
    # DOMAIN.md 3: the first limited movement (or posture finding) outside an excluded
    # area has a stretch that works on it, or the version a precaution allows
    found = [
        f
        for f in (
            *bm.limited_movements(assessment.range_of_motion_limits),
            *bm.posture_patterns(assessment.posture_findings),
        )
        if f.region not in plan.excluded_regions
    ]
    if found:
        aimed = {*found[0].stretches, *(bm.STRETCH_ALTERNATIVES.get(s) for s in found[0].stretches)}
        assert aimed & {s.name for s in home.stretches}, (found[0].name, home.stretches)


@pytest.mark.parametrize(("detail", "after"), STAGES)
def test_the_stated_stage_of_pregnancy_is_read(detail: str | None, after: bool) -> None:
    assert after_first_trimester(detail) is after


@pytest.mark.parametrize(
    ("detail", "trimester"),
    [
        ("First Trimester", 1),
        ("1st trimester, some nausea", 1),
        ("trimester 2", 2),
        ("T2", 2),
        ("past the first trimester", 2),
        ("week 30", 3),
        ("14 wks", 2),
        ("28/40", 3),
        ("9 months", 3),
        ("was 10 weeks at booking, now 20 weeks", 2),  # the latest stated
        ("due in spring", None),
        (None, None),
    ],
)
def test_trimester_of(detail: str | None, trimester: int | None) -> None:
    assert trimester_of(detail) == trimester


def test_the_stretch_positions_agree_with_how_each_is_done() -> None:
    """The oracle's positions are the body map's: each agrees with the stretch's words."""
    for name, how in bm.STRETCHES.items():
        words = how.lower()
        position = bm.STRETCH_POSITIONS[name]
        if "lying" in words:
            assert position in ("supine", "prone", "side_lying"), name
        elif "hands and knees" in words:
            assert position == "hands_and_knees", name
        elif "kneel" in words:
            assert position == "kneeling", name
        else:
            assert position in ("standing", "seated"), name


def test_every_floor_or_head_down_stretch_has_a_seated_or_standing_version() -> None:
    for name, position in bm.STRETCH_POSITIONS.items():
        if position in FLOOR or name in bm.HEAD_DOWN_STRETCHES:
            other = bm.STRETCH_ALTERNATIVES[name]
            assert bm.STRETCH_POSITIONS[other] in ("standing", "seated"), name
            assert other not in bm.HEAD_DOWN_STRETCHES, name


def test_every_self_massage_line_names_one_area() -> None:
    """So a line tells which area it touches (LINES above is a function)."""
    both = [*bm.SELF_MASSAGE.values(), *bm.GENTLE_SELF_MASSAGE.values()]
    assert len({f"{t}: {w}" for t, w in both}) == len(both)
