"""Reminder timing (quiet hours, DST) and minimum-necessary reminder text."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifier.timing import (
    MIN_LEAD_BEFORE_VISIT,
    PlannedReminder,
    in_quiet_hours,
    offset_label,
    reminder_times,
    render_reminder,
)
from shared.chain import Policy

LA = ZoneInfo("America/Los_Angeles")
NIGHT = "21:00-08:00"
LUNCH = "13:00-14:00"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
DEFAULT_OFFSETS = Policy().reminders


def local(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LA)


def plan(
    visit_start: datetime,
    offsets: list[timedelta] = DEFAULT_OFFSETS,
    *,
    quiet_hours: str = NIGHT,
    now: datetime = LONG_AGO,
) -> list[PlannedReminder]:
    return reminder_times(
        visit_start=visit_start, offsets=offsets, quiet_hours=quiet_hours, zone=LA, now=now
    )


def walls(reminders: list[PlannedReminder]) -> list[str]:
    return [r.due_at.astimezone(LA).strftime("%Y-%m-%d %H:%M %Z") for r in reminders]


# --- offsets -----------------------------------------------------------------------------


def test_default_offsets_are_two_days_and_two_hours() -> None:
    assert [offset_label(o) for o in DEFAULT_OFFSETS] == ["P2D", "PT2H"]


@pytest.mark.parametrize(
    ("offset", "label"),
    [
        (timedelta(days=2), "P2D"),
        (timedelta(hours=2), "PT2H"),
        (timedelta(minutes=30), "PT30M"),
        (timedelta(days=1, hours=12), "P1DT12H"),
        (timedelta(hours=1, minutes=30), "PT1H30M"),
        (timedelta(seconds=90), "PT1M30S"),
        (timedelta(0), "PT0S"),
        (timedelta(hours=-2), "-PT2H"),
    ],
)
def test_offset_label_is_iso_8601(offset: timedelta, label: str) -> None:
    assert offset_label(offset) == label


# --- plain planning ----------------------------------------------------------------------


def test_default_reminders_for_an_afternoon_visit() -> None:
    reminders = plan(local(2027, 5, 18, 14, 0))

    assert walls(reminders) == ["2027-05-16 14:00 PDT", "2027-05-18 12:00 PDT"]
    assert [r.offset for r in reminders] == [timedelta(days=2), timedelta(hours=2)]
    assert not any(r.moved_for_quiet_hours for r in reminders)
    assert all(r.due_at.tzinfo is UTC for r in reminders)


def test_results_are_sorted_whatever_the_order_of_offsets() -> None:
    reminders = plan(local(2027, 5, 18, 14, 0), [timedelta(hours=2), timedelta(days=2)])

    assert [r.offset for r in reminders] == [timedelta(days=2), timedelta(hours=2)]


def test_past_reminders_are_dropped() -> None:
    visit = local(2027, 5, 18, 14, 0)
    two_days_before = visit - timedelta(days=2)

    assert [r.offset for r in plan(visit, now=two_days_before)] == [timedelta(hours=2)]
    assert [r.offset for r in plan(visit, now=two_days_before - timedelta(seconds=1))] == [
        timedelta(days=2),
        timedelta(hours=2),
    ]
    assert plan(visit, now=visit - timedelta(hours=1)) == []


def test_offsets_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        plan(local(2027, 5, 18, 14, 0), [timedelta(0)])


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan(datetime(2027, 5, 18, 14, 0))


# --- quiet hours -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "minute", "quiet"),
    [(20, 59, False), (21, 0, True), (23, 30, True), (0, 0, True), (7, 59, True), (8, 0, False)],
)
def test_in_quiet_hours_wrapping_midnight(hour: int, minute: int, quiet: bool) -> None:
    instant = local(2027, 5, 18, hour, minute)
    assert in_quiet_hours(instant, quiet_hours=NIGHT, zone=LA) is quiet


@pytest.mark.parametrize(
    ("hour", "minute", "quiet"), [(12, 59, False), (13, 0, True), (13, 59, True), (14, 0, False)]
)
def test_in_quiet_hours_within_a_day(hour: int, minute: int, quiet: bool) -> None:
    instant = local(2027, 5, 18, hour, minute)
    assert in_quiet_hours(instant, quiet_hours=LUNCH, zone=LA) is quiet


def test_quiet_hours_are_read_on_the_locations_clock() -> None:
    # 04:00 UTC is 21:00 in Los Angeles (PDT): quiet there, whatever the server's zone.
    assert in_quiet_hours(datetime(2027, 5, 19, 4, 0, tzinfo=UTC), quiet_hours=NIGHT, zone=LA)


def test_early_morning_reminder_moves_to_the_end_of_the_night() -> None:
    [_, two_hours] = plan(local(2027, 5, 18, 9, 0))

    assert walls([two_hours]) == ["2027-05-18 08:00 PDT"]
    assert two_hours.moved_for_quiet_hours


def test_evening_reminder_moves_to_the_next_morning() -> None:
    [reminder] = plan(local(2027, 5, 19, 9, 0), [timedelta(hours=12)])

    assert walls([reminder]) == ["2027-05-19 08:00 PDT"]
    assert reminder.moved_for_quiet_hours


def test_too_close_to_the_visit_moves_to_the_evening_before() -> None:
    # 08:10 visit: 06:10 is quiet and 08:00 leaves only 10 minutes, so 20:59 the evening before.
    [_, two_hours] = plan(local(2027, 5, 18, 8, 10))

    assert timedelta(minutes=15) == MIN_LEAD_BEFORE_VISIT
    assert walls([two_hours]) == ["2027-05-17 20:59 PDT"]
    assert two_hours.moved_for_quiet_hours


def test_fifteen_minutes_of_lead_is_enough() -> None:
    [_, two_hours] = plan(local(2027, 5, 18, 8, 15))

    assert walls([two_hours]) == ["2027-05-18 08:00 PDT"]


def test_late_evening_reminder_for_an_early_visit_moves_before_the_window() -> None:
    [reminder] = plan(local(2027, 5, 18, 22, 30), [timedelta(minutes=30)])

    assert walls([reminder]) == ["2027-05-18 20:59 PDT"]


def test_non_wrapping_window_moves_to_its_end() -> None:
    [reminder] = plan(local(2027, 5, 18, 15, 0), [timedelta(hours=2)], quiet_hours=LUNCH)

    assert walls([reminder]) == ["2027-05-18 14:00 PDT"]
    assert reminder.moved_for_quiet_hours


def test_non_wrapping_window_moves_to_its_start_when_the_end_is_too_late() -> None:
    [reminder] = plan(local(2027, 5, 18, 14, 10), [timedelta(minutes=30)], quiet_hours=LUNCH)

    assert walls([reminder]) == ["2027-05-18 12:59 PDT"]


def test_moved_reminder_already_past_is_dropped() -> None:
    visit = local(2027, 5, 18, 8, 10)

    assert plan(visit, [timedelta(hours=2)], now=local(2027, 5, 17, 22, 0)) == []


def test_reminders_landing_on_one_instant_are_collapsed() -> None:
    reminders = plan(local(2027, 5, 18, 9, 0), [timedelta(hours=1, minutes=30), timedelta(hours=2)])

    assert walls(reminders) == ["2027-05-18 08:00 PDT"]
    assert reminders[0].offset == timedelta(hours=2)


# --- daylight saving time (America/Los_Angeles 2027: 14 March and 7 November) ------------


def test_two_days_before_across_spring_forward_keeps_the_wall_time() -> None:
    visit = local(2027, 3, 15, 10, 0)
    [two_days, _] = plan(visit)

    assert walls([two_days]) == ["2027-03-13 10:00 PST"]
    assert visit - two_days.due_at == timedelta(hours=47)


def test_two_days_before_across_fall_back_keeps_the_wall_time() -> None:
    visit = local(2027, 11, 8, 10, 0)
    [two_days, _] = plan(visit)

    assert walls([two_days]) == ["2027-11-06 10:00 PDT"]
    assert visit - two_days.due_at == timedelta(hours=49)


def test_visit_on_the_change_day() -> None:
    assert walls(plan(local(2027, 3, 14, 10, 0))) == [
        "2027-03-12 10:00 PST",
        "2027-03-14 08:00 PDT",
    ]
    assert walls(plan(local(2027, 11, 7, 10, 0))) == [
        "2027-11-05 10:00 PDT",
        "2027-11-07 08:00 PST",
    ]


def test_hours_are_elapsed_time_across_the_change() -> None:
    # 04:00 PDT on 14 March is two real hours after 01:00 PST.
    [reminder] = plan(local(2027, 3, 14, 4, 0), [timedelta(hours=2)], quiet_hours=LUNCH)

    assert walls([reminder]) == ["2027-03-14 01:00 PST"]


def test_a_wall_time_skipped_by_spring_forward_moves_forward() -> None:
    [reminder] = plan(local(2027, 3, 16, 2, 30), [timedelta(days=2)], quiet_hours=LUNCH)

    assert walls([reminder]) == ["2027-03-14 03:30 PDT"]


# --- rendering ---------------------------------------------------------------------------


def render(language: str = "en", **changes: object) -> tuple[str, str]:
    arguments: dict[str, object] = {
        "clinic_name": "Veeva Chiropractic",
        "location_name": "Beaverton",
        "address": "4500 SW Main St, Beaverton, OR",
        "phone": "+15035550100",
        "visit_start": datetime(2027, 3, 16, 17, 0, tzinfo=UTC),
        "zone": LA,
        "confirm_url": "https://clinic.example/c/abc123",
        "language": language,
    } | changes
    message = render_reminder(**arguments)  # type: ignore[arg-type]
    return message.subject, message.body


def test_english_reminder_shows_local_time_and_zone() -> None:
    subject, body = render()

    when = "Tuesday, March 16 at 10:00 AM PDT"
    assert subject == f"Appointment reminder: Veeva Chiropractic, {when}"
    assert f"at Veeva Chiropractic on {when}." in body
    for part in ("Beaverton", "4500 SW Main St", "+15035550100", "https://clinic.example/c/abc123"):
        assert part in body


def test_zone_abbreviation_follows_the_date_and_the_location() -> None:
    winter = datetime(2027, 1, 12, 21, 30, tzinfo=UTC)
    assert "Tuesday, January 12 at 1:30 PM PST" in render(visit_start=winter)[0]
    new_york = ZoneInfo("America/New_York")
    assert "at 4:30 PM EST" in render(visit_start=winter, zone=new_york)[0]


def test_spanish_reminder() -> None:
    subject, body = render("es")

    assert subject == "Recordatorio de cita: Veeva Chiropractic, martes 16 de marzo a las 10:00 PDT"
    assert "Llame al +15035550100" in body
    assert "https://clinic.example/c/abc123" in body


def test_other_languages_fall_back_to_english() -> None:
    assert render("fr") == render("en")


def test_missing_address_and_phone_are_left_out() -> None:
    _, body = render(address=None, phone=None)

    assert "Call" not in body
    assert "None" not in body


def test_reminder_can_carry_nothing_clinical() -> None:
    # Minimum necessary (DESIGN.md): the renderer is never given a complaint, plan or note.
    assert set(inspect.signature(render_reminder).parameters) == {
        "clinic_name",
        "location_name",
        "address",
        "phone",
        "visit_start",
        "zone",
        "confirm_url",
        "language",
    }


# --- invariants --------------------------------------------------------------------------

zones = st.sampled_from(
    ["America/Los_Angeles", "America/New_York", "Europe/Berlin", "Australia/Sydney", "UTC"]
).map(ZoneInfo)
clock_times = st.tuples(st.integers(0, 23), st.integers(0, 59)).map(
    lambda t: f"{t[0]:02d}:{t[1]:02d}"
)
quiet_windows = st.tuples(clock_times, clock_times).map("-".join)
offsets = st.lists(
    st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=7)), max_size=4
)


@given(
    visit_start=st.datetimes(datetime(2027, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC)),
    zone=zones,
    offset_list=offsets | st.just(DEFAULT_OFFSETS),
    quiet_hours=quiet_windows | st.just(NIGHT),
    lead=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=8)),
)
def test_reminders_are_outside_quiet_hours_and_between_now_and_the_visit(
    visit_start: datetime,
    zone: ZoneInfo,
    offset_list: list[timedelta],
    quiet_hours: str,
    lead: timedelta,
) -> None:
    now = visit_start - lead
    reminders = reminder_times(
        visit_start=visit_start, offsets=offset_list, quiet_hours=quiet_hours, zone=zone, now=now
    )

    for reminder in reminders:
        assert reminder.due_at.tzinfo is UTC
        assert now < reminder.due_at < visit_start
        assert not in_quiet_hours(reminder.due_at, quiet_hours=quiet_hours, zone=zone)
    due = [r.due_at for r in reminders]
    assert due == sorted(set(due))
