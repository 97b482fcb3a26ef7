"""Redis access: one client per process, keys under the deployment's namespace,
and the processed-event ledger that makes redelivery harmless."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.connection import (
    AbstractConnection,
    BlockingConnectionPool,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.metrics import REDIS_ROUND_TRIPS
from shared.settings import CommonSettings

SEEN_TTL = timedelta(days=30)  # longer than any redelivery window we expect
LEDGER_SHARDS = 256  # hashes per service and event day (the first byte of the id's digest)
# how long the per-event keys of the earlier layout are still read: the last of them,
# written by an instance still on that layout while the rollout lasts (a day at most),
# has expired by then
LEGACY_WINDOW = SEEN_TTL + timedelta(days=1)


REDIS_DOWN = "Redis did not answer"


class PoolExhausted(RedisConnectionError):
    """No connection came free within the request's deadline although Redis answers."""


class WaitingPool(BlockingConnectionPool):
    """A pool where a burst of more requests than connections waits its turn for as
    long as Redis answers, and fails at once when Redis does not.

    While Redis answers, every command ends within the socket timeout and hands its
    connection on, so a waiting request is served in turn: the wait is bounded only
    by ``wait_s``, the request's deadline (REDIS_POOL_WAIT_S), past which its caller
    has given up. A connection that cannot connect marks Redis unreachable: every
    request waiting then fails (503), as does a new one that would have to wait, until
    a connection is had again. A request that finds a connection free always tries it,
    so the first one after Redis is back clears the mark."""

    def __init__(self, *, wait_s: float, **kwargs: Any) -> None:
        super().__init__(timeout=None, **kwargs)
        self.wait_s = wait_s
        self.unreachable = False

    def can_get_connection(self) -> bool:
        # unreachable, a waiter stops waiting: the base then takes a free connection
        # (and tries it) or, with none free, fails with "Too many connections"
        return self.unreachable or bool(super().can_get_connection())

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        try:
            async with asyncio.timeout(self.wait_s):
                connection: AbstractConnection = await super().get_connection()  # type: ignore[no-untyped-call]
        except TimeoutError as waited:
            raise PoolExhausted(f"no Redis connection came free in {self.wait_s:g} s") from waited
        except MaxConnectionsError as none_free:
            raise RedisConnectionError(REDIS_DOWN) from none_free
        except (RedisConnectionError, RedisTimeoutError, OSError):
            if not self.unreachable:
                self.unreachable = True
                async with self._condition:
                    self._condition.notify_all()  # the waiting requests fail now
            raise
        self.unreachable = False
        return connection


def connect(settings: CommonSettings, *, service: str = "") -> aioredis.Redis:
    """The process's Redis client; every write to the server (one command, or one
    pipeline of them) counts as a round trip of ``service`` in
    ``clinicflow_redis_round_trips_total``.

    The pool (``REDIS_POOL_SIZE`` connections) blocks: a burst of more requests than
    it has connections waits for one while Redis answers (``WaitingPool``)."""
    pool = WaitingPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_pool_size,
        wait_s=settings.redis_pool_wait_s,
        decode_responses=True,
        socket_connect_timeout=3,
        socket_timeout=5,
        connection_class=counted_connection(settings.redis_url, service or "unknown"),
    )
    return aioredis.Redis.from_pool(pool)


