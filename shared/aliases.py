"""Client ids retired by a merge (``client.merged``) and the client each now names.

Every consuming service keeps its own copy under its own keys, written in the same
transaction as the move of what it holds under the retired id, so the two never
disagree: ``alias:<retired>`` -> the survivor, and ``aliases:<survivor>`` the ids
retired into it. The map is kept flat: when a survivor is itself merged later, the
ids retired into it are pointed at the new survivor in the same write, so one read
always resolves an id.

Events keep arriving under a retired id after a merge (they were on other topics
and partitions, keyed by that id): ``following_merges`` hands every handler the
event as if it were about the survivor, so what it stores and publishes carries
the survivor's id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis

from shared.envelope import Envelope
from shared.events import ClientMerged, EventData, IntakeSubmitted
from shared.kafka import Outgoing
from shared.redis_store import Keys
from shared.streams import Handler, Rejected


def client_of(data: EventData) -> str | None:
    """The client an event is about, if it names one."""
    if isinstance(data, IntakeSubmitted):
        return data.client.client_id
    found = getattr(data, "client_id", None)
    return found if isinstance(found, str) else None


def rehomed(data: EventData, client_id: str) -> EventData:
    """``data`` as if it were about ``client_id`` (unchanged when it already is)."""
    if client_of(data) in (None, client_id):
        return data
    if isinstance(data, IntakeSubmitted):
        return data.model_copy(
            update={"client": data.client.model_copy(update={"client_id": client_id})}
        )
    return data.model_copy(update={"client_id": client_id})


def alias_writes(retired: str, survivor: str, retired_aliases: Iterable[str]) -> dict[str, str]:
    """Every id that must now resolve to ``survivor``: ``retired`` and the ids that
    were retired into it before, each -> ``survivor``."""
    return {old: survivor for old in {retired, *retired_aliases} if old != survivor}


def alias_key(keys: Keys, client_id: str) -> str:
    """The key naming the survivor ``client_id`` was retired into (absent: none), for a
    caller that reads it in a round trip of its own with other keys."""
    return keys("alias", client_id)


def aliases_key(keys: Keys, survivor: str) -> str:
    """The set of the ids retired into ``survivor``."""
    return keys("aliases", survivor)


class ClientAliases:
    """The service's map of retired client ids (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def resolve(self, client_id: str) -> str:
        """The client ``client_id`` names now: the survivor of its merge, else itself."""
        found = await self._redis.get(alias_key(self._keys, client_id))
        return client_id if found is None else str(found)

    async def aliases_of(self, survivor: str) -> set[str]:
        """The ids retired into ``survivor``."""
        return {str(i) for i in await self._redis.smembers(aliases_key(self._keys, survivor))}

    async def known_as(self, client_id: str) -> tuple[str, list[str]]:
        """The survivor ``client_id`` resolves to, and every id it has been known by
        (itself first): the ids a read answers for."""
        survivor = await self.resolve(client_id)
        return survivor, [survivor, *sorted(await self.aliases_of(survivor))]

    def record(
        self, pipe: Any, retired: str, survivor: str, retired_aliases: Iterable[str]
    ) -> None:
        """Queue, on a transaction ``pipe``, the writes that retire ``retired`` into
        ``survivor`` (with the ids retired into it before)."""
        writes = alias_writes(retired, survivor, retired_aliases)
        for old, new in writes.items():
            pipe.set(alias_key(self._keys, old), new)
        if writes:
            pipe.sadd(aliases_key(self._keys, survivor), *writes)
        pipe.delete(aliases_key(self._keys, retired))


def following_merges(
    aliases: ClientAliases, handlers: Mapping[str, Handler], *, except_types: Sequence[str] = ()
) -> dict[str, Handler]:
    """``handlers``, each handed its event under the survivor of the client it names
    (``except_types``: handlers that resolve ids themselves, such as the merge's)."""

    def resolving(handler: Handler) -> Handler:
        async def handle(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
            client_id = client_of(data)
            if client_id is not None:
                data = rehomed(data, await aliases.resolve(client_id))
            return await handler(envelope, data)

        return handle

    return {
        event_type: handler if event_type in except_types else resolving(handler)
        for event_type, handler in handlers.items()
    }


Move = Callable[[ClientMerged, str, str], Awaitable[None]]


def merge_follower(aliases: ClientAliases, move: Move) -> Handler:
    """The ``client.merged`` handler of a service: ``move(event, retired, survivor)``
    (each id resolved through earlier merges), unless both already resolve to one
    client, which makes a redelivered or repeated merge change nothing."""

    async def on_merged(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, ClientMerged):
            raise Rejected(f"expected client.merged, got {type(data).__name__}")
        survivor = await aliases.resolve(data.client_id)
        retired = await aliases.resolve(data.merged_client_id)
        if retired != survivor:
            await move(data, retired, survivor)
        return []

    return on_merged
