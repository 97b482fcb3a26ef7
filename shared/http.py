"""The HTTP face every service shares: health, readiness, metrics, request metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.routing import Match

from shared.metrics import HTTP_REQUESTS, HTTP_SECONDS

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def service_app(
    *, service: str, title: str, description: str, lifespan: Lifespan, version: str = "1"
) -> FastAPI:
    """A FastAPI app with /healthz, /readyz and /metrics; set ``app.state.readiness``."""
    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up (it may still be connecting)."""
        return {"status": "ok", "service": service}

    @app.get("/readyz", tags=["operations"])
    async def readyz(request: Request) -> JSONResponse:
        """200 only when connected to the broker and Redis and consuming."""
        check: ReadinessCheck | None = getattr(request.app.state, "readiness", None)
        checks = await check() if check is not None else {"started": False}
        ready = all(checks.values())
        return JSONResponse(
            {"ready": ready, "service": service, "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus exposition."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def state_store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        """Redis down is a 503 the caller can retry, not a 500."""
        return JSONResponse(
            {"detail": "the state store (Redis) did not answer; retry shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        route = _route_template(request)
        HTTP_REQUESTS.labels(service, request.method, route, str(response.status_code)).inc()
        HTTP_SECONDS.labels(service, request.method, route).observe(time.perf_counter() - started)
        return response

    return app


def _route_template(request: Request) -> str:
    """The route pattern (``/v1/clients/{client_id}/plan``), never the raw path with ids."""
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match == Match.FULL:
            return str(getattr(route, "path", "unmatched"))
    return "unmatched"
