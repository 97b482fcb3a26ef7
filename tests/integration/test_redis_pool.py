"""The Redis connection pool under bursts (shared/redis_store.py ``WaitingPool``): a
burst of requests larger than the pool waits for connections as long as Redis answers,
and is answered as usual, never 503, even when it waits longer than any short pool
timeout would allow; with Redis really unreachable (a TCP proxy cut) the answer is a
503 at once, and the service recovers when Redis is back."""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from services.intake.app import build_app
from shared import redis_store
from shared.guard import STATE_STORE_BUSY, STATE_STORE_DOWN
from shared.infra import Infra
from shared.runtime import Runtime
from shared.settings import CommonSettings
from tests.integration.test_intake_access import BEAVERTON, document, submitted
from tests.support import intake_settings, until
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration
POOL = 2
BURST = 50
HELD_S = 6.0  # longer than the five seconds the pool used to wait before failing


@asynccontextmanager
async def intake(
    infra: Infra, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """The intake service with a pool of ``POOL`` connections, reached over ASGI."""
    settings = intake_settings(
        infra, f"pool-{uuid.uuid4().hex[:8]}", REDIS_POOL_SIZE=POOL, **overrides
    )
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
            yield http, app.state.runtime


async def burst(http: httpx.AsyncClient, known: str) -> list[httpx.Response]:
    """Half reads of a known client (200), half of unknown ones (404): each needs Redis."""
    paths = [f"/v1/clients/{known if n % 2 else uuid.uuid4()}" for n in range(BURST)]
    return list(await asyncio.gather(*(http.get(path, headers=BEAVERTON) for path in paths)))


async def test_a_client_burst_past_the_pool_waits_for_connections(infra: Infra) -> None:
    client = redis_store.connect(
        CommonSettings(REDIS_URL=infra.redis_url, REDIS_POOL_SIZE=POOL), service="pool-test"
    )
    key = f"pool-test:{uuid.uuid4().hex}"
    try:
        # each call holds its connection for 0.2 s: ten at once need five turns of two
        answers = await asyncio.gather(*(client.blpop([key], timeout=0.2) for _ in range(10)))
        assert answers == [None] * 10
        assert client.connection_pool.max_connections == POOL
    finally:
        await client.aclose()


async def test_an_http_burst_past_the_pool_is_answered_as_usual_not_503(infra: Infra) -> None:
    async with intake(infra) as (http, runtime):
        known = await submitted(http, document(), BEAVERTON)
        # both connections held by watched transactions of a slow writer: the burst
        # waits for them longer than the pool used to let it
        held = [runtime.redis.pipeline(transaction=True) for _ in range(POOL)]
        for pipe in held:
            await pipe.watch(f"pool-test:{uuid.uuid4()}")
        assert await _all_in_use(runtime)
        answering = asyncio.ensure_future(burst(http, known))
        await asyncio.sleep(HELD_S)  # the slow writer's work, not a wait for a condition
        assert not answering.done()
        for pipe in held:
            await pipe.reset()

        answers = await answering

        statuses = collections.Counter(answer.status_code for answer in answers)
        assert statuses == {200: BURST // 2, 404: BURST // 2}, {a.text for a in answers}


async def test_past_the_request_deadline_the_answer_says_busy_not_down(infra: Infra) -> None:
    async with intake(infra, REDIS_POOL_WAIT_S=1) as (http, runtime):
        known = await submitted(http, document(), BEAVERTON)
        held = [runtime.redis.pipeline(transaction=True) for _ in range(POOL)]
        for pipe in held:
            await pipe.watch(f"pool-test:{uuid.uuid4()}")
        try:
            answers = await burst(http, known)
        finally:
            for pipe in held:
                await pipe.reset()

        assert {answer.status_code for answer in answers} == {503}
        assert {answer.json()["detail"] for answer in answers} == {STATE_STORE_BUSY.detail}
        assert (await http.get(f"/v1/clients/{known}", headers=BEAVERTON)).status_code == 200


async def _all_in_use(runtime: Runtime) -> bool:
    return len(runtime.redis.connection_pool._in_use_connections) >= POOL


async def test_a_burst_with_redis_unreachable_is_503_at_once_and_recovers(infra: Infra) -> None:
    target = urlsplit(infra.redis_url)
    proxy = await TcpProxy(target.hostname or "127.0.0.1", target.port or 6379).start()
    database = target.path or "/0"
    try:
        async with intake(infra, REDIS_URL=f"redis://{proxy.address}{database}") as (http, _):
            known = await submitted(http, document(), BEAVERTON)
            assert (await http.get(f"/v1/clients/{known}", headers=BEAVERTON)).status_code == 200

            await proxy.cut()
            started = time.monotonic()
            answers = await burst(http, known)
            took = time.monotonic() - started

            assert {answer.status_code for answer in answers} == {503}
            assert all(answer.headers.get("retry-after") for answer in answers)
            assert {answer.json()["detail"] for answer in answers} == {STATE_STORE_DOWN.detail}
            assert took < 5.0, f"503 after {took:.1f} s"

            await proxy.restore()
            back = await until(lambda: _answered(http, known), timeout=30)
            assert back.status_code == 200
            assert {a.status_code for a in await burst(http, known)} == {200, 404}
    finally:
        await proxy.stop()


async def _answered(http: httpx.AsyncClient, client_id: str) -> httpx.Response | None:
    answer = await http.get(f"/v1/clients/{client_id}", headers=BEAVERTON)
    return answer if answer.status_code != 503 else None
