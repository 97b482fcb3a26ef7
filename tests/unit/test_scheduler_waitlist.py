"""Offering a freed slot to the waitlist (services/scheduler/waitlist.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.scheduler.directory import plain
from services.scheduler.slots import BookedInterval
from services.scheduler.waitlist import (
    WAITLIST_HOLD,
    FreedSlot,
    Offer,
    WaitingSession,
    accept_refusal,
    candidates,
    earliest_after,
    freed_by,
    next_offer,
    offer_for,
)
from shared.chain import Location, Policy, Therapist, WeeklyHours
from shared.envelope import derived_id
from shared.events.plans import SchedulingNeeds
from shared.events.visits import VisitBooked
from shared.vocabulary import WEEKDAYS

LA = "America/Los_Angeles"
ALL_WEEK: WeeklyHours = {day: ["08:00-20:00"] for day in WEEKDAYS}
LOCATION = Location(id="beaverton", name="Beaverton", timezone=LA, hours=ALL_WEEK, rooms=2)
ANA = Therapist(id="t-ana", name="Ana", locations=["beaverton"], skills=["nmt"])
BEN = Therapist(id="t-ben", name="Ben", locations=["beaverton"], skills=["nmt", "fmm"])
THERAPISTS = [(ANA, ALL_WEEK), (BEN, ALL_WEEK)]
POLICY = Policy()  # 12 h notice, 48 h soreness gap, 2 visits a week
NOW = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)  # Thursday 04:00 in Los Angeles (PST)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A Los Angeles wall-clock time, as the UTC instant it is."""
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(LA)).astimezone(UTC)


TUESDAY = date(2026, 3, 10)  # the week after the DST change


def freed_slot(
    start: datetime | None = None,
    *,
    minutes: int = 60,
    therapist: str = "t-ana",
    visit_id: str = "v-cancelled",
) -> FreedSlot:
    start = start or at(TUESDAY, 10)
    return FreedSlot(
        visit_id=visit_id,
        location_id="beaverton",
        timezone=LA,
        therapist_id=therapist,
        room=2,
        start=start,
        end=start + timedelta(minutes=minutes),
    )


def session(
    plan_id: str = "plan-a",
    *,
    sequence: int = 3,
    client_id: str | None = None,
    minutes: int = 60,
    since: datetime = NOW - timedelta(days=1),
    earliest: datetime | None = None,
    location_id: str = "beaverton",
    version: int = 1,
    **needs: object,
) -> WaitingSession:
    return WaitingSession(
        plan_id=plan_id,
        plan_version=version,
        client_id=client_id or f"client-of-{plan_id}",
        location_id=location_id,
        sequence=sequence,
        sessions_total=6,
        visit_minutes=minutes,
        needs=SchedulingNeeds.model_validate(needs),
        since=since,
        earliest=earliest,
    )


def held(
    client_id: str, start: datetime, *, minutes: int = 60, visit_id: str = "v-held"
) -> BookedInterval:
    return BookedInterval(
        therapist_id="t-ben",
        room=1,
        start=start,
        end=start + timedelta(minutes=minutes),
        visit_id=visit_id,
        client_id=client_id,
    )


def who(
    freed: FreedSlot,
    waiting: Sequence[WaitingSession],
    *,
    now: datetime = NOW,
    busy: dict[str, list[BookedInterval]] | None = None,
    location: Location = LOCATION,
) -> list[str]:
    """The plan ids of the candidates, in offer order."""
    found = candidates(
        freed,
        waiting=waiting,
        staffing=plain(location, THERAPISTS),
        policy=POLICY,
        now=now,
        client_busy=busy or {},
    )
    return [s.plan_id for s in found]


def offer_next(
    freed: FreedSlot,
    waiting: Sequence[WaitingSession],
    tried: set[str | tuple[str, int]],
    *,
    now: datetime = NOW,
) -> Offer | None:
    return next_offer(
        freed,
        waiting=waiting,
        declined_or_expired=tried,
        staffing=plain(LOCATION, THERAPISTS),
        policy=POLICY,
        now=now,
        client_busy={},
    )


# --- who fits ----------------------------------------------------------------------


def test_a_session_that_fits_gets_the_visit_at_the_freed_start() -> None:
    freed = freed_slot(minutes=90)
    waiting = session(minutes=60)
    assert who(freed, [waiting]) == ["plan-a"]

    offer = offer_for(waiting, freed, now=NOW)
    assert (offer.therapist_id, offer.room, offer.start) == ("t-ana", 2, freed.start)
    assert offer.end == freed.start + timedelta(minutes=60)
    assert (offer.client_id, offer.sequence, offer.location_id) == (
        "client-of-plan-a",
        3,
        "beaverton",
    )


