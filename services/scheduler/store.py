"""The scheduler's calendar in Redis: visits by id, by location (ordered by start)
and by client, plus the outcome of booking each plan version."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import redis.asyncio as aioredis

from services.scheduler.booking import BookedInterval, interval_of
from shared.events import VisitBooked
from shared.redis_store import Keys

LOOKBACK = timedelta(days=1)  # a visit that started before "now" may still be running


class CalendarStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    def location_lock_key(self, location_id: str) -> str:
        return self._keys("lock", "location", location_id)

    async def intervals(
        self, location_id: str, *, start: datetime, end: datetime
    ) -> list[BookedInterval]:
        """Visits held at a location that may overlap ``[start, end)``."""
        found = await self._redis.zrangebyscore(
            self._keys("location-visits", location_id),
            (start - LOOKBACK).timestamp(),
            end.timestamp(),
        )
        visits = await self.visits([str(i) for i in found])
        return [interval_of(v) for v in visits]

    async def visits(self, visit_ids: list[str]) -> list[VisitBooked]:
        if not visit_ids:
            return []
        raw = await self._redis.mget([self._keys("visit", vid) for vid in visit_ids])
        return [VisitBooked.model_validate_json(item) for item in raw if item]

    async def client_visits(self, client_id: str) -> list[VisitBooked]:
        found = await self._redis.zrange(self._keys("client-visits", client_id), 0, -1)
        return await self.visits([str(i) for i in found])

    async def save_outcome(
        self, plan_key: str, booked: list[VisitBooked], outcome: list[str]
    ) -> None:
        """Record the visits and the published events of one plan version atomically."""
        pipe = self._redis.pipeline(transaction=True)
        for visit in booked:
            pipe.set(self._keys("visit", visit.visit_id), visit.model_dump_json())
            pipe.zadd(
                self._keys("location-visits", visit.location_id),
                {visit.visit_id: visit.start.timestamp()},
            )
            pipe.zadd(
                self._keys("client-visits", visit.client_id),
                {visit.visit_id: visit.start.timestamp()},
            )
        pipe.set(self._keys("plan-outcome", plan_key), json.dumps(outcome))
        await pipe.execute()

    async def outcome(self, plan_key: str) -> list[str] | None:
        raw = await self._redis.get(self._keys("plan-outcome", plan_key))
        return None if raw is None else list(json.loads(raw))
