"""What a plan event reads before it decides, in as few round trips as the reads allow.

``begin`` first asks, in one pipeline: what the event produced if it was handled
before (a redelivery stops there, without the lock; so does any event of a plan
whose course is retired: ``course_sweep.py``), else the location's lock
(``scripts.TAKE``; the key and lease of ``shared.locks.redis_lock``, which commands
and offers take), and after it the client the plan names now (the survivor of a
merge) and which visits the location holds from now to the horizon. A second
pipeline reads their intervals and, for a plan that changes (revised, completed),
what the plan holds: the ids retired into the client, the client's visits, the
plan's offer and waiting entry. A third, for those only, reads the visits
themselves and the offer. The lock is let go by the calendar script that applies
the decision (``CalendarStore.apply(unlock=...)``), or by ``release`` when there is
none.

The lock only spares instances from computing on the same calendar at once; what
rules out double booking is the overlap check of the calendar script (``store.py``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import redis.asyncio as aioredis

from services.scheduler.backfill import OfferRecord, WaitingEntry, offer_record, plan_offer_record
from services.scheduler.scripts import RELEASE, TAKE
from services.scheduler.slots import BookedInterval
from services.scheduler.store import LOOKBACK, VisitStatus, interval_from, visits_of
from shared.aliases import alias_key, aliases_key
from shared.events import VisitBooked
from shared.redis_store import Keys

LEASE_S = 15.0  # as shared.locks.redis_lock: how long a crashed holder blocks others
WAIT_S = 30.0
POLL_S = 0.02


@dataclass(frozen=True)
class Replay:
    """The event was handled: what it produced (stored encoded; ``settling.py`` says
    what is kept once it was published), for the client it names now; "" for an event
    of a retired course."""

    produced: str
    client_id: str


@dataclass(frozen=True)
class PlanState:
    """A plan's visits in start order with their status, its offer as recorded (open
    or closed, if it ever had one), and since when and from which session on it waits
    (if it does)."""

    visits: list[tuple[VisitBooked, VisitStatus]]
    offer: OfferRecord | None
    waiting_since: datetime | None
    waiting_from: int | None = None


@dataclass(frozen=True)
class Turn:
    """The location's lock, held for one plan event, and what was read as it was taken."""

    lock: tuple[str, str]  # key, the holder's token
    client_id: str  # the client the plan names now
    intervals: list[BookedInterval]  # held at the location from now to the horizon
    plan: PlanState | None  # the state of the plan, when asked for


class PlanReads:
    def __init__(self, redis: aioredis.Redis, keys: Keys, lock_key: Callable[[str], str]) -> None:
        """``lock_key``: the location's lock key as commands and offers take it
        (``CalendarStore.location_lock_key``), so plan events and they exclude each
        other by one key."""
        self._redis = redis
        self._keys = keys
        self._lock_key = lock_key
        self._release = redis.register_script(RELEASE)

    async def begin(
        self,
        *,
        record: str,
        location_id: str,
        client_id: str,
        start: datetime,
        end: datetime,
        course: str,
        plan_id: str | None = None,
    ) -> Replay | Turn:
        """``Replay`` if ``record`` holds what the event produced, or (with nothing
        produced) when the plan ``course`` is retired; else the ``Turn`` of the
        location's lock (waiting for it as ``redis_lock`` does) with the intervals held
        between ``start`` and ``end`` and, given ``plan_id``, the plan's state."""
        k = self._keys
        lock = self._lock_key(location_id)
        token = uuid.uuid4().hex
        deadline = time.monotonic() + WAIT_S
        while True:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.eval(
                    TAKE,
                    3,
                    k("record", record),
                    lock,
                    k("retired"),  # shared.retention's markers
                    token,
                    int(LEASE_S * 1000),
                    course,
                )
                pipe.get(alias_key(k, client_id))
                pipe.zrangebyscore(
                    k("location-visits", location_id),
                    (start - LOOKBACK).timestamp(),
                    end.timestamp(),
                )
                taken, alias, ids = await pipe.execute()
            survivor = client_id if alias is None else str(alias)
            if isinstance(taken, str | bytes):  # the stored record
                produced = taken if isinstance(taken, str) else taken.decode()
                return Replay(produced=produced, client_id=survivor)
            if taken:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"lock {lock} still held after {WAIT_S:.0f} s")
            await asyncio.sleep(POLL_S)
        turn = (lock, token)
        try:
            return await self._read(turn, survivor, ids, end, location_id, plan_id)
        except BaseException:
            await self.release(turn)
            raise

    async def release(self, lock: tuple[str, str]) -> None:
        """Let go of the lock without applying anything (the decision failed)."""
        key, token = lock
        await self._release(keys=[key], args=[token])

    async def _read(
        self,
        lock: tuple[str, str],
        client_id: str,
        ids: list[str],
        end: datetime,
        location_id: str,
        plan_id: str | None,
    ) -> Turn:
        k = self._keys
        async with self._redis.pipeline(transaction=False) as pipe:
            if ids:
                pipe.hmget(k("held"), ids)
            if plan_id is not None:
                pipe.smembers(aliases_key(k, client_id))
                pipe.zrange(k("client-visits", client_id), 0, -1, withscores=True)
                pipe.get(k("record", plan_offer_record(plan_id)))
                pipe.hget(k("waiting", location_id), plan_id)
            found = await pipe.execute() if ids or plan_id is not None else []
        held = found.pop(0) if ids else []
        intervals = [interval_from(raw) for raw in held if raw]
        plan = None
        if plan_id is not None:
            retired, ranked, offer_id, waiting = found
            plan = await self._plan_state(client_id, plan_id, retired, ranked, offer_id, waiting)
        return Turn(
            lock=lock,
            client_id=client_id,
            intervals=[i for i in intervals if i.start < end],
            plan=plan,
        )

    async def _plan_state(
        self,
        client_id: str,
        plan_id: str,
        retired: set[str],
        ranked: list[tuple[str, float]],
        offer_id: str | None,
        waiting: str | None,
    ) -> PlanState:
        """The plan's visits (of ``client_id`` and the ids ``retired`` into it) and offer."""
        k = self._keys
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
        entry = WaitingEntry.model_validate_json(waiting) if waiting else None
        return PlanState(
            visits=[(v, s) for v, s in visits if v.plan_id == plan_id],
            offer=OfferRecord.model_validate_json(offer) if offer else None,
            waiting_since=None if entry is None else entry.since,
            waiting_from=None if entry is None else entry.sequence,
        )
