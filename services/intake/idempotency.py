"""``Idempotency-Key`` for intake submission: a retried request gets the first
answer, and two concurrent requests with one key never both publish.

The key is reserved (SET NX) before anything is published; the reservation
becomes the stored answer on success and is released on failure, so a retry
after a 503 is handled afresh."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from fastapi import HTTPException, status

IDEMPOTENCY_TTL_S = 7 * 86_400
PENDING_TTL_S = 60  # longer than one submission can take


class Replay(Exception):
    """The request was answered before: here is that answer."""

    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__("replayed")
        self.response = response


class Reservation:
    def __init__(self, redis: aioredis.Redis, key: str, fingerprint: str) -> None:
        self._redis = redis
        self._key = key
        self._fingerprint = fingerprint

    async def complete(self, response: dict[str, Any]) -> None:
        record = {"state": "done", "fingerprint": self._fingerprint, "response": response}
        await self._redis.set(self._key, json.dumps(record), ex=IDEMPOTENCY_TTL_S)


def fingerprint_of(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


@asynccontextmanager
async def reserved(redis: aioredis.Redis, key: str, fingerprint: str) -> AsyncIterator[Reservation]:
    """Hold ``key`` for this request; raises ``Replay`` or 409 when it is taken."""
    pending = json.dumps({"state": "pending", "fingerprint": fingerprint})
    if not await redis.set(key, pending, nx=True, ex=PENDING_TTL_S):
        stored = await redis.get(key)
        # a reservation that expired between the two calls reads as still pending
        previous: dict[str, Any] = (
            json.loads(stored) if stored else {"state": "pending", "fingerprint": fingerprint}
        )
        if previous["fingerprint"] != fingerprint:
            raise HTTPException(
                status.HTTP_409_CONFLICT, "Idempotency-Key reused with a different request body"
            )
        if previous["state"] != "done":
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                "a request with this Idempotency-Key is still being processed; retry shortly",
                headers={"Retry-After": "1"},
            )
        raise Replay(previous["response"])
    reservation = Reservation(redis, key, fingerprint)
    try:
        yield reservation
    except BaseException:
        await redis.delete(key)
        raise
