"""HTTP routes of the planner."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.planner import views
from services.planner.docs import CURRENT_PLAN_EXAMPLE
from services.planner.store import PlanStore, location_of
from shared.aliases import ClientAliases
from shared.auth import CurrentPrincipal
from shared.errors import errors
from shared.openapi import example_answer
from shared.routes import in_scope, runtime_of

router = APIRouter(prefix="/v1", tags=["plans"])


def _store(request: Request) -> PlanStore:
    runtime = runtime_of(request)
    return PlanStore(runtime.redis, runtime.keys)


async def _visible_history(
    request: Request, client_id: str, principal: CurrentPrincipal
) -> tuple[str, list[dict[str, Any]]]:
    """The client (the survivor, when ``client_id`` was retired by a merge) and its
    plan records at the locations the key reaches; 404 when there are none."""
    runtime = runtime_of(request)
    survivor, known_as = await ClientAliases(runtime.redis, runtime.keys).known_as(client_id)
    history = await _store(request).history(*known_as)
    return survivor, in_scope(principal, history, location_of)


@router.get(
    "/clients/{client_id}/plan",
    response_model=views.CurrentPlan,
    responses={200: example_answer(CURRENT_PLAN_EXAMPLE), **errors(401, 404, 429)},
)
async def current_plan(
    client_id: str, principal: CurrentPrincipal, request: Request
) -> views.CurrentPlan:
    """The client's current plan (or the decline) with its rationale and progress: the
    latest record at a location the key reaches. A field that does not apply is null."""
    survivor, history = await _visible_history(request, client_id, principal)
    store = _store(request)
    active = await store.active_plan_id(survivor)
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
    locations the key reaches, oldest first."""
    survivor, history = await _visible_history(request, client_id, principal)
    return views.history_view(survivor, history)
