"""The planner's read model in Redis: every plan version per client, and declines.

Writes are keyed by plan id and version, so a redelivered intake that rebuilds
the same plan overwrites it instead of adding a version."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from shared.events import PlanDeclined
from shared.events.plans import PlanData
from shared.redis_store import Keys


class PlanStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def save(self, plan: PlanData) -> None:
        record = {"status": "active", "event_type": plan.event_type, "plan": plan.to_data()}
        field = f"{plan.created_at.timestamp():020.6f}:{plan.plan_id}:{plan.version:04d}"
        await self._redis.hset(self._keys("plans", plan.client_id), field, json.dumps(record))

    async def save_declined(self, declined: PlanDeclined) -> None:
        record = {
            "status": "declined",
            "event_type": declined.event_type,
            "decline": declined.to_data(),
        }
        field = f"{declined.declined_at.timestamp():020.6f}:declined:{declined.intake_id}"
        await self._redis.hset(self._keys("plans", declined.client_id), field, json.dumps(record))

    async def history(self, client_id: str) -> list[dict[str, Any]]:
        """Every plan version and decline of a client, oldest first."""
        entries = await self._redis.hgetall(self._keys("plans", client_id))
        return [json.loads(entries[field]) for field in sorted(entries)]


def location_of(record: dict[str, Any]) -> str:
    body = record.get("plan") or record.get("decline") or {}
    return str(body.get("location_id", ""))
