"""Small helpers shared by the services' HTTP routes."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import HTTPException, Request, status

from shared.auth import Principal
from shared.kafka import Outgoing, PublishError
from shared.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def visible(principal: Principal, location_ids: list[str]) -> None:
    """404 unless the caller's key reaches at least one of the records' locations."""
    if not location_ids or not any(principal.reaches(loc) for loc in location_ids):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")


async def publish_or_503(runtime: Runtime, items: Sequence[Outgoing], message: str) -> None:
    """Publish and wait for the broker; 503 with ``message`` when it does not acknowledge."""
    try:
        await runtime.publisher.publish(items)
    except PublishError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, message, headers={"Retry-After": "5"}
        ) from exc
