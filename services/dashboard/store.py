"""The dashboard's read model in Redis, kept per generation.

Each batch of records is added up in one transaction together with the offsets
it reached, so a restart resumes exactly where the counts stop: nothing counted
twice, nothing missed. ``clinicflow replay`` folds the topics from offset 0
into a new generation and then makes it current; the old one is deleted.

Layout under ``<namespace>:dashboard:``:
  generation                      the current generation number
  replayed                        failed record (topic/partition/offset) -> who replayed it,
                                  when, to which partition and offset
  replaying:<position>            held while one replay of that record is being sent (60 s)
  g:<n>:offsets                   "topic|partition" -> the next offset to read
  g:<n>:totals                    "location|topic|type" -> events
  g:<n>:flow:<minute>             "location|topic" -> events in that minute (epoch minutes)
  g:<n>:minutes                   the minutes that have a flow hash
  g:<n>:bookings                  "location|outcome" -> events
  g:<n>:notifications             "location|status|kind|channel" -> events
  g:<n>:problems[:<location>]     the latest failed and suppressed notifications (JSON)
  g:<n>:deadletters[:<location>]  dead letter ids by the time they failed
  g:<n>:deadletter:<id>           one dead letter (JSON)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from services.dashboard.projection import PROBLEMS, DeadLetter, Observation
from services.dashboard.views import ReadModel
from shared.redis_store import Keys

PROBLEMS_KEPT = 200
DEAD_LETTERS_KEPT = 500  # listed per page; every one stays inspectable by id


@dataclass(frozen=True)
class Positioned:
    """An observation and where its record sits."""

    topic: str
    partition: int
    offset: int
    observation: Observation


class LeaseLost(RuntimeError):
    """Another instance holds the projection lease: this batch was not written."""


class DashboardStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis

    # -- generations ---------------------------------------------------------

    async def generation(self) -> int:
        raw = await self._redis.get(self._keys("generation"))
        return int(raw) if raw is not None else 1

    async def new_generation(self) -> int:
        """A generation number nobody has used; it is not current until ``switch_to``."""
        current = await self.generation()
        issued = int(await self._redis.incr(self._keys("issued-generation")))
        if issued <= current:
            issued = current + 1
            await self._redis.set(self._keys("issued-generation"), issued)
        return issued

    async def switch_to(self, generation: int) -> bool:
        """Make ``generation`` current unless a newer one already is, then delete the
        generations older than the current one. A newer rebuild still running keeps
        its keys; an older one that finishes late is not switched to (False)."""
        switched = bool(await self._redis.eval(_SWITCH, 1, self._keys("generation"), generation))
        current = await self.generation()
        prefix = self._keys("g", "")
        async for key in self._redis.scan_iter(match=self._keys("g", "*"), count=500):
            number = str(key).removeprefix(prefix).split(":", 1)[0]
            if number.isdigit() and int(number) < current:
                await self._redis.delete(key)
        return switched

    def _g(self, generation: int, *parts: str) -> str:
        return self._keys("g", str(generation), *parts)

    # -- writing -------------------------------------------------------------

    async def offsets(self, generation: int) -> dict[tuple[str, int], int]:
        found = await self._redis.hgetall(self._g(generation, "offsets"))
        result = {}
        for field, value in found.items():
            topic, _, partition = str(field).rpartition("|")
            result[(topic, int(partition))] = int(value)
        return result

    async def add(
        self,
        generation: int,
        batch: Sequence[Positioned],
        *,
        keep_from_minute: int,
        lease: tuple[str, str] | None = None,
    ) -> None:
        """Add up a batch and record its offsets in one transaction. Per-minute flow
        is kept from ``keep_from_minute`` (epoch minutes) on. With ``lease`` (key,
        token) the write happens only while this instance holds the lease."""
        if not batch:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            if lease is not None:
                await pipe.watch(lease[0])
                if await pipe.get(lease[0]) != lease[1]:
                    raise LeaseLost(lease[0])
                pipe.multi()  # type: ignore[no-untyped-call]
            self._stage(pipe, generation, batch, keep_from_minute)
            try:
                await pipe.execute()
            except WatchError as exc:
                raise LeaseLost(lease[0] if lease else "") from exc

    def _stage(
        self, pipe: Any, generation: int, batch: Sequence[Positioned], keep_from_minute: int
    ) -> None:
        g = generation
        totals: Counter[str] = Counter()
        flow: Counter[tuple[int, str]] = Counter()
        bookings: Counter[str] = Counter()
        notifications: Counter[str] = Counter()
        offsets: dict[str, int] = {}
        for item in batch:
            seen = item.observation
            totals[f"{seen.location}|{item.topic}|{seen.type}"] += 1
            if seen.minute >= keep_from_minute:
                flow[(seen.minute, f"{seen.location}|{item.topic}")] += 1
            if seen.booking:
                bookings[f"{seen.location}|{seen.booking}"] += 1
            if fact := seen.notification:
                notifications[f"{seen.location}|{fact.status}|{fact.kind}|{fact.channel}"] += 1
                if fact.status in PROBLEMS:
                    problem = {
                        **fact.__dict__,
                        "at": fact.at.isoformat(),
                        "location": seen.location,
                    }
                    for key in self._scopes(g, "problems", seen.location):
                        pipe.lpush(key, json.dumps(problem))
                        pipe.ltrim(key, 0, PROBLEMS_KEPT - 1)
            if dead := seen.dead_letter:
                pipe.set(self._g(g, "deadletter", dead.id), json.dumps(dead.to_json()))
                for key in self._scopes(g, "deadletters", dead.location):
                    pipe.zadd(key, {dead.id: dead.failed_at.timestamp()})
            offsets[f"{item.topic}|{item.partition}"] = item.offset + 1
        for field, n in totals.items():
            pipe.hincrby(self._g(g, "totals"), field, n)
        for (minute, field), n in flow.items():
            pipe.hincrby(self._g(g, "flow", str(minute)), field, n)
            pipe.zadd(self._g(g, "minutes"), {str(minute): minute})
        for field, n in bookings.items():
            pipe.hincrby(self._g(g, "bookings"), field, n)
        for field, n in notifications.items():
            pipe.hincrby(self._g(g, "notifications"), field, n)
        pipe.hset(self._g(g, "offsets"), mapping=offsets)
        self._stage_prune(pipe, g, keep_from_minute)

    def _scopes(self, generation: int, name: str, location: str) -> tuple[str, str]:
        """The chain's list and the location's: each page reads its own."""
        return self._g(generation, name), self._g(generation, name, location)

    def _stage_prune(self, pipe: Any, generation: int, before_minute: int) -> None:
        """Flow minutes older than the window go (a Lua step: which ones is read in Redis)."""
        pipe.eval(
            _PRUNE,
            1,
            self._g(generation, "minutes"),
            before_minute,
            self._g(generation, "flow", ""),
        )

    async def claim_replay(self, position: str, *, lapse_s: int = 60) -> bool:
        """The right to replay the record at ``position`` for a while; False when taken."""
        return bool(
            await self._redis.set(self._keys("replaying", position), 1, nx=True, ex=lapse_s)
        )

    async def release_replay(self, position: str) -> None:
        await self._redis.delete(self._keys("replaying", position))

    async def mark_replayed(self, position: str, record: dict[str, Any]) -> None:
        """Remember that the record at ``position`` was sent again, where and by whom."""
        await self._redis.hset(self._keys("replayed"), position, json.dumps(record))

    # -- reading -------------------------------------------------------------

    async def read(
        self, generation: int, minutes: Sequence[int], location: str | None
    ) -> ReadModel:
        """Everything one picture shows, read in one transaction: the counts of a
        batch arrive together or not at all, never the bookings without their flow."""
        scope = [location] if location else []
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._g(generation, "totals"))
            pipe.hgetall(self._g(generation, "bookings"))
            pipe.hgetall(self._g(generation, "notifications"))
            pipe.lrange(self._g(generation, "problems", *scope), 0, PROBLEMS_KEPT - 1)
            pipe.zrevrange(self._g(generation, "deadletters", *scope), 0, DEAD_LETTERS_KEPT - 1)
            for minute in minutes:
                pipe.hgetall(self._g(generation, "flow", str(minute)))
            totals, bookings, notifications, problems, ids, *flow = await pipe.execute()
        # a dead letter never changes once written: its body may be read after
        found = (
            await self._redis.mget([self._g(generation, "deadletter", i) for i in ids])
            if ids
            else []
        )
        dead = [DeadLetter.from_json(json.loads(raw)) for raw in found if raw]
        return ReadModel(
            totals={_split3(k): int(v) for k, v in totals.items()},
            flow={
                m: {k: int(v) for k, v in row.items()} for m, row in zip(minutes, flow, strict=True)
            },
            bookings={k: int(v) for k, v in bookings.items()},
            notifications={k: int(v) for k, v in notifications.items()},
            problems=[json.loads(item) for item in problems],
            dead_letters=dead,
            replayed=await self.replayed({d.position for d in dead}),
        )

    async def bookings(self, generation: int) -> dict[str, int]:
        found = await self._redis.hgetall(self._g(generation, "bookings"))
        return {str(k): int(v) for k, v in found.items()}

    async def dead_letter(self, generation: int, dead_letter_id: str) -> DeadLetter | None:
        raw = await self._redis.get(self._g(generation, "deadletter", dead_letter_id))
        return DeadLetter.from_json(json.loads(raw)) if raw else None

    async def replayed(self, positions: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Replays by the position of the record they sent again."""
        wanted = list(positions)
        if not wanted:
            return {}
        found = await self._redis.hmget(self._keys("replayed"), wanted)
        return {i: json.loads(raw) for i, raw in zip(wanted, found, strict=True) if raw}


_SWITCH = """
local current = tonumber(redis.call('get', KEYS[1]) or '1')
if tonumber(ARGV[1]) > current then redis.call('set', KEYS[1], ARGV[1]) return 1 end
return 0
"""
_PRUNE = """
local old = redis.call('zrangebyscore', KEYS[1], '-inf', '(' .. ARGV[1])
for _, minute in ipairs(old) do redis.call('del', ARGV[2] .. minute) end
if #old > 0 then redis.call('zremrangebyscore', KEYS[1], '-inf', '(' .. ARGV[1]) end
return #old
"""


def _split3(field: str) -> tuple[str, str, str]:
    first, second, third = field.split("|", 2)
    return first, second, third


def minute_of(instant: datetime) -> int:
    return int(instant.timestamp() // 60)