def test_the_slot_therapist_must_have_every_required_skill() -> None:
    fmm = session(required_skills=["fmm", "nmt"])
    assert who(freed_slot(therapist="t-ana"), [fmm]) == []
    assert who(freed_slot(therapist="t-ben"), [fmm]) == ["plan-a"]


def test_a_therapist_who_no_longer_works_here_is_offered_to_nobody() -> None:
    assert who(freed_slot(therapist="t-gone"), [session()]) == []


def test_a_requested_therapist_takes_only_their_own_slots() -> None:
    wants_ben = session(therapist_id="t-ben")
    assert who(freed_slot(therapist="t-ana"), [wants_ben]) == []
    assert who(freed_slot(therapist="t-ben"), [wants_ben]) == ["plan-a"]


# 2026-03-08 is the spring-forward Sunday in Los Angeles: from 03:00 it is UTC-7.
DST_SUNDAY, DST_MONDAY = date(2026, 3, 8), date(2026, 3, 9)


@pytest.mark.parametrize(
    ("start", "wishes", "fits"),
    [
        # Sunday 17:00 PDT is Monday 00:00 UTC: the local day and evening decide.
        (at(DST_SUNDAY, 17), {"days": ["sun"], "times": ["evening"]}, True),
        (at(DST_SUNDAY, 17), {"days": ["mon"]}, False),
        (at(DST_SUNDAY, 17), {"times": ["afternoon"]}, False),  # 16:00 on the old offset
        # Monday 12:00 PDT would read 11:00 on the winter offset.
        (at(DST_MONDAY, 12), {"times": ["morning"]}, False),
        (at(DST_MONDAY, 12), {"days": ["mon"], "times": ["afternoon"]}, True),
        (at(DST_MONDAY, 11, 30), {"times": ["morning"]}, True),
        (at(DST_MONDAY, 16, 30), {"times": ["afternoon", "evening"]}, True),
        (at(DST_MONDAY, 9), {"days": ["tue", "wed"]}, False),
        (at(DST_MONDAY, 9), {}, True),
    ],
)
def test_day_and_time_wishes_are_read_on_the_location_clock(
    start: datetime, wishes: dict[str, list[str]], fits: bool
) -> None:
    assert start.tzinfo is UTC
    waiting = replace(session(), needs=SchedulingNeeds.model_validate(wishes))
    assert who(freed_slot(start), [waiting]) == (["plan-a"] if fits else [])


def test_the_visit_must_fit_inside_the_freed_interval() -> None:
    freed = freed_slot(minutes=60)
    assert who(freed, [session(minutes=90)]) == []
    assert who(freed, [session(minutes=60)]) == ["plan-a"]
    assert offer_for(session(minutes=45), freed, now=NOW).end == freed.start + timedelta(minutes=45)


def test_the_slot_must_keep_the_minimum_notice() -> None:
    freed = freed_slot()
    assert who(freed, [session()], now=freed.start - POLICY.min_notice) == ["plan-a"]
    assert who(freed, [session()], now=freed.start - POLICY.min_notice + timedelta(minutes=1)) == []


def test_the_slot_must_not_come_before_the_sessions_earliest_start() -> None:
    freed = freed_slot()
    assert who(freed, [session(earliest=freed.start)]) == ["plan-a"]
    assert who(freed, [session(earliest=freed.start + timedelta(minutes=1))]) == []


def test_a_client_busy_at_the_time_is_not_offered_the_slot() -> None:
    freed = freed_slot()
    client = "client-of-plan-a"
    overlapping = held(client, freed.start + timedelta(minutes=30))
    assert who(freed, [session()], busy={client: [overlapping]}) == []
    # someone else's visit at that time does not matter
    assert who(freed, [session()], busy={"client-x": [overlapping]}) == ["plan-a"]


@pytest.mark.parametrize(
    ("shift", "fits"),
    [
        (-(POLICY.min_gap_same_area + timedelta(hours=1)), True),  # ends exactly 48 h before
        (-(POLICY.min_gap_same_area + timedelta(minutes=59)), False),
        (POLICY.min_gap_same_area + timedelta(hours=1), True),  # starts exactly 48 h after end
        (POLICY.min_gap_same_area + timedelta(minutes=59), False),
    ],
)
def test_the_soreness_gap_to_the_clients_own_visits_is_kept(shift: timedelta, fits: bool) -> None:
    freed = freed_slot()
    client = "client-of-plan-a"
    busy = {client: [held(client, freed.start + shift)]}
    assert who(freed, [session()], busy=busy) == (["plan-a"] if fits else [])


def test_the_cancelled_visit_itself_does_not_block_its_client() -> None:
    freed = freed_slot()
    client = "client-of-plan-a"
    busy = {client: [held(client, freed.start, visit_id=freed.visit_id)]}
    assert who(freed, [session()], busy=busy) == ["plan-a"]


