"""A transactional outbox: events written to Redis in the same transaction as the
state change they report, then published, and re-published by a relay until the
broker acknowledges them.

Why: "accepted" must have one meaning. Publishing first and storing after can
answer 503 for an event the broker kept (the acknowledgement was lost); storing
first and publishing after can lose the event in a crash. With the outbox, the
state change and its events land together or not at all, and everything that
landed reaches the broker: now, or from the relay.

- ``stage`` queues the entries on the caller's MULTI/EXEC pipeline. The same
  pipeline reads the oldest pending entries with the record key of each, so the
  caller learns, in the same round trip, whether an older event of one of its
  keys is still waiting (``Staged.behind``).
- ``publish_staged`` publishes the caller's own entries at once, all sends in
  flight together and awaited once, with a bounded wait: the common case. When
  an older event of the same key waits, it leaves them to the relay, which
  publishes oldest first: events of one client keep their order. Older events of
  other keys (concurrent requests still publishing theirs) hold nobody up. While
  the broker is away (a publish went unacknowledged within ``BROKER_RETRY_S``)
  requests leave their events to the relay at once rather than each waiting.
- Published entries leave the queue with the next transaction that stages, or
  a moment later when none comes (``SETTLE_DELAY_S``); the request does not wait
  for that. Until then this process does not count them as waiting.
- ``relay`` runs in every instance; a short lease lets one relay at a time. An
  event the broker refuses for good (``PublishRejected``: too large, an invalid
  topic, not authorised) would block every event behind it, so it is parked in
  ``outbox-refused`` with the reason, logged and counted, and the relay goes on.

An entry holds the encoded envelope, and what is published is those bytes: the
request's send encodes the item once for both (``Outgoing.value``), the relay
sends the stored text as it is, without decoding and encoding it again, and
staging an event id that is queued already keeps the first entry (HSETNX). So a
republished event is byte-identical to the first. The relay can publish an
entry twice (acknowledged, then the process died before removing it): the event
id and the bytes are the same, and consumers skip an id they handled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from shared.codec import decode_envelope
from shared.kafka import Outgoing, Publisher, PublishError, PublishRejected
from shared.metrics import OUTBOX_OLDEST_S, OUTBOX_PENDING, OUTBOX_REFUSED
from shared.redis_store import Keys

log = logging.getLogger(__name__)

PEEK = 64  # how many of the oldest entries a stage reads back
RELAY_BATCH = 200
RELAY_INTERVAL_S = 0.5
RELAY_LEASE_MS = 5_000
PUBLISH_WAIT_S = 2.0
BROKER_RETRY_S = 1.0  # after an unacknowledged publish, requests try the broker again after this
SETTLE_DELAY_S = 0.05  # published entries still queued are removed at the latest after this

# Lua: the queued ids older than the first of ``mine`` (a table of ids), with the
# record key of each (the entries hash holds them as ``entry_of`` writes them, key
# first; '' for an id whose entry is gone), then that first id of ``mine``; nothing
# when it is not among the ``n`` oldest. Other scripts that stage include it too.
OLDER_WITH_KEYS_LUA = """
local function older_with_keys(due, entries, n, mine, out)
  local first = nil
  for _, id in ipairs(mine) do
    local rank = redis.call('ZRANK', due, id)
    if rank and (first == nil or rank < first) then first = rank end
  end
  if first == nil or first >= n then return out end
  local ids = redis.call('ZRANGE', due, 0, first)
  for i, id in ipairs(ids) do
    local key = ''
    local raw = i < #ids and redis.call('HGET', entries, id)
    if raw then
      key = string.match(raw, '^{"key": "([^"\\\\]*)", ') or cjson.decode(raw)['key']
    end
    out[#out + 1] = id
    out[#out + 1] = key
  end
  return out
end
"""
_PEEK = (
    OLDER_WITH_KEYS_LUA
    + "return older_with_keys(KEYS[1], KEYS[2], tonumber(ARGV[1]), {unpack(ARGV, 2)}, {})"
)


@dataclass(frozen=True)
class Staged:
    """What one stage wrote, and whether an older entry of one of its keys was still
    waiting then."""

    event_ids: tuple[str, ...]
    behind: bool


def behind_older(
    items: Sequence[Outgoing], oldest: Sequence[str], *, settled: Collection[str] = ()
) -> bool:
    """Whether ``items`` must wait for the relay: ``oldest`` (the queue's ids up to
    the first of ``items``, each followed by its record key, as ``stage`` reads them)
    holds an older entry of one of their keys that is not known ``settled``
    (published, still queued), or does not reach them at all (more older entries
    than one read returns)."""
    mine = {item.envelope.id for item in items}
    keys = {item.key for item in items}
    for position in range(0, len(oldest) - 1, 2):
        event_id, key = str(oldest[position]), str(oldest[position + 1])
        if event_id in mine:
            return False
        if key in keys and event_id not in settled:
            return True
    return bool(mine)


def _ids(items: Sequence[Outgoing]) -> list[str]:
    return [item.envelope.id for item in items]


def entry_of(item: Outgoing) -> str:
    return json.dumps({"key": item.key, "envelope": item.value.decode()})


def item_of(raw: str) -> Outgoing:
    """An entry as it is published again: its stored bytes, not a new encoding."""
    entry = json.loads(raw)
    value = entry["envelope"].encode()
    return Outgoing(key=entry["key"], envelope=decode_envelope(value), encoded=value)


class Outbox:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        service: str,
        publish_wait_s: float = PUBLISH_WAIT_S,
        ms_per_score: float = 1.0,
        grace_ms: float | None = None,
    ) -> None:
        """``publish_wait_s``: how long a request waits for the broker before it leaves
        its events to the relay; ``ms_per_score``: what one unit of a queue score is in
        milliseconds (the scheduler's calendar script stages with epoch seconds);
        ``grace_ms``: how old an entry must be before the relay takes it (default: the
        publish wait and a second, so a request still publishing is left alone)."""
        self._redis = redis
        self._publish_wait_s = publish_wait_s
        self._ms_per_score = ms_per_score
        self._grace_ms = (publish_wait_s + 1) * 1000 if grace_ms is None else grace_ms
        self._entries = keys("outbox")
        self._due = keys("outbox-due")
        self._lease = keys("outbox-relay")
        self._refused = keys("outbox-refused")
        self._service = service
        self._settled: set[str] = set()  # published, still queued
        self._sweeper: asyncio.Task[None] | None = None
        self._failed_at: float | None = None  # when a publish last went unacknowledged

    def stage(self, pipe: Any, items: Sequence[Outgoing], *, now_ms: int) -> int:
        """Queue ``items`` on the MULTI pipeline ``pipe``; returns the index of the
        pipeline result that ``staged`` reads (the oldest pending entries)."""
        self.stage_writes(pipe, items, now_ms=now_ms)
        pipe.eval(_PEEK, 2, self._due, self._entries, PEEK, *_ids(items))
        return len(pipe.command_stack) - 1

    def stage_writes(self, pipe: Any, items: Sequence[Outgoing], *, now_ms: int) -> None:
        """``stage`` without the read, for a caller that reads the queue itself
        (``peek_args``); also removes entries this process published since."""
        for offset, item in enumerate(items):
            # NX: an event queued already keeps its first bytes and its first place
            pipe.hsetnx(self._entries, item.envelope.id, entry_of(item))
            pipe.zadd(self._due, {item.envelope.id: now_ms + offset}, nx=True)
        settled = self.settled_now()
        if settled:
            pipe.hdel(self._entries, *settled)
            pipe.zrem(self._due, *settled)

    def peek_args(self, items: Sequence[Outgoing]) -> list[str | int]:
        """The queue, the entries, how many of the oldest a stage reads and the ids
        of ``items`` (their count first): for a script that stages ``items`` and
        reads like ``stage`` (``older_with_keys``)."""
        ids = _ids(items)
        return [self._due, self._entries, PEEK, len(ids), *ids]

    @staticmethod
    def staged(
        items: Sequence[Outgoing], oldest: Sequence[str], *, settled: Collection[str] = ()
    ) -> Staged:
        """Read ``stage``'s result (``behind_older``)."""
        mine = tuple(item.envelope.id for item in items)
        return Staged(event_ids=mine, behind=behind_older(items, oldest, settled=settled))

    def staged_now(self, items: Sequence[Outgoing], oldest: Sequence[str]) -> Staged:
        """``staged``, with what this process published and has not removed yet."""
        return self.staged(items, oldest, settled=self._settled)

    async def commit(
        self,
        publisher: Publisher,
        items: Sequence[Outgoing],
        writes: Callable[[Any], Awaitable[None]],
        *,
        applied: Callable[[], None] | None = None,
    ) -> bool:
        """``writes`` (queued on a MULTI pipeline) and ``items`` in the outbox, in one
        transaction (``applied`` is called once it is); then publish them as
        ``publish_staged`` does."""
        async with self._redis.pipeline(transaction=True) as pipe:
            await writes(pipe)
            removed = self.settled_now()
            oldest = self.stage(pipe, items, now_ms=epoch_ms())
            results = await pipe.execute()
        self.removed(removed)
        if applied is not None:
            applied()
        return await self.publish_staged(publisher, items, self.staged_now(items, results[oldest]))

    async def publish_staged(
        self,
        publisher: Publisher,
        items: Sequence[Outgoing],
        staged: Staged,
        *,
        wait_s: float | None = None,
    ) -> bool:
        """Publish the staged ``items`` (all sends in flight, awaited once) unless an
        older entry of theirs waits or the broker was away at the last try, waiting at
        most ``wait_s`` (default: the publish wait); True once acknowledged. False
        leaves them to the relay (nothing is lost either way)."""
        if staged.behind or self._broker_away():
            return False
        try:
            async with asyncio.timeout(self._publish_wait_s if wait_s is None else wait_s):
                await publisher.publish(items)
        except (PublishError, TimeoutError) as exc:  # a refusal too: the relay parks it
            if not isinstance(exc, PublishRejected):
                self._failed_at = time.monotonic()
            log.warning("outbox: %d event(s) left for the relay: %r", len(items), exc)
            return False
        self._failed_at = None
        self.settle(staged.event_ids)
        return True

    async def publish_stored(self, publisher: Publisher, items: Sequence[Outgoing]) -> bool:
        """``publish_staged`` for items a transaction of the caller's staged without
        reading the queue back (one more round trip; for the less frequent writes)."""
        read = await self._redis.eval(_PEEK, 2, self._due, self._entries, PEEK, *_ids(items))
        oldest = [str(v) for v in read]
        return await self.publish_staged(publisher, items, self.staged_now(items, oldest))

    def _broker_away(self) -> bool:
        """A publish went unacknowledged less than ``BROKER_RETRY_S`` ago: requests
        meanwhile leave their events to the relay instead of each waiting in vain
        (one request a ``BROKER_RETRY_S`` tries again)."""
        if self._failed_at is None:
            return False
        if time.monotonic() - self._failed_at < BROKER_RETRY_S:
            return True
        self._failed_at = time.monotonic()  # this request tries; the others keep going
        return False

    def settle(self, event_ids: Sequence[str]) -> None:
        """``event_ids`` were published: they leave the queue with the next stage, or
        after ``SETTLE_DELAY_S`` when none comes."""
        self._settled.update(event_ids)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep())

    def settled_now(self) -> tuple[str, ...]:
        """What ``stage_writes`` removes if called now; pass it to ``removed`` once the
        transaction is applied."""
        return tuple(sorted(self._settled))

    def removed(self, event_ids: Sequence[str]) -> None:
        """A transaction that removed ``event_ids`` (``stage_writes``) was applied."""
        self._settled.difference_update(event_ids)

    async def _sweep(self) -> None:
        while self._settled:
            await asyncio.sleep(SETTLE_DELAY_S)
            await self.remove_settled()

    async def remove_settled(self) -> None:
        """Remove what this process published and has not removed yet, now."""
        settled = self.settled_now()
        if not settled:
            return
        try:
            await self.delivered(settled)
        except Exception as exc:  # left queued: the relay publishes them again, same ids
            log.warning("outbox: %d published event(s) left queued: %r", len(settled), exc)
        self.removed(settled)

    async def delivered(self, event_ids: Sequence[str]) -> None:
        if not event_ids:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._entries, *event_ids)
            pipe.zrem(self._due, *event_ids)
            await pipe.execute()

    async def pending(self, limit: int = RELAY_BATCH) -> list[Outgoing]:
        """The oldest entries still to publish, in order, past the grace period."""
        if self._grace_ms > 0:
            until = (epoch_ms() - self._grace_ms) / self._ms_per_score
            found = await self._redis.zrangebyscore(self._due, "-inf", until, start=0, num=limit)
        else:
            found = await self._redis.zrange(self._due, 0, limit - 1)
        ids = [str(i) for i in found]
        if not ids:
            return []
        raw = await self._redis.hmget(self._entries, ids)
        orphans = [event_id for event_id, value in zip(ids, raw, strict=True) if value is None]
        if orphans:  # removed by another instance between the two reads
            await self._redis.zrem(self._due, *orphans)
        return [item_of(str(value)) for value in raw if value is not None]

    async def relay_once(self, publisher: Publisher, *, owner: str) -> int:
        """One round of the relay, if this instance holds the lease; events published."""
        if not await self._hold_lease(owner):
            return 0
        items = await self.pending()
        done: list[str] = []
        try:
            for item in items:
                try:
                    await publisher.publish([item])
                except PublishRejected as refused:
                    await self.park(item, refused)
                    continue
                done.append(item.envelope.id)
        finally:  # what was acknowledged leaves the queue, even when a later send failed
            await self.delivered(done)
        return len(done)

    async def park(self, item: Outgoing, refused: PublishRejected) -> None:
        """Take an event the broker refuses for good out of the queue, keeping it
        and the reason for ops (``outbox-refused``)."""
        log.error(
            "outbox: the broker refused %s %s for good (%s); parked",
            item.envelope.type,
            item.envelope.id,
            refused.reason,
        )
        parked = json.dumps({"entry": entry_of(item), "reason": str(refused)})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._refused, item.envelope.id, parked)
            pipe.hdel(self._entries, item.envelope.id)
            pipe.zrem(self._due, item.envelope.id)
            await pipe.execute()
        OUTBOX_REFUSED.labels(self._service, refused.topic).inc()

    async def report(self, *, now_ms: int) -> None:
        """Keep the outbox gauges current: how many events wait, and for how long."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self._due)
            pipe.zrange(self._due, 0, 0, withscores=True)
            count, oldest = await pipe.execute()
        OUTBOX_PENDING.labels(self._service).set(int(count))
        age = (now_ms - float(oldest[0][1]) * self._ms_per_score) / 1000 if oldest else 0.0
        OUTBOX_OLDEST_S.labels(self._service).set(max(0.0, age))

    async def _hold_lease(self, owner: str) -> bool:
        if await self._redis.set(self._lease, owner, nx=True, px=RELAY_LEASE_MS):
            return True
        if await self._redis.get(self._lease) == owner:
            await self._redis.pexpire(self._lease, RELAY_LEASE_MS)
            return True
        return False


async def relay(
    outbox: Outbox, publisher: Publisher, *, interval_s: float = RELAY_INTERVAL_S
) -> None:
    """Publish what waits in ``outbox``, oldest first, until cancelled."""
    owner = uuid.uuid4().hex
    try:
        while True:
            try:
                await outbox.report(now_ms=epoch_ms())
                await outbox.relay_once(publisher, owner=owner)
            except PublishError as exc:
                log.warning("outbox relay: the broker did not acknowledge; retrying: %r", exc)
            except Exception:  # keep relaying: the next round retries what failed
                log.exception("outbox relay round failed")
            await asyncio.sleep(interval_s)
    finally:  # stopping: what this process published leaves the queue before Redis closes
        await outbox.remove_settled()


def epoch_ms() -> int:
    """Queue order is by the real clock (not the simulated one): it orders sends."""
    return int(time.time() * 1000)
