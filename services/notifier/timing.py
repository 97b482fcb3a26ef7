"""When reminders go out, and what they say (DESIGN.md "Guarantees": time, minimum necessary).

Pure: the visit, the policy values, the location's zone and ``now`` in; planned
send times and message text out. Day parts of an offset are counted on the
location's wall clock (a reminder P2D before a 10:00 visit goes at 10:00 two
days earlier, DST change or not); hours and minutes are exact elapsed time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

from services.notifier.messages import Clinic, ReminderContext, Templates
from shared.chain import parse_quiet_hours

MIN_LEAD_BEFORE_VISIT: Final = timedelta(minutes=15)
"""A reminder moved to the end of quiet hours must still arrive this long before the visit."""

BEFORE_QUIET_EDGE: Final = timedelta(minutes=1)
"""Otherwise it goes this long before the quiet window starts (the evening before)."""


@dataclass(frozen=True)
class PlannedReminder:
    offset: timedelta
    due_at: datetime  # UTC, aware
    moved_for_quiet_hours: bool


def reminder_times(
    *,
    visit_start: datetime,
    offsets: Sequence[timedelta],
    quiet_hours: str,
    zone: ZoneInfo,
    now: datetime,
) -> list[PlannedReminder]:
    """The reminders still to send for one visit, outside quiet hours, sorted by due time."""
    _require_aware(visit_start=visit_start, now=now)
    if any(offset <= timedelta(0) for offset in offsets):
        raise ValueError("reminder offsets must be positive durations before the visit")
    visit = visit_start.astimezone(UTC)
    by_due: dict[datetime, PlannedReminder] = {}
    # Largest offset first, so of two reminders landing on one instant the earlier-planned stays.
    for offset in sorted(set(offsets), reverse=True):
        planned = _plan_one(visit, offset, quiet_hours, zone)
        if planned is None or not now < planned.due_at < visit:
            continue
        kept = by_due.get(planned.due_at)
        if kept is None or (kept.moved_for_quiet_hours and not planned.moved_for_quiet_hours):
            by_due[planned.due_at] = planned
    return sorted(by_due.values(), key=lambda reminder: reminder.due_at)


@dataclass(frozen=True)
class MissedReminder:
    """A reminder that fell due between the visit's booking and now (a lag, an outage)."""

    offset: timedelta
    planned_at: datetime  # when it was due
    late_at: datetime | None  # when it goes instead; None: too late to be of use


def missed_reminders(
    *,
    visit_start: datetime,
    offsets: Sequence[timedelta],
    quiet_hours: str,
    zone: ZoneInfo,
    booked_at: datetime,
    now: datetime,
    min_lead: timedelta,
) -> list[MissedReminder]:
    """The reminders of one visit due after ``booked_at`` (a reminder due before the
    booking never applied) but not after ``now``, by planned time. The last of them
    goes late, now or at the end of the quiet hours now falls in, when that still
    leaves ``min_lead`` before the visit; one late message stands for them all, so
    the others (and that one, when the visit is too near) are too late."""
    _require_aware(visit_start=visit_start, booked_at=booked_at, now=now)
    visit = visit_start.astimezone(UTC)
    planned: dict[datetime, timedelta] = {}
    for offset in sorted(set(offsets), reverse=True):
        one = _plan_one(visit, offset, quiet_hours, zone)
        if one is not None and booked_at < one.due_at <= now and one.due_at < visit:
            planned.setdefault(one.due_at, offset)
    if not planned:
        return []
    late_at = next_outside_quiet_hours(now, quiet_hours=quiet_hours, zone=zone)
    useful = visit - late_at >= min_lead
    last = max(planned)
    return [
        MissedReminder(
            offset=offset, planned_at=due, late_at=late_at if due == last and useful else None
        )
        for due, offset in sorted(planned.items())
    ]


# A sender less behind than this is busy, not down: reminders are hours apart, and on a
# fast simulated clock (3600x) a tenth of a real second is six minutes.
SEND_GRACE = timedelta(minutes=30)


def too_late_to_send(
    *, visit_start: datetime, due_at: datetime, now: datetime, min_lead: timedelta
) -> bool:
    """Whether a reminder that is going out only now (its sender was down or behind)
    would reach the client too near the visit to be of use: the visit has started, or
    the sender is more than ``SEND_GRACE`` behind and less than ``min_lead`` is left.
    One sent on time is never too late here, whatever lead its quiet hours left it."""
    _require_aware(visit_start=visit_start, due_at=due_at, now=now)
    left = visit_start - now
    return left <= timedelta(0) or (now - due_at > SEND_GRACE and left < min_lead)


def next_outside_quiet_hours(instant: datetime, *, quiet_hours: str, zone: ZoneInfo) -> datetime:
    """``instant``, or the end of the quiet window it falls in (on the local wall clock)."""
    if not in_quiet_hours(instant, quiet_hours=quiet_hours, zone=zone):
        return instant
    _, window_end = _quiet_window_around(instant, quiet_hours, zone)
    return _at_wall(window_end, zone, gap="forward")


