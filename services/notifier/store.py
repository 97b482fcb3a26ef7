"""The notifier's durable state in Redis: client contacts, one record per
notification, and the timer queues (due by simulated-or-real due time; in-flight
by real lease expiry). Nothing depends on process memory, so a restart resumes
where the last process stopped.

A notification's status only moves forward from ``scheduled`` (to sent, failed,
cancelled or suppressed), and every move is a compare-and-set on the status it
was read with, so a cancel racing a send cannot be overwritten by it, nor the
other way round.

Handlers cost two round trips whatever they arm: one read of who the client is
now and how to reach them (``reach``), and one transaction of everything they
write (``writes``, services/notifier/writes.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import redis.asyncio as aioredis

from services.notifier.delivery import Contact, merged_contact
from services.notifier.writes import Writes
from shared.aliases import ClientAliases, alias_key
from shared.redis_store import Keys
from shared.retention import Retirement

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
# KEYS: in-flight, due. ARGV: ids still claimed, back to due now.
_UNCLAIM = """
for _, id in ipairs(ARGV) do
  if redis.call('zrem', KEYS[1], id) == 1 then redis.call('zadd', KEYS[2], 0, id) end
end
return #ARGV
"""
# KEYS: a counter per limit, in order. ARGV per limit: its window's seconds to keep the
# counter, its limit. Counts one send against each limit in turn, stopping at the first
# it is over: 0 when within all, else the 1-based number of that limit.
_HIT = """
for k = 1, #KEYS do
  local n = redis.call('INCR', KEYS[k])
  if n == 1 then redis.call('EXPIRE', KEYS[k], ARGV[2 * k - 1]) end
  if n > tonumber(ARGV[2 * k]) then return k end
end
return 0
"""


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` sends in ``scope`` per fixed window of ``window_s`` seconds."""

    scope: str
    window_s: int
    limit: int


@dataclass(frozen=True)
class Reach:
    """The client an event's client id names now (the survivor of its merges) and
    how to reach them."""

    client_id: str
    contact: Contact | None


class NotificationStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._due = keys("due")
        self._inflight = keys("inflight")
        self._hit = redis.register_script(_HIT)

    def writes(self) -> Writes:
        """A transaction to queue a handler's writes on, sent by its ``commit``."""
        return Writes(self._redis, self._keys)

    # --- contacts --------------------------------------------------------------------

    async def reach(self, client_ids: Sequence[str]) -> dict[str, Reach]:
        """Each of ``client_ids`` resolved through merges, with the contact of the
        client it names: one read (the alias and the contact of each id together),
        and a second only for ids retired by a merge, for their survivors' contacts.
        The alias map is ``shared.aliases.ClientAliases``'s (``alias:<retired>`` ->
        the survivor, kept flat), read here in the same round trip as the contact."""
        return (await self.reach_and_read(client_ids, []))[0]

    async def reach_and_read(
        self, client_ids: Sequence[str], keys: Sequence[str]
    ) -> tuple[dict[str, Reach], list[Any]]:
        """``reach``, and the values at ``keys`` read in the same round trip."""
        found, also, _ = await self.reach_read_retired(client_ids, keys, [])
        return found, also

    async def reach_read_retired(
        self, client_ids: Sequence[str], keys: Sequence[str], plan_ids: Sequence[str]
    ) -> tuple[dict[str, Reach], list[Any], set[str]]:
        """``reach_and_read``, and which of ``plan_ids`` are of retired courses
        (services/notifier/courses.py), all in the same round trip."""
        ids = list(dict.fromkeys(client_ids))
        plans = list(dict.fromkeys(plan_ids))
        queried = [k for c in ids for k in (alias_key(self._keys, c), self._keys("contact", c))]
        wanted = [*queried, *keys]
        if not wanted and not plans:
            return {}, [], set()
        async with self._redis.pipeline(transaction=False) as pipe:
            if wanted:
                pipe.mget(wanted)
            if plans:
                pipe.hmget(self._keys("retired"), plans)
            answers = await pipe.execute()
        everything = list(answers[0]) if wanted else []
        markers = answers[-1] if plans else []
        retired_plans = {p for p, marker in zip(plans, markers, strict=True) if marker}
        raw, also = everything[: len(queried)], list(everything[len(queried) :])
        found: dict[str, Reach] = {}
        retired: dict[str, str] = {}
        for n, client_id in enumerate(ids):
            alias, contact = raw[2 * n], raw[2 * n + 1]
            if alias is None:
                found[client_id] = Reach(client_id, _contact(contact))
            else:
                retired[client_id] = str(alias)
        if retired:
            survivors = sorted(set(retired.values()))
            contacts = await self._redis.mget([self._keys("contact", s) for s in survivors])
            of = dict(zip(survivors, contacts, strict=True))
            for client_id, survivor in retired.items():
                found[client_id] = Reach(survivor, _contact(of[survivor]))
        return found, also, retired_plans

    async def save_contact(self, contact: Contact) -> None:
        writes = self.writes()
        writes.save_contact(contact)
        await writes.commit()

    async def contact(self, client_id: str) -> Contact | None:
        return _contact(await self._redis.get(self._keys("contact", client_id)))

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
        writes = self.writes()
        writes.arm(record, due_epoch=due_epoch, logged_epoch=due_epoch)
        return (await writes.commit()).armed[0]

    async def get(self, notification_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._keys("notification", notification_id))
        return None if raw is None else dict(json.loads(raw))

    async def move(
        self, record: dict[str, Any], *, expected: str, due_epoch: float | None = None
    ) -> bool:
        """Store ``record`` if its stored status is still ``expected``; re-arm its timer
        at ``due_epoch`` (a retry) or disarm it. False: someone else moved it first."""
        writes = self.writes()
        writes.move(record, expected=expected, due_epoch=due_epoch)
        return (await writes.commit()).moved[0]

    async def for_visit(self, client_id: str, visit_id: str) -> list[dict[str, Any]]:
        """The notifications of ``client_id``'s visit ``visit_id``, read from the client's
        log (a set per visit would cost a key per visit for what the log answers)."""
        return [r for r in await self.for_client(client_id) if r.get("visit_id") == visit_id]

    async def claim_due(self, *, now_epoch: float, lease_s: float, limit: int = 50) -> list[str]:
        """Move due notifications to in-flight under a lease; only one claimer gets each."""
        ids = await self._redis.eval(
            _CLAIM, 2, self._due, self._inflight, now_epoch, time.time() + lease_s, limit
        )
        return [str(i) for i in ids]

    async def release(self, notification_id: str) -> None:
        await self._redis.zrem(self._inflight, notification_id)

    async def renew(self, notification_ids: Sequence[str], *, lease_s: float) -> None:
        """Extend the lease of claims this sender still holds (one that expired and was
        taken back meanwhile stays with whoever took it)."""
        if notification_ids:
            until = time.time() + lease_s
            await self._redis.zadd(self._inflight, dict.fromkeys(notification_ids, until), xx=True)

    async def unclaim(self, notification_ids: Sequence[str]) -> None:
        """Hand claims back at once (a sender stopping before it began them)."""
        if notification_ids:
            await self._redis.eval(_UNCLAIM, 2, self._inflight, self._due, *notification_ids)

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
        contact (``delivery.merged_contact``), the notification log, the markers of
        its retired courses, and the client named by every notification not yet
        sent, so it goes to the survivor's contact. A second run finds nothing left
        to move."""
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
        swept = [str(p) for p in await pipe.smembers(self._keys("retired-of", retired))]
        contact = merged_contact(kept, old, client_id=survivor)
        pipe.multi()
        Retirement(self._redis, self._keys).moved(pipe, swept, old=retired, new=survivor)
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

    async def over_rates(self, rates: Sequence[Rate], *, now_epoch: float) -> Rate | None:
        """Count one send against each of ``rates`` in turn (its current fixed window),
        in one round trip: the first one it is over (not counted against the rest), or
        None when it is within all."""
        keys, args = [], []
        for rate in rates:
            window = int(now_epoch // rate.window_s)
            keys.append(self._keys("rate", rate.scope, str(rate.window_s), str(window)))
            args += [rate.window_s * 2, rate.limit]
        over = int(await self._hit(keys=keys, args=args))
        return rates[over - 1] if over else None

    async def sending(
        self, client_id: str, plan_id: str | None
    ) -> tuple[Contact | None, dict[str, Any] | None]:
        """What a send reads, in one round trip: the client's contact and, for a message
        a plan shapes, that plan (``remember``-ed as ``plan``)."""
        keys = [self._keys("contact", client_id)]
        if plan_id:
            keys.append(self._keys("plan", plan_id))
        raw = await self._redis.mget(keys)
        plan = json.loads(raw[1]) if plan_id and raw[1] is not None else None
        return _contact(raw[0]), plan

    async def members(self, notification_id: str) -> list[dict[str, Any]]:
        """The changes a batch gathered, in the order they joined
        (services/notifier/gathering.py)."""
        raw = await self._redis.lrange(self._keys("batch", notification_id), 0, -1)
        return [json.loads(item) for item in raw]

    async def next_visit(self, client_id: str, *, now: datetime) -> dict[str, Any] | None:
        """The client's next visit still booked, as the visit events told the notifier
        (``visit_id``, ``plan_id``, ``location_id``, ``start`` ISO 8601, ``status``,
        ``confirmed_start`` once confirmed at that start); None when there is none."""
        upcoming = self._keys("upcoming", client_id)
        ids = await self._redis.zrangebyscore(upcoming, now.timestamp(), "+inf", start=0, num=5)
        if not ids:
            return None
        raw = await self._redis.mget([self._keys("seen-visit", str(i)) for i in ids])
        for item in raw:
            entry = json.loads(item) if item else None
            if entry and entry.get("status") == "booked":
                return dict(entry)
        return None


def _contact(raw: str | bytes | None) -> Contact | None:
    return None if raw is None else Contact.model_validate_json(raw)
