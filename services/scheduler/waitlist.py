"""Offering a freed slot to the waitlist (pure: no I/O, no clock; ``now`` is an argument).

A cancelled visit leaves a slot: a therapist and a room for start-end at one
location. It is offered to one waiting session at a time with a hold; accepting
within the hold books it, a decline or an expired hold offers it to the next
candidate. A candidate must meet the same rules as booking
(services/scheduler/booking.py), applied to that one slot:

- the same location, and the location is not closed that local day;
- the slot's therapist has every required skill, and is the requested one if any;
- the slot's local weekday and time of day fit the client's wishes (``WEEKDAYS``
  and ``TIMES_OF_DAY`` of slots.py, read on the location's clock, so a DST
  change does not move them);
- the plan's visit starts at the freed start and ends inside the freed interval;
- minimum notice from ``now``, and the session's own earliest start (cadence and
  soreness gap after the plan's previous visit, computed by the caller);
- the client is not busy then and keeps the soreness window (DOMAIN.md 5,
  24-48 h) to each of their held visits; the weekly maximum still has room;
- only a plan's first waiting session: booking waitlists every session after a
  missing one because the cadence has no anchor, so a later one cannot jump ahead.

Offer order: longest waiting first, then plan id and sequence, so ties are stable.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.scheduler.booking import eligible_therapists, weekly_cap
from services.scheduler.directory import Staffing
from services.scheduler.slots import TIMES_OF_DAY, BookedInterval, iso_week
from shared.chain import Policy
from shared.envelope import derived_id
from shared.events.plans import SchedulingNeeds
from shared.events.visits import VisitBooked
from shared.vocabulary import WEEKDAYS

# How long one client holds an offered slot before it goes to the next one. Two
# hours is time to answer a message during the day, and it is far below the
# default minimum notice (12 h), so the next client still gets a real choice.
# Policy.waitlist_hold carries it per chain or location.
WAITLIST_HOLD = timedelta(hours=2)

# An offer id, or the (plan_id, sequence) of a waiting session.
OfferKey = str | tuple[str, int]


@dataclass(frozen=True)
class FreedSlot:
    """The place a cancelled visit leaves: who, which room, when (UTC), where."""

    visit_id: str
    location_id: str
    timezone: str
    therapist_id: str
    room: int
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _require_aware(self.start, self.end)


@dataclass(frozen=True)
class WaitingSession:
    """One waitlisted session (``booking.waitlisted``) with what matching needs.

    ``since``: when it was waitlisted. ``earliest``: the earliest start that keeps
    the plan's cadence and soreness gap after the client's previous visit (the
    caller computes it); None when there is no previous visit."""

    plan_id: str
    plan_version: int
    client_id: str
    location_id: str
    sequence: int
    sessions_total: int
    visit_minutes: int
    needs: SchedulingNeeds
    since: datetime
    earliest: datetime | None = None

    def __post_init__(self) -> None:
        _require_aware(self.since, *([self.earliest] if self.earliest is not None else []))


@dataclass(frozen=True)
class Offer:
    """A freed slot held for one waiting session until ``hold_until`` (UTC)."""

    offer_id: str
    plan_id: str
    plan_version: int
    client_id: str
    location_id: str
    sequence: int
    therapist_id: str
    room: int
    start: datetime
    end: datetime
    timezone: str
    hold_until: datetime
    offered_at: datetime


def freed_by(visit: VisitBooked) -> FreedSlot:
    """The slot a cancelled (or moved) visit gives back."""
    return FreedSlot(
        visit_id=visit.visit_id,
        location_id=visit.location_id,
        timezone=visit.timezone,
        therapist_id=visit.therapist_id,
        room=visit.room,
        start=visit.start,
        end=visit.end,
    )


def candidates(
    freed: FreedSlot,
    *,
    waiting: Sequence[WaitingSession],
    staffing: Staffing,
    policy: Policy,
    now: datetime,
    client_busy: Mapping[str, Sequence[BookedInterval]],
) -> list[WaitingSession]:
    """The waiting sessions that may take ``freed``, in offer order (longest
    waiting first, then plan id, sequence). ``client_busy``: each client's held
    visits, any location; the freed visit itself is ignored there."""
    _require_aware(now)
    location = staffing.location
    if freed.location_id != location.id:
        raise ValueError(f"slot at {freed.location_id} matched against location {location.id}")
    # the directory may have changed since the slot was freed: a sick day frees slots
    # nobody can take
    if not staffing.holds(freed.therapist_id, freed.start, freed.end):
        return []
    fitting = [
        session
        for session in first_waiting_per_plan(waiting)
        if _fits(session, freed, staffing, policy, now, client_busy)
    ]
    return sorted(fitting, key=lambda s: (s.since, s.plan_id, s.sequence))


def first_waiting_per_plan(waiting: Sequence[WaitingSession]) -> list[WaitingSession]:
    """Each plan's next session to place: its newest version's lowest waiting
    sequence (the cadence cannot continue past a missing visit). A session listed
    twice (a redelivered event) counts as waiting since its first listing."""
    firsts: dict[str, WaitingSession] = {}
    for session in waiting:
        current = firsts.get(session.plan_id)
        if current is None or _plan_order(session) < _plan_order(current):
            firsts[session.plan_id] = session
    return list(firsts.values())


def _plan_order(session: WaitingSession) -> tuple[int, int, datetime]:
    return -session.plan_version, session.sequence, session.since


def _fits(
    session: WaitingSession,
    freed: FreedSlot,
    staffing: Staffing,
    policy: Policy,
    now: datetime,
    client_busy: Mapping[str, Sequence[BookedInterval]],
) -> bool:
    start, zone = freed.start, staffing.location.zone
    end = start + timedelta(minutes=session.visit_minutes)
    held = [i for i in client_busy.get(session.client_id, ()) if i.visit_id != freed.visit_id]
    return (
        session.location_id == freed.location_id
        and therapist_fits(session.needs, freed.therapist_id, staffing)
        and wishes_allow(session.needs, start, zone)
        and end <= freed.end
        and start >= now + policy.min_notice
        and (session.earliest is None or start >= session.earliest)
        and client_free(held, start, end, gap=policy.min_gap_same_area)
        and week_has_room(held, start, cap=weekly_cap(policy, session.needs), zone=zone)
    )


def therapist_fits(needs: SchedulingNeeds, therapist_id: str, staffing: Staffing) -> bool:
    """The slot's therapist works here, has every required skill and is the
    requested therapist if there is one (booking's ``eligible_therapists``)."""
    return any(t.id == therapist_id for t in eligible_therapists(needs, staffing.therapists))


def wishes_allow(needs: SchedulingNeeds, start: datetime, zone: ZoneInfo) -> bool:
    """The local weekday and time of day of ``start`` are among the client's
    wishes (empty: any), as slots.py defines them: half-open local ranges."""
    local = start.astimezone(zone)
    if needs.days and WEEKDAYS[local.weekday()] not in needs.days:
        return False
    if not needs.times:
        return True
    clock = local.time()
    return any(
        since <= clock and (until is None or clock < until)
        for since, until in (TIMES_OF_DAY[name] for name in needs.times)
    )


def client_free(
    held: Sequence[BookedInterval], start: datetime, end: datetime, *, gap: timedelta
) -> bool:
    """No held visit of the client overlaps [start, end) or lies within the
    soreness window (DOMAIN.md 5) before or after it, measured end to start."""
    return all(start >= h.end + gap or end + gap <= h.start for h in held)


def week_has_room(
    held: Sequence[BookedInterval], start: datetime, *, cap: int, zone: ZoneInfo
) -> bool:
    """Fewer than ``cap`` held visits in the local ISO week of ``start`` (the
    weekly maximum; a client's held visits are counted, whatever their plan)."""
    week = iso_week(start.astimezone(zone).date())
    return sum(iso_week(h.start.astimezone(zone).date()) == week for h in held) < cap


def earliest_after(
    previous: VisitBooked | None, *, interval_days: int, gap: timedelta, zone: ZoneInfo
) -> datetime | None:
    """The earliest start of a plan's next session after ``previous`` (its last
    visit that stays): the cadence, counted in local days as booking counts it,
    and the soreness gap after the previous visit's end. None: no previous visit."""
    if previous is None:
        return None
    day = previous.start.astimezone(zone).date() + timedelta(days=interval_days)
    cadence = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    return max(cadence, previous.end + gap)


def offer_id_for(freed: FreedSlot, session: WaitingSession) -> str:
    """Derived from the cause, so offering the same slot to the same session again
    (a redelivered cancel) yields the same offer."""
    return derived_id("waitlist-offer", freed.visit_id, session.plan_id, session.sequence)


def offer_for(
    session: WaitingSession,
    freed: FreedSlot,
    *,
    now: datetime,
    hold: timedelta = WAITLIST_HOLD,
) -> Offer:
    """The plan's visit at the freed start, held for ``hold`` from ``now``."""
    _require_aware(now)
    return Offer(
        offer_id=offer_id_for(freed, session),
        plan_id=session.plan_id,
        plan_version=session.plan_version,
        client_id=session.client_id,
        location_id=freed.location_id,
        sequence=session.sequence,
        therapist_id=freed.therapist_id,
        room=freed.room,
        start=freed.start,
        end=freed.start + timedelta(minutes=session.visit_minutes),
        timezone=freed.timezone,
        hold_until=now + hold,
        offered_at=now,
    )


def next_offer(
    freed: FreedSlot,
    *,
    waiting: Sequence[WaitingSession],
    declined_or_expired: Collection[OfferKey],
    staffing: Staffing,
    policy: Policy,
    now: datetime,
    client_busy: Mapping[str, Sequence[BookedInterval]],
    hold: timedelta = WAITLIST_HOLD,
) -> Offer | None:
    """The offer for the first candidate not yet declined or expired for this
    slot (by offer id or (plan_id, sequence)); None when nobody is left. The
    first offer of a slot is this with nothing declined."""
    for session in candidates(
        freed,
        waiting=waiting,
        staffing=staffing,
        policy=policy,
        now=now,
        client_busy=client_busy,
    ):
        offer = offer_for(session, freed, now=now, hold=hold)
        tried = offer.offer_id in declined_or_expired or (
            (session.plan_id, session.sequence) in declined_or_expired
        )
        if not tried:
            return offer
    return None


def accept_refusal(offer: Offer, *, now: datetime) -> str | None:
    """Why ``offer`` can no longer be accepted, or None while it is held
    (``now < hold_until``, and the visit has not started)."""
    _require_aware(now)
    zone = ZoneInfo(offer.timezone)
    if now >= offer.hold_until:
        return (
            f"The hold on this offer expired at {_local(offer.hold_until, zone)} local time; "
            "the slot may now be offered to someone else."
        )
    if now >= offer.start:
        return f"The offered visit started at {_local(offer.start, zone)} local time."
    return None


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%a %Y-%m-%d %H:%M}"


def _require_aware(*moments: datetime) -> None:
    if any(moment.tzinfo is None for moment in moments):
        raise ValueError("times must be timezone-aware")


__all__ = [
    "WAITLIST_HOLD",
    "FreedSlot",
    "Offer",
    "OfferKey",
    "WaitingSession",
    "accept_refusal",
    "candidates",
    "client_free",
    "earliest_after",
    "first_waiting_per_plan",
    "freed_by",
    "next_offer",
    "offer_for",
    "offer_id_for",
    "therapist_fits",
    "week_has_room",
    "wishes_allow",
]
