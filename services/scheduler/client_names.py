"""The client names the scheduler's views show (minimum necessary: the name only).

The front desk reads visits by name, and the scheduler is told a client's name by
the two events of ``clinic.intake`` that carry the client's record
(``ClientRecord.name``): ``intake.submitted`` (for a returning client, the details
on record) and ``client.updated`` (a change the front desk confirmed). Both are
keyed by the client, so one client's names arrive in order and the last one stands.
One hash, ``client-names`` (client id -> name), under the scheduler's own keys;
nothing else of the record (contact details, date of birth, consent) is kept.

A merge keeps the survivor's name (the survivor's details stand): an event still
naming the retired id never overwrites it, and the retired client's name is only
taken when the survivor has none. A client the scheduler was never told about
shows ``client_name: null``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import redis.asyncio as aioredis

from services.scheduler.calendar_view import Names
from shared.aliases import Move, alias_key
from shared.envelope import Envelope
from shared.events import ClientMerged, ClientUpdated, EventData, IntakeSubmitted
from shared.kafka import Outgoing
from shared.redis_store import Keys
from shared.runtime import Runtime
from shared.streams import Handler, Rejected

# KEYS: the names hash, the client's alias key. ARGV: client id, name. Under an id a
# merge retired, the name only fills the survivor's when it has none.
_LEARN = """
local survivor = redis.call('GET', KEYS[2])
if survivor then return redis.call('HSETNX', KEYS[1], survivor, ARGV[2]) end
return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
"""

# KEYS: the names hash. ARGV: retired id, survivor id.
_MERGE = """
local name = redis.call('HGET', KEYS[1], ARGV[1])
if name then return redis.call('HSETNX', KEYS[1], ARGV[2], name) end
return 0
"""


class ClientNames:
    """The scheduler's ``client-names`` hash."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._hash = keys("client-names")
        self._learn = redis.register_script(_LEARN)
        self._merge = redis.register_script(_MERGE)

    async def learned(self, client_id: str, name: str) -> None:
        """The client's name as the record now stands."""
        await self._learn(
            keys=[self._hash, alias_key(self._keys, client_id)], args=[client_id, name]
        )

    async def merged(self, *, retired: str, survivor: str) -> None:
        """The survivor keeps its name; it takes the retired one's only if it has none."""
        await self._merge(keys=[self._hash], args=[retired, survivor])

    async def of(self, client_ids: Iterable[str]) -> dict[str, str | None]:
        """Each client's name, None when not known (one read)."""
        wanted = sorted(set(client_ids))
        if not wanted:
            return {}
        found = await self._redis.hmget(self._hash, wanted)
        return {cid: None if n is None else str(n) for cid, n in zip(wanted, found, strict=True)}


async def view_names(runtime: Runtime, client_ids: Iterable[str]) -> Names:
    """What a view shows beside ids: the clients' names and the chain's therapists and
    locations."""
    clients = await ClientNames(runtime.redis, runtime.keys).of(client_ids)
    chain = runtime.chain
    return Names(
        clients=clients,
        therapists={t.id: t.name for t in chain.therapists},
        locations={loc.id: loc.name for loc in chain.locations},
    )


def handlers(runtime: Runtime) -> Mapping[str, Handler]:
    """The handlers of the two events that carry a client's name; they publish nothing."""
    names = ClientNames(runtime.redis, runtime.keys)

    async def on_intake(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, IntakeSubmitted):
            raise Rejected(f"expected intake.submitted, got {type(data).__name__}")
        await names.learned(data.client.client_id, data.client.name)
        return []

    async def on_updated(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, ClientUpdated):
            raise Rejected(f"expected client.updated, got {type(data).__name__}")
        await names.learned(data.client.client_id, data.client.name)
        return []

    return {"intake.submitted": on_intake, "client.updated": on_updated}


def keeping_names(runtime: Runtime, move: Move) -> Move:
    """``move`` (the scheduler's merge), after the survivor is given the retired
    client's name if it has none: a redelivered merge that finds the move done
    (``merge_follower``) finds this done too."""
    names = ClientNames(runtime.redis, runtime.keys)

    async def moved(merge: ClientMerged, retired: str, survivor: str) -> None:
        await names.merged(retired=retired, survivor=survivor)
        await move(merge, retired, survivor)

    return moved


__all__ = ["ClientNames", "handlers", "keeping_names", "view_names"]
