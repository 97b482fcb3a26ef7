"""Progress and revision (DOMAIN.md 5): the pain clients carry into each visit
decides whether a plan stays, tapers, is re-assessed, is referred, or ends."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from services.planner import knowledge as kb
from services.planner import views
from services.planner.domain import revise_for_assessment
from services.planner.progress import Progress, improvement, judged, next_step, recorded
from services.planner.reviews import review_due, reviewed_by_date
from services.planner.trajectory import answer_of, trajectory, with_checkins
from shared.events.intake import AssessmentRecorded, TriggerPoint
from shared.events.notifications import CheckinReplied
from shared.events.plans import (
    MedicalCheck,
    PlanCompleted,
    PlanCreated,
    PlanData,
    PlanRevised,
)
from shared.events.visits import VisitCompleted
from tests.unit.test_planner_domain import SUBMITTED, complaint, make_intake, plan_for

NOW = SUBMITTED + timedelta(days=20)


def chronic_plan() -> PlanCreated:
    plan = plan_for(make_intake(complaint("low_back", intensity=8)))
    assert plan.condition == "chronic" and plan.review_after_sessions == 4
    return plan


def visit(
    n: int, before: int, after: int | None = None, plan: PlanData | None = None
) -> VisitCompleted:
    plan = plan or chronic_plan()
    return VisitCompleted(
        visit_id=f"v-{n}",
        plan_id=plan.plan_id,
        client_id=plan.client_id,
        location_id=plan.location_id,
        therapist_id="t-ana",
        pain_before=before,
        pain_after=max(0, before - 2) if after is None else after,
        completed_at=SUBMITTED + timedelta(days=3 * n),
    )


def after_visits(
    plan: PlanData, pains: list[int], progress: Progress | None = None
) -> tuple[list[PlanRevised | PlanCompleted | None], Progress]:
    """Feed visits one by one, as the handler does; the changes and the final progress."""
    state = progress or Progress(plan_id=plan.plan_id)
    changes: list[PlanRevised | PlanCompleted | None] = []
    start = state.sessions_done
    for n, pain in enumerate(pains, start=start + 1):
        change, state = next_step(plan, recorded(state, visit(n, pain, plan=plan)), now=NOW)
        changes.append(change)
    return changes, state


def test_a_visit_recorded_twice_counts_once() -> None:
    plan = chronic_plan()
    once = recorded(Progress(plan_id=plan.plan_id), visit(1, 8, plan=plan))
    assert recorded(once, visit(1, 8, plan=plan)) == once
    assert once.sessions_done == 1


def test_improvement_is_measured_on_the_pain_carried_into_visits() -> None:
    plan = chronic_plan()
    _, state = after_visits(plan, [8, 7, 6])
    assert improvement(state) == pytest.approx(0.25)
    # relief right after a session does not count: only pain_before does
    _, state = after_visits(plan, [8])
    assert improvement(state) is None


def test_no_meaningful_improvement_at_the_review_re_assesses() -> None:
    plan = chronic_plan()
    changes, state = after_visits(plan, [8, 8, 7, 7])
    assert changes[:3] == [None, None, None]
    revised = changes[3]
    assert isinstance(revised, PlanRevised)
    assert revised.change == "reassess" and revised.version == 2
    assert revised.sessions_done == 4 and revised.sessions_total == plan.sessions_total
    assert sum(p.sessions for p in revised.phases) == plan.sessions_total - 4
    assert revised.protocol[0].technique == "reassessment"
    old = {s.technique: s.pressure_target for s in plan.protocol}
    assert all(
        s.pressure_target is None or s.pressure_target <= (old[s.technique] or 10)
        for s in revised.protocol[1:]
    )
    assert "12%" in revised.reason and revised.rationale[-1].rule.startswith("DOMAIN.md 5")
    assert state.poor_reviews == 1 and state.version_started_after == 4


def test_still_no_improvement_after_re_assessment_refers() -> None:
    plan = chronic_plan()
    changes, state = after_visits(plan, [8, 8, 7, 7])
    revised = changes[3]
    assert isinstance(revised, PlanRevised)
    review = revised.review_after_sessions
    changes, state = after_visits(revised, [7] * review, progress=state)
    referred = changes[-1]
    assert isinstance(referred, PlanRevised)
    assert referred.change == "refer" and referred.version == 3
    assert referred.referral is not None and referred.referral.recommended
    assert "physician or physical therapist" in referred.referral.to
    assert "after 8 sessions and a re-assessment" in referred.reason
    # DOMAIN.md 7: NMT goes on alongside that care, weekly, for the rest of the course
    assert referred.sessions_total == plan.sessions_total and not state.finished
    assert [p.interval_days for p in referred.phases] == [7]
    assert sum(p.sessions for p in referred.phases) == plan.sessions_total - 8
    assert "reassessment" not in [s.technique for s in referred.protocol]
    assert [s.order for s in referred.protocol] == list(range(1, len(referred.protocol) + 1))
    # a referral is made once: a further poor review changes nothing more
    more, state = after_visits(referred, [7] * referred.review_after_sessions, progress=state)
    assert all(change is None for change in more[:-1])
    assert more[-1] is None or isinstance(more[-1], PlanCompleted)


def test_good_progress_tapers_sooner() -> None:
    plan = chronic_plan()
    changes, _ = after_visits(plan, [8, 6, 4, 3])
    tapered = changes[3]
    assert isinstance(tapered, PlanRevised) and tapered.change == "taper"
    remaining = plan.sessions_total - 4
    assert tapered.sessions_total == 4 + -(-remaining // 2) < plan.sessions_total
    assert [p.interval_days for p in tapered.phases] == [14]
    assert tapered.phases[0].rrule.startswith("FREQ=WEEKLY;INTERVAL=2")


def test_moderate_progress_keeps_the_plan() -> None:
    changes, _ = after_visits(chronic_plan(), [8, 7, 6, 5])  # 37.5 %
    assert changes == [None, None, None, None]


def test_all_sessions_done_completes_with_maintenance() -> None:
    plan = chronic_plan()
    changes, state = after_visits(plan, [8, 7, 6, 5] + [4] * (plan.sessions_total - 4))
    done = changes[-1]
    assert isinstance(done, PlanCompleted) and done.outcome == "course_complete"
    assert done.sessions_done == plan.sessions_total and done.maintenance == kb.MAINTENANCE
    assert state.finished
    # a late outcome after the end changes nothing
    extra, _ = next_step(plan, recorded(state, visit(99, 4, plan=plan)), now=NOW)
    assert extra is None


def test_goals_met_completes_early() -> None:
    changes, _ = after_visits(chronic_plan(), [6, 3, 1])
    done = changes[-1]
    assert isinstance(done, PlanCompleted) and done.outcome == "goals_met"
    assert done.sessions_done == 3


def test_an_assessment_re_targets_the_protocol_on_its_trigger_points() -> None:
    intake = make_intake(complaint("neck", intensity=6))
    plan = plan_for(intake)
    assessment = AssessmentRecorded(
        assessment_id="a-1",
        client_id="c-1",
        therapist_id="t-ana",
        location_id="beaverton",
        trigger_points=[
            TriggerPoint(muscle="Levator Scapulae", side="right", type="latent"),
            TriggerPoint(muscle="upper trapezius", side="right", type="active"),
            TriggerPoint(muscle="a muscle we do not know", side="left", type="active"),
        ],
        recorded_at=NOW,
    )
    revised = revise_for_assessment(plan, intake, assessment, sessions_done=1, now=NOW)
    assert isinstance(revised, PlanRevised) and revised.change == "protocol"
    assert revised.version == plan.version + 1 and revised.sessions_done == 1
    stretched = next(s for s in revised.protocol if s.technique == "stretching")
    assert stretched.targets == ["upper trapezius", "levator scapulae"]  # active first
    assert "upper trapezius" in revised.reason


def test_an_assessment_never_targets_an_excluded_area() -> None:
    intake = make_intake(
        complaint("neck"),
        complaint("shoulder_blade", intensity=5),
        contraindications=(),
    ).model_copy()
    intake = intake.model_copy(
        update={"screening": intake.screening.model_copy(update={"excluded_regions": ["neck"]})}
    )
    plan = plan_for(intake)
    assessment = AssessmentRecorded(
        assessment_id="a-2",
        client_id="c-1",
        therapist_id="t-ana",
        location_id="beaverton",
        trigger_points=[TriggerPoint(muscle="scalenes", side="left", type="active")],
        recorded_at=NOW,
    )
    assert revise_for_assessment(plan, intake, assessment, sessions_done=0, now=NOW) is None


# --- check-ins: pain between visits is part of the trajectory -------------------------


def checkin(n: int, pain: int, *, after_visit: int, plan: PlanData | None = None) -> CheckinReplied:
    """The client's answer to the check-in a day after visit ``after_visit``."""
    plan = plan or chronic_plan()
    return CheckinReplied(
        notification_id=f"checkin-{n}",
        client_id=plan.client_id,
        location_id=plan.location_id,
        visit_id=f"v-{after_visit}",
        plan_id=plan.plan_id,
        pain=pain,
        channel="sms",
        replied_at=SUBMITTED + timedelta(days=3 * after_visit + 1),
    )


