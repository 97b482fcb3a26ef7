"""Small helpers shared by the services' HTTP routes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from fastapi import HTTPException, Request, status

from shared.auth import Principal
from shared.kafka import Outgoing, PublishError
from shared.runtime import Runtime

T = TypeVar("T")


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def visible(principal: Principal, location_ids: list[str]) -> None:
    """404 unless the caller's key reaches at least one of the records' locations."""
    if not location_ids or not any(principal.reaches(loc) for loc in location_ids):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")


def in_scope(
    principal: Principal, records: Iterable[T], location_of: Callable[[T], str]
) -> list[T]:
    """The records at locations the caller's key reaches, each judged by its own
    location (one record in scope never opens the others); 404 when none is."""
    kept = [record for record in records if principal.reaches(location_of(record))]
    if not kept:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return kept


async def publish_or_503(runtime: Runtime, items: Sequence[Outgoing], message: str) -> None:
    """Publish and wait for the broker; 503 with ``message`` when it does not acknowledge."""
    try:
        await runtime.publisher.publish(items)
    except PublishError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, message, headers={"Retry-After": "5"}
        ) from exc
