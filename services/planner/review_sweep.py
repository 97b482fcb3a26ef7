"""The review date sweep: every second, on every instance, each plan whose review
date has passed at its location is reviewed (``reviews.py``) and what that
produced is published.

- Which plans: ``store.REVIEW_DUE`` holds every active plan by its current version's
  review date (``PlanStore`` writes it with each version and drops it at the end); a
  plan whose date has passed in UTC but not yet at its location is looked at again
  once it has there. Plans stored before the index existed are put into it once per
  deployment, when the sweep starts (``index_existing``).
- One transaction per plan: its current version, progress and check-in answers are
  read under WATCH, and the decision, the progress it leaves, what it produced and
  its place in the index are written only if no handler and no other instance wrote
  any of them meanwhile (then the next round decides afresh). A decision is made once
  per plan version: its events have ids derived from (plan, version), and the version
  it leaves is no longer due.
- Published once written: the events are marked unpublished in the same transaction
  (the mark names them: ``outputs.Outputs``) and the mark is cleared once the broker
  took them, so a crash between the two is made good by the next round, with the
  same ids and bytes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, time, timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from services.planner import reviews
from services.planner.outputs import Outputs, outputs_of
from services.planner.store import REVIEW_DUE, PlanStore, events_of, plan_of, progress_of
from shared.envelope import Trace, derived_id
from shared.events import EventData
from shared.events.plans import PlanCompleted, PlanData
from shared.kafka import Outgoing
from shared.runtime import Runtime

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 1.0
UNPUBLISHED = "review-unpublished"  # cause -> its events' correlation id and references


async def review_sweep(runtime: Runtime) -> None:
    """Review the plans whose review date has passed, every second, until the service stops."""
    sweep = ReviewSweep(runtime)
    while True:
        try:
            await index_existing(runtime)
            break
        except Exception:  # Redis away at start: try again
            log.exception("indexing the plans stored before the review index failed")
            await asyncio.sleep(SWEEP_INTERVAL_S)
    while True:
        try:
            await sweep.once()
        except Exception:  # keep going: a plan that failed is still due next round
            log.exception("review sweep failed")
        await asyncio.sleep(SWEEP_INTERVAL_S)


async def index_existing(runtime: Runtime, *, batch: int = 500) -> int:
    """Put every stored plan into the review index that is not in it yet (plans stored
    before the index existed), once per deployment: the sweep drops those that ended.
    How many it added."""
    redis: aioredis.Redis = runtime.redis
    done = runtime.keys(REVIEW_DUE, "indexed")
    if await redis.exists(done):
        return 0
    prefix = runtime.keys("current", "")
    added = 0
    keys: list[str] = []
    async for key in redis.scan_iter(match=f"{prefix}*", count=batch):
        keys.append(str(key))
        if len(keys) >= batch:
            added += await _index(redis, runtime.keys(REVIEW_DUE), keys, prefix)
            keys = []
    if keys:
        added += await _index(redis, runtime.keys(REVIEW_DUE), keys, prefix)
    await redis.set(done, "1")
    return added


async def _index(redis: aioredis.Redis, index: str, keys: list[str], prefix: str) -> int:
    due = {}
    for key, raw in zip(keys, await redis.mget(keys), strict=True):
        plan = None if raw is None else plan_of(raw)
        if plan is not None:
            due[key.removeprefix(prefix)] = plan.review_by.toordinal()
    if not due:
        return 0
    added = await redis.zadd(index, due, nx=True)
    return int(added or 0)


class ReviewSweep:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._redis: aioredis.Redis = runtime.redis
        self._keys = runtime.keys
        self._store = PlanStore(runtime.redis, runtime.keys)
        # (plan id, review date ordinal) -> when that date has passed at the plan's location
        self._not_before: dict[tuple[str, float], datetime] = {}

    async def once(self) -> list[Outgoing]:
        """One round: what earlier rounds left unpublished, then every due plan; what
        it published."""
        published = await self.republish()
        now = self._runtime.clock.now()
        # a review date up to UTC's today may have passed somewhere; the location says
        due: list[tuple[str, float]] = await self._redis.zrangebyscore(
            self._keys(REVIEW_DUE), "-inf", now.date().toordinal(), withscores=True
        )  # type: ignore[assignment]  # redis-py types the pairs loosely
        waiting = {(str(plan_id), float(score)) for plan_id, score in due}
        self._not_before = {k: at for k, at in self._not_before.items() if k in waiting}
        for plan_id, score in sorted(waiting):
            if now < self._not_before.get((plan_id, score), now):
                continue
            published += await self.review(plan_id, score, now)
        return published

    async def review(self, plan_id: str, score: float, now: datetime) -> list[Outgoing]:
        """Review one plan in one watched transaction; publish what that produced."""
        keys = [self._keys("current", plan_id), self._keys("progress", plan_id)]
        answers_key = self._keys("checkins", plan_id)
        pipe: Any
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.watch(*keys, answers_key)
            current, stored = await pipe.mget(keys)
            answers = await pipe.hgetall(answers_key)
            plan = None if current is None else plan_of(current)
            if plan is None or not self._runtime.chain.has_location(plan.location_id):
                pipe.multi()
                pipe.zrem(self._keys(REVIEW_DUE), plan_id)  # nothing this sweep can review
                return await self._written(pipe, [])
            zone = self._runtime.chain.location(plan.location_id).zone
            today = now.astimezone(zone).date()
            if today <= plan.review_by:  # not passed there yet: look again once it has
                passes = datetime.combine(plan.review_by + timedelta(days=1), time(), zone)
                self._not_before[(plan_id, score)] = passes
                return []
            progress = progress_of(plan_id, stored, answers)
            change, moved = reviews.reviewed_by_date(plan, progress, today=today, now=now)
            pipe.multi()
            if change is None:  # reviewed, or nothing to review by date: off the index
                pipe.zrem(self._keys(REVIEW_DUE), plan_id)
                if moved != progress:
                    pipe.set(self._keys("progress", plan_id), moved.model_dump_json())
                return await self._written(pipe, [])
            cause = f"review:{plan_id}:{plan.version}"
            self._store.queue(pipe, produced=[change], progress=moved)
            outputs = outputs_of([change], course=plan_id, client=plan.client_id)
            mark = {"correlationid": plan.intake_id, "outputs": outputs.encode()}
            pipe.hset(self._keys(UNPUBLISHED), cause, json.dumps(mark))
            events = [self._outgoing(cause, plan.intake_id, change)]
            return await self._written(pipe, events, cause=cause)

    async def _written(
        self, pipe: Any, events: list[Outgoing], *, cause: str = ""
    ) -> list[Outgoing]:
        try:
            await pipe.execute()
        except WatchError:  # a handler or another instance wrote first: next round
            return []
        if events:
            await self._publish(cause, events)
        return events

    async def republish(self) -> list[Outgoing]:
        """Publish the events of reviews written but not yet taken by the broker."""
        found = await self._redis.hgetall(self._keys(UNPUBLISHED))
        published: list[Outgoing] = []
        for key, mark in found.items():
            cause = str(key)
            correlationid, produced = await self._marked(cause, str(mark))
            events = [self._outgoing(cause, correlationid, e) for e in produced]
            await self._publish(cause, events)
            published += events
        return published

    async def _marked(self, cause: str, mark: str) -> tuple[str, list[EventData]]:
        """What an unpublished mark names: its correlation id and events (a mark
        written before references is the correlation id alone, its events kept apart)."""
        if not mark.startswith("{"):
            raw = await self._redis.get(self._keys("produced", cause))
            return mark, [] if raw is None else events_of(raw)
        stored = json.loads(mark)
        produced = await self._store.produced_by(Outputs.decode(stored["outputs"]))
        return str(stored["correlationid"]), produced

    async def _publish(self, cause: str, events: list[Outgoing]) -> None:
        if events:
            await self._runtime.publisher.publish(events)
        await self._redis.hdel(self._keys(UNPUBLISHED), cause)

    def _outgoing(self, cause: str, correlationid: str, event: EventData) -> Outgoing:
        """The event of a review: its id from the cause, its time the decision's, so a
        republished event is the same."""
        assert isinstance(event, PlanData | PlanCompleted)
        at = event.created_at if isinstance(event, PlanData) else event.completed_at
        trace = Trace(
            chainid=self._runtime.chain.chain.id,
            correlationid=correlationid,
            locationid=event.location_id,
        )
        return self._runtime.outgoing(
            event,
            key=event.client_id,
            subject=event.plan_id,
            event_id=derived_id(event.event_type, cause),
            trace=trace,
            time=at,
        )