def in_quiet_hours(instant: datetime, *, quiet_hours: str, zone: ZoneInfo) -> bool:
    """Whether the location's wall clock at ``instant`` reads inside the quiet window."""
    _require_aware(instant=instant)
    start, end = parse_quiet_hours(quiet_hours)
    local = instant.astimezone(zone).time()
    if start < end:
        return start <= local < end
    if start > end:  # wraps midnight, e.g. 21:00-08:00
        return local >= start or local < end
    return False  # "08:00-08:00": an empty window


def offset_label(offset: timedelta) -> str:
    """An ISO 8601 duration: ``P2D``, ``PT2H``, ``PT30M``, ``P1DT12H``."""
    sign = "-" if offset < timedelta(0) else ""
    offset = abs(offset)
    hours, rest = divmod(offset.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    date_part = f"{offset.days}D" if offset.days else ""
    time_part = f"{hours}H" if hours else ""
    time_part += f"{minutes}M" if minutes else ""
    if seconds or offset.microseconds:
        fraction = f"{offset.microseconds:06d}".rstrip("0")
        time_part += f"{seconds}.{fraction}S" if fraction else f"{seconds}S"
    if not date_part and not time_part:
        time_part = "0S"
    return f"{sign}P{date_part}" + (f"T{time_part}" if time_part else "")


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


_TEMPLATES: Final = Templates()  # the packaged ones: no location overrides here


def render_reminder(
    *,
    clinic_name: str,
    location_name: str,
    address: str | None,
    phone: str | None,
    visit_start: datetime,
    zone: ZoneInfo,
    confirm_url: str,
    language: str,
) -> Message:
    """A visit reminder carrying the minimum necessary: where, when, whom to call. Nothing
    clinical can appear, because nothing clinical is passed in. The text is the packaged
    ``reminder`` email template (``services/notifier/messages.py``)."""
    _require_aware(visit_start=visit_start)
    clinic = Clinic(
        chain_name=clinic_name,
        location_name=location_name,
        address=address,
        phone=phone,
        timezone=zone.key,
    )
    context = ReminderContext(clinic=clinic, visit_start=visit_start, confirm_url=confirm_url)
    rendered = _TEMPLATES.render(
        "reminder", "email", language=language, location_id="", context=context
    )
    return Message(subject=rendered.subject, body=rendered.text)


def _plan_one(
    visit: datetime, offset: timedelta, quiet_hours: str, zone: ZoneInfo
) -> PlannedReminder | None:
    wall = visit.astimezone(zone).replace(tzinfo=None) - timedelta(days=offset.days)
    due = _at_wall(wall, zone, gap="forward") - (offset - timedelta(days=offset.days))
    if not in_quiet_hours(due, quiet_hours=quiet_hours, zone=zone):
        return PlannedReminder(offset=offset, due_at=due, moved_for_quiet_hours=False)
    window_start, window_end = _quiet_window_around(due, quiet_hours, zone)
    after = _at_wall(window_end, zone, gap="forward")
    before = _at_wall(window_start - BEFORE_QUIET_EDGE, zone, gap="backward")
    candidates = [after] if after <= visit - MIN_LEAD_BEFORE_VISIT else []
    candidates.append(before)
    for candidate in candidates:
        # Re-checked because a window edge inside a DST change can land oddly.
        if not in_quiet_hours(candidate, quiet_hours=quiet_hours, zone=zone):
            return PlannedReminder(offset=offset, due_at=candidate, moved_for_quiet_hours=True)
    return None


def _quiet_window_around(
    instant: datetime, quiet_hours: str, zone: ZoneInfo
) -> tuple[datetime, datetime]:
    """Local wall-clock start and end of the quiet window that contains ``instant``."""
    start, end = parse_quiet_hours(quiet_hours)
    local = instant.astimezone(zone)
    day = local.date()
    if start < end:
        return _wall(day, start), _wall(day, end)
    if local.time() >= start:  # the evening part of a window wrapping midnight
        return _wall(day, start), _wall(day + timedelta(days=1), end)
    return _wall(day - timedelta(days=1), start), _wall(day, end)


def _wall(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock)


def _at_wall(wall: datetime, zone: ZoneInfo, *, gap: Literal["forward", "backward"]) -> datetime:
    """The UTC instant a naive local wall time names. A time skipped by a spring-forward
    change is read with the offset before it (``forward``: the clock then reads an hour
    later) or after it (``backward``: an hour earlier); a repeated time is the first one."""
    aware = wall.replace(tzinfo=zone, fold=0)
    if aware.astimezone(zone).replace(tzinfo=None) != wall and gap == "backward":
        aware = wall.replace(tzinfo=zone, fold=1)
    return aware.astimezone(UTC)


def _require_aware(**instants: datetime) -> None:
    for name, instant in instants.items():
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")


__all__ = [
    "BEFORE_QUIET_EDGE",
    "MIN_LEAD_BEFORE_VISIT",
    "Message",
    "MissedReminder",
    "PlannedReminder",
    "in_quiet_hours",
    "missed_reminders",
    "next_outside_quiet_hours",
    "offset_label",
    "reminder_times",
    "render_reminder",
]
