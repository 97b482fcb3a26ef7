"""The notifier's durable state in Redis: client contacts, one record per
notification, and the timer queues (due by simulated-or-real due time; in-flight
by real lease expiry). Nothing depends on process memory, so a restart resumes
where the last process stopped."""

from __future__ import annotations

import json
import time
from typing import Any

import redis.asyncio as aioredis

from shared.redis_store import Keys

_CLAIM = """
local ids = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('zrem', KEYS[1], id)
  redis.call('zadd', KEYS[2], ARGV[2], id)
end
return ids
"""
_RECOVER = """
local ids = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[1])
for _, id in ipairs(ids) do
  redis.call('zrem', KEYS[1], id)
  redis.call('zadd', KEYS[2], 0, id)
end
return #ids
"""


class NotificationStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._due = keys("due")
        self._inflight = keys("inflight")

    async def save_contact(self, client_id: str, contact: dict[str, Any]) -> None:
        await self._redis.set(self._keys("contact", client_id), json.dumps(contact))

    async def contact(self, client_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._keys("contact", client_id))
        return None if raw is None else dict(json.loads(raw))

    async def schedule(self, record: dict[str, Any], *, due_epoch: float) -> bool:
        """Store a new notification and arm its timer; False if it already exists."""
        key = self._keys("notification", record["notification_id"])
        if not await self._redis.set(key, json.dumps(record), nx=True):
            return False
        pipe = self._redis.pipeline(transaction=True)
        pipe.zadd(self._due, {record["notification_id"]: due_epoch})
        pipe.zadd(
            self._keys("client-notifications", record["client_id"]),
            {record["notification_id"]: due_epoch},
        )
        await pipe.execute()
        return True

    async def get(self, notification_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._keys("notification", notification_id))
        return None if raw is None else dict(json.loads(raw))

    async def update(self, record: dict[str, Any]) -> None:
        await self._redis.set(
            self._keys("notification", record["notification_id"]), json.dumps(record)
        )

    async def claim_due(self, *, now_epoch: float, lease_s: float, limit: int = 50) -> list[str]:
        """Move due notifications to in-flight under a lease; only one claimer gets each."""
        ids = await self._redis.eval(
            _CLAIM, 2, self._due, self._inflight, now_epoch, time.time() + lease_s, limit
        )
        return [str(i) for i in ids]

    async def release(self, notification_id: str) -> None:
        await self._redis.zrem(self._inflight, notification_id)

    async def recover_expired(self) -> int:
        """Put back claims whose holder died before finishing (lease expired)."""
        return int(await self._redis.eval(_RECOVER, 2, self._inflight, self._due, time.time()))

    async def next_due_epoch(self) -> float | None:
        first = await self._redis.zrange(self._due, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def for_client(self, client_id: str) -> list[dict[str, Any]]:
        found = await self._redis.zrange(self._keys("client-notifications", client_id), 0, -1)
        ids = [str(i) for i in found]
        if not ids:
            return []
        raw = await self._redis.mget([self._keys("notification", i) for i in ids])
        return [json.loads(item) for item in raw if item]
