"""The scheduler follows a client merge: the retired client's visits become the
survivor's.

Under the locks of every location either client has visits at (the locks every
booking and command takes), the move rewrites each visit of the retired client
(``visit:<id>`` and its held interval) to name the survivor, moves the client's
visit index and busy set to the survivor, and rewrites what the scheduler keeps
of the retired client's plans (the plan, its needs, its waiting entry), so that
every command, re-plan and offer from then on publishes the survivor's id; the
retired client's retired courses are listed under the survivor. All
of it is one transaction with the alias (``shared.aliases``), watched on the
retired client's index and busy set: a second run finds nothing left to move.

Visits of the two clients that overlap in time stay as they were booked: the
merge reports nothing and cancels nothing; the front desk sees both."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from redis.exceptions import WatchError

from services.scheduler.backfill import StoredPlan, WaitingEntry, plan_record
from services.scheduler.commands import PlanNeeds, needs_record
from services.scheduler.store import CalendarStore
from shared.aliases import ClientAliases
from shared.locks import redis_lock
from shared.retention import Retirement
from shared.runtime import Runtime

ATTEMPTS = 10


async def follow_merge(
    runtime: Runtime, *, retired: str, survivor: str, seen_at: list[str]
) -> None:
    """Move ``retired``'s visits to ``survivor`` (``seen_at``: the merge's locations)."""
    store = CalendarStore(runtime.redis, runtime.keys)
    aliases = ClientAliases(runtime.redis, runtime.keys)
    for _ in range(ATTEMPTS):
        visits = await store.visits(await _visit_ids(runtime, retired))
        locations = sorted({*seen_at, *(v.location_id for v, _ in visits)})
        async with contextlib.AsyncExitStack() as locks:
            for location_id in locations:
                await locks.enter_async_context(
                    redis_lock(runtime.redis, store.location_lock_key(location_id))
                )
            with contextlib.suppress(WatchError):
                if await _move(runtime, store, aliases, retired, survivor, set(locations)):
                    return
    raise TimeoutError(f"client {retired} kept changing during its merge")


async def _visit_ids(runtime: Runtime, client_id: str) -> list[str]:
    found = await runtime.redis.zrange(runtime.keys("client-visits", client_id), 0, -1)
    return [str(i) for i in found]


async def _move(
    runtime: Runtime,
    store: CalendarStore,
    aliases: ClientAliases,
    retired: str,
    survivor: str,
    locked: set[str],
) -> bool:
    """One watched attempt; False when a visit is at a location not locked (a new
    booking elsewhere came in meanwhile: lock again)."""
    k = runtime.keys
    index, busy = k("client-visits", retired), k("busy", "client", retired)
    async with runtime.redis.pipeline(transaction=True) as transaction:
        pipe: Any = transaction
        await pipe.watch(index, busy)
        scores = dict(await pipe.zrange(index, 0, -1, withscores=True))
        busy_scores = dict(await pipe.zrange(busy, 0, -1, withscores=True))
        visits = await store.visits([str(i) for i in scores])
        if any(v.location_id not in locked for v, _ in visits):
            return False
        held = await pipe.hmget(k("held"), [v.visit_id for v, _ in visits]) if visits else []
        plans = sorted({v.plan_id for v, _ in visits})
        records = {p: await store.record(plan_record(p)) for p in plans}
        needs = {p: await store.record(needs_record(p)) for p in plans}
        waiting = {loc: await store.waiting(loc) for loc in sorted(locked)}
        retired_aliases = await aliases.aliases_of(retired)
        courses = [c.plan_id for c in await Retirement(runtime.redis, k).of_client(retired)]
        pipe.multi()
        for (visit, _), interval in zip(visits, held, strict=True):
            moved = visit.model_copy(update={"client_id": survivor})
            pipe.set(k("visit", visit.visit_id), moved.model_dump_json())
            if interval:
                pipe.hset(k("held"), visit.visit_id, _rehomed_json(interval, survivor))
        if scores:
            pipe.zadd(k("client-visits", survivor), scores)
        if busy_scores:
            pipe.zadd(k("busy", "client", survivor), busy_scores)
        pipe.delete(index, busy)
        for plan_id, raw in records.items():
            if raw is not None:
                stored = StoredPlan.model_validate_json(raw)
                data = {**stored.data, "client_id": survivor}
                pipe.set(k("record", plan_record(plan_id)), _dump(stored, data=data))
        for plan_id, raw in needs.items():
            if raw is not None:
                moved_needs = PlanNeeds.model_validate_json(raw)
                pipe.set(k("record", needs_record(plan_id)), _dump(moved_needs, client_id=survivor))
        for location_id, entries in waiting.items():
            for plan_id, raw in entries.items():
                entry = WaitingEntry.model_validate_json(raw)
                if entry.client_id == retired:
                    pipe.hset(k("waiting", location_id), plan_id, _dump(entry, client_id=survivor))
        Retirement(runtime.redis, k).moved(pipe, courses, old=retired, new=survivor)
        aliases.record(pipe, retired, survivor, retired_aliases)
        await pipe.execute()
    return True


def _rehomed_json(raw: str, survivor: str) -> str:
    return json.dumps({**json.loads(raw), "client_id": survivor})


def _dump(model: Any, **update: Any) -> str:
    return str(model.model_copy(update=update).model_dump_json())
