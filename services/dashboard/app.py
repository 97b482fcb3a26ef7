"""Composition root of the ops dashboard."""

from __future__ import annotations

from fastapi import FastAPI

from services.dashboard.api import router
from services.dashboard.probes import Prober
from services.dashboard.projector import project
from services.dashboard.store import DashboardStore
from shared.runtime import Runtime
from shared.service import build_service
from shared.settings import DashboardSettings


def build_app(settings: DashboardSettings) -> FastAPI:
    prober = Prober(settings.service_urls(), settings.poll_interval_s)

    async def projection(runtime: Runtime) -> None:
        store = DashboardStore(runtime.redis, runtime.keys)
        await project(
            settings,
            store,
            runtime.keys("projection-lease"),
            clock=runtime.clock,
            window_minutes=settings.flow_window_minutes,
        )

    async def probing(runtime: Runtime) -> None:
        await prober.run(runtime.clock)

    app = build_service(
        service="dashboard",
        settings=settings,
        description="The ops dashboard: event flow, consumer lag, dead letters, waitlists, "
        "failed and suppressed notifications, service health.",
        routers=[router],
        background=[projection, probing],
    )
    app.state.prober = prober
    app.state.flow_window_minutes = settings.flow_window_minutes
    return app
