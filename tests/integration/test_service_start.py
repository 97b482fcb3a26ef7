"""A consuming service starts its background work (the notifier's sends, outbox
relays) as soon as Redis and the broker answer, not after its consumer has joined its
group: after a crash the join waits out the dead member's session, and a restarted
notifier must send meanwhile. Readiness still says it is not consuming until then."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from shared.infra import Infra
from shared.runtime import Runtime
from shared.service import build_service
from shared.settings import CommonSettings
from shared.topics import VISITS
from tests.conftest import DEMO_CHAIN
from tests.support import until

pytestmark = pytest.mark.integration


async def test_background_work_starts_before_the_consumer_holds_its_partitions(
    infra: Infra,
) -> None:
    seen: dict[str, Any] = {}
    began = asyncio.Event()

    async def work(runtime: Runtime) -> None:
        seen["rebalanced"] = runtime.rebalanced
        seen["readiness"] = await runtime.readiness()
        began.set()
        await asyncio.Event().wait()  # runs as long as the service

    settings = CommonSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
        REDIS_URL=infra.redis_url,
        CLINICFLOW_REDIS_NAMESPACE=f"start-{uuid.uuid4().hex[:8]}",
        CLINICFLOW_CHAIN_CONFIG=str(DEMO_CHAIN),
        CLINICFLOW_ENV="test",
    )
    app = build_service(
        service=f"starting-{uuid.uuid4().hex[:6]}",  # a group of its own: a real join
        settings=settings,
        description="a consumer under test",
        consumes=[VISITS],
        handlers=lambda runtime: {},
        background=[work],
    )
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        await asyncio.wait_for(began.wait(), 10)
        assert seen["rebalanced"] is False  # it began before the partitions came
        assert seen["readiness"]["consuming"] is False  # and readiness said so
        assert seen["readiness"]["redis"] is True

        async def consuming() -> bool:
            return (await runtime.readiness())["consuming"]

        await until(consuming)
