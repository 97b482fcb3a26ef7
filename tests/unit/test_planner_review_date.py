"""A revised version's review date leaves room for its first visit (DOMAIN.md 5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.planner import knowledge as kb
from services.planner.progress import version_review_by

NOW = datetime(2027, 4, 16, 17, tzinfo=UTC)


def test_a_taper_every_two_weeks_is_reviewed_after_its_first_visit_can_be_held() -> None:
    review_by = version_review_by(NOW, interval_days=14)
    first_visit = NOW.date() + timedelta(days=14)
    assert review_by >= first_visit + timedelta(days=kb.FIRST_VISIT_ROOM_DAYS)


def test_a_weekly_version_keeps_the_fourteen_days() -> None:
    assert version_review_by(NOW, interval_days=7) == NOW.date() + timedelta(days=14)
    assert version_review_by(NOW, interval_days=3) == NOW.date() + timedelta(days=14)