def test_the_weekly_maximum_counts_the_clients_visits_that_local_week() -> None:
    freed = freed_slot()  # Tuesday 2026-03-10
    client = "client-of-plan-a"
    friday = held(client, at(date(2026, 3, 13), 10), visit_id="v-fri")
    sunday = held(client, at(date(2026, 3, 15), 18), visit_id="v-sun")
    next_monday = held(client, at(date(2026, 3, 16), 10), visit_id="v-mon")
    assert who(freed, [session()], busy={client: [friday, sunday]}) == []
    assert who(freed, [session()], busy={client: [friday, next_monday]}) == ["plan-a"]
    assert who(freed, [session(max_sessions_per_week=1)], busy={client: [friday]}) == []


def test_sessions_of_another_location_and_closed_days_are_never_offered() -> None:
    freed = freed_slot()
    assert who(freed, [session(location_id="downtown")]) == []
    closed = LOCATION.model_copy(update={"closed": [TUESDAY]})
    assert who(freed, [session()], location=closed) == []
    elsewhere = LOCATION.model_copy(update={"id": "downtown"})
    with pytest.raises(ValueError, match="downtown"):
        who(freed, [session()], location=elsewhere)


def test_only_a_plans_first_waiting_session_of_its_newest_version_is_offered() -> None:
    freed = freed_slot()
    later = session(sequence=5, since=NOW - timedelta(days=9))
    first = session(sequence=4, earliest=freed.start + timedelta(days=1))
    # session 4 cannot take the slot, and session 5 may not go ahead of it
    assert who(freed, [later, first]) == []
    revised = session(sequence=4, version=2)
    found = candidates(
        freed,
        waiting=[first, later, revised],
        staffing=plain(LOCATION, THERAPISTS),
        policy=POLICY,
        now=NOW,
        client_busy={},
    )
    assert found == [revised]


def test_the_longest_waiting_is_offered_first_then_plan_and_sequence() -> None:
    day = timedelta(days=1)
    waiting = [
        session("plan-c", since=NOW - 2 * day),
        session("plan-b", since=NOW - 3 * day),
        session("plan-a", since=NOW - 2 * day),
        session("plan-d", since=NOW - 5 * day),
    ]
    assert who(freed_slot(), waiting) == ["plan-d", "plan-b", "plan-a", "plan-c"]


def _plan_session(plan: int, sequence: int, hours_waiting: int) -> WaitingSession:
    """Length and wishes belong to the plan, so they follow from its number."""
    return session(
        f"plan-{plan}",
        sequence=sequence,
        since=NOW - timedelta(hours=hours_waiting),
        minutes=(30, 60, 90)[plan % 3],
        days=[WEEKDAYS[(plan + 1) % 7]] if plan % 4 == 0 else [],
    )


waiting_lists = st.lists(
    st.builds(_plan_session, st.integers(0, 7), st.integers(1, 6), st.integers(0, 20)),
    max_size=12,
)


@given(waiting_lists.flatmap(lambda w: st.tuples(st.just(w), st.permutations(w))))
def test_candidates_do_not_depend_on_the_order_of_the_waitlist(
    lists: tuple[list[WaitingSession], list[WaitingSession]],
) -> None:
    waiting, shuffled = lists
    freed = freed_slot()
    assert who(freed, shuffled) == who(freed, waiting)


@given(waiting_lists)
def test_declining_in_turn_offers_every_candidate_once_in_order(
    waiting: list[WaitingSession],
) -> None:
    freed = freed_slot()
    expected = candidates(
        freed,
        waiting=waiting,
        staffing=plain(LOCATION, THERAPISTS),
        policy=POLICY,
        now=NOW,
        client_busy={},
    )
    offered: list[tuple[str, int]] = []
    tried: set[str | tuple[str, int]] = set()
    while (offer := offer_next(freed, waiting, tried)) is not None:
        offered.append((offer.plan_id, offer.sequence))
        tried.add(offer.offer_id)
        assert len(offered) <= len(waiting)
    assert offered == [(s.plan_id, s.sequence) for s in expected]
    assert len(set(offered)) == len(offered)


# --- offers ------------------------------------------------------------------------


def test_offer_ids_are_derived_from_the_freed_visit_and_the_session() -> None:
    waiting = session()
    offer = offer_for(waiting, freed_slot(), now=NOW)
    assert offer.offer_id == derived_id("waitlist-offer", "v-cancelled", "plan-a", 3)
    later = offer_for(waiting, freed_slot(), now=NOW + timedelta(hours=1))
    assert later.offer_id == offer.offer_id
    other_slot = offer_for(waiting, freed_slot(visit_id="v-other"), now=NOW)
    other_session = offer_for(replace(waiting, sequence=4), freed_slot(), now=NOW)
    assert len({offer.offer_id, other_slot.offer_id, other_session.offer_id}) == 3