def test_a_check_in_after_the_latest_visit_is_the_latest_reading() -> None:
    plan = chronic_plan()
    _, state = after_visits(plan, [8])
    assert improvement(state) is None  # one reading: nothing to compare
    state = with_checkins(state, [answer_of(checkin(1, 5, after_visit=1, plan=plan))])
    assert improvement(state) == pytest.approx(0.375)
    assert trajectory(state) == "8 -> 5 (check-in)"


def test_check_in_answers_count_once_each_and_stay_apart_from_the_stored_progress() -> None:
    plan = chronic_plan()
    _, state = after_visits(plan, [8, 7])
    answer = answer_of(checkin(1, 6, after_visit=1, plan=plan))
    again = answer_of(checkin(1, 6, after_visit=1, plan=plan))
    state = with_checkins(with_checkins(state, [answer]), [again])
    assert [c.notification_id for c in state.checkins] == ["checkin-1"]
    # between visits 1 and 2: the visit carried in after it is the latest reading
    assert trajectory(state) == "8 -> 6 (check-in) -> 7"
    assert improvement(state) == pytest.approx(0.125)
    # the progress a visit's handler writes never carries (or overwrites) the answers
    assert "checkins" not in json.loads(state.model_dump_json())


def test_a_review_quotes_the_check_ins_between_its_visits() -> None:
    plan = chronic_plan()
    _, state = after_visits(plan, [8, 8])
    state = with_checkins(state, [answer_of(checkin(1, 7, after_visit=2, plan=plan))])
    changes, state = after_visits(plan, [7, 7], progress=state)
    revised = changes[-1]
    assert isinstance(revised, PlanRevised) and revised.change == "reassess"
    assert "pain carried in: 8 -> 8 -> 7 (check-in) -> 7 -> 7" in revised.reason


