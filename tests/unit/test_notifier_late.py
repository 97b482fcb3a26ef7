"""Reminders missed by a lag (pure): the last goes late while the visit is far
enough ahead, the rest are too late; one due before the booking never applied;
and one whose sender was down when it fell due is too late near the visit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.notifier.timing import MissedReminder, missed_reminders, too_late_to_send
from shared.chain import Policy, PolicyOverride

ZONE = ZoneInfo("America/Los_Angeles")
VISIT = datetime(2027, 3, 17, 17, tzinfo=UTC)  # Wednesday 10:00 PDT
OFFSETS = [timedelta(days=2), timedelta(hours=2)]


def missed(
    *, booked_at: datetime, now: datetime, lead: timedelta = timedelta(hours=1)
) -> list[MissedReminder]:
    return missed_reminders(
        visit_start=VISIT,
        offsets=OFFSETS,
        quiet_hours="21:00-08:00",
        zone=ZONE,
        booked_at=booked_at,
        now=now,
        min_lead=lead,
    )


def test_the_last_missed_reminder_goes_late_and_the_earlier_one_is_too_late() -> None:
    now = VISIT - timedelta(minutes=100)
    found = missed(booked_at=VISIT - timedelta(days=3), now=now)
    assert [(m.offset, m.late_at) for m in found] == [
        (timedelta(days=2), None),
        (timedelta(hours=2), now),
    ]


def test_too_near_the_visit_nothing_goes_late() -> None:
    found = missed(booked_at=VISIT - timedelta(days=3), now=VISIT - timedelta(minutes=59))
    assert [m.late_at for m in found] == [None, None]


def test_a_late_reminder_waits_out_quiet_hours() -> None:
    now = datetime(2027, 3, 16, 6, tzinfo=UTC)  # Monday 23:00 PDT, inside quiet hours
    [late] = missed(booked_at=VISIT - timedelta(days=3), now=now)
    assert late.late_at == datetime(2027, 3, 16, 15, tzinfo=UTC)  # 08:00 PDT


def test_a_reminder_due_before_the_booking_was_never_missed() -> None:
    assert missed(booked_at=VISIT - timedelta(days=1), now=VISIT - timedelta(days=1)) == []


def test_the_wait_and_the_lead_are_validated() -> None:
    assert Policy().contact_wait == timedelta(minutes=5)
    assert Policy().late_reminder_min_lead == timedelta(hours=1)
    with pytest.raises(ValidationError):
        PolicyOverride(contact_wait=timedelta(0))
    with pytest.raises(ValidationError):
        PolicyOverride(late_reminder_min_lead=timedelta(minutes=-1))


@pytest.mark.parametrize(
    ("sent_before_visit", "due_before_visit", "too_late"),
    [
        (timedelta(hours=2), timedelta(hours=2), False),  # on time
        (timedelta(minutes=30), timedelta(hours=2), True),  # a sender 90 min behind
        (timedelta(hours=1, minutes=30), timedelta(hours=2), False),  # behind, still useful
        (timedelta(hours=40), timedelta(days=2), False),  # the day-before one, 8 h late
        (timedelta(minutes=40), timedelta(minutes=43), False),  # quiet hours left it little
        (timedelta(0), timedelta(minutes=1), True),  # the visit has started
        (-timedelta(minutes=5), timedelta(hours=2), True),
    ],
)
def test_a_reminder_going_out_late_is_too_late_only_near_the_visit(
    sent_before_visit: timedelta, due_before_visit: timedelta, too_late: bool
) -> None:
    verdict = too_late_to_send(
        visit_start=VISIT,
        due_at=VISIT - due_before_visit,
        now=VISIT - sent_before_visit,
        min_lead=timedelta(hours=1),
    )
    assert verdict is too_late