def test_the_hold_runs_from_the_offer() -> None:
    offer = offer_for(session(), freed_slot(), now=NOW)
    assert (offer.offered_at, offer.hold_until) == (NOW, NOW + WAITLIST_HOLD)
    short = offer_for(session(), freed_slot(), now=NOW, hold=timedelta(minutes=30))
    assert short.hold_until == NOW + timedelta(minutes=30)


def test_after_an_expiry_the_next_candidate_is_offered_and_never_the_expired_one() -> None:
    freed = freed_slot()
    day = timedelta(days=1)
    waiting = [session("plan-a", since=NOW - 3 * day), session("plan-b", since=NOW - day)]
    first = offer_next(freed, waiting, set())
    assert first is not None and first.plan_id == "plan-a"

    expiry = first.hold_until
    assert accept_refusal(first, now=expiry) is not None
    second = offer_next(freed, waiting, {first.offer_id}, now=expiry)
    assert second is not None
    assert (second.plan_id, second.offered_at, second.hold_until) == (
        "plan-b",
        expiry,
        expiry + WAITLIST_HOLD,
    )
    by_session = offer_next(freed, waiting, {("plan-a", 3)}, now=expiry)
    assert by_session == second
    assert offer_next(freed, waiting, {first.offer_id, second.offer_id}, now=expiry) is None


def test_an_offer_of_another_slot_does_not_exclude_the_session() -> None:
    freed = freed_slot()
    elsewhere = offer_for(session(), freed_slot(visit_id="v-other"), now=NOW)
    again = offer_next(freed, [session()], {elsewhere.offer_id})
    assert again is not None and again.plan_id == "plan-a"


def test_acceptance_is_open_until_the_hold_expires() -> None:
    offer = offer_for(session(), freed_slot(), now=NOW)
    assert accept_refusal(offer, now=NOW) is None
    assert accept_refusal(offer, now=offer.hold_until - timedelta(seconds=1)) is None
    at_hold = accept_refusal(offer, now=offer.hold_until)
    after = accept_refusal(offer, now=offer.hold_until + timedelta(days=1))
    # 14:00 UTC is 06:00 in Los Angeles (PST) on Thursday 2026-03-05
    assert at_hold is not None and "expired at Thu 2026-03-05 06:00 local time" in at_hold
    assert after == at_hold


def test_an_offer_held_past_its_start_cannot_be_accepted() -> None:
    freed = freed_slot()
    offer = offer_for(session(), freed, now=NOW, hold=timedelta(days=30))
    refusal = accept_refusal(offer, now=freed.start)
    assert refusal is not None and "Tue 2026-03-10 10:00" in refusal


# --- glue from events ----------------------------------------------------------------


def test_a_cancelled_visit_frees_its_slot() -> None:
    visit = VisitBooked(
        visit_id="v-9",
        plan_id="plan-1",
        client_id="client-1",
        location_id="beaverton",
        therapist_id="t-ana",
        room=1,
        start=at(TUESDAY, 10),
        end=at(TUESDAY, 11),
        timezone=LA,
        sequence=2,
        sessions_total=6,
    )
    freed = freed_by(visit)
    assert (freed.visit_id, freed.therapist_id, freed.room) == ("v-9", "t-ana", 1)
    assert (freed.start, freed.end, freed.timezone) == (visit.start, visit.end, LA)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        session(since=datetime(2026, 3, 5, 12, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        offer_for(session(), freed_slot(), now=datetime(2026, 3, 5, 12, 0))


def test_the_next_session_waits_for_the_cadence_in_local_days_and_the_soreness_gap() -> None:
    zone = ZoneInfo(LA)
    previous = VisitBooked(
        visit_id="v-1",
        plan_id="plan-1",
        client_id="client-1",
        location_id="beaverton",
        therapist_id="t-ana",
        room=1,
        start=at(date(2027, 3, 11), 9),  # Thursday before the spring change
        end=at(date(2027, 3, 11), 10),
        timezone=LA,
        sequence=1,
        sessions_total=6,
    )
    gap = timedelta(hours=48)
    weekly = earliest_after(previous, interval_days=7, gap=gap, zone=zone)
    # local midnight a week later, in daylight time (07:00 UTC, not 08:00)
    assert weekly == datetime(2027, 3, 18, 7, tzinfo=UTC)
    # a cadence shorter than the soreness window: the gap decides, from the end
    assert earliest_after(previous, interval_days=1, gap=gap, zone=zone) == previous.end + gap
    assert earliest_after(None, interval_days=7, gap=gap, zone=zone) is None
