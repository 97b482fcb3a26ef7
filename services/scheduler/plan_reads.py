"""What a plan event reads before it decides, in as few round trips as the reads allow.

- ``begin``: one script (``scripts.BEGIN``). A redelivered event finds what it
  produced and stops there, without the lock. Otherwise it takes the location's
  lock (the one ``shared.locks.redis_lock`` takes for commands and offers, same key,
  same lease) and reads, as of that moment, the client the plan names now (the
  survivor of a merge) and the intervals held at the location from now to the
  horizon. The lock is let go by the calendar script that applies the decision
  (``CalendarStore.apply(unlock=...)``), or by ``release`` when there is none.
- ``plan_state``: for a plan that changes (revised, completed), its visits with their
  status, its offer and its waiting entry: two pipelined reads, three when the client
  has ids retired into it.

The lock only spares instances from computing on the same calendar at once; what
rules out double booking is the overlap check of the calendar script (``store.py``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import redis.asyncio as aioredis

from services.scheduler.backfill import OfferRecord, WaitingEntry, offer_record, plan_offer_record
from services.scheduler.scripts import BEGIN, RELEASE
from services.scheduler.slots import BookedInterval
from services.scheduler.store import LOOKBACK, VisitStatus, interval_from, visits_of
from shared.events import VisitBooked
from shared.redis_store import Keys

LEASE_S = 15.0  # as shared.locks.redis_lock: how long a crashed holder blocks others
WAIT_S = 30.0
POLL_S = 0.02


@dataclass(frozen=True)
class Replay:
    """The event was handled: what it produced (stored encoded), for the client it
    names now."""

    produced: str
    client_id: str


@dataclass(frozen=True)
class Turn:
    """The location's lock, held for one plan event, and what was read as it was taken."""

    lock: tuple[str, str]  # key, the holder's token
    client_id: str  # the client the plan names now
    intervals: list[BookedInterval]  # held at the location from now to the horizon


@dataclass(frozen=True)
class PlanState:
    """A plan's visits in start order with their status, its offer as recorded (open
    or closed, if it ever had one) and since when it waits (if it does)."""

    visits: list[tuple[VisitBooked, VisitStatus]]
    offer: OfferRecord | None
    waiting_since: datetime | None


class PlanReads:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._begin = redis.register_script(BEGIN)
        self._release = redis.register_script(RELEASE)

    async def begin(
        self, *, record: str, location_id: str, client_id: str, start: datetime, end: datetime
    ) -> Replay | Turn:
        """``Replay`` if ``record`` holds what the event produced, else the ``Turn`` of
        the location's lock (waiting for it as ``redis_lock`` does) with the intervals
        held between ``start`` and ``end``."""
        k = self._keys
        lock = k("lock", "location", location_id)
        token = uuid.uuid4().hex
        keys = [
            k("record", record),
            lock,
            k("alias", client_id),  # shared.aliases.ClientAliases' map
            k("location-visits", location_id),
            k("held"),
        ]
        args: list[str | int | float] = [
            token,
            int(LEASE_S * 1000),
            (start - LOOKBACK).timestamp(),
            end.timestamp(),
        ]
        deadline = time.monotonic() + WAIT_S
        while True:
            answer = cast("list[str]", await self._begin(keys=keys, args=args))
            if answer[0] == "done":
                return Replay(produced=answer[1], client_id=answer[2] or client_id)
            if answer[0] == "ok":
                intervals = [interval_from(raw) for raw in answer[2:]]
                return Turn(
                    lock=(lock, token),
                    client_id=answer[1] or client_id,
                    intervals=[i for i in intervals if i.start < end],
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"lock {lock} still held after {WAIT_S:.0f} s")
            await asyncio.sleep(POLL_S)

    async def release(self, turn: Turn) -> None:
        """Let go of the lock without applying anything (the decision failed)."""
        key, token = turn.lock
        await self._release(keys=[key], args=[token])

    async def plan_state(self, client_id: str, plan_id: str, location_id: str) -> PlanState:
        """The state of ``plan_id`` of ``client_id`` (a survivor: the visits of the ids
        retired into it count)."""
        k = self._keys
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.smembers(k("aliases", client_id))
            pipe.zrange(k("client-visits", client_id), 0, -1, withscores=True)
            pipe.get(k("record", plan_offer_record(plan_id)))
            pipe.hget(k("waiting", location_id), plan_id)
            retired, ranked, offer_id, waiting = await pipe.execute()
        found: dict[str, float] = dict(ranked)
        if retired:
            async with self._redis.pipeline(transaction=False) as pipe:
                for known in sorted(retired):
                    pipe.zrange(k("client-visits", known), 0, -1, withscores=True)
                for more in await pipe.execute():
                    found.update(more)
        ids = sorted(found, key=lambda vid: (found[vid], vid))
        async with self._redis.pipeline(transaction=False) as pipe:
            if ids:
                pipe.mget([k("visit", vid) for vid in ids])
                pipe.hmget(k("visit-status"), ids)
            if offer_id:
                pipe.get(k("record", offer_record(offer_id)))
            results = await pipe.execute() if ids or offer_id else []
        visits = visits_of(results[0], results[1]) if ids else []
        offer = results[-1] if offer_id else None
        return PlanState(
            visits=[(v, s) for v, s in visits if v.plan_id == plan_id],
            offer=OfferRecord.model_validate_json(offer) if offer else None,
            waiting_since=WaitingEntry.model_validate_json(waiting).since if waiting else None,
        )
