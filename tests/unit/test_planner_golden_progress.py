"""Golden case: a non-responder is referred, whatever the course length (DOMAIN.md 5).

Seed 003: "Patients should expect significant relief as a result from these treatments
within a period of 4-14 days. Within this time span, patients may have up to 4
treatment sessions to increase their recovery rates." An acute course is judged at its
review point like a chronic one; a course that ends without meaningful relief ends
referred, never with a maintenance suggestion. Where the review leaves sessions, the
course is re-assessed once before it is referred.
"""

from __future__ import annotations

from datetime import timedelta

from services.planner.progress import Progress, next_step, recorded
from shared.events.plans import PlanCompleted, PlanCreated, PlanData, PlanRevised
from shared.events.visits import VisitCompleted
from tests.unit.test_planner_golden import (
    CLIENT,
    CONSENT,
    NECK_HEADACHE,
    SUBMITTED,
    plan_for,
    submitted,
)

SEED_003 = (
    "Patients should expect significant relief as a result from these treatments within "
    "a period of 4-14 days. Within this time span, patients may have up to 4 treatment "
    "sessions to increase their recovery rates."
)
REFERRAL = "physician or physical therapist (DOMAIN.md 7)"

# An acute neck sprain with headache and a tingling arm: severe enough for the top of
# the acute range (DOMAIN.md 5: acute 3-5 sessions), so the review after 4 leaves one.
NECK_SPRAIN = {
    "location_id": "beaverton",
    "client": {**CLIENT, "name": "Sam Okafor", "email": "sam@example.com"},
    "complaints": [
        {
            "region": "neck",
            "side": "both",
            "intensity": 10,
            "qualities": ["ache", "tender"],
            "onset": "2026-10-19",
        },
        {"region": "shoulder_blade", "side": "right", "intensity": 7, "onset": "2026-10-19"},
        {
            "region": "arm",
            "side": "right",
            "intensity": 6,
            "qualities": ["tingling"],
            "onset": "2026-10-19",
        },
        {"region": "head", "side": "right", "intensity": 6, "onset": "2026-10-19"},
    ],
    "goals": ["drive without turning my whole body"],
    "consent": CONSENT,
}


def visits(
    plan: PlanData, pains: list[int], progress: Progress
) -> tuple[list[PlanRevised | PlanCompleted | None], Progress]:
    """The visits' outcomes one by one, as the planner's handler takes them."""
    changes: list[PlanRevised | PlanCompleted | None] = []
    for n, pain in enumerate(pains, start=progress.sessions_done + 1):
        at = SUBMITTED + timedelta(days=3 * n)
        outcome = VisitCompleted(
            visit_id=f"{plan.plan_id}-visit-{n}",
            plan_id=plan.plan_id,
            client_id=plan.client_id,
            location_id=plan.location_id,
            therapist_id="t-ana",
            pain_before=pain,
            pain_after=max(0, pain - 3),  # relief on the table that does not last
            completed_at=at,
        )
        change, progress = next_step(plan, recorded(progress, outcome), now=at)
        changes.append(change)
    return changes, progress


def test_golden_acute_non_responder_ends_referred_at_its_review() -> None:
    """Seed 003 (see SEED_003): four sessions, the whole acute course, and the pain
    carried in barely moves: the review point is the course's end, so it is referred."""
    plan = plan_for(submitted(NECK_HEADACHE, intake_id="golden-acute-non-responder"))
    assert (plan.condition, plan.sessions_total, plan.review_after_sessions) == ("acute", 4, 4)
    changes, progress = visits(plan, [6, 6, 5, 5], Progress(plan_id=plan.plan_id))
    assert changes[:3] == [None, None, None]
    done = changes[3]
    assert isinstance(done, PlanCompleted)
    assert (done.outcome, done.maintenance, done.sessions_done) == ("referred", None, 4)
    assert done.reason == (
        "17% improvement after all 4 sessions (pain carried in: 6 -> 6 -> 5 -> 5), under "
        f"30%: the course ends referred to a {REFERRAL}"
    )
    assert done.referral is not None
    assert (done.referral.recommended, done.referral.to) == (True, REFERRAL)
    assert done.referral.detail == done.reason
    assert progress.finished


def test_golden_acute_course_with_a_session_left_is_re_assessed_once_then_referred() -> None:
    """Seed 003: no relief by the fourth session re-assesses the fifth (gentler, release
    first); still none when the course ends: referred, no maintenance."""
    intake = submitted(NECK_SPRAIN, intake_id="golden-acute-reassessed")
    plan: PlanData = plan_for(intake)
    assert isinstance(plan, PlanCreated)
    assert (plan.condition, plan.sessions_total, plan.review_after_sessions) == ("acute", 5, 4)
    changes, progress = visits(plan, [9, 9, 8, 8], Progress(plan_id=plan.plan_id))
    revised = changes[3]
    assert isinstance(revised, PlanRevised)
    assert (revised.change, revised.version, revised.sessions_done) == ("reassess", 2, 4)
    assert revised.reason == (
        "11% improvement after 4 sessions (pain carried in: 9 -> 9 -> 8 -> 8), under 30%: "
        "re-assess trigger points and change the technique mix"
    )
    assert revised.sessions_total == 5 and revised.review_after_sessions == 1
    assert [(p.sessions, p.interval_days) for p in revised.phases] == [(1, 7)]
    assert revised.protocol[0].technique == "reassessment"

    changes, progress = visits(revised, [8], progress)
    done = changes[0]
    assert isinstance(done, PlanCompleted)
    assert (done.outcome, done.maintenance, done.version) == ("referred", None, 2)
    assert done.reason == (
        "11% improvement after all 5 sessions (pain carried in: 9 -> 9 -> 8 -> 8 -> 8), "
        f"under 30%: the course ends referred to a {REFERRAL}"
    )
    assert done.referral is not None and done.referral.to == REFERRAL


def test_golden_acute_responder_completes_with_maintenance() -> None:
    """The other side of seed 003: relief within the course keeps the usual ending."""
    plan = plan_for(submitted(NECK_HEADACHE, intake_id="golden-acute-responder"))
    changes, _ = visits(plan, [6, 5, 4, 4], Progress(plan_id=plan.plan_id))
    done = changes[3]
    assert isinstance(done, PlanCompleted)
    assert done.outcome == "course_complete" and done.referral is None
    assert done.maintenance is not None and done.maintenance.startswith("a maintenance visit")
