"""``clinicflow replay``: the dashboard's read model, rebuilt from offset 0."""

from __future__ import annotations

from services.dashboard.projector import RebuildSummary, rebuild
from services.dashboard.store import DashboardStore
from shared.clock import parse_clock
from shared.redis_store import Keys, connect
from shared.settings import DashboardSettings


async def replay_dashboard(settings: DashboardSettings) -> RebuildSummary:
    redis = connect(settings, service="dashboard")
    try:
        store = DashboardStore(redis, Keys(settings.redis_namespace, "dashboard"))
        clock = parse_clock(settings.clock, anchor=settings.clock_anchor)
        return await rebuild(
            settings, store, clock=clock, window_minutes=settings.flow_window_minutes
        )
    finally:
        await redis.aclose()
