"""The notifier's durable state in Redis: client contacts, one record per
notification, and the timer queues (due by simulated-or-real due time; in-flight
by real lease expiry). Nothing depends on process memory, so a restart resumes
where the last process stopped.

A notification's status only moves forward from ``scheduled`` (to sent, failed,
cancelled or suppressed), and every move is a compare-and-set on the status it
was read with, so a cancel racing a send cannot be overwritten by it, nor the
other way round."""

from __future__ import annotations

import json
import time
from typing import Any, cast

import redis.asyncio as aioredis

from services.notifier.delivery import Contact, merged_contact
from shared.aliases import ClientAliases
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
# KEYS: the record, due. ARGV: expected status, new record, id, due epoch or ''. The
# in-flight claim stays until the sender has published what happened (``release``).
_MOVE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
if cjson.decode(raw).status ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
else redis.call('ZREM', KEYS[2], ARGV[3]) end
return 1
"""
# KEYS: the counter. ARGV: window seconds, limit. 1 when this hit is within the limit.
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then return 0 end
return 1
"""


class NotificationStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._due = keys("due")
        self._inflight = keys("inflight")
        self._move = redis.register_script(_MOVE)
        self._hit = redis.register_script(_HIT)

    # --- contacts --------------------------------------------------------------------

    async def save_contact(self, contact: Contact) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._keys("contact", contact.client_id), contact.model_dump_json())
            if contact.phone:
                pipe.set(self._keys("phone", contact.phone), contact.client_id)
            await pipe.execute()

    async def contact(self, client_id: str) -> Contact | None:
        raw = await self._redis.get(self._keys("contact", client_id))
        return None if raw is None else Contact.model_validate_json(raw)

    async def client_by_phone(self, phone: str) -> str | None:
        found = await self._redis.get(self._keys("phone", phone))
        return None if found is None else str(found)

    # --- what the messages need to know ----------------------------------------------

    async def remember(self, kind: str, key: str, value: dict[str, Any]) -> None:
        """Keep something a later message needs (a plan's home program, a client's
        latest check-in)."""
        await self._redis.set(self._keys(kind, key), json.dumps(value))

    async def recall(self, kind: str, key: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._keys(kind, key))
        return None if raw is None else dict(json.loads(raw))

    # --- notifications ---------------------------------------------------------------

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
        if record.get("visit_id"):
            pipe.sadd(
                self._keys("visit-notifications", record["visit_id"]), record["notification_id"]
            )
        await pipe.execute()
        return True

    async def schedule_closed(self, record: dict[str, Any]) -> bool:
        """Store a notification that will not be sent (suppressed) in the client's log."""
        key = self._keys("notification", record["notification_id"])
        if not await self._redis.set(key, json.dumps(record), nx=True):
            return False
        await self._redis.zadd(
            self._keys("client-notifications", record["client_id"]),
            {record["notification_id"]: time.time()},
        )
        return True

    async def get(self, notification_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._keys("notification", notification_id))
        return None if raw is None else dict(json.loads(raw))

    async def move(
        self, record: dict[str, Any], *, expected: str, due_epoch: float | None = None
    ) -> bool:
        """Store ``record`` if its stored status is still ``expected``; re-arm its timer
        at ``due_epoch`` (a retry) or disarm it. False: someone else moved it first."""
        notification_id = record["notification_id"]
        done = await self._move(
            keys=[self._keys("notification", notification_id), self._due],
            args=[
                expected,
                json.dumps(record),
                notification_id,
                "" if due_epoch is None else repr(due_epoch),
            ],
        )
        return bool(done)

    async def for_visit(self, visit_id: str) -> list[dict[str, Any]]:
        found = await self._redis.smembers(self._keys("visit-notifications", visit_id))
        return await self._records(sorted(str(i) for i in found))

    async def claim_due(self, *, now_epoch: float, lease_s: float, limit: int = 50) -> list[str]:
        """Move due notifications to in-flight under a lease; only one claimer gets each."""
        ids = await self._redis.eval(
            _CLAIM, 2, self._due, self._inflight, now_epoch, time.time() + lease_s, limit
        )
        return [str(i) for i in ids]

    async def release(self, notification_id: str) -> None:
        await self._redis.zrem(self._inflight, notification_id)

    async def rearm(self, notification_id: str, *, due_epoch: float) -> None:
        """Back to the due queue (a send deferred by the global rate limit)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._inflight, notification_id)
            pipe.zadd(self._due, {notification_id: due_epoch})
            await pipe.execute()

    async def recover_expired(self) -> int:
        """Put back claims whose holder died before finishing (lease expired)."""
        return int(await self._redis.eval(_RECOVER, 2, self._inflight, self._due, time.time()))

    async def next_due_epoch(self) -> float | None:
        first = await self._redis.zrange(self._due, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def for_client(self, *client_ids: str) -> list[dict[str, Any]]:
        """The notifications of a client known by ``client_ids`` (the survivor of a
        merge and the ids retired into it), in due order."""
        found: dict[str, float] = {}
        for client_id in client_ids:
            index = self._keys("client-notifications", client_id)
            found.update(
                cast(
                    "list[tuple[str, float]]",
                    await self._redis.zrange(index, 0, -1, withscores=True),
                )
            )
        return await self._records(sorted(found, key=lambda i: (found[i], i)))

    # --- merges ----------------------------------------------------------------------

    async def merge(self, aliases: ClientAliases, *, retired: str, survivor: str) -> None:
        """Move what the notifier holds of ``retired`` to ``survivor`` and retire the
        id, in one transaction (retried when either client changes meanwhile): the
        contact (``delivery.merged_contact``), the notification log, and the client
        named by every notification not yet sent, so it goes to the survivor's
        contact. A second run finds nothing left to move."""
        watched = [
            self._keys("contact", retired),
            self._keys("contact", survivor),
            self._keys("client-notifications", retired),
        ]

        async def move(pipe: Any) -> None:
            await self._queue_merge(pipe, aliases, retired=retired, survivor=survivor)

        # redis-py's optimistic transaction: watch, read, MULTI, retried on a change
        await self._redis.transaction(move, *watched)

    async def _queue_merge(
        self, pipe: Any, aliases: ClientAliases, *, retired: str, survivor: str
    ) -> None:
        """Read (watched) what ``retired`` holds, then queue its move on ``pipe``."""
        raw = [await pipe.get(self._keys("contact", c)) for c in (retired, survivor)]
        old, kept = (None if r is None else Contact.model_validate_json(r) for r in raw)
        index = self._keys("client-notifications", retired)
        log = dict(await pipe.zrange(index, 0, -1, withscores=True))
        records = await self._records([str(i) for i in log])
        checkin = [await pipe.get(self._keys("checkin", c)) for c in (retired, survivor)]
        phone_of_old = None if old is None or not old.phone else self._keys("phone", old.phone)
        old_phone_is_theirs = phone_of_old is not None and await pipe.get(phone_of_old) == retired
        retired_aliases = await aliases.aliases_of(retired)
        contact = merged_contact(kept, old, client_id=survivor)
        pipe.multi()
        if contact is not None:
            pipe.set(self._keys("contact", survivor), contact.model_dump_json())
        if old_phone_is_theirs:
            pipe.delete(phone_of_old)
        if kept is None and contact is not None and contact.phone and old_phone_is_theirs:
            pipe.set(self._keys("phone", contact.phone), survivor)  # the retired's, moved
        pipe.delete(self._keys("contact", retired), index)
        if log:
            pipe.zadd(self._keys("client-notifications", survivor), log)
        for record in records:
            if record["status"] == "scheduled" and record["client_id"] == retired:
                moved = {**record, "client_id": survivor}
                pipe.set(self._keys("notification", record["notification_id"]), json.dumps(moved))
        if checkin[0] is not None and checkin[1] is None:
            pipe.set(self._keys("checkin", survivor), checkin[0])
        pipe.delete(self._keys("checkin", retired))
        aliases.record(pipe, retired, survivor, retired_aliases)

    async def _records(self, ids: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        raw = await self._redis.mget([self._keys("notification", i) for i in ids])
        return [json.loads(item) for item in raw if item]

    # --- send rates ------------------------------------------------------------------

    async def within_rate(self, scope: str, *, window_s: int, limit: int, now_epoch: float) -> bool:
        """Count one send in ``scope``'s current fixed window; False when over ``limit``."""
        window = int(now_epoch // window_s)
        key = self._keys("rate", scope, str(window_s), str(window))
        return bool(await self._hit(keys=[key], args=[window_s * 2, limit]))
