"""HTTP routes of the scheduler."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.scheduler.store import CalendarStore
from shared.auth import CurrentPrincipal
from shared.routes import runtime_of, visible

router = APIRouter(prefix="/v1", tags=["visits"])


@router.get("/clients/{client_id}/visits")
async def client_visits(
    client_id: str, principal: CurrentPrincipal, request: Request
) -> dict[str, Any]:
    """The client's visits in start order, with local start times."""
    runtime = runtime_of(request)
    visits = await CalendarStore(runtime.redis, runtime.keys).client_visits(client_id)
    visible(principal, [v.location_id for v in visits])
    reachable = [v for v in visits if principal.reaches(v.location_id)]
    return {
        "client_id": client_id,
        "visits": [
            {
                **v.to_data(),
                "local_start": v.start.astimezone(
                    runtime.chain.location(v.location_id).zone
                ).isoformat(),
            }
            for v in reachable
        ],
    }
