"""How long a finished course stays in the hot state, and the marker it leaves.

A course is finished when its plan completed (``plan.completed``) or was declined
(``plan.declined``). Its hot state - the plan, its visits, its notifications - stays
in Redis for ``policy.keep_finished_courses`` (default P90D) after it ended, so the
front desk's and the client's reads answer for it as before. Then each service's
sweep deletes what it holds of the course and keeps a marker instead: one field of
one hash per service (``<ns>:<service>:retired``, field = the plan id, value = the
client, when the course ended and how, about 60 bytes), and the plan id in the
client's set of retired courses (``<ns>:<service>:retired-of:<client>``). The topics
keep the whole history: that is where it lives after the period.

An event of a retired course that arrives later - a redelivery, a consumer group
reset, a replay from offset 0 - produces nothing new: every id a service derives for
a course derives from the plan id (visits, notifications, revisions), and a handler
that would act on a plan first asks ``Retirement.among`` whether it is retired.

The rules (``RetiredCourse``, ``retire_before``) are pure; ``Retirement`` is the
Redis wiring every service shares.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from shared.redis_store import Keys

SEPARATOR = "|"


@dataclass(frozen=True)
class RetiredCourse:
    """What is kept of a finished course after its retention period."""

    plan_id: str
    client_id: str
    ended_at: datetime
    outcome: str  # how it ended: a plan.completed outcome, or "declined"
    location_id: str = ""  # where the course ran, when the service scopes reads by it

    def encode(self) -> str:
        parts = [self.client_id, str(int(self.ended_at.timestamp())), self.outcome]
        return SEPARATOR.join([*parts, self.location_id] if self.location_id else parts)

    @classmethod
    def decode(cls, plan_id: str, value: str) -> RetiredCourse:
        """Read ``encode``'s value, with or without the location."""
        parts = value.rsplit(SEPARATOR, 3)
        if len(parts) == 4 and parts[1].isdigit():
            client_id, ended, outcome, location_id = parts
        else:
            (client_id, ended, outcome), location_id = value.rsplit(SEPARATOR, 2), ""
        ended_at = datetime.fromtimestamp(int(ended), UTC)
        return cls(plan_id, client_id, ended_at, outcome, location_id)

    def retained_until(self, keep: timedelta) -> datetime:
        return self.ended_at + keep


def retire_before(now: datetime, keep: timedelta) -> datetime:
    """Courses that ended before this instant are due to leave the hot state."""
    return now - keep


class Retirement:
    """One service's finished courses: when each ended (until its sweep), and the
    markers of those swept.

    Keys (under the service's namespace): ``ended`` (zset: plan id -> the epoch it
    ended), ``retired`` (hash: plan id -> ``RetiredCourse.encode()``),
    ``retired-of:<client>`` (set of the client's retired plan ids)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    def note_ended(self, pipe: Pipeline, plan_id: str, ended_at: datetime) -> None:
        """Queue on ``pipe``: the course of ``plan_id`` ended at ``ended_at`` (the
        first end noted holds: a redelivered end moves nothing)."""
        pipe.zadd(self._keys("ended"), {plan_id: ended_at.timestamp()}, nx=True)

    async def due(
        self, now: datetime, keep: timedelta, *, limit: int = 200, start: int = 0
    ) -> list[str]:
        """Plan ids of courses that ended more than ``keep`` before ``now``, oldest first
        (``start``: past the first so many, e.g. courses of a location that keeps its
        courses longer than ``keep``)."""
        before = retire_before(now, keep).timestamp()
        found = await self._redis.zrangebyscore(
            self._keys("ended"), "-inf", f"({before}", start=start, num=limit
        )
        return [str(plan_id) for plan_id in found]

    def retire(self, pipe: Pipeline, course: RetiredCourse) -> None:
        """Queue on ``pipe``: the marker of ``course``, and its end off the due list.
        The caller queues the deletion of what it held of the course on the same
        pipe (a MULTI), so the marker and the deletion land together."""
        pipe.hset(self._keys("retired"), course.plan_id, course.encode())
        pipe.sadd(self._keys("retired-of", course.client_id), course.plan_id)
        pipe.zrem(self._keys("ended"), course.plan_id)

    async def among(self, plan_ids: Sequence[str]) -> set[str]:
        """Which of ``plan_ids`` are retired, in one round trip."""
        if not plan_ids:
            return set()
        found = await self._redis.hmget(self._keys("retired"), list(plan_ids))
        return {plan_id for plan_id, value in zip(plan_ids, found, strict=True) if value}

    async def of(self, plan_id: str) -> RetiredCourse | None:
        value = await self._redis.hget(self._keys("retired"), plan_id)
        return RetiredCourse.decode(plan_id, str(value)) if value else None

    async def of_client(self, client_id: str) -> list[RetiredCourse]:
        """The client's retired courses, in the order they ended."""
        members = await self._redis.smembers(self._keys("retired-of", client_id))
        plan_ids = sorted(str(plan_id) for plan_id in members)
        if not plan_ids:
            return []
        values = await self._redis.hmget(self._keys("retired"), plan_ids)
        found = [
            RetiredCourse.decode(plan_id, str(value))
            for plan_id, value in zip(plan_ids, values, strict=True)
            if value
        ]
        return sorted(found, key=lambda course: course.ended_at)

    def moved(self, pipe: Pipeline, retired_ids: Iterable[str], *, old: str, new: str) -> None:
        """Queue on ``pipe``: a merge moved the client ``old`` into ``new``, so its
        retired courses are listed under ``new``."""
        ids = list(retired_ids)
        if ids:
            pipe.sadd(self._keys("retired-of", new), *ids)
        pipe.delete(self._keys("retired-of", old))
