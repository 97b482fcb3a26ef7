"""The retention rule of finished courses and the marker they leave (shared/retention.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.chain import Policy, PolicyOverride, load_chain_config
from shared.retention import RetiredCourse, retire_before
from tests.conftest import DEMO_CHAIN


def test_a_marker_is_small_and_reads_back_whole() -> None:
    course = RetiredCourse(
        plan_id="6f1c2b7e-93c4-4d1a-9a57-3f0e4c1d2b8a",
        client_id="c-5d1e0d3a-2f4b-4c6e-8a1b-9d7c3e2f1a0b",
        ended_at=datetime(2027, 3, 8, 16, 30, tzinfo=UTC),
        outcome="course_complete",
    )
    encoded = course.encode()
    assert len(encoded) < 80
    assert RetiredCourse.decode(course.plan_id, encoded) == course
    assert course.retained_until(timedelta(days=90)) == datetime(2027, 6, 6, 16, 30, tzinfo=UTC)


def test_a_client_id_with_the_separator_still_reads_back() -> None:
    course = RetiredCourse("p-1", "odd|id", datetime(2027, 1, 1, tzinfo=UTC), "declined")
    assert RetiredCourse.decode("p-1", course.encode()) == course


def test_courses_are_due_once_the_period_after_their_end_has_passed() -> None:
    now = datetime(2027, 6, 1, tzinfo=UTC)
    assert retire_before(now, timedelta(days=90)) == datetime(2027, 3, 3, tzinfo=UTC)


def test_the_period_is_ninety_days_and_at_least_a_day() -> None:
    assert Policy().keep_finished_courses == timedelta(days=90)
    assert Policy(keep_finished_courses="P30D").keep_finished_courses == timedelta(days=30)
    with pytest.raises(ValidationError, match="keep_finished_courses"):
        Policy(keep_finished_courses="PT1H")
    assert PolicyOverride(keep_finished_courses="P2Y").keep_finished_courses == timedelta(days=730)
    with pytest.raises(ValidationError, match="keep_finished_courses"):
        PolicyOverride(keep_finished_courses="PT1H")


def test_a_location_gone_from_the_chain_keeps_its_courses_for_the_chains_period() -> None:
    chain = load_chain_config(DEMO_CHAIN)
    longer = chain.model_copy(
        update={
            "locations": [
                loc.model_copy(update={"policy": PolicyOverride(keep_finished_courses="P1Y")})
                if loc.id == "brooklyn"
                else loc
                for loc in chain.locations
            ]
        }
    )
    assert longer.keep_finished_courses("brooklyn") == timedelta(days=365)
    assert longer.keep_finished_courses("beaverton") == timedelta(days=90)
    assert longer.keep_finished_courses("a-closed-location") == timedelta(days=90)
    assert longer.shortest_keep_finished_courses() == timedelta(days=90)
