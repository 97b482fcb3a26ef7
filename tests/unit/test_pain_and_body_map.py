"""The shared clinical knowledge intake and the planner both apply: acute or
chronic and nerve signs (DOMAIN.md 1), and which muscles to assess first for a
complaint area (DOMAIN.md 3)."""

from __future__ import annotations

from datetime import date
from typing import Any, get_args

import pytest

from shared import body_map as bm
from shared import pain
from shared.events.intake import Complaint
from shared.vocabulary import Region

ON = date(2024, 6, 15)


def complaint(**fields: Any) -> Complaint:
    return Complaint.model_validate({"region": "neck", "intensity": 5, **fields})


@pytest.mark.parametrize(
    ("onset", "expected"),
    [
        (date(2024, 3, 16), "acute"),  # a day short of 3 months
        (date(2024, 3, 15), "chronic"),  # exactly 3 months
        (date(2024, 6, 15), "acute"),  # today
        (date(2023, 6, 15), "chronic"),
    ],
)
def test_condition_from_onset_date(onset: date, expected: str) -> None:
    assert pain.condition_for(complaint(onset=onset), on=ON) == expected


@pytest.mark.parametrize(("weeks", "expected"), [(0, "acute"), (12, "acute"), (13, "chronic")])
def test_condition_from_duration_weeks(weeks: int, expected: str) -> None:
    assert pain.condition_for(complaint(duration_weeks=weeks), on=ON) == expected


def test_thresholds_are_three_months_or_thirteen_weeks() -> None:
    assert pain.CHRONIC_AFTER_MONTHS == 3
    assert pain.CHRONIC_AFTER_WEEKS == 13


def test_months_since_counts_whole_months() -> None:
    assert pain.months_since(complaint(onset=date(2024, 3, 16)), on=ON) == 2
    assert pain.months_since(complaint(onset=date(2024, 3, 15)), on=ON) == 3
    assert pain.months_since(complaint(onset=date(2024, 1, 31)), on=date(2024, 2, 29)) == 1
    assert pain.months_since(complaint(duration_weeks=26), on=ON) == 6


def test_onset_date_wins_over_duration_weeks() -> None:
    both = complaint(onset=date(2024, 6, 1), duration_weeks=20)
    assert pain.condition_for(both, on=ON) == "acute"


def test_nerve_signs_are_sorted_and_only_nerve_qualities() -> None:
    c = complaint(onset=ON, qualities=["tingling", "ache", "burning", "sharp", "numbness"])
    assert pain.nerve_signs(c) == ["burning", "numbness", "tingling"]
    assert pain.nerve_signs(complaint(onset=ON, qualities=["deep", "dull"])) == []
    assert pain.nerve_signs(complaint(onset=ON)) == []


def test_planner_uses_the_shared_rule() -> None:
    from services.planner import course, domain, knowledge

    assert domain.condition_for is course.condition_for is pain.condition_for
    assert domain.months_since is pain.months_since
    assert knowledge.CHRONIC_AFTER_WEEKS == pain.CHRONIC_AFTER_WEEKS


def test_assess_first_for_a_headache() -> None:
    [(region, muscles)] = bm.assess_first(["head"])
    assert region == "head"
    assert {"upper trapezius", "sternocleidomastoid", "suboccipitals"} <= set(muscles)
    assert muscles == bm.REFERRERS["head"]


def test_excluded_region_drops_the_muscles_lying_there() -> None:
    [(_, muscles)] = bm.assess_first(["head"], excluded=["neck"])
    # every neck muscle goes, including those also lying in the head (suboccipitals)
    assert muscles == ("temporalis",)
    assert all(bm.MUSCLES[m].lies_in.isdisjoint({"neck"}) for m in muscles)


def test_works_in_excluded_when_any_area_is_excluded() -> None:
    assert bm.works_in_excluded("upper trapezius", ["shoulder"])
    assert bm.works_in_excluded("upper trapezius", {"neck", "foot"})
    assert not bm.works_in_excluded("upper trapezius", ["head"])
    assert not bm.works_in_excluded("temporalis", ())


def test_assess_first_keeps_order_and_each_region_once() -> None:
    found = bm.assess_first(["low_back", "head", "low_back", "neck", "head"])
    assert [region for region, _ in found] == ["low_back", "head", "neck"]
    assert found[0] == ("low_back", bm.REFERRERS["low_back"])


def test_assess_first_covers_every_region() -> None:
    regions: tuple[Region, ...] = get_args(Region)
    found = bm.assess_first(regions)
    assert [r for r, _ in found] == list(regions)
    assert all(muscles for _, muscles in found)
    assert bm.assess_first([]) == []


def test_the_home_program_tables_agree_on_what_they_name() -> None:
    """Every stretch has a position and every table names only known stretches and
    regions, so a stretch or region added to one table is not missing from another."""
    stretches = set(bm.STRETCHES)
    regions = set(get_args(Region))
    assert set(bm.STRETCH_POSITIONS) == stretches
    assert bm.HEAD_DOWN_STRETCHES.issubset(stretches)
    assert {*bm.STRETCH_ALTERNATIVES, *bm.STRETCH_ALTERNATIVES.values()} <= stretches
    assert {s for options in bm.STRETCHES_FOR.values() for s in options} <= stretches
    found = (*bm.MOVEMENTS, *bm.POSTURES)
    assert {s for limitation in found for s in limitation.stretches} <= stretches
    assert {limitation.region for limitation in found} <= regions
    for table in (bm.SELF_MASSAGE, bm.SELF_MASSAGE_POSITIONS, bm.GENTLE_SELF_MASSAGE):
        assert set(table) == set(bm.SELF_MASSAGE), table
    assert set(bm.SELF_MASSAGE) <= regions and set(bm.STRETCHES_FOR) <= regions
