"""The local date and time wording messages and pages share (shared/local_time.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.notifier import messages
from shared.local_time import language_of, when_local


@pytest.mark.parametrize(
    ("tag", "language"),
    [("es", "es"), ("es-MX", "es"), ("ES_mx", "es"), ("en-GB", "en"), ("fr", "en"), ("", "en"),
     (None, "en")],
)  # fmt: skip
def test_a_language_tag_names_a_language_written_to(tag: str | None, language: str) -> None:
    assert language_of(tag) == language


def test_the_wall_clock_of_the_location_on_both_sides_of_a_dst_change() -> None:
    before = datetime(2027, 3, 8, 17, tzinfo=UTC)  # 09:00 PST
    after = datetime(2027, 3, 15, 16, tzinfo=UTC)  # 09:00 PDT
    zone = "America/Los_Angeles"
    assert when_local(before, zone, "en") == "Monday, March 8 at 9:00 AM PST"
    assert when_local(after, zone, "es") == "lunes 15 de marzo a las 9:00 PDT"
    assert when_local(datetime(2027, 3, 15, 8, tzinfo=UTC), zone, "es").endswith("a la 1:00 PDT")


def test_messages_word_times_as_pages_do() -> None:
    assert messages.when_local is when_local
    assert messages.language_of is language_of
