"""Golden case: the red flag acts (DOMAIN.md 1).

Seed 000: "If you have a new, dull pain that doesn't improve in two to three weeks,
bring it to your doctor's attention." The plan opens with an assessment-only visit at
gentle pressure; the rest of the course waits for the therapist's record of the
doctor's check (or an override, with its reason); a doctor who advises against
treatment ends the course referred.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.planner.course import cadence_phase, remaining_phases
from services.planner.domain import after_medical_check
from services.planner.knowledge import EVERY_TWO_WEEKS
from services.scheduler.booking import sessions_from
from shared.events.intake import (
    AssessmentRecorded,
    IntakeSubmitted,
    MedicalCheckRecorded,
    TriggerPoint,
)
from shared.events.plans import PlanCompleted, PlanCreated, PlanRevised
from tests.unit.test_planner_golden import RED_FLAG_LOW_BACK, plan_for, submitted

SEED_000 = (
    "If you have a new, dull pain that doesn't improve in two to three weeks, bring it "
    "to your doctor's attention."
)
CHECKED = datetime(2026, 11, 6, 15, 0, tzinfo=ZoneInfo("America/Los_Angeles"))


def red_flag_plan() -> tuple[IntakeSubmitted, PlanCreated]:
    intake = submitted(RED_FLAG_LOW_BACK, intake_id="golden-red-flag-gate")
    return intake, plan_for(intake)


def check(outcome: str, reason: str | None = None) -> MedicalCheckRecorded:
    return MedicalCheckRecorded(
        check_id="check-1",
        client_id="client-golden-red-flag-gate",
        therapist_id="t-ana",
        location_id="beaverton",
        outcome=outcome,  # type: ignore[arg-type]
        reason=reason,
        recorded_at=CHECKED,
    )


def test_golden_red_flag_opens_with_an_assessment_only_visit_and_waits() -> None:
    """Seed 000 (see SEED_000): the red flag is a screening outcome with consequences."""
    intake, plan = red_flag_plan()
    assert intake.screening.referral_recommended
    waiting = plan.awaiting_medical_check
    assert waiting is not None
    assert (waiting.book_through, waiting.since) == (1, date(2026, 11, 2))
    assert waiting.reason == (
        "new dull pain in the low back not improving for 28 days: recommend a medical check"
    )
    # the assessment-only visit: assess at gentle pressure, then only the gentlest steps
    assert [(s.technique, s.pressure_target) for s in plan.protocol] == [
        ("assessment", 3),
        ("warming_strokes", None),
        ("myofascial_release", None),
        ("stretching", None),
    ]
    assert plan.protocol[0].targets == ["low_back"]
    assert not any(s.hold_seconds for s in plan.protocol)
    # the whole course is planned; only its first session may be booked yet
    assert plan.sessions_total == 3
    assert [sequence for sequence, _ in sessions_from(plan)] == [1]
    assert (
        "DOMAIN.md 1: red flag, the course waits for a doctor's check",
        "new dull pain in the low back not improving for 28 days: recommend a medical check: "
        "visit 1 assesses at gentle pressure (3/10); the other 2 session(s) are booked once "
        "the therapist records the doctor's check (or overrides it with a reason)",
    ) in [(r.rule, r.detail) for r in plan.rationale]


def test_golden_red_flag_on_an_fmm_plan_keeps_only_the_clients_own_steps() -> None:
    document = {**RED_FLAG_LOW_BACK, "preferences": {"modality": "fmm"}}
    plan = plan_for(submitted(document, intake_id="golden-red-flag-fmm"))
    assert plan.modality == "fmm" and plan.awaiting_medical_check is not None
    assert [(s.technique, s.pressure_target) for s in plan.protocol] == [
        ("assessment", 3),
        ("sigh_of_relief_breathing", None),
        ("sensing_the_pattern", None),
    ]


def test_golden_red_flag_cleared_after_the_assessment_visit_books_the_rest() -> None:
    intake, plan = red_flag_plan()
    assessment = AssessmentRecorded(
        assessment_id="a-1",
        client_id=plan.client_id,
        therapist_id="t-ana",
        location_id="beaverton",
        trigger_points=[TriggerPoint(muscle="quadratus lumborum", side="left", type="active")],
        recorded_at=CHECKED - timedelta(days=3),
    )
    revised = after_medical_check(
        plan, intake, check("cleared"), assessment=assessment, sessions_done=1, now=CHECKED
    )
    assert isinstance(revised, PlanRevised)
    assert (revised.version, revised.change, revised.sessions_done) == (2, "medical_check", 1)
    assert revised.awaiting_medical_check is None
    assert revised.reason == (
        "the doctor's check was recorded by t-ana on 2026-11-06: the course goes on"
    )
    # the full protocol, on the trigger points the assessment visit found
    techniques = [s.technique for s in revised.protocol]
    assert "assessment" not in techniques and "ischemic_compression" in techniques
    pressure = next(s for s in revised.protocol if s.technique == "ischemic_compression")
    assert (pressure.targets, pressure.pressure_target) == (["quadratus lumborum"], 6)
    # sessions 2 and 3, the same cadence
    assert [(p.sessions, p.interval_days, p.rrule) for p in revised.phases] == [
        (2, 3, "FREQ=DAILY;INTERVAL=3;COUNT=2")
    ]
    assert [sequence for sequence, _ in sessions_from(revised, 2)] == [2, 3]
    assert revised.review_by == date(2026, 11, 20)


def test_golden_red_flag_override_needs_the_therapists_reason_in_the_record() -> None:
    intake, plan = red_flag_plan()
    revised = after_medical_check(
        plan,
        intake,
        check("override", "client saw her GP last week; letter on file"),
        assessment=None,
        sessions_done=0,
        now=CHECKED,
    )
    assert isinstance(revised, PlanRevised)
    assert revised.reason == (
        "the therapist t-ana on 2026-11-06 goes on without the doctor's check: client saw "
        "her GP last week; letter on file"
    )
    assert sum(p.sessions for p in revised.phases) == 3
    assert [sequence for sequence, _ in sessions_from(revised, 1)] == [1, 2, 3]


def test_golden_red_flag_not_cleared_ends_the_course_referred() -> None:
    intake, plan = red_flag_plan()
    done = after_medical_check(
        plan,
        intake,
        check("not_cleared", "imaging first"),
        assessment=None,
        sessions_done=1,
        now=CHECKED,
    )
    assert isinstance(done, PlanCompleted)
    assert (done.outcome, done.maintenance, done.sessions_done) == ("referred", None, 1)
    assert done.referral is not None
    assert done.referral.to == "the client's physician (DOMAIN.md 1 red flag)"
    assert done.reason == (
        "the doctor advised against treatment (recorded by t-ana on 2026-11-06): imaging first"
    )


def test_a_plan_waiting_for_nothing_ignores_a_check() -> None:
    intake, plan = red_flag_plan()
    cleared = plan.model_copy(update={"awaiting_medical_check": None})
    assert (
        after_medical_check(
            cleared, intake, check("cleared"), assessment=None, sessions_done=1, now=CHECKED
        )
        is None
    )


@pytest.mark.parametrize("done", [0, 1, 2, 5])
def test_remaining_phases_drop_the_done_sessions(done: int) -> None:
    _, plan = red_flag_plan()
    chronic = plan.model_copy(
        update={
            "phases": [
                *plan.phases,
                cadence_phase("taper", EVERY_TWO_WEEKS, 2, 2),
            ]
        }
    )
    total = sum(p.sessions for p in chronic.phases)
    left = remaining_phases(chronic.phases, done)
    assert sum(p.sessions for p in left) == total - done
    assert all(p.rrule.endswith(f"COUNT={p.sessions}") for p in left)
