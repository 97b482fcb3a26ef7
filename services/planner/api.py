"""HTTP routes of the planner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status

from services.planner import views
from services.planner.docs import CURRENT_PLAN_EXAMPLE
from services.planner.retirement import keep_for
from services.planner.store import PlanStore, location_of
from shared.aliases import ClientAliases
from shared.auth import CurrentPrincipal
from shared.errors import errors
from shared.openapi import example_answer
from shared.routes import runtime_of

router = APIRouter(prefix="/v1", tags=["plans"])


def _store(request: Request) -> PlanStore:
    runtime = runtime_of(request)
    return PlanStore(runtime.redis, runtime.keys)


@dataclass(frozen=True)
class Visible:
    """What the key may see of a client's plans."""

    client_id: str  # the survivor, when the id asked for was retired by a merge
    records: list[dict[str, Any]]  # the plan records in the hot state, oldest first
    retired: list[views.RetiredCourseView]  # finished courses that have left it


async def _visible_history(
    request: Request, client_id: str, principal: CurrentPrincipal
) -> Visible:
    """The client's plan records and retired courses at the locations the key reaches,
    each judged by its own location; 404 when there are none."""
    runtime = runtime_of(request)
    survivor, known_as = await ClientAliases(runtime.redis, runtime.keys).known_as(client_id)
    store = _store(request)
    history = await store.history(*known_as)
    records = [r for r in history if principal.reaches(location_of(r))]
    retired = [
        views.retired_view(course, keep_for(runtime.chain, course.location_id))
        for course in await store.retired_of(*known_as)
        if principal.reaches(course.location_id)
    ]
    if not records and not retired:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return Visible(survivor, records, retired)


@router.get(
    "/clients/{client_id}/plan",
    response_model=views.CurrentPlan,
    responses={200: example_answer(CURRENT_PLAN_EXAMPLE), **errors(401, 404, 429)},
)
async def current_plan(
    client_id: str, principal: CurrentPrincipal, request: Request
) -> views.CurrentPlan:
    """The client's current plan (or the decline) with its rationale and progress: the
    latest record at a location the key reaches. A field that does not apply is null.
    When every course of the client has left the hot state (``retired_courses`` of the
    history): 404, the detail naming the latest and the topic that keeps its history."""
    seen = await _visible_history(request, client_id, principal)
    if not seen.records:
        raise HTTPException(status.HTTP_404_NOT_FOUND, views.gone_detail(seen.retired))
    history = seen.records
    store = _store(request)
    active = await store.active_plan_id(seen.client_id)
    plan_id = views.current_plan_id(history, active=active)
    progress = None if plan_id is None else await store.progress(plan_id)
    return views.current_view(history, progress, active=active)


@router.get(
    "/clients/{client_id}/plan/history",
    response_model=views.PlanHistory,
    responses=errors(401, 404, 429),
)
async def plan_history(
    client_id: str, principal: CurrentPrincipal, request: Request
) -> views.PlanHistory:
    """Every plan version, decline and completion of the client recorded at the
    locations the key reaches, oldest first; finished courses that have left the hot
    state after their location's ``keep_finished_courses`` as ``retired_courses``
    (their history is on clinic.plans)."""
    seen = await _visible_history(request, client_id, principal)
    return views.history_view(seen.client_id, seen.records, seen.retired)