# --- the review date: review_by is enforced -----------------------------------------


def test_the_review_date_is_enforced_only_once_it_has_passed() -> None:
    plan = chronic_plan()
    state = Progress(plan_id=plan.plan_id)
    assert not review_due(plan, state, today=plan.review_by)
    assert reviewed_by_date(plan, state, today=plan.review_by, now=NOW) == (None, state)
    assert review_due(plan, state, today=plan.review_by + timedelta(days=1))


def test_a_review_date_passed_with_no_visit_revises_the_plan_review_overdue() -> None:
    plan = chronic_plan()
    today = plan.review_by + timedelta(days=1)
    revised, state = reviewed_by_date(plan, Progress(plan_id=plan.plan_id), today=today, now=NOW)
    assert isinstance(revised, PlanRevised)
    assert (revised.change, revised.version, revised.sessions_done) == ("review_overdue", 2, 0)
    assert revised.sessions_total == plan.sessions_total
    assert sum(p.sessions for p in revised.phases) == plan.sessions_total  # all to book again
    assert revised.review_by == today + timedelta(days=kb.REVIEW_OVERDUE_GRACE_DAYS)
    assert revised.protocol == plan.protocol and revised.referral is None
    assert revised.reason == (
        f"the review date {plan.review_by} passed with nothing to judge (0 of "
        f"{plan.sessions_total} sessions done, nothing measured since 2026-11-01): the front "
        f"desk contacts the client to book the remaining {plan.sessions_total} again; with "
        f"no visit by {revised.review_by} the course lapses"
    )
    assert revised.rationale[-1].rule.startswith("DOMAIN.md 5")
    assert state.version_started_after == 0 and not state.finished


def test_the_overdue_review_date_passed_again_with_no_visit_lapses_the_course() -> None:
    plan = chronic_plan()
    first = plan.review_by + timedelta(days=1)
    overdue, state = reviewed_by_date(plan, Progress(plan_id=plan.plan_id), today=first, now=NOW)
    assert isinstance(overdue, PlanRevised)
    later = overdue.review_by + timedelta(days=1)
    at = NOW + timedelta(days=15)
    lapsed, state = reviewed_by_date(overdue, state, today=later, now=at)
    assert isinstance(lapsed, PlanCompleted)
    assert (lapsed.outcome, lapsed.version, lapsed.sessions_done) == ("lapsed", 2, 0)
    assert lapsed.maintenance is None and lapsed.referral is None
    assert lapsed.completed_at == at and state.finished


def test_a_visit_after_the_overdue_revision_keeps_the_course_from_lapsing() -> None:
    plan = chronic_plan()
    overdue, state = reviewed_by_date(
        plan, Progress(plan_id=plan.plan_id), today=plan.review_by + timedelta(days=1), now=NOW
    )
    assert isinstance(overdue, PlanRevised)
    came = visit(9, 8, plan=overdue).model_copy(update={"completed_at": NOW + timedelta(days=2)})
    change, state = next_step(overdue, recorded(state, came), now=came.completed_at)
    assert change is None
    again, state = reviewed_by_date(
        overdue, state, today=overdue.review_by + timedelta(days=1), now=NOW + timedelta(days=16)
    )
    # one visit, nothing to compare it with: overdue again (not lapsed), one session fewer
    assert isinstance(again, PlanRevised) and again.change == "review_overdue"
    assert (again.version, again.sessions_done) == (3, 1)
    assert sum(p.sessions for p in again.phases) == plan.sessions_total - 1


