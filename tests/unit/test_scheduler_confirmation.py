"""Confirming a visit (services/scheduler/confirmation.py): before it starts, once
per start, and shown as confirmed only while the visit stands where it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest

from services.scheduler.confirmation import (
    ShownStatus,
    confirmation,
    refusal,
    salt_of,
    shown_status,
)
from services.scheduler.store import VisitStatus
from tests.unit.test_scheduler_operations import visit

START = datetime(2027, 3, 16, 17, tzinfo=UTC)  # 10:00 PDT


@pytest.mark.parametrize(
    ("before_start", "refused"),
    [(timedelta(days=3), False), (timedelta(seconds=1), False), (timedelta(0), True),
     (-timedelta(minutes=30), True)],
)  # fmt: skip
def test_a_visit_is_confirmed_before_it_starts(before_start: timedelta, refused: bool) -> None:
    booked = visit(1, START)
    found = refusal(booked, now=START - before_start)
    assert (found is not None) is refused
    if found is not None:
        assert "started Tue 2027-03-16 10:00" in found  # on the location's clock


def test_the_confirmation_is_of_the_visit_at_its_start() -> None:
    booked = visit(2, START)
    now = START - timedelta(days=1)
    event = confirmation(booked, via="link", now=now)
    assert event.event_type == "visit.confirmed"
    assert (event.visit_id, event.plan_id, event.client_id, event.location_id) == (
        booked.visit_id,
        booked.plan_id,
        booked.client_id,
        booked.location_id,
    )
    assert (event.start, event.via, event.confirmed_at) == (START, "link", now)


def test_a_moved_visit_is_another_confirmation() -> None:
    booked = visit(1, START)
    moved = booked.model_copy(update={"start": START + timedelta(days=1)})
    assert salt_of(booked) == salt_of(visit(1, START))
    assert salt_of(moved) != salt_of(booked)


@pytest.mark.parametrize("state", get_args(VisitStatus))
@pytest.mark.parametrize("confirmed", [True, False])
def test_only_a_booked_visit_shows_confirmed(state: VisitStatus, confirmed: bool) -> None:
    shown: ShownStatus = shown_status(state, confirmed=confirmed)
    assert shown == ("confirmed" if state == "booked" and confirmed else state)
