"""Readiness asks the broker now: cut between a service and its broker (a TCP proxy
the broker advertises), /readyz answers 503 with ``broker: false`` and
``clinicflow_ready`` drops within the check's cache window; restored, both recover.

The service (the ops dashboard, which publishes and reads every topic) runs against
a broker of its own, never the session's."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.dashboard.app import build_app
from shared.infra import Infra, embedded_broker, free_port
from shared.settings import DashboardSettings
from tests.support import in_process_service, until
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration
# the cached answer (3 s), one check that times out (1.5 s) and the metric's round (5 s)
NOTICED_WITHIN_S = 30.0


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[TcpProxy]:
    """A broker reached only through a proxy the test can cut."""
    port = free_port()
    cut = TcpProxy("127.0.0.1", port)
    (tmp_path / "broker").mkdir()
    await cut.start()  # first: the broker is probed through the address it advertises
    try:
        with ExitStack() as stack:
            # embedded_broker probes the broker with asyncio.run: entered from a thread
            await asyncio.to_thread(
                lambda: stack.enter_context(
                    embedded_broker(port, tmp_path / "broker", advertised_port=cut.port)
                )
            )
            yield cut
    finally:
        await cut.stop()


@pytest.fixture
def settings(infra: Infra, proxy: TcpProxy) -> DashboardSettings:
    return DashboardSettings(
        KAFKA_BOOTSTRAP_SERVERS=proxy.address,
        REDIS_URL=infra.redis_url,
        CLINICFLOW_REDIS_NAMESPACE=f"ready-{uuid.uuid4().hex[:10]}",
        CLINICFLOW_ENV="test",
        DASHBOARD_SERVICES="intake=http://127.0.0.1:9",
        KAFKA_SEND_TIMEOUT_S=2.0,
    )


async def readiness(http: httpx.AsyncClient, status: int) -> dict[str, Any] | None:
    answer = await http.get("/readyz")
    return answer.json() if answer.status_code == status else None


async def ready_metric(http: httpx.AsyncClient, check: str, value: str) -> bool:
    text = (await http.get("/metrics")).text
    return f'clinicflow_ready{{check="{check}",service="dashboard"}} {value}' in text


async def test_readyz_and_the_metric_follow_the_broker_live(
    settings: DashboardSettings, proxy: TcpProxy
) -> None:
    async with in_process_service(build_app, settings) as http:
        ready = await until(lambda: readiness(http, 200), timeout=NOTICED_WITHIN_S)
        assert ready["checks"]["broker"] is True
        await until(lambda: ready_metric(http, "broker", "1.0"), timeout=NOTICED_WITHIN_S)

        await proxy.cut()
        down = await until(lambda: readiness(http, 503), timeout=NOTICED_WITHIN_S)
        assert down["ready"] is False
        assert down["checks"] == {"redis": True, "broker": False}
        await until(lambda: ready_metric(http, "broker", "0.0"), timeout=NOTICED_WITHIN_S)
        assert await ready_metric(http, "all", "0.0")

        await proxy.restore()
        back = await until(lambda: readiness(http, 200), timeout=NOTICED_WITHIN_S)
        assert back["checks"] == {"redis": True, "broker": True}
        await until(lambda: ready_metric(http, "all", "1.0"), timeout=NOTICED_WITHIN_S)
