"""Small helpers shared by the services' HTTP routes."""

from __future__ import annotations

from fastapi import HTTPException, Request, status

from shared.auth import Principal
from shared.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def visible(principal: Principal, location_ids: list[str]) -> None:
    """404 unless the caller's key reaches at least one of the records' locations."""
    if not location_ids or not any(principal.reaches(loc) for loc in location_ids):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
