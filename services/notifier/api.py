"""HTTP routes of the notifier."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.notifier.store import NotificationStore
from shared.auth import CurrentPrincipal
from shared.routes import runtime_of, visible

router = APIRouter(prefix="/v1", tags=["notifications"])


@router.get("/clients/{client_id}/notifications")
async def client_notifications(
    client_id: str, principal: CurrentPrincipal, request: Request
) -> dict[str, Any]:
    """The client's notification log with status, in due order."""
    runtime = runtime_of(request)
    records = await NotificationStore(runtime.redis, runtime.keys).for_client(client_id)
    visible(principal, [r["location_id"] for r in records])
    return {
        "client_id": client_id,
        "notifications": [
            {k: v for k, v in r.items() if k != "trace"}
            for r in records
            if principal.reaches(r["location_id"])
        ],
    }
