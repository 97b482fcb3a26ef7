"""Safety screening (DOMAIN.md 1 and 2): the tables row by row, and the invariants."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.intake.screening import (
    CONTRAINDICATION_RULES,
    PRECAUTION_RULES,
    QUESTION_RULES,
    RED_FLAG,
    SEVERITY,
    answer,
    most_severe,
    screen,
)
from shared.events.intake import Health, IntakeDocument
from shared.pain import OLDER_ADULT_AGE, age_on
from shared.vocabulary import (
    ContraindicationCode,
    PrecautionCode,
    Quality,
    Region,
)

TODAY = date(2027, 3, 8)
CHRONIC_NECK: dict[str, Any] = {
    "region": "neck",
    "intensity": 6,
    "qualities": ["ache"],
    "onset": "2026-06-01",
}
REFER_CODES: list[ContraindicationCode] = [
    "malignancy",
    "undiagnosed_lump",
    "dvt",
    "severe_osteoporosis",
    "acute_infection",
]
RULE_NAME = re.compile(r"^DOMAIN\.md [1-7]: \S")


def intake(
    *,
    complaints: list[dict[str, Any]] | None = None,
    contraindications: list[dict[str, Any]] | None = None,
    precautions: list[dict[str, Any]] | None = None,
    date_of_birth: date | None = None,
    **answers: Any,
) -> IntakeDocument:
    return IntakeDocument.model_validate(
        {
            "location_id": "beaverton",
            "client": {"name": "Client", "date_of_birth": date_of_birth},
            "complaints": complaints or [CHRONIC_NECK],
            "health": {
                "contraindications": contraindications or [],
                "precautions": precautions or [],
                **answers,
            },
        }
    )


def dull_pain(**changes: Any) -> dict[str, Any]:
    return {"region": "low_back", "intensity": 5, "qualities": ["dull"]} | changes


# --- the tables --------------------------------------------------------------------------


def test_every_code_has_exactly_one_row() -> None:
    assert set(CONTRAINDICATION_RULES) == set(get_args(ContraindicationCode))
    assert set(PRECAUTION_RULES) == set(get_args(PrecautionCode))


def test_clear_intake_is_clear_with_no_reasons() -> None:
    result = screen(intake(), today=TODAY)

    assert result.outcome == "clear"
    assert result.reasons == []
    assert result.excluded_regions == []
    assert result.modifications == []
    assert result.recheck_on is None
    assert result.referral_recommended is False


@pytest.mark.parametrize("code", REFER_CODES)
def test_serious_contraindications_refer(code: ContraindicationCode) -> None:
    result = screen(intake(contraindications=[{"code": code}]), today=TODAY)

    assert result.outcome == "refer"
    assert result.referral_recommended is True
    [reason] = result.reasons
    assert reason.code == code
    assert reason.action == "refer"
    assert reason.rule == CONTRAINDICATION_RULES[code].rule
    assert result.recheck_on is None


def test_dvt_rule_is_named_after_its_domain_line() -> None:
    result = screen(intake(contraindications=[{"code": "dvt"}]), today=TODAY)

    assert result.reasons[0].rule == "DOMAIN.md 2: deep vein thrombosis"


def test_recent_surgery_defers_six_weeks_from_the_surgery() -> None:
    since = date(2027, 3, 1)
    result = screen(
        intake(contraindications=[{"code": "recent_surgery", "since": since.isoformat()}]),
        today=TODAY,
    )

    assert CONTRAINDICATION_RULES["recent_surgery"].recheck_after == timedelta(weeks=6)
    assert result.outcome == "defer"
    assert result.recheck_on == since + timedelta(weeks=6)
    assert result.reasons[0].action == "defer"
    assert str(result.recheck_on) in result.reasons[0].detail
    assert result.referral_recommended is False


def test_recent_surgery_without_date_defers_six_weeks_from_today() -> None:
    result = screen(intake(contraindications=[{"code": "recent_surgery"}]), today=TODAY)

    assert result.outcome == "defer"
    assert result.recheck_on == TODAY + timedelta(weeks=6)


def test_recheck_is_never_in_the_past() -> None:
    long_ago = TODAY - timedelta(weeks=10)
    result = screen(
        intake(contraindications=[{"code": "recent_surgery", "since": long_ago.isoformat()}]),
        today=TODAY,
    )

    assert result.recheck_on == TODAY


def test_acute_injury_defers_two_weeks() -> None:
    since = date(2027, 3, 5)
    result = screen(
        intake(
            contraindications=[
                {"code": "acute_injury_inflammation", "since": since.isoformat(), "region": "knee"}
            ]
        ),
        today=TODAY,
    )

    assert result.outcome == "defer"
    assert result.recheck_on == since + timedelta(weeks=2)
    assert result.reasons[0].region == "knee"


def test_local_skin_condition_excludes_only_its_region() -> None:
    result = screen(
        intake(
            complaints=[CHRONIC_NECK, CHRONIC_NECK | {"region": "shoulder"}],
            contraindications=[{"code": "skin_condition", "region": "shoulder"}],
        ),
        today=TODAY,
    )

    assert result.outcome == "modify"
    assert result.excluded_regions == ["shoulder"]
    [reason] = result.reasons
    assert (reason.code, reason.action, reason.region) == ("skin_condition", "modify", "shoulder")
    assert reason.rule == "DOMAIN.md 2: certain skin conditions in the treatment area"
    assert any("shoulder" in text for text in result.modifications)
    assert result.recheck_on is None


def test_skin_condition_on_every_complaint_region_defers() -> None:
    result = screen(
        intake(contraindications=[{"code": "skin_condition", "region": "neck"}]),
        today=TODAY,
    )

    assert result.outcome == "defer"
    assert result.excluded_regions == ["neck"]
    assert [r.action for r in result.reasons] == ["modify", "defer"]
    assert result.recheck_on == TODAY + timedelta(weeks=2)


def test_skin_condition_without_region_defers() -> None:
    result = screen(intake(contraindications=[{"code": "skin_condition"}]), today=TODAY)

    assert result.outcome == "defer"
    assert result.excluded_regions == []
    assert result.recheck_on == TODAY + timedelta(weeks=2)


@pytest.mark.parametrize("code", sorted(PRECAUTION_RULES))
def test_precautions_modify_with_their_modifications(code: PrecautionCode) -> None:
    result = screen(intake(precautions=[{"code": code}]), today=TODAY)

    assert result.outcome == "modify"
    [reason] = result.reasons
    assert (reason.code, reason.action) == (code, "modify")
    assert reason.rule == PRECAUTION_RULES[code].rule
    assert PRECAUTION_RULES[code].modifications
    assert result.modifications == list(PRECAUTION_RULES[code].modifications)
    assert result.referral_recommended is False


def test_pregnancy_modifications_read_as_instructions() -> None:
    result = screen(
        intake(precautions=[{"code": "pregnancy", "detail": "first trimester"}]), today=TODAY
    )

    text = " ".join(result.modifications)
    assert "side-lying" in text
    assert "no deep abdominal or low-back pressure in the first trimester" in text
    assert "lower pressure" in text
    assert "first trimester" in result.reasons[0].detail


def test_shared_modifications_are_listed_once() -> None:
    result = screen(
        intake(precautions=[{"code": "hypertension"}, {"code": "blood_thinners"}]), today=TODAY
    )

    assert len(result.modifications) == len(set(result.modifications))


# --- most severe wins ----------------------------------------------------------------------


def test_most_severe_action_wins() -> None:
    result = screen(
        intake(
            contraindications=[{"code": "recent_surgery"}, {"code": "dvt"}],
            precautions=[{"code": "pregnancy"}],
        ),
        today=TODAY,
    )

    assert result.outcome == "refer"
    assert {r.action for r in result.reasons} == {"defer", "refer", "modify"}
    assert result.recheck_on == TODAY + timedelta(weeks=6)


def test_defer_beats_modify_and_the_latest_recheck_is_kept() -> None:
    result = screen(
        intake(
            contraindications=[
                {"code": "acute_injury_inflammation"},
                {"code": "recent_surgery", "since": "2027-03-01"},
            ],
            precautions=[{"code": "hypertension"}],
        ),
        today=TODAY,
    )

    assert result.outcome == "defer"
    assert result.recheck_on == date(2027, 4, 12)


def test_most_severe_order() -> None:
    assert most_severe([]) == "clear"
    assert most_severe(["modify", "clear"]) == "modify"
    assert most_severe(["modify", "defer"]) == "defer"
    assert most_severe(["refer", "defer", "modify"]) == "refer"


# --- red flag (DOMAIN.md 1) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_old", "improving", "flagged"),
    [
        (13, None, False),
        (14, None, True),
        (14, False, True),
        (14, True, False),
        (30, None, True),
        (90, False, True),
        (91, False, False),  # no longer "new": about 3 months
    ],
)
def test_red_flag_boundary(days_old: int, improving: bool | None, flagged: bool) -> None:
    onset = TODAY - timedelta(days=days_old)
    complaint = dull_pain(onset=onset.isoformat(), improving=improving)
    result = screen(intake(complaints=[complaint]), today=TODAY)

    red = [r for r in result.reasons if r.rule == RED_FLAG.rule]
    assert bool(red) is flagged
    assert result.referral_recommended is flagged
    if flagged:
        assert (red[0].action, red[0].region) == ("modify", "low_back")
        assert result.outcome == "modify"  # a referral recommendation, not a stop


def test_red_flag_thresholds_are_table_values() -> None:
    assert RED_FLAG.quality == "dull"
    assert RED_FLAG.not_improved_after == timedelta(days=14)
    assert RED_FLAG.new_within == timedelta(weeks=13)


def test_red_flag_from_duration_in_weeks() -> None:
    result = screen(intake(complaints=[dull_pain(duration_weeks=3)]), today=TODAY)

    assert result.referral_recommended is True


def test_sharp_new_pain_is_no_red_flag() -> None:
    complaint = dull_pain(qualities=["sharp"], onset=(TODAY - timedelta(days=20)).isoformat())
    result = screen(intake(complaints=[complaint]), today=TODAY)

    assert result.outcome == "clear"
    assert result.referral_recommended is False


# --- nerve signs (DOMAIN.md 1) -------------------------------------------------------------


@pytest.mark.parametrize("quality", ["tingling", "numbness", "burning"])
def test_nerve_signs_flag_possible_compression(quality: str) -> None:
    complaint = CHRONIC_NECK | {"region": "wrist_hand", "qualities": [quality, "ache"]}
    result = screen(intake(complaints=[complaint]), today=TODAY)

    assert result.outcome == "modify"
    [reason] = result.reasons
    assert (reason.code, reason.action, reason.region) == ("nerve_signs", "modify", "wrist_hand")
    assert "nerve compression" in reason.detail
    assert reason.rule.startswith("DOMAIN.md 1:")
    assert any("wrist hand" in text for text in result.modifications)
    assert result.referral_recommended is False


# --- questions the intake raises (DOMAIN.md 2) -------------------------------------------

CALF_PAIN: dict[str, Any] = {
    "region": "leg",
    "side": "left",
    "intensity": 5,
    "qualities": ["ache"],
    "onset": "2027-02-20",
}
NO_DVT = {"calf_swelling": False, "calf_warmth_redness": False, "long_journey_recent": False}
DVT_QUESTIONS = [
    "Has the calf swollen up lately?",
    "Is the calf warm or red to the touch?",
    "Has the client had a long journey (a flight or a long drive) or bed rest in the last "
    "few weeks?",
]
OSTEOPOROSIS_QUESTION = "Has a doctor told the client they have osteoporosis (thinning bones)?"
EIGHTY = date(1947, 3, 8)  # 80 on TODAY


def test_every_question_rule_names_its_domain_section_and_asks_health_fields() -> None:
    for rule in QUESTION_RULES:
        assert RULE_NAME.match(rule.rule), rule.rule
        assert rule.signs <= set(rule.questions)
        for path in rule.questions:
            assert answer(Health(), path) is None, path  # a real field, unanswered by default
        assert rule.unanswered.action != "clear"  # an open question never clears


def test_calf_pain_with_the_dvt_questions_unanswered_is_not_cleared() -> None:
    result = screen(intake(complaints=[CALF_PAIN]), today=TODAY)

    assert result.outcome == "defer"
    [reason] = result.reasons
    assert (reason.code, reason.action, reason.region) == ("dvt_questions", "defer", "leg")
    assert reason.rule == "DOMAIN.md 2: deep vein thrombosis"
    assert result.recheck_on == TODAY  # as soon as the answers are in
    assert result.front_desk[1:] == DVT_QUESTIONS
    assert "DVT questions" in result.front_desk[0]
    assert result.referral_recommended is False


def test_only_the_open_dvt_questions_are_asked() -> None:
    answers = {"calf_swelling": False, "long_journey_recent": False}
    result = screen(intake(complaints=[CALF_PAIN], dvt_signs=answers), today=TODAY)

    assert result.outcome == "defer"
    assert result.front_desk[1:] == [DVT_QUESTIONS[1]]


@pytest.mark.parametrize(
    ("sign", "words"),
    [
        ("calf_swelling", "a swollen calf"),
        ("calf_warmth_redness", "a warm or red calf"),
        ("long_journey_recent", "a recent long journey"),
    ],
)
def test_calf_pain_with_a_dvt_sign_is_referred_promptly(sign: str, words: str) -> None:
    result = screen(intake(complaints=[CALF_PAIN], dvt_signs={sign: True}), today=TODAY)

    assert result.outcome == "refer"
    [reason] = result.reasons
    assert (reason.code, reason.action) == ("dvt_signs", "refer")
    assert f"({words})" in reason.detail
    assert "refer to a physician promptly" in reason.detail
    assert result.referral_recommended is True
    assert result.front_desk == [
        "Ask the client to see a physician promptly: the calf may have a blood clot (DVT). "
        "No treatment is booked."
    ]
    assert result.recheck_on is None


def test_calf_pain_with_the_dvt_questions_answered_no_is_cleared_with_the_reason() -> None:
    result = screen(intake(complaints=[CALF_PAIN], dvt_signs=NO_DVT), today=TODAY)

    assert result.outcome == "clear"
    [reason] = result.reasons
    assert (reason.code, reason.action) == ("dvt_questions_answered", "clear")
    assert "answered no" in reason.detail
    assert result.front_desk == []


def test_a_swollen_calf_asks_the_dvt_questions_without_calf_pain() -> None:
    result = screen(intake(dvt_signs={"calf_swelling": True}), today=TODAY)

    assert result.outcome == "refer"
    assert [r.code for r in result.reasons] == ["dvt_signs"]


def test_a_long_journey_alone_raises_no_dvt_question() -> None:
    result = screen(intake(dvt_signs={"long_journey_recent": True}), today=TODAY)

    assert result.outcome == "clear"
    assert result.reasons == []


def test_a_declared_dvt_settles_the_dvt_questions() -> None:
    result = screen(
        intake(complaints=[CALF_PAIN], contraindications=[{"code": "dvt"}]), today=TODAY
    )

    assert [r.code for r in result.reasons] == ["dvt"]
    assert result.front_desk == []


def test_the_thigh_and_knee_are_not_the_calf() -> None:
    for region in ("thigh", "knee", "foot"):
        result = screen(intake(complaints=[CALF_PAIN | {"region": region}]), today=TODAY)
        assert result.outcome == "clear", region


def test_age_on_counts_whole_years() -> None:
    assert age_on(date(1947, 3, 8), TODAY) == 80
    assert age_on(date(1947, 3, 9), TODAY) == 79
    assert age_on(date(2000, 2, 29), date(2027, 2, 28)) == 26
    assert age_on(date(2000, 2, 29), date(2027, 3, 1)) == 27


def test_an_older_client_is_asked_about_osteoporosis_and_has_gentle_pressure() -> None:
    result = screen(intake(date_of_birth=EIGHTY), today=TODAY)

    assert result.outcome == "modify"
    [reason] = result.reasons
    assert (reason.code, reason.action) == ("osteoporosis_unanswered", "modify")
    assert reason.detail.startswith("aged 80: whether the client has osteoporosis")
    assert reason.rule.startswith("DOMAIN.md 2: severe osteoporosis")
    assert result.front_desk[-1] == OSTEOPOROSIS_QUESTION
    assert any("lower pressure target" in text for text in result.modifications)


@pytest.mark.parametrize(
    ("has_it", "code", "detail"),
    [
        (False, "older_adult", "aged 80, no osteoporosis: gentler pressure with age"),
        (True, "osteoporosis", "osteoporosis: gentle pressure, nothing heavy against bone"),
    ],
)
def test_the_osteoporosis_answer_is_the_reason(has_it: bool, code: str, detail: str) -> None:
    result = screen(intake(date_of_birth=EIGHTY, osteoporosis=has_it), today=TODAY)

    assert result.outcome == "modify"
    [reason] = result.reasons
    assert reason.code == code
    assert reason.detail.startswith(detail)
    assert result.front_desk == []


def test_the_osteoporosis_question_starts_at_the_older_adult_age() -> None:
    born = date(TODAY.year - OLDER_ADULT_AGE, TODAY.month, TODAY.day)
    assert screen(intake(date_of_birth=born), today=TODAY).outcome == "modify"
    day_later = born + timedelta(days=1)
    assert screen(intake(date_of_birth=day_later), today=TODAY).reasons == []
    assert screen(intake(), today=TODAY).reasons == []  # no date of birth, no age


def test_a_younger_client_with_osteoporosis_has_gentle_pressure_too() -> None:
    result = screen(intake(date_of_birth=date(1980, 1, 1), osteoporosis=True), today=TODAY)

    assert [r.code for r in result.reasons] == ["osteoporosis"]


def test_declared_severe_osteoporosis_refers_without_the_question() -> None:
    result = screen(
        intake(date_of_birth=EIGHTY, contraindications=[{"code": "severe_osteoporosis"}]),
        today=TODAY,
    )

    assert result.outcome == "refer"
    assert [r.code for r in result.reasons] == ["severe_osteoporosis"]
    assert result.front_desk == []


def test_a_red_flag_and_the_dvt_questions_both_reach_the_front_desk() -> None:
    red_flag = dull_pain(onset=(TODAY - timedelta(days=20)).isoformat(), improving=False)
    result = screen(intake(complaints=[red_flag, CALF_PAIN]), today=TODAY)

    assert result.outcome == "defer"
    assert result.medical_check_required is True
    assert "see their doctor" in result.front_desk[0]
    assert result.front_desk[2:] == DVT_QUESTIONS


# --- invariants ----------------------------------------------------------------------------

regions = st.sampled_from(get_args(Region))
complaints = st.fixed_dictionaries(
    {
        "region": regions,
        "intensity": st.integers(0, 10),
        "qualities": st.lists(st.sampled_from(get_args(Quality)), unique=True, max_size=4),
        "onset": st.dates(date(2026, 1, 1), date(2027, 6, 1)).map(date.isoformat),
        "improving": st.sampled_from([None, True, False]),
    }
)
contraindication_items = st.fixed_dictionaries(
    {"code": st.sampled_from(get_args(ContraindicationCode))},
    optional={
        "region": regions,
        "since": st.dates(date(2026, 1, 1), date(2027, 6, 1)).map(date.isoformat),
    },
)
precaution_items = st.fixed_dictionaries({"code": st.sampled_from(get_args(PrecautionCode))})


answers = st.sampled_from([None, True, False])
dvt_answers = st.fixed_dictionaries(
    {},
    optional={
        "calf_swelling": answers,
        "calf_warmth_redness": answers,
        "long_journey_recent": answers,
    },
)


@given(
    complaint_list=st.lists(complaints, min_size=1, max_size=4),
    contraindication_list=st.lists(contraindication_items, max_size=4),
    precaution_list=st.lists(precaution_items, max_size=3),
    today=st.dates(date(2026, 6, 1), date(2027, 12, 31)),
    born=st.none() | st.dates(date(1925, 1, 1), date(2010, 1, 1)),
    dvt_signs=dvt_answers,
    osteoporosis=answers,
)
def test_reasons_name_a_domain_section_and_the_outcome_is_the_most_severe(
    complaint_list: list[dict[str, Any]],
    contraindication_list: list[dict[str, Any]],
    precaution_list: list[dict[str, Any]],
    today: date,
    born: date | None,
    dvt_signs: dict[str, bool | None],
    osteoporosis: bool | None,
) -> None:
    document = intake(
        complaints=complaint_list,
        contraindications=contraindication_list,
        precautions=precaution_list,
        date_of_birth=born,
        dvt_signs=dvt_signs,
        osteoporosis=osteoporosis,
    )
    result = screen(document, today=today)

    for reason in result.reasons:
        assert RULE_NAME.match(reason.rule), reason.rule
        assert SEVERITY[result.outcome] >= SEVERITY[reason.action]
    assert result.outcome == most_severe(r.action for r in result.reasons)
    assert (result.outcome == "clear") == all(r.action == "clear" for r in result.reasons)
    if result.outcome == "refer":
        assert result.referral_recommended
    if result.recheck_on is not None:
        assert result.recheck_on >= today
        assert any(r.action == "defer" for r in result.reasons)
    # calf pain is never cleared with a DVT question open (DOMAIN.md 2)
    calf = any(c["region"] == "leg" for c in complaint_list)
    declared = any(c["code"] == "dvt" for c in contraindication_list)
    if calf and not declared and result.outcome == "clear":
        assert document.health.dvt_signs.model_dump() == NO_DVT
    if any(r.code == "dvt_questions" for r in result.reasons):
        assert set(result.front_desk) & set(DVT_QUESTIONS)
