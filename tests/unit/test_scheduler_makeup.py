"""Make-up visits (services/scheduler/makeup.py): a cancelled or missed visit leaves
the plan a session short; the visits still to come move up a place and the missing
session is booked after the last of them, keeping the cadence and the soreness gap
(DOMAIN.md 5), or waitlisted with the reason."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from itertools import pairwise

import pytest

from services.scheduler.booking import free_visit_id, visit_id_for
from services.scheduler.directory import plain
from services.scheduler.makeup import MakeUp, bookable_sessions, make_up
from services.scheduler.store import VisitStatus
from shared.chain import Policy
from shared.events.plans import MedicalCheck, PlanData, PlanRevised
from shared.events.visits import VisitBooked
from tests.unit.test_booking import book, make_location, make_phase, make_plan, make_therapist

LOCATION = make_location()
THERAPISTS = [(t, LOCATION.hours) for t in [make_therapist("t-ana")]]
POLICY = Policy()
Visits = list[tuple[VisitBooked, VisitStatus]]


def four_visits() -> tuple[PlanData, list[VisitBooked]]:
    plan = make_plan(phases=[make_phase(sessions=4, interval_days=3)])
    booked = book(plan).booked
    assert [v.sequence for v in booked] == [1, 2, 3, 4]
    return plan, booked


def made_up(
    plan: PlanData,
    lost: VisitBooked,
    visits: Visits,
    *,
    now: datetime,
    waiting_from: int | None = None,
) -> MakeUp | None:
    return make_up(
        plan,
        lost=lost,
        visits=visits,
        staffing=plain(LOCATION, THERAPISTS),
        policy=POLICY,
        existing=[],
        now=now,
        waiting_from=waiting_from,
    )


def standing(visits: Visits, result: MakeUp) -> list[VisitBooked]:
    """The plan's visits that stand once the make-up is applied, in start order."""
    changed = {v.visit_id: v for v in [*result.renumbered, *result.book]}
    cancelled = {v.visit_id for v in result.cancel}
    out = [
        changed.get(v.visit_id, v)
        for v, s in visits
        if s in ("booked", "completed") and v.visit_id not in cancelled
    ]
    out += [v for v in result.book if v.visit_id not in {o.visit_id for o in out}]
    return sorted(out, key=lambda v: v.start)


def keeps_the_course(visits: Sequence[VisitBooked], plan: PlanData) -> None:
    assert [v.sequence for v in visits] == list(range(1, plan.sessions_total + 1))
    zone = LOCATION.zone
    for a, b in pairwise(visits):
        assert b.start >= a.end + POLICY.min_gap_same_area  # the soreness gap
        days = (b.start.astimezone(zone).date() - a.start.astimezone(zone).date()).days
        assert days >= 3  # the cadence of the phase
    assert len({v.visit_id for v in visits}) == len(visits)


def test_a_no_show_moves_the_rest_up_and_books_the_make_up_after_the_last() -> None:
    plan, (v1, v2, v3, v4) = four_visits()
    now = v2.start + timedelta(minutes=15)
    visits: Visits = [(v1, "completed"), (v2, "no_show"), (v3, "booked"), (v4, "booked")]
    result = made_up(plan, v2, visits, now=now)
    assert result is not None and not result.cancel and not result.waitlisted
    # the visits still to come keep their time and therapist, one place earlier
    assert [(v.visit_id, v.sequence, v.start) for v in result.renumbered] == [
        (v3.visit_id, 2, v3.start),
        (v4.visit_id, 3, v4.start),
    ]
    (makeup,) = result.book
    assert (makeup.sequence, makeup.sessions_total, makeup.makeup_for) == (4, 4, v2.visit_id)
    assert makeup.visit_id not in {v1.visit_id, v2.visit_id, v3.visit_id, v4.visit_id}
    local = makeup.start.astimezone(LOCATION.zone).date()
    assert local >= v4.start.astimezone(LOCATION.zone).date() + timedelta(days=3)
    keeps_the_course(standing(visits, result), plan)  # the same number of sessions overall