def test_a_review_date_passed_with_poor_readings_is_judged_as_the_review_point() -> None:
    plan = chronic_plan()
    _, state = after_visits(plan, [8, 8])
    state = with_checkins(state, [answer_of(checkin(1, 8, after_visit=2, plan=plan))])
    today = plan.review_by + timedelta(days=1)
    revised, state = reviewed_by_date(plan, state, today=today, now=NOW)
    assert isinstance(revised, PlanRevised) and revised.change == "reassess"
    assert "0% improvement after 2 sessions (pain carried in: 8 -> 8 -> 8 (check-in))" in (
        revised.reason
    )
    assert state.poor_reviews == 1 and state.version_started_after == 2


def test_a_version_is_reviewed_once_by_its_sessions_or_its_date() -> None:
    plan = chronic_plan()
    changes, state = after_visits(plan, [8, 7, 6, 5])  # 37.5 %: the plan stays
    assert changes[-1] is None and state.reviewed_version == plan.version
    today = plan.review_by + timedelta(days=1)
    assert not review_due(plan, state, today=today)
    # moderate progress at the date (8 -> 6, then 5 at a check-in: 37.5 %): the plan
    # stays, and is not reviewed again
    _, early = after_visits(plan, [8, 6])
    early = with_checkins(early, [answer_of(checkin(1, 5, after_visit=2, plan=plan))])
    change, early = reviewed_by_date(plan, early, today=today, now=NOW)
    assert change is None and early.reviewed_version == plan.version
    assert not review_due(plan, early, today=today)


def test_a_plan_waiting_for_a_doctors_check_is_on_hold_not_overdue() -> None:
    plan = chronic_plan()
    waiting = plan.model_copy(
        update={
            "awaiting_medical_check": MedicalCheck(
                reason="new dull pain", book_through=1, since=plan.review_by
            )
        }
    )
    today = plan.review_by + timedelta(days=30)
    assert not review_due(waiting, Progress(plan_id=plan.plan_id), today=today)


def test_the_plan_shows_sessions_done_and_every_reading() -> None:
    """Progress counts the visits completed (a cancelled or missed visit never reaches
    the planner as one), and shows the check-ins between them."""
    plan = chronic_plan()
    _, state = after_visits(plan, [8, 7])
    state = with_checkins(state, [answer_of(checkin(1, 6, after_visit=1, plan=plan))])
    shown = views.progress_view(plan, state)
    assert (shown.sessions_done, shown.sessions_total) == (2, plan.sessions_total)
    assert shown.pain_carried_in == [8, 7]
    assert [(r.pain, r.source) for r in shown.trajectory] == [
        (8, "visit"),
        (6, "checkin"),
        (7, "visit"),
    ]
    assert shown.improvement == pytest.approx(0.125)


def test_visits_recorded_at_one_instant_are_still_a_trajectory() -> None:
    """Outcomes recorded together (entered after the fact) keep their order."""
    plan = chronic_plan()
    state = Progress(plan_id=plan.plan_id)
    for n, pain in enumerate([8, 8, 7, 7], start=1):
        state = recorded(state, visit(n, pain, plan=plan).model_copy(update={"completed_at": NOW}))
    assert trajectory(state) == "8 -> 8 -> 7 -> 7"
    assert improvement(state) == pytest.approx(0.125)


def test_a_taper_judged_again_with_nothing_left_to_shrink_is_not_revised_again() -> None:
    """A version of one session every two weeks, judged by its date after good progress:
    tapering it again would change nothing, so nothing is published."""
    plan = chronic_plan()
    changes, state = after_visits(plan, [8, 6, 4, 3])
    tapered = changes[3]
    assert isinstance(tapered, PlanRevised)
    last = tapered.model_copy(update={"sessions_total": state.sessions_done + 1})
    last = last.model_copy(
        update={"phases": [tapered.phases[0].model_copy(update={"sessions": 1})]}
    )
    again, after = judged(last, state, now=NOW + timedelta(days=21))
    assert again is None and after.reviewed_version == last.version


def test_a_taper_every_two_weeks_is_not_found_overdue_before_its_first_visit() -> None:
    plan = chronic_plan()
    changes, _ = after_visits(plan, [8, 6, 4, 3])
    tapered = changes[3]
    assert isinstance(tapered, PlanRevised) and tapered.phases[0].interval_days == 14
    first_visit = NOW.date() + timedelta(days=14)
    assert tapered.review_by > first_visit
