"""Redis access: one client per process, keys under the deployment's namespace,
and the processed-event ledger that makes redelivery harmless."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.connection import (
    AbstractConnection,
    BlockingConnectionPool,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)

from shared.metrics import REDIS_ROUND_TRIPS
from shared.settings import CommonSettings

SEEN_TTL = timedelta(days=30)  # longer than any redelivery window we expect


POOL_CONNECTIONS = 100  # per process
POOL_WAIT_S = 5.0  # a burst past the pool waits this long for a connection


def connect(settings: CommonSettings, *, service: str = "") -> aioredis.Redis:
    """The process's Redis client; every write to the server (one command, or one
    pipeline of them) counts as a round trip of ``service`` in
    ``clinicflow_redis_round_trips_total``.

    The pool blocks: a burst of more requests than it has connections waits for
    one (up to ``POOL_WAIT_S``) instead of failing while Redis is up."""
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=POOL_CONNECTIONS,
        timeout=POOL_WAIT_S,
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


class ProcessedEvents:
    """The ledger of event ids a service has fully handled (outputs acknowledged)."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    async def seen(self, event_id: str) -> bool:
        return bool(await self._client.exists(self._keys("processed", event_id)))

    async def seen_among(self, event_ids: Sequence[str]) -> set[str]:
        """Which of ``event_ids`` were handled, in one round trip."""
        if not event_ids:
            return set()
        async with self._client.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.exists(self._keys("processed", event_id))
            found = await pipe.execute()
        return {event_id for event_id, hit in zip(event_ids, found, strict=True) if hit}

    async def mark_all(self, event_ids: Iterable[str]) -> None:
        """Mark ``event_ids`` handled, in one round trip."""
        ids = list(event_ids)
        if not ids:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for event_id in ids:
                pipe.set(self._keys("processed", event_id), "1", ex=SEEN_TTL)
            await pipe.execute()
