"""``Idempotency-Key`` for intake submission: a retried request gets the first
answer, and two concurrent requests with one key never both publish.

The key is reserved (SET NX) before anything is stored, as a pending record that
names the request holding it, on a lease of a few seconds the request renews while
it is alive (guards.py). The reservation becomes the stored answer in the same
script or transaction that stores what the request created (``complete_on``), so
there is no moment when the work is stored and its answer is not: a retry after a
crash at any point gets the first answer, or - nothing was stored - takes the key
over once the dead request's lease lapses, within ``GUARD_LEASE_MS``. A request
that fails with nothing stored releases the key at once (only its own pending
record: an answer stored by a transaction whose reply was lost stays).

``reserved`` takes the key in a round trip of its own; an intake takes it in the
script that names its client instead (``Reservation.guard`` and ``refused``:
client_index.py), so a new client's intake is one round trip."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NoReturn

import redis.asyncio as aioredis
from fastapi import HTTPException, status

from services.intake.guards import GUARD_LEASE_MS, holder_token, renewing

IDEMPOTENCY_TTL_S = 7 * 86_400

# the key deleted only while it is still this request's pending record
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Replay(Exception):
    """The request was answered before: here is that answer."""

    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__("replayed")
        self.response = response


class Reservation:
    """A held key; its answer is stored by the transaction of the work it answers."""

    def __init__(self, key: str, fingerprint: str, *, ttl_s: int, held: bool = False) -> None:
        self._key = key
        self._fingerprint = fingerprint
        self._ttl_s = ttl_s
        self._pending = pending_record(fingerprint, holder_token())
        self._held = held  # taken by this request
        self._answered = False  # the answer is stored: the key is never released then

    def guard(self) -> tuple[str, str, str, int, str]:
        """The key, this request's pending record and its lease in milliseconds, for
        a script that takes or checks the key (guards.py's ``held_guard``)."""
        return "key", self._key, self._pending, GUARD_LEASE_MS, ""

    def refused(self, why: str, stored: str | None) -> NoReturn:
        """The key was held already, with ``stored``: the first answer (``Replay``), or 409."""
        refuse(stored, self._fingerprint)

    def taken(self) -> None:
        """The script took the key for this request."""
        self._held = True

    def answered(self) -> None:
        """The transaction holding ``complete_on``'s answer was applied."""
        self._answered = True

    async def release(self, redis: aioredis.Redis) -> None:
        """Let a retry take the key afresh when this request took it and stored no
        answer (a key another request holds, or an answer stored, stays)."""
        if self._held and not self._answered:
            await redis.eval(_RELEASE, 1, self._key, self._pending)

    def _record(self, response: dict[str, Any]) -> str:
        return json.dumps({"state": "done", "fingerprint": self._fingerprint, "response": response})

    def complete_on(self, pipe: Any, response: dict[str, Any]) -> None:
        """Queue the stored answer on ``pipe``, the transaction of the work it answers."""
        pipe.set(self._key, self._record(response), ex=self._ttl_s)


def fingerprint_of(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def pending_record(fingerprint: str, holder: str) -> str:
    return json.dumps({"state": "pending", "fingerprint": fingerprint, "holder": holder})


def refuse(stored: str | None, fingerprint: str) -> NoReturn:
    """What a request finding its key taken gets: 409 for another body or while the
    first request is still at work, else the first answer (``Replay``)."""
    # a reservation that expired between taking and reading reads as still pending
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


@asynccontextmanager
async def reserved(
    redis: aioredis.Redis, key: str, fingerprint: str, *, ttl_s: int = IDEMPOTENCY_TTL_S
) -> AsyncIterator[Reservation]:
    """Hold ``key`` for this request, renewing its lease while the block runs; raises
    ``Replay`` or 409 when it is taken. The stored answer is kept ``ttl_s``."""
    reservation = Reservation(key, fingerprint, ttl_s=ttl_s, held=True)
    _, _, pending, lease_ms, _ = reservation.guard()
    if not await redis.set(key, pending, nx=True, px=lease_ms):
        stored = await redis.get(key)
        refuse(None if stored is None else str(stored), fingerprint)
    try:
        async with renewing(redis, reservation):
            yield reservation
    except BaseException:
        await reservation.release(redis)
        raise