@pytest.mark.parametrize("lost_at", [0, 1, 2, 3])
@pytest.mark.parametrize("how", ["cancelled", "no_show"])
def test_whichever_visit_is_lost_the_course_stays_whole(lost_at: int, how: VisitStatus) -> None:
    plan, booked = four_visits()
    lost = booked[lost_at]
    # a no-show is recorded once the visit started; a cancel comes before it
    now = lost.start + timedelta(minutes=15) if how == "no_show" else lost.start - timedelta(days=1)
    visits: Visits = [
        (v, how if v is lost else "completed" if v.start < now else "booked") for v in booked
    ]
    result = made_up(plan, lost, visits, now=now)
    assert result is not None and len(result.book) == 1
    assert result.book[0].makeup_for == lost.visit_id
    keeps_the_course(standing(visits, result), plan)
    # the calendar after the make-up is whole: asking again makes nothing up
    after: Visits = [
        (v, "completed" if v.start < now else "booked") for v in standing(visits, result)
    ]
    assert made_up(plan, lost, [*after, (lost, how)], now=now) is None


def test_a_plan_already_whole_makes_nothing_up() -> None:
    """A revision's own cancels leave the course whole: a taper to three sessions
    after the first cancelled the fourth (``replan``), nothing is missing."""
    plan, (v1, v2, v3, v4) = four_visits()
    revised = PlanRevised(
        **{
            **plan.model_dump(),
            "version": 2,
            "sessions_total": 3,
            "phases": [make_phase("taper", sessions=2, interval_days=3)],
        },
        reason="taper",
        change="taper",
        sessions_done=1,
    )
    now = v1.end + timedelta(hours=1)
    visits: Visits = [(v1, "completed"), (v2, "booked"), (v3, "booked"), (v4, "cancelled")]
    assert made_up(revised, v4, visits, now=now) is None


def test_a_make_up_that_does_not_fit_is_waitlisted_with_the_reason() -> None:
    plan, (v1, v2, v3, v4) = four_visits()
    now = v2.start + timedelta(minutes=15)
    visits: Visits = [(v1, "completed"), (v2, "no_show"), (v3, "booked"), (v4, "booked")]
    short = Policy(horizon=v4.start + timedelta(days=2) - now)  # nothing past the last visit
    result = make_up(
        plan,
        lost=v2,
        visits=visits,
        staffing=plain(LOCATION, THERAPISTS),
        policy=short,
        existing=[],
        now=now,
    )
    assert result is not None and result.book == []
    (waiting,) = result.waitlisted
    assert (waiting.sequence, waiting.makeup_for, waiting.reason) == (4, v2.visit_id, "no_capacity")
    assert waiting.detail.startswith(f"Make-up for visit {v2.visit_id}: Session 4 finds no free")


def test_a_plan_that_waits_makes_up_before_its_first_waiting_session() -> None:
    plan, (v1, v2, v3, _) = four_visits()
    now = v1.start - timedelta(days=1)
    # session 4 waits for a slot; the client cancels visit 2
    visits: Visits = [(v1, "booked"), (v2, "cancelled"), (v3, "booked")]
    result = made_up(plan, v2, visits, now=now, waiting_from=4)
    assert result is not None
    assert [(v.visit_id, v.sequence) for v in result.renumbered] == [(v3.visit_id, 2)]
    assert [(v.sequence, v.makeup_for) for v in result.book] == [(3, v2.visit_id)]
    assert [q for q, _ in bookable_sessions(plan, waiting_from=4)] == [1, 2, 3]


def test_a_missed_assessment_visit_of_a_red_flag_plan_is_made_up_alone() -> None:
    """While the course waits for a doctor's check only its first visit is bookable
    (DOMAIN.md 1): missing it books that one again, nothing more."""
    plan = make_plan(phases=[make_phase(sessions=3, interval_days=3)]).model_copy(
        update={
            "awaiting_medical_check": MedicalCheck(
                reason="new dull pain", book_through=1, since=date(2027, 3, 1)
            )
        }
    )
    (v1,) = book(plan).booked
    result = made_up(plan, v1, [(v1, "no_show")], now=v1.start + timedelta(minutes=20))
    assert result is not None and result.renumbered == []
    assert [(v.sequence, v.makeup_for) for v in result.book] == [(1, v1.visit_id)]


def test_a_new_visit_never_takes_the_id_of_one_that_stands() -> None:
    plan, booked = four_visits()
    taken = {v.visit_id for v in booked}
    assert free_visit_id(plan, 5, taken) == visit_id_for(plan, 5)
    again = free_visit_id(plan, 4, taken)
    assert again != visit_id_for(plan, 4) and again not in taken
    assert free_visit_id(plan, 4, taken) == again  # the same calendar, the same id
    assert free_visit_id(plan, 4, {*taken, again}) not in {*taken, again}
