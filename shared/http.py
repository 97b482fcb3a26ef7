"""The HTTP face every service shares: health, readiness, metrics, request metrics,
security headers, and one log line per request with the route's context bound
(shared/logs.py)."""

from __future__ import annotations

import json
import logging
import re
import time
import traceback
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import logs, openapi
from shared.body_limit import BodyLimit
from shared.guard import AuthFirst, answer_of, matched_route, state_store_answer
from shared.headers import security_headers
from shared.metrics import HTTP_REQUESTS, HTTP_SECONDS

log = logs.get_logger(__name__)

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
# polled every few seconds by probes and Prometheus: their lines only at DEBUG
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
CALLER_ID = re.compile(r"[\w.:-]{1,128}")


class Readiness(BaseModel):
    """What /readyz answers, ready (200) or not (503)."""

    ready: bool
    service: str = Field(examples=["planner"])
    checks: dict[str, bool] = Field(
        description="each dependency and whether it answered",
        examples=[{"broker": True, "redis": True, "consuming": False}],
    )


def service_app(
    *,
    service: str,
    title: str,
    description: str,
    lifespan: Lifespan,
    max_body_bytes: int = 256 * 1024,
    version: str = "1",
) -> FastAPI:
    """A FastAPI app with /healthz, /readyz and /metrics behind the front door: request
    metrics and headers, then the body limit, then keys checked before bodies are read
    (shared/guard.py). Set ``app.state.readiness``."""
    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up (it may still be connecting)."""
        return {"status": "ok", "service": service}

    @app.get(
        "/readyz",
        tags=["operations"],
        response_model=Readiness,
        responses={
            503: {"model": Readiness, "description": "not ready: the checks name what is not"}
        },
    )
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

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        """FastAPI's 422, written so that any input can be echoed: a body that is not
        UTF-8 (shown with replacement characters), a lone surrogate (ASCII escapes)."""
        errors = jsonable_encoder(exc.errors(), custom_encoder={bytes: _readable_bytes})
        body = json.dumps({"detail": errors}, ensure_ascii=True)
        return Response(body, status_code=422, media_type="application/json")

    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def state_store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        """Redis down is a 503 the caller can retry, not a 500 (as before the body)."""
        return answer_of(state_store_answer(exc))

    openapi.install(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(AuthFirst)
    app.add_middleware(FrontDoor, service=service)  # outermost: sees every answer
    return app


class FrontDoor:
    """Counts and times every answer (``clinicflow_http_requests_total``), the 401s,
    413s and 500s of the layers inside included; logs one line per request; adds the
    security headers (shared/headers.py); answers an unhandled error as JSON 500."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route, params = _route_of(scope)
        method = scope["method"]
        context = {"service": self.service, "method": method, "route": route}
        context |= _caller_ids(Headers(scope=scope))
        if isinstance(params.get("location_id"), str):
            context["location_id"] = params["location_id"]
        status = 500
        responded = False

        async def guarded_send(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                headers = MutableHeaders(scope=message)
                for name, value in security_headers(
                    scope["path"], headers.get("content-type"), set(headers.keys())
                ):
                    headers.append(name, value)
            await send(message)

        with logs.bound(**context):
            try:
                await self.app(scope, receive, guarded_send)
            except Exception as exc:
                status = 500
                # the type and where it was raised, never the message: it may hold a record
                log.error(
                    "request failed",
                    status=500,
                    error=type(exc).__name__,
                    where=_raised_at(exc),
                    duration_ms=_ms_since(started),
                )
                if responded:
                    raise  # the answer is half sent: the server drops the connection
                answer = JSONResponse({"detail": "internal error; it has been logged"}, 500)
                await answer(scope, receive, guarded_send)
            else:
                log.log(
                    logging.DEBUG if route in QUIET_ROUTES else logging.INFO,
                    "request handled",
                    status=status,
                    duration_ms=_ms_since(started),
                )
            finally:
                HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
                HTTP_SECONDS.labels(self.service, method, route).observe(
                    time.perf_counter() - started
                )


def _readable_bytes(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _raised_at(exc: BaseException) -> list[str]:
    """The innermost frames of ``exc``'s traceback as ``file:line function``."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    return [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames]


def _route_of(scope: Scope) -> tuple[str, dict[str, Any]]:
    """The route pattern (``/v1/clients/{client_id}/plan``), never the raw path with
    ids, and the path parameters it takes from the path."""
    found = matched_route(scope)
    if found is None:
        return "unmatched", {}
    route, child = found
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template or "unmatched"), dict(child.get("path_params", {}))


def _caller_ids(headers: Headers) -> dict[str, str]:
    """``X-Request-ID`` and ``X-Correlation-ID`` as the caller sent them, when they
    look like ids; anything else is not copied into a log line."""
    ids = {}
    for header, key in (("x-request-id", "request_id"), ("x-correlation-id", "correlation_id")):
        value = headers.get(header)
        if value is not None and CALLER_ID.fullmatch(value):
            ids[key] = value
    return ids


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
