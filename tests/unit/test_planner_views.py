"""What GET /v1/clients/{id}/plan and /plan/history show, built from the records
the planner stores (services/planner/views.py)."""

from __future__ import annotations

from typing import Any

import pytest

from services.planner import views
from services.planner.domain import decide
from services.planner.progress import Progress
from shared.chain import Policy
from shared.events import EventData
from shared.events.intake import Contraindication, Screening
from shared.events.plans import PlanCompleted, PlanData, PlanDeclined, PlanRevised
from tests.unit.test_planner_domain import make_intake
from tests.unit.test_planner_progress import after_visits, chronic_plan


def record(event: EventData) -> dict[str, Any]:
    """A record the way ``PlanStore`` keeps it."""
    if isinstance(event, PlanData):
        return {"status": "active", "event_type": event.event_type, "plan": event.to_data()}
    if isinstance(event, PlanCompleted):
        return {
            "status": "completed",
            "event_type": event.event_type,
            "completion": event.to_data(),
        }
    assert isinstance(event, PlanDeclined)
    return {"status": "declined", "event_type": event.event_type, "decline": event.to_data()}


def reassessed() -> tuple[PlanData, PlanRevised, Progress]:
    plan = chronic_plan()
    changes, state = after_visits(plan, [8, 8, 7, 7])
    revised = changes[-1]
    assert isinstance(revised, PlanRevised)
    return plan, revised, state


def test_an_earlier_version_is_superseded_and_the_latest_is_current() -> None:
    plan, revised, state = reassessed()
    records = [record(plan), record(revised)]
    history = views.history_view(plan.client_id, records)
    assert [(v.status, v.event_type) for v in history.versions] == [
        ("superseded", "plan.created"),
        ("active", "plan.revised"),
    ]
    assert views.current_plan_id(records) == plan.plan_id
    current = views.current_view(records, state)
    assert current.plan is not None
    assert (current.plan.version, current.plan.change) == (2, "reassess")
    assert current.plan.rationale[-1].detail == revised.reason


def test_progress_shows_the_trajectory_and_the_next_review() -> None:
    _, revised, state = reassessed()
    current = views.current_view([record(revised)], state)
    assert current.progress is not None
    assert current.progress.pain_carried_in == [8, 8, 7, 7]
    assert current.progress.improvement == pytest.approx(0.125)
    assert current.progress.sessions_done == 4
    assert current.progress.sessions_total == revised.sessions_total
    # the revised version is reviewed after its own first sessions
    assert current.progress.next_review_after_sessions == 4 + revised.review_after_sessions
    assert current.progress.review_by == revised.review_by and not current.progress.finished


def test_a_completed_plan_shows_its_last_version_beside_the_completion() -> None:
    plan = chronic_plan()
    changes, state = after_visits(plan, [8, 7, 6, 5] + [4] * (plan.sessions_total - 4))
    done = changes[-1]
    assert isinstance(done, PlanCompleted)
    records = [record(plan), record(done)]
    current = views.current_view(records, state)
    assert current.status == "completed" and current.completion == done
    assert current.plan is not None and current.plan.version == 1
    assert current.progress is not None and current.progress.finished
    assert current.progress.next_review_after_sessions is None
    assert [v.status for v in views.history_view(plan.client_id, records).versions] == [
        "superseded",
        "completed",
    ]


def test_a_declined_intake_has_no_plan_and_no_progress() -> None:
    intake = make_intake(
        contraindications=(Contraindication(code="dvt"),),
        screening=Screening(outcome="refer", referral_recommended=True),
    )
    declined = decide(intake, policy=Policy())
    assert isinstance(declined, PlanDeclined)
    records = [record(declined)]
    assert views.current_plan_id(records) is None
    current = views.current_view(records, None)
    assert current.status == "declined" and current.decline == declined
    assert current.plan is None and current.progress is None


def test_the_openapi_document_types_both_plan_endpoints() -> None:
    from services.planner.app import build_app
    from shared.settings import PlannerSettings

    spec = build_app(PlannerSettings()).openapi()
    paths = spec["paths"]
    for path, model in [
        ("/v1/clients/{client_id}/plan", "CurrentPlan"),
        ("/v1/clients/{client_id}/plan/history", "PlanHistory"),
    ]:
        responses = paths[path]["get"]["responses"]
        schema = responses["200"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}
        assert {"401", "404", "429"} <= set(responses)
    progress = spec["components"]["schemas"]["PlanProgress"]["properties"]
    assert {"pain_carried_in", "improvement", "next_review_after_sessions"} <= set(progress)
