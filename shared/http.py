"""The HTTP face every service shares: health, readiness, metrics, request metrics,
and one log line per request with the route's context bound (shared/logs.py)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import fastapi.routing
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.routing import BaseRoute, Match

from shared import logs
from shared.metrics import HTTP_REQUESTS, HTTP_SECONDS

log = logs.get_logger(__name__)

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
# polled every few seconds by probes and Prometheus: their lines only at DEBUG
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
CALLER_ID = re.compile(r"[\w.:-]{1,128}")


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
        route, params = _route_of(request)
        context = {"service": service, "method": request.method, "route": route}
        context |= _caller_ids(request)
        if isinstance(params.get("location_id"), str):
            context["location_id"] = params["location_id"]
        with logs.bound(**context):
            try:
                response = await call_next(request)
            except Exception:
                log.warning("request failed", status=500, duration_ms=_ms_since(started))
                raise
            HTTP_REQUESTS.labels(service, request.method, route, str(response.status_code)).inc()
            HTTP_SECONDS.labels(service, request.method, route).observe(
                time.perf_counter() - started
            )
            log.log(
                logging.DEBUG if route in QUIET_ROUTES else logging.INFO,
                "request handled",
                status=response.status_code,
                duration_ms=_ms_since(started),
            )
        return response

    return app


def _route_of(request: Request) -> tuple[str, dict[str, Any]]:
    """The route pattern (``/v1/clients/{client_id}/plan``), never the raw path with
    ids, and the path parameters it takes from the path."""
    for route in _routes(request.app.router.routes):
        match, child = route.matches(request.scope)
        if match == Match.FULL:
            template = getattr(route, "path_format", None) or getattr(route, "path", None)
            return str(template or "unmatched"), dict(child.get("path_params", {}))
    return "unmatched", {}


def _routes(routes: Sequence[BaseRoute]) -> Iterable[Any]:
    """Every route with its full path: FastAPI releases that keep included routers
    whole (rather than copying their routes into the app) list them through
    ``iter_route_contexts``; earlier ones hold the copies in ``routes``."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    return contexts(routes) if contexts is not None else routes


def _caller_ids(request: Request) -> dict[str, str]:
    """``X-Request-ID`` and ``X-Correlation-ID`` as the caller sent them, when they
    look like ids; anything else is not copied into a log line."""
    ids = {}
    for header, key in (("x-request-id", "request_id"), ("x-correlation-id", "correlation_id")):
        value = request.headers.get(header)
        if value is not None and CALLER_ID.fullmatch(value):
            ids[key] = value
    return ids


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
