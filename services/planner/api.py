"""HTTP routes of the planner."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.planner.store import PlanStore, location_of
from shared.auth import CurrentPrincipal
from shared.routes import runtime_of, visible

router = APIRouter(prefix="/v1", tags=["plans"])


async def _history(request: Request, client_id: str) -> list[dict[str, Any]]:
    runtime = runtime_of(request)
    return await PlanStore(runtime.redis, runtime.keys).history(client_id)


@router.get("/clients/{client_id}/plan")
async def current_plan(
    client_id: str, principal: CurrentPrincipal, request: Request
) -> dict[str, Any]:
    """The client's current plan (or the decline) with its rationale."""
    history = await _history(request, client_id)
    visible(principal, [location_of(history[-1])] if history else [])
    return history[-1]


@router.get("/clients/{client_id}/plan/history")
async def plan_history(
    client_id: str, principal: CurrentPrincipal, request: Request
) -> dict[str, Any]:
    """Every plan version and decline of the client, oldest first."""
    history = await _history(request, client_id)
    visible(principal, [location_of(record) for record in history])
    return {"client_id": client_id, "versions": history}
