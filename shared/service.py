"""Builds a service's FastAPI app around its runtime: one lifespan that connects
Redis, the broker and (for consumers) the faust agents, plus optional background
tasks that live exactly as long as the runtime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from shared.http import service_app
from shared.metrics import READY
from shared.ratelimit import Limit, RateLimiter
from shared.runtime import Foundations, HandlersFactory, Runtime, running
from shared.settings import CommonSettings
from shared.topics import TopicSpec

log = logging.getLogger(__name__)

BackgroundTask = Callable[[Runtime], Coroutine[Any, Any, None]]


def build_service(
    *,
    service: str,
    settings: CommonSettings,
    description: str,
    routers: Sequence[APIRouter] = (),
    consumes: Sequence[TopicSpec] = (),
    handlers: HandlersFactory | None = None,
    background: Sequence[BackgroundTask] = (),
) -> FastAPI:
    base = Foundations.load(service, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []

        def start(runtime: Runtime) -> None:
            # before the consumer joins its group: a restarted notifier sends at once
            tasks.extend(
                asyncio.create_task(task(runtime)) for task in (*background, _report_readiness)
            )

        async def stop() -> None:
            for task in tasks:
                task.cancel()
            for task in tasks:
                await stopped(task)

        async with running(
            base, consumes=consumes, handlers=handlers, connected=start, stopping=stop
        ) as runtime:
            app.state.runtime = runtime
            app.state.readiness = runtime.readiness
            app.state.rate_limiter = RateLimiter(runtime.redis)
            app.state.rate_limit_prefix = runtime.keys.shared("ratelimit", "")
            yield

    app = service_app(
        service=service,
        title=f"clinicflow {service}",
        description=description,
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
    )
    app.state.chain = base.chain
    app.state.rate_limit = Limit(
        per_minute=settings.api_rate_limit_per_minute, burst=settings.api_rate_limit_burst
    )
    app.state.failed_key_limit = Limit(
        per_minute=settings.api_failed_keys_per_minute, burst=settings.api_failed_keys_burst
    )
    for router in routers:
        app.include_router(router)
    return app


async def _report_readiness(runtime: Runtime, *, every_s: float = 5.0) -> None:
    """Keep ``clinicflow_ready`` current: Prometheus reads /metrics, not /readyz."""
    while True:
        checks = await runtime.readiness()
        for check, ok in {**checks, "all": all(checks.values())}.items():
            READY.labels(runtime.service, check).set(1 if ok else 0)
        await asyncio.sleep(every_s)


async def stopped(task: asyncio.Task[None], *, every_s: float = 1.0) -> None:
    """Wait for a cancelled task to end, cancelling it again while it runs: a
    library that swallows a cancellation at the wrong moment (redis-py and
    others have) must not keep a service from shutting down."""
    while not task.done():
        await asyncio.wait({task}, timeout=every_s)
        if not task.done():
            log.warning("background task %s ignored a cancellation; cancelling again", task)
            task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
