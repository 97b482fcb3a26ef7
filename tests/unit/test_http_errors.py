"""The HTTP face every service shares answers a Redis outage with a 503."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.http import service_app


@asynccontextmanager
async def nothing(app: FastAPI) -> AsyncIterator[None]:
    yield


@pytest.mark.parametrize("error", [RedisConnectionError, RedisTimeoutError])
async def test_redis_unreachable_is_a_503_with_retry_after(error: type[Exception]) -> None:
    app = service_app(service="t", title="t", description="t", lifespan=nothing)

    @app.get("/v1/thing")
    async def thing() -> dict[str, str]:
        raise error("Connection refused")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        answer = await http.get("/v1/thing")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert "Redis" in answer.json()["detail"]
