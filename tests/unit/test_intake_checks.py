"""Intake input as people actually send it: separators in phone numbers, ISO
durations, future dates and therapists who do not work at the location."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from services.intake.checks import problems
from shared.chain import load_chain_config
from shared.events.intake import IntakeDocument
from tests.conftest import DEMO_CHAIN

TODAY = date(2026, 11, 21)
CHAIN = load_chain_config(DEMO_CHAIN)


def document(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "location_id": "beaverton",
        "client": {"name": "Lee"},
        "complaints": [{"region": "neck", "intensity": 4, "onset": "2026-10-01"}],
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    "written", ["+1 503 555 0142", "+1 (503) 555-0142", "+1.503.555.0142", "+15035550142"]
)
def test_phone_separators_are_dropped(written: str) -> None:
    parsed = IntakeDocument.model_validate(document(client={"name": "Lee", "phone": written}))
    assert parsed.client.phone == "+15035550142"


def test_a_phone_without_country_code_is_refused_with_its_path() -> None:
    with pytest.raises(ValidationError) as refused:
        IntakeDocument.model_validate(document(client={"name": "Lee", "phone": "503 555 0142"}))
    assert refused.value.errors()[0]["loc"] == ("client", "phone")


def test_language_is_case_insensitive() -> None:
    parsed = IntakeDocument.model_validate(document(client={"name": "Lee", "language": "ES"}))
    assert parsed.client.language == "es"


@pytest.mark.parametrize(
    ("duration", "weeks"), [("P6W", 6), ("P10D", 1), ("P3M", 13), ("P2M", 9), ("P1Y", 52)]
)
def test_an_iso_duration_becomes_weeks(duration: str, weeks: int) -> None:
    complaint = {"region": "neck", "intensity": 4, "duration": duration}
    parsed = IntakeDocument.model_validate(document(complaints=[complaint]))
    assert parsed.complaints[0].duration_weeks == weeks


@pytest.mark.parametrize(
    "complaint",
    [
        {"region": "neck", "intensity": 4, "duration": "three months"},
        {"region": "neck", "intensity": 4, "duration": "P3M", "duration_weeks": 13},
    ],
)
def test_a_bad_or_doubled_duration_is_refused(complaint: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as refused:
        IntakeDocument.model_validate(document(complaints=[complaint]))
    assert refused.value.errors()[0]["loc"] == ("complaints", 0)


def test_an_empty_or_huge_list_item_is_refused() -> None:
    for goal in ("", "x" * 301):
        with pytest.raises(ValidationError) as refused:
            IntakeDocument.model_validate(document(goals=[goal]))
        assert refused.value.errors()[0]["loc"] == ("goals", 0)


def test_a_plain_intake_has_no_problems() -> None:
    assert problems(IntakeDocument.model_validate(document()), chain=CHAIN, today=TODAY) == []


def test_future_dates_are_problems_with_their_paths() -> None:
    intake = IntakeDocument.model_validate(
        document(
            client={"name": "Lee", "date_of_birth": "2027-01-01"},
            complaints=[
                {"region": "neck", "intensity": 4, "onset": "2026-11-21"},
                {"region": "head", "intensity": 4, "onset": "2026-11-22"},
            ],
            health={"contraindications": [{"code": "recent_surgery", "since": "2026-12-01"}]},
        )
    )
    paths = [path for path, _ in problems(intake, chain=CHAIN, today=TODAY)]
    assert paths == [
        ("client", "date_of_birth"),
        ("complaints", 1, "onset"),
        ("health", "contraindications", 0, "since"),
    ]


def test_a_preferred_therapist_must_work_at_the_location() -> None:
    elsewhere = IntakeDocument.model_validate(document(preferences={"therapist_id": "t-chloe"}))
    found = problems(elsewhere, chain=CHAIN, today=TODAY)
    assert [path for path, _ in found] == [("preferences", "therapist_id")]
    assert "t-ana" in found[0][1]
    here = IntakeDocument.model_validate(document(preferences={"therapist_id": "t-ana"}))
    assert problems(here, chain=CHAIN, today=TODAY) == []
