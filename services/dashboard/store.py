"""The dashboard's read model in Redis, kept per generation.

A batch of records is written by one Lua script: the counts, the lists, the dead
letters and the offsets the batch reached, together, or nothing. Redis runs a
script with no other command in between, and refuses a writing script as a whole
when it is out of memory (the ``#!lua`` line), so a restart resumes exactly where
the counts stop. The same script refuses a batch that does not follow what is
stored (``BatchRefused``): from an instance that no longer holds the projection
lease, into a generation a rebuild replaced, or starting before the stored offsets
(its records, or some, are counted already). ``clinicflow replay`` folds the
topics from offset 0 into a new generation and then makes it current; the old one
is deleted.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from services.dashboard.batch_write import APPLY, BatchWrite, parts
from services.dashboard.fold import Fold, Positioned, fold
from services.dashboard.projection import DeadLetter
from services.dashboard.views import ReadModel
from shared.redis_store import Keys

PROBLEMS_KEPT = 200
DEAD_LETTERS_KEPT = 500  # listed per page; every one stays inspectable by id
SCAN_COUNT = 10_000


@dataclass(frozen=True)
class Lease:
    """The right to project the live generation: ``key`` holds ``token`` for ``ms``."""

    key: str
    token: str
    ms: int


class BatchRefused(RuntimeError):
    """The batch was not written: it does not follow what is stored. Read the
    generation and its offsets again and fetch from there."""


class LeaseLost(BatchRefused):
    """Another instance holds the projection lease."""


class GenerationMoved(BatchRefused):
    """A rebuild made another generation current."""


class OffsetsMoved(BatchRefused):
    """The stored offsets are past the batch's beginning: some of it is counted already."""


_REFUSALS: dict[int, type[BatchRefused]] = {0: LeaseLost, -1: GenerationMoved, -2: OffsetsMoved}


class DashboardStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._apply = redis.register_script(APPLY)
        self._hold = redis.register_script(_HOLD)

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis

    # -- generations and the lease -------------------------------------------

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
        old: list[str] = []
        # a large COUNT: the server walks its whole keyspace either way, in fewer answers
        async for key in self._redis.scan_iter(match=self._keys("g", "*"), count=SCAN_COUNT):
            number = str(key).removeprefix(prefix).split(":", 1)[0]
            if number.isdigit() and int(number) < current:
                old.append(key)
        for start in range(0, len(old), SCAN_COUNT):
            await self._redis.unlink(*old[start : start + SCAN_COUNT])
        return switched

    async def hold(self, lease: Lease) -> int:
        """Take or renew ``lease``: the current generation while it is held, else 0
        (one round trip, so a renewal also notices a rebuild's switch)."""
        keys = [lease.key, self._keys("generation")]
        return int(await self._hold(keys=keys, args=[lease.token, lease.ms]))

    async def release(self, lease: Lease) -> None:
        await self._redis.eval(_RELEASE, 1, lease.key, lease.token)

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
        lease: Lease | None = None,
    ) -> None:
        """Add up a batch and record its offsets, in one round trip (a batch heavy
        with dead letters in a few, each with the offsets it reached: ``parts``).
        Per-minute flow is kept from ``keep_from_minute`` (epoch minutes) on.
        With ``lease`` (the live projection) the batch is written only while this
        instance holds the lease and ``generation`` is current, and the write renews
        the lease. Raises ``BatchRefused`` when the batch does not follow what is
        stored; what was refused is not written."""
        for part in parts(batch):
            await self._write(generation, part, keep_from_minute, lease)

    async def _write(
        self,
        generation: int,
        batch: Sequence[Positioned],
        keep_from_minute: int,
        lease: Lease | None,
    ) -> None:
        script = BatchWrite()
        header: dict[str, Any] = {
            "offsets": script.key(self._g(generation, "offsets")),
            "minutes": script.key(self._g(generation, "minutes")),
            "flow_prefix": self._g(generation, "flow", ""),
            "keep_from": str(keep_from_minute),
            "kept": str(PROBLEMS_KEPT),
        }
        if lease is not None:
            header |= {
                "lease": script.key(lease.key),
                "token": lease.token,
                "lease_ms": str(lease.ms),
                "generation": script.key(self._keys("generation")),
                "current": str(generation),
            }
        self._stage(script, generation, fold(batch, keep_from_minute=keep_from_minute))
        answer = int(await self._apply(keys=script.keys, args=[script.payload(header)]))
        if answer != 1:
            raise _REFUSALS[answer](f"batch of {len(batch)} records refused ({answer})")

    def _stage(self, script: BatchWrite, g: int, batch: Fold) -> None:
        for name, counts in (
            ("totals", batch.totals),
            ("bookings", batch.bookings),
            ("notifications", batch.notifications),
        ):
            target = script.key(self._g(g, name))
            script.hincrby += [[target, field, str(n)] for field, n in counts.items()]
        minutes = script.key(self._g(g, "minutes"))
        for (minute, field), n in batch.flow.items():
            script.hincrby.append([script.key(self._g(g, "flow", str(minute))), field, str(n)])
            script.zadd.append([minutes, str(minute), str(minute)])
        for location, problem in batch.problems:
            for key in self._scopes(g, "problems", location):
                script.lpush.append([script.key(key), problem])
        script.ltrim = sorted({target for target, _ in script.lpush})
        for dead in batch.dead_letters:
            body = json.dumps(dead.to_json())
            script.set.append([script.key(self._g(g, "deadletter", dead.id)), body])
            for key in self._scopes(g, "deadletters", dead.location):
                script.zadd.append([script.key(key), repr(dead.failed_at.timestamp()), dead.id])
        script.partitions = list(batch.first)
        script.first = [str(batch.first[where]) for where in script.partitions]
        script.next = [part for item in batch.next.items() for part in (item[0], str(item[1]))]

    def _scopes(self, generation: int, name: str, location: str) -> tuple[str, str]:
        """The chain's list and the location's: each page reads its own."""
        return self._g(generation, name), self._g(generation, name, location)

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


# Take or renew the lease; the current generation when held, else 0.
_HOLD = """
local holder = redis.call('get', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return tonumber(redis.call('get', KEYS[2]) or '1')
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_SWITCH = """
local current = tonumber(redis.call('get', KEYS[1]) or '1')
if tonumber(ARGV[1]) > current then redis.call('set', KEYS[1], ARGV[1]) return 1 end
return 0
"""


def _split3(field: str) -> tuple[str, str, str]:
    first, second, third = field.split("|", 2)
    return first, second, third


def minute_of(instant: datetime) -> int:
    return int(instant.timestamp() // 60)
