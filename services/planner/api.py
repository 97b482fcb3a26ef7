"""HTTP routes of the planner."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.planner import views
from services.planner.store import PlanStore, location_of
from shared.auth import CurrentPrincipal
from shared.errors import errors
from shared.routes import runtime_of, visible

router = APIRouter(prefix="/v1", tags=["plans"])


def _store(request: Request) -> PlanStore:
    runtime = runtime_of(request)
    return PlanStore(runtime.redis, runtime.keys)


async def _visible_history(
    store: PlanStore, client_id: str, principal: CurrentPrincipal
) -> list[dict[str, Any]]:
    """The client's plan records; 404 when there are none the key may see."""
    history = await store.history(client_id)
    visible(principal, [location_of(record) for record in history])
    return history


@router.get(
    "/clients/{client_id}/plan",
    response_model=views.CurrentPlan,
    response_model_exclude_none=True,
    responses=errors(401, 404, 429),
)
async def current_plan(
    client_id: str, principal: CurrentPrincipal, request: Request
) -> views.CurrentPlan:
    """The client's current plan (or the decline) with its rationale and progress."""
    store = _store(request)
    history = await _visible_history(store, client_id, principal)
    plan_id = views.current_plan_id(history)
    progress = None if plan_id is None else await store.progress(plan_id)
    return views.current_view(history, progress)


@router.get(
    "/clients/{client_id}/plan/history",
    response_model=views.PlanHistory,
    response_model_exclude_none=True,
    responses=errors(401, 404, 429),
)
async def plan_history(
    client_id: str, principal: CurrentPrincipal, request: Request
) -> views.PlanHistory:
    """Every plan version, decline and completion of the client, oldest first."""
    history = await _visible_history(_store(request), client_id, principal)
    return views.history_view(client_id, history)
