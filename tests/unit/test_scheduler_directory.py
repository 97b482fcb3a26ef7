"""The staff directory's rules, and booking with them: hours per location, dated
exceptions, closures, turnover, the daily cap, continuity, the cadence note, and
what a change re-plans."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.scheduler.booking import book_plan, interval_of
from services.scheduler.directory import (
    AddClosure,
    AddException,
    Closure,
    DirectoryError,
    SetHours,
    StaffException,
    apply,
    plain,
    pruned,
    seed,
    staffing,
)
from services.scheduler.directory_replan import Booked, replan_unfit, unfit
from services.scheduler.scoring import Candidate, score
from shared.chain import ChainConfig, Policy, load_chain_config
from tests.unit.test_booking import ALL_WEEK, LA, NOW, make_location, make_phase, make_plan
from tests.unit.test_booking import make_therapist as therapist

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "dev" / "chain.yaml"
TUESDAY = date(2027, 3, 2)


def local(moment: datetime, zone: str = LA) -> datetime:
    return moment.astimezone(ZoneInfo(zone))


def exception(kind: str, day: date, **fields: object) -> StaffException:
    return StaffException.model_validate(
        {
            "id": f"x-{kind}-{day}",
            "therapist_id": "t-ana",
            "kind": kind,
            "start_date": day,
            "end_date": fields.pop("end_date", day),
            **fields,
        }
    )


# --- the directory -------------------------------------------------------------------------


def test_the_demo_chain_seeds_a_two_location_therapist_one_location_a_day() -> None:
    chain = load_chain_config(DEMO)
    directory = seed(chain)
    assert directory.hours["t-dev"] == {
        "brooklyn": {"tue": ["08:00-12:00", "13:00-19:00"]},
        "beaverton": {"thu": ["09:00-18:00"]},
    }
    brooklyn, beaverton = (
        staffing(chain, directory, "brooklyn"),
        staffing(chain, directory, "beaverton"),
    )
    tuesday, thursday = date(2027, 3, 2), date(2027, 3, 4)
    assert brooklyn.working("t-dev", tuesday) and not beaverton.working("t-dev", tuesday)
    assert beaverton.working("t-dev", thursday) and not brooklyn.working("t-dev", thursday)
    assert beaverton.turnover == timedelta(minutes=10) and beaverton.max_visits_per_day == 7
    assert not beaverton.opening(date(2026, 12, 25))  # the file's closed dates


def test_hours_on_a_weekday_taken_elsewhere_are_refused_with_the_field() -> None:
    chain = load_chain_config(DEMO)
    with pytest.raises(DirectoryError) as refused:
        apply(seed(chain), SetHours("t-dev", "beaverton", {"tue": ["09:00-12:00"]}), chain)
    assert refused.value.path == ("hours", "tue")
    with pytest.raises(DirectoryError) as elsewhere:
        apply(seed(chain), SetHours("t-ana", "brooklyn", {"mon": ["09:00-12:00"]}), chain)
    assert elsewhere.value.path == ("location_id",)


def test_a_shift_elsewhere_takes_the_therapist_away_for_the_day() -> None:
    chain = load_chain_config(DEMO)
    shift = StaffException(
        id="cover",
        therapist_id="t-dev",
        kind="extra_shift",
        start_date=date(2027, 3, 2),
        end_date=date(2027, 3, 2),
        location_id="beaverton",
        ranges=["10:00-14:00"],
    )
    directory = apply(seed(chain), AddException(shift), chain)
    assert directory.version == 2
    assert staffing(chain, directory, "beaverton").working("t-dev", date(2027, 3, 2)) == [
        (time(10), time(14))
    ]
    assert staffing(chain, directory, "brooklyn").working("t-dev", date(2027, 3, 2)) == []


def test_time_off_changed_hours_and_holiday_hours_resolve_by_date() -> None:
    location = make_location(hours=ALL_WEEK)
    view = plain(
        location,
        [therapist("t-ana")],
        exceptions=[
            exception("sick", TUESDAY),
            exception("time_off", TUESDAY + timedelta(1), ranges=["12:00-14:00"]),
            exception(
                "changed_hours",
                TUESDAY + timedelta(2),
                location_id="beaverton",
                ranges=["13:00-17:00"],
            ),
        ],
        closures=[
            Closure(
                id="eve",
                location_id="beaverton",
                start_date=TUESDAY + timedelta(3),
                end_date=TUESDAY + timedelta(3),
                hours=["09:00-13:00"],
            )
        ],
    )
    assert view.working("t-ana", TUESDAY) == []
    assert view.working("t-ana", TUESDAY + timedelta(1)) == [
        (time(9), time(12)),
        (time(14), time(18)),
    ]
    assert view.working("t-ana", TUESDAY + timedelta(2)) == [(time(13), time(17))]
    assert view.opening(TUESDAY + timedelta(3)) == [(time(9), time(13))]
    with pytest.raises(ValueError, match="end_date"):
        exception("sick", TUESDAY, end_date=TUESDAY - timedelta(1))


# --- booking with it -----------------------------------------------------------------------


def test_a_sick_day_is_not_booked_and_turnover_and_the_daily_cap_hold() -> None:
    location = make_location(hours=ALL_WEEK, rooms=3)
    view = plain(
        location,
        [therapist("t-ana")],
        turnover=timedelta(minutes=15),
        max_visits_per_day=2,
        exceptions=[exception("sick", TUESDAY)],
    )
    plans = [
        make_plan(plan_id=f"p{n}", client_id=f"c{n}", phases=[make_phase(sessions=1)])
        for n in range(5)
    ]
    held: list = []
    for plan in plans:
        held += [
            interval_of(v)
            for v in book_plan(plan, staffing=view, policy=Policy(), existing=held, now=NOW).booked
        ]
    days = [local(i.start).date() for i in held]
    assert TUESDAY not in days
    assert max(days.count(d) for d in days) == 2
    ordered = sorted(held, key=lambda i: i.start)
    for before, after in itertools.pairwise(ordered):
        if before.start.date() == after.start.date():
            assert after.start >= before.end + timedelta(minutes=15)


def test_continuity_keeps_one_therapist_when_one_can_take_the_course() -> None:
    # Bob is free earlier on the first day; Ana can take every session on its day
    location = make_location(hours=ALL_WEEK)
    ana, bob = therapist("t-ana"), therapist("t-bob")
    busy = interval_of(
        book_plan(
            make_plan(plan_id="x", client_id="cx", phases=[make_phase(sessions=1)]),
            staffing=plain(location, [ana]),
            policy=Policy(),
            existing=[],
            now=NOW,
        ).booked[0]
    )
    outcome = book_plan(
        make_plan(), staffing=plain(location, [ana, bob]), policy=Policy(), existing=[busy], now=NOW
    )
    assert len({v.therapist_id for v in outcome.booked}) == 1
    assert len(outcome.booked) == 6


def test_the_score_puts_the_same_therapist_above_every_convenience() -> None:
    best_other = Candidate(same_therapist=False, routine_time=True, touching=2, hours_after_first=0)
    worst_same = Candidate(
        same_therapist=True, routine_time=False, touching=0, hours_after_first=12
    )
    assert score(worst_same) > score(best_other)
    assert score(Candidate(False, False, 2, 1)) > score(Candidate(False, False, 0, 0))


def test_twice_weekly_with_tuesday_thursday_staff_says_why_the_cadence_slipped() -> None:
    location = make_location(hours=ALL_WEEK)
    ana = therapist("t-ana", hours={"tue": ["09:00-18:00"], "thu": ["09:00-18:00"]})
    plan = make_plan(phases=[make_phase(sessions=4, interval_days=3)])
    booked = book_plan(
        plan, staffing=plain(location, [ana]), policy=Policy(), existing=[], now=NOW
    ).booked
    assert booked[0].cadence_note is None
    late = [v for v in booked if v.cadence_note]
    assert late, [v.start for v in booked]
    note = late[0].cadence_note or ""
    assert "after the cadence's" in note and "no therapist for this plan works" in note


# --- re-planning after a change ---------------------------------------------------------------


def test_a_sick_day_moves_each_visit_to_the_nearest_slot_same_therapist_first() -> None:
    location = make_location(hours=ALL_WEEK, rooms=2)
    ana, bob = therapist("t-ana"), therapist("t-bob")
    before = plain(location, [ana, bob])
    plan = make_plan(phases=[make_phase(sessions=4, interval_days=3)])
    booked = book_plan(plan, staffing=before, policy=Policy(), existing=[], now=NOW).booked
    sick_day = local(booked[1].start).date()
    who = booked[1].therapist_id
    after = plain(
        location,
        [ana, bob],
        exceptions=[exception("sick", sick_day).model_copy(update={"therapist_id": who})],
    )
    touched = unfit(booked, staffing=after, fixed=[])
    assert [v.visit_id for v in touched] == [booked[1].visit_id]
    moving = [
        Booked(
            visit=v,
            plan_visits=booked,
            needs=plan.scheduling,
            interval_days={v.sequence: 3 for v in booked},
        )
        for v in touched
    ]
    outcome = replan_unfit(
        moving,
        staffing=after,
        policy=Policy(),
        calendar=[interval_of(v) for v in booked if v not in touched],
        now=NOW,
    )
    assert not outcome.cancelled
    ((_old, new),) = outcome.moved
    assert local(new.start).date() != sick_day or new.therapist_id != who
    # the cadence and the soreness gap to both neighbours are kept
    assert new.start >= booked[0].end + Policy().min_gap_same_area
    assert new.end + Policy().min_gap_same_area <= booked[2].start
    assert (local(new.start).date() - local(booked[0].start).date()).days >= 3
    assert (local(booked[2].start).date() - local(new.start).date()).days >= 3


def test_a_closure_with_no_room_to_move_cancels() -> None:
    location = make_location(hours=ALL_WEEK, rooms=1)
    ana = therapist("t-ana")
    plan = make_plan(phases=[make_phase(sessions=3, interval_days=3)])
    booked = book_plan(
        plan, staffing=plain(location, [ana]), policy=Policy(), existing=[], now=NOW
    ).booked
    closed_from = local(booked[1].start).date() - timedelta(days=7)
    closed = Closure(
        id="flood",
        location_id="beaverton",
        start_date=closed_from,
        end_date=closed_from + timedelta(days=14),
    )
    after = plain(location, [ana], closures=[closed])
    touched = unfit(booked, staffing=after, fixed=[])
    assert booked[1] in touched
    moving = [
        Booked(
            visit=v,
            plan_visits=booked,
            needs=plan.scheduling,
            interval_days={v.sequence: 3 for v in booked},
        )
        for v in touched
    ]
    outcome = replan_unfit(moving, staffing=after, policy=Policy(), calendar=[], now=NOW)
    assert booked[1] in outcome.cancelled


def test_a_closure_added_through_apply_is_seen_by_the_location_view() -> None:
    chain: ChainConfig = load_chain_config(DEMO)
    day = date(2027, 3, 3)
    directory = apply(
        seed(chain),
        AddClosure(Closure(id="c1", location_id="brooklyn", start_date=day, end_date=day)),
        chain,
    )
    assert staffing(chain, directory, "brooklyn").opening(day) == []
    assert staffing(chain, directory, "beaverton").opening(day)


def test_a_change_leaves_out_what_ended_long_ago() -> None:
    chain = load_chain_config(DEMO)
    old = StaffException(
        id="old",
        therapist_id="t-ana",
        kind="sick",
        start_date=date(2026, 1, 5),
        end_date=date(2026, 1, 5),
    )
    current = StaffException(
        id="now",
        therapist_id="t-ana",
        kind="sick",
        start_date=date(2027, 3, 2),
        end_date=date(2027, 3, 2),
    )
    directory = apply(apply(seed(chain), AddException(old), chain), AddException(current), chain)
    kept = pruned(directory, before=date(2027, 2, 1))
    assert set(kept.exceptions) == {"now"}
    assert all(c.end_date >= date(2027, 2, 1) for c in kept.closures.values())
    assert kept.version == directory.version
    assert pruned(kept, before=date(2027, 2, 1)) is kept
