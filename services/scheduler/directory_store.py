"""The directory in Redis, and each process's copy of it.

``directory`` holds the document (``directory.Directory`` as JSON) and
``directory-version`` its version. The first scheduler to start writes the seed
from the chain file (``ensure``); a later start only adds the hours of therapists
and locations the file names and the document does not know yet. A change is
written by the calendar script together with the visits it re-planned
(``store.CalendarChange.directory_document``).

Each process keeps the document it last read and looks at the version again at
most every ``MAX_AGE_S`` (one GET): views are that fresh. Bookings are exact: each
calendar change names the version it was computed from, the script refuses it
when the directory moved on meanwhile, and the refusal drops the copy, so the
second attempt decides with the new directory. Every instance applies a change
without a restart.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from services.scheduler.directory import Directory, Staffing, seed, seed_hours, staffing
from shared.chain import ChainConfig
from shared.redis_store import Keys
from shared.runtime import Runtime

MAX_AGE_S = 1.0

_copies: dict[str, tuple[float, Directory]] = {}  # directory key -> (read at, document)

# KEYS: document, version. ARGV: the seed document, its version. Writes the seed
# when there is no document yet; answers the document.
_SEED = """
local found = redis.call('GET', KEYS[1])
if found then return found end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return ARGV[1]
"""

# KEYS: document, version. ARGV: the version read, the document with new pairs.
# Adds what the file names anew unless the document changed since it was read.
_EXTEND = """
if tostring(redis.call('GET', KEYS[2])) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""


class DirectoryStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys, chain: ChainConfig) -> None:
        self._redis = redis
        self._chain = chain
        self._document = keys("directory")
        self._version = keys("directory-version")

    async def ensure(self) -> Directory:
        """The stored directory, seeded from the chain file at first start."""
        first = seed(self._chain)
        raw = await self._redis.eval(
            _SEED, 2, self._document, self._version, first.model_dump_json(), first.version
        )
        directory = Directory.model_validate_json(raw)
        hours = seed_hours(self._chain, directory)
        if hours != directory.hours:
            extended = directory.model_copy(update={"hours": hours})
            await self._redis.eval(
                _EXTEND,
                2,
                self._document,
                self._version,
                str(directory.version),
                extended.model_dump_json(),
            )
        return await self._read()

    async def current(self, *, fresh: bool = False) -> Directory:
        """The directory, as read at most ``MAX_AGE_S`` ago (``fresh``: now). A
        process's first read seeds it (``ensure``) if need be."""
        copy = _copies.get(self._document)
        now = time.monotonic()
        if copy is None:
            return await self.ensure()
        if not fresh and now - copy[0] < MAX_AGE_S:
            return copy[1]
        version = await self._redis.get(self._version)
        if version is not None and int(version) == copy[1].version:
            _copies[self._document] = (now, copy[1])
            return copy[1]
        return await self._read()

    async def _read(self) -> Directory:
        raw = await self._redis.get(self._document)
        if raw is None:
            return await self.ensure()
        directory = Directory.model_validate_json(raw)
        _copies[self._document] = (time.monotonic(), directory)
        return directory

    async def staffing(self, location_id: str) -> Staffing:
        """One location's view of the current directory."""
        return staffing(self._chain, await self.current(), location_id)

    def forget(self) -> None:
        """Drop this process's copy: the next read is from Redis."""
        _copies.pop(self._document, None)


def forget(keys: Keys) -> None:
    """Drop the copy of the directory under ``keys`` (the script found it stale)."""
    _copies.pop(keys("directory"), None)


async def staffing_at(runtime: Runtime, location_id: str) -> Staffing:
    """One location's view of the current directory, for ``runtime``'s deployment."""
    return await DirectoryStore(runtime.redis, runtime.keys, runtime.chain).staffing(location_id)


__all__ = ["MAX_AGE_S", "DirectoryStore", "forget", "staffing_at"]
