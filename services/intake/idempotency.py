"""``Idempotency-Key`` for intake submission: a retried request gets the first
answer, and two concurrent requests with one key never both publish.

The key is reserved (SET NX) before anything is stored; the reservation becomes
the stored answer in the same transaction that stores what the request created
(``complete_on``), and is released on failure, so a retry after a 503 is handled
afresh. A reservation left by a process that died lapses after a few seconds,
and the retry takes over."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from fastapi import HTTPException, status

IDEMPOTENCY_TTL_S = 7 * 86_400
PENDING_TTL_S = 10  # longer than one submission's Redis work and its bounded broker wait


class Replay(Exception):
    """The request was answered before: here is that answer."""

    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__("replayed")
        self.response = response


class Reservation:
    """A held key; its answer is stored by the transaction of the work it answers."""

    def __init__(self, key: str, fingerprint: str, *, ttl_s: int) -> None:
        self._key = key
        self._fingerprint = fingerprint
        self._ttl_s = ttl_s

    def _record(self, response: dict[str, Any]) -> str:
        return json.dumps({"state": "done", "fingerprint": self._fingerprint, "response": response})

    def complete_on(self, pipe: Any, response: dict[str, Any]) -> None:
        """Queue the stored answer on ``pipe``, the transaction of the work it answers."""
        pipe.set(self._key, self._record(response), ex=self._ttl_s)


def fingerprint_of(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


@asynccontextmanager
async def reserved(
    redis: aioredis.Redis, key: str, fingerprint: str, *, ttl_s: int = IDEMPOTENCY_TTL_S
) -> AsyncIterator[Reservation]:
    """Hold ``key`` for this request; raises ``Replay`` or 409 when it is taken.
    The stored answer is kept ``ttl_s``."""
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
    reservation = Reservation(key, fingerprint, ttl_s=ttl_s)
    try:
        yield reservation
    except BaseException:
        await redis.delete(key)
        raise
