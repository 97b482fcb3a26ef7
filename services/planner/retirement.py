"""The finished-course sweep: a course that completed or was declined leaves the
planner's hot state once its location's ``keep_finished_courses`` (default P90D) has
passed since it ended, and a marker stays (``shared/retention.py``).

- Which courses: those ``PlanStore`` noted as ended (``plan.completed``: the plan;
  ``plan.declined``: the plan id its intake would have had, ``outputs.course_of``),
  oldest first, ``BATCH`` per round; one ended at a location that keeps its courses
  longer is looked at again once its own period has passed.
- What leaves, in one transaction with the marker: the course's history records (its
  versions, completion or decline), its current version, progress, check-in answers,
  intake, held assessment, review index entry, and the records of what each event of
  the course produced. Once a client has no course left in the hot state, the
  records of their events that acted on no course go too. Nothing of the client's
  other courses is touched.
- Several instances: the course is read under WATCH and the marker checked first,
  so a course is swept once; an instance that loses the race finds it retired next
  round and does nothing. Rerunning a round is harmless.
- Afterwards: an event of the course produces nothing (``handlers.py``), and the
  reads answer with the marker (``api.py``, ``fhir_api.py``); the course's history is
  on ``clinic.plans``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from services.planner.outputs import Outputs, course_of_record
from services.planner.store import ENDED_OF, REVIEW_DUE
from shared.aliases import ClientAliases
from shared.chain import ChainConfig
from shared.retention import RetiredCourse, Retirement
from shared.runtime import Runtime

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 60.0  # finished courses wait months; a minute late is nothing
BATCH = 200  # courses retired per round at most
PAGES = 5  # pages of the due list read per round, past courses not yet due
PER_PLAN = ("current", "progress", "checkins", "intake", "held-assessment")


@dataclass(frozen=True)
class EndedCourse:
    """What the client's history holds of one course, and how it ended."""

    fields: tuple[str, ...]  # its history records
    ended_at: datetime
    outcome: str  # the completion's outcome, or "declined"
    location_id: str


def ended_course(entries: Mapping[str, dict[str, Any]], course: str) -> EndedCourse | None:
    """The records of ``course`` among a client's history ``entries`` (field -> stored
    record) and its end; None when the end is not among them."""
    fields = tuple(sorted(f for f, r in entries.items() if course_of_record(r) == course))
    for field in reversed(fields):
        record = entries[field]
        if "completion" in record:
            done = record["completion"]
            at, outcome = done["completed_at"], str(done.get("outcome", "course_complete"))
            return EndedCourse(fields, datetime.fromisoformat(at), outcome, done["location_id"])
        if "decline" in record:
            declined = record["decline"]
            at = datetime.fromisoformat(declined["declined_at"])
            return EndedCourse(fields, at, "declined", declined["location_id"])
    return None


def causes_of(outputs: Mapping[str, str], course: str) -> list[str]:
    """The events (by id) whose outputs record names ``course``."""
    return sorted(cause for cause, raw in outputs.items() if Outputs.decode(raw).course == course)


def keep_for(chain: ChainConfig, location_id: str) -> timedelta:
    """How long a course of the location stays after it ended."""
    return chain.keep_finished_courses(location_id)


def shortest_keep(chain: ChainConfig) -> timedelta:
    return chain.shortest_keep_finished_courses()


async def retirement_sweep(runtime: Runtime) -> None:
    """Retire the courses whose period has passed, every minute, until the service stops."""
    sweep = RetirementSweep(runtime)
    while True:
        try:
            await sweep.once()
        except Exception:  # keep going: a course that failed is still due next round
            log.exception("finished-course sweep failed")
        await asyncio.sleep(SWEEP_INTERVAL_S)


class RetirementSweep:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._redis: aioredis.Redis = runtime.redis
        self._keys = runtime.keys
        self._retirement = Retirement(runtime.redis, runtime.keys)
        self._aliases = ClientAliases(runtime.redis, runtime.keys)
        # course -> when its own location's period passes (it ended at one that keeps longer)
        self._not_before: dict[str, datetime] = {}

    async def once(self) -> list[RetiredCourse]:
        """One round: the courses retired."""
        now = self._runtime.clock.now()
        keep = shortest_keep(self._runtime.chain)
        retired: list[RetiredCourse] = []
        start = 0
        for _ in range(PAGES):
            due = await self._retirement.due(now, keep, limit=BATCH, start=start)
            for course in due:
                if now < self._not_before.get(course, now) or len(retired) >= BATCH:
                    continue
                done = await self.retire(course, now)
                if done is not None:
                    retired.append(done)
            start += len(due) - sum(1 for r in retired if r.plan_id in due)
            if len(due) < BATCH or len(retired) >= BATCH:
                break
        return retired

    async def retire(self, course: str, now: datetime) -> RetiredCourse | None:
        """Retire ``course`` if its period has passed, in one watched transaction; the
        marker written, or None (not due yet, retired already, or another writer was
        first: then the next round decides afresh)."""
        named = await self._redis.hget(self._keys(ENDED_OF), course)
        if named is None:  # nothing left to find it by: retired by another instance
            await self._redis.zrem(self._keys("ended"), course)
            return None
        client, known_as = await self._aliases.known_as(str(named))
        history = self._keys("plans", client)
        outputs = [self._keys("outputs", name) for name in known_as]
        per_plan = [self._keys(name, course) for name in PER_PLAN]
        pipe: Any
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.watch(history, *outputs, *per_plan)
            if await self._retirement.of(course) is not None:
                return None
            stored = await pipe.hgetall(history)
            entries = {str(f): json.loads(raw) for f, raw in stored.items()}
            ended = ended_course(entries, course)
            if ended is None:
                log.warning("course %s: its end is not in its client's history; left", course)
                return None
            until = ended.ended_at + keep_for(self._runtime.chain, ended.location_id)
            if now < until:
                self._not_before[course] = until
                return None
            causes = [causes_of(await pipe.hgetall(key), course) for key in outputs]
            marker = RetiredCourse(course, client, ended.ended_at, ended.outcome, ended.location_id)
            pipe.multi()
            self._queue_removal(pipe, course, client, ended, entries, outputs, causes)
            self._retirement.retire(pipe, marker)
            try:
                await pipe.execute()
            except WatchError:  # a handler or another instance wrote meanwhile
                return None
        self._not_before.pop(course, None)
        return marker

    def _queue_removal(
        self,
        pipe: Any,
        course: str,
        client: str,
        ended: EndedCourse,
        entries: Mapping[str, Any],
        outputs: list[str],
        causes: list[list[str]],
    ) -> None:
        """Queue the deletion of what the planner holds of ``course``."""
        pipe.hdel(self._keys("plans", client), *ended.fields)
        pipe.delete(*(self._keys(name, course) for name in PER_PLAN))
        pipe.zrem(self._keys(REVIEW_DUE), course)
        pipe.zrem(self._keys("active-plans", client), course)
        pipe.hdel(self._keys(ENDED_OF), course)
        last = set(entries) <= set(ended.fields)  # the client keeps no course here
        for key, found in zip(outputs, causes, strict=True):
            if last:
                pipe.delete(key)
            elif found:
                pipe.hdel(key, *found)
