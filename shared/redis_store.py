"""Redis access: one client per process, keys under the deployment's namespace,
and the processed-event ledger that makes redelivery harmless."""

from __future__ import annotations

from datetime import timedelta

import redis.asyncio as aioredis

from shared.settings import CommonSettings

SEEN_TTL = timedelta(days=30)  # longer than any redelivery window we expect


def connect(settings: CommonSettings) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        settings.redis_url, decode_responses=True, socket_connect_timeout=3, socket_timeout=5
    )


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

    async def mark(self, event_id: str) -> None:
        await self._client.set(self._keys("processed", event_id), "1", ex=SEEN_TTL)