def counted_connection(url: str, service: str) -> type[AbstractConnection]:
    """The connection class of ``url``'s scheme, counting what it sends."""
    scheme = urlsplit(url).scheme
    base: type[AbstractConnection] = {
        "rediss": SSLConnection,
        "unix": UnixDomainSocketConnection,
    }.get(scheme, Connection)
    round_trips = REDIS_ROUND_TRIPS.labels(service)

    async def send_packed_command(
        self: AbstractConnection, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        round_trips.inc()
        await base.send_packed_command(self, command, check_health)

    attributes: dict[str, Any] = {"send_packed_command": send_packed_command}
    return type(f"Counted{base.__name__}", (base,), attributes)


class Keys:
    """Builds namespaced keys so deployments (and test runs) sharing a server never collide."""

    def __init__(self, namespace: str, service: str) -> None:
        self.namespace = namespace
        self.service = service

    def __call__(self, *parts: str) -> str:
        return ":".join((self.namespace, self.service, *parts))

    def shared(self, *parts: str) -> str:
        """A key owned by no single service (e.g. the chain's client index)."""
        return ":".join((self.namespace, *parts))


class Marked(Protocol):
    """What the ledger needs of an event: its id and its own ``time`` attribute."""

    @property
    def id(self) -> str: ...

    @property
    def time(self) -> datetime: ...


def ledger_slot(event_id: str, event_time: datetime) -> tuple[str, str, bytes]:
    """Where the mark of an event lives: the UTC day of its ``time``, one of
    ``LEDGER_SHARDS`` shards, and the field (the rest of a 128-bit digest of the id).

    A redelivered record carries the same envelope, so the same id and time: it is
    looked up in the slot it was marked in. The digest gives every id, UUID or not,
    the same 16 bytes (one byte names the shard, 15 are the field); two ids share a
    digest with a probability far below that of two random UUIDs colliding."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=16).digest()
    day = event_time.astimezone(UTC).date().isoformat()
    return day, f"{digest[0] % LEDGER_SHARDS:02x}", digest[1:]


class ProcessedEvents:
    """The ledger of event ids a service has fully handled (outputs acknowledged).

    Marks are grouped by the day of the event's own ``time``: one small hash per day
    and shard (``<ns>:<service>:ledger:<yyyy-mm-dd>:<shard>``), a 15-byte field per
    event. Hashes this small are stored packed by Redis (``hash-max-listpack-entries``,
    512 here: 256 shards hold about 130,000 events of one day per service that way),
    about 24 bytes per event instead of 120 to 140 for a key of its own. Each write sets the
    hash's TTL to ``SEEN_TTL`` again, so every mark is kept at least ``SEEN_TTL``
    after it was written, as a key per event was, and the TTL does not depend on the
    event's clock agreeing with Redis's (simulated clocks, replays of old days). A
    day's hashes stop growing once its events have passed, and expire ``SEEN_TTL``
    after the last one.

    The earlier layout kept a key per event (``<ns>:<service>:processed:<event_id>``,
    TTL ``SEEN_TTL``). Those keys are still read, in the same pipeline, for
    ``LEGACY_WINDOW`` after the first instance with this layout started (the end is
    recorded once, in ``<ns>:<service>:ledger-legacy-until``, without a TTL, so later
    instances and restarts keep it), so a deployment upgraded mid-stream does not redo
    an event marked before the upgrade; after that they have all expired and are no
    longer looked up."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._legacy_until: float | None = None  # epoch seconds; None until first read

    def bucket(self, day: str, shard: str) -> str:
        return self._keys("ledger", day, shard)

    async def seen(self, event: Marked) -> bool:
        return bool(await self.seen_among([event]))

    async def seen_among(self, events: Sequence[Marked]) -> set[str]:
        """The ids of ``events`` that were handled, in one round trip."""
        if not events:
            return set()
        ids = list(dict.fromkeys(event.id for event in events))
        fields: dict[str, list[tuple[str, bytes]]] = {}
        for event in events:
            day, shard, field = ledger_slot(event.id, event.time)
            fields.setdefault(self.bucket(day, shard), []).append((event.id, field))
        legacy = self._legacy_until is None or time.time() < self._legacy_until
        async with self._client.pipeline(transaction=False) as pipe:
            for bucket, wanted in fields.items():
                pipe.hmget(bucket, [field for _, field in wanted])
            if legacy:
                for event_id in ids:
                    pipe.exists(self._keys("processed", event_id))
            if self._legacy_until is None:
                window = self._keys("ledger-legacy-until")
                until = int(time.time() + LEGACY_WINDOW.total_seconds())
                pipe.set(window, str(until), nx=True)  # kept: a restart must not reopen it
                pipe.get(window)
            found = await pipe.execute()
        seen = {
            event_id
            for wanted, values in zip(fields.values(), found[: len(fields)], strict=True)
            for (event_id, _), value in zip(wanted, values, strict=True)
            if value is not None
        }
        if self._legacy_until is None:
            self._legacy_until = float(found[-1])
        if legacy and time.time() < self._legacy_until:
            hits = found[len(fields) : len(fields) + len(ids)]
            seen.update(event_id for event_id, hit in zip(ids, hits, strict=True) if hit)
        return seen

    async def mark_all(self, events: Iterable[Marked]) -> None:
        """Mark ``events`` handled, in one round trip."""
        fields: dict[str, dict[bytes, int]] = {}
        for event in events:
            day, shard, field = ledger_slot(event.id, event.time)
            fields.setdefault(self.bucket(day, shard), {})[field] = 1
        if not fields:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for bucket, marks in fields.items():
                pipe.hset(bucket, mapping=marks)  # type: ignore[arg-type]
                pipe.expire(bucket, SEEN_TTL)
            await pipe.execute()
