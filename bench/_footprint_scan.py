"""What a Redis namespace holds, key by key, grouped by service and key family.

Every key under ``<ns>:`` is read with ``MEMORY USAGE <key> SAMPLES 0`` (the whole
value, every element counted: the bytes Redis allocates for the key, its value and
their overhead) and ``PTTL``. A key ``<ns>:<service>:...`` belongs to that service;
any other key under the namespace (the chain's client index, for instance) is
*shared*. Its *family* is the key with the namespace dropped and every id replaced:
a location or therapist of the chain by ``<location>``, ``<therapist>``; a date by
``<day>``; two hex digits (a bucket's shard) by ``<id>``; a number by ``<n>``;
anything else with a digit or an ``@`` in it (uuids, client ids, e-mail addresses)
by ``<id>``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import redis.asyncio as aioredis

SERVICES = ("intake", "planner", "scheduler", "notifier", "dashboard")
SHARED = "shared"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NUMBER = re.compile(r"^\d+$")
_BUCKET = re.compile(r"^[0-9a-f]{2}$")  # a shard of a bucketed key: two hex digits
_ID = re.compile(r"[0-9@]")
G = TypeVar("G", str, tuple[str, str])


@dataclass(frozen=True)
class KeyStat:
    service: str
    family: str
    bytes: int
    ttl_ms: int  # -1: no expiry


@dataclass
class Tally:
    keys: int = 0
    bytes: int = 0

    def add(self, stat: KeyStat) -> None:
        self.keys += 1
        self.bytes += stat.bytes


@dataclass
class Snapshot:
    """The namespace at one moment, tallied by service and by (service, family)."""

    stats: list[KeyStat] = field(default_factory=list)

    def by_service(self, keep: int | None = None) -> dict[str, Tally]:
        """Per service; with ``keep`` (ms), only keys that last longer than that."""
        tallies: defaultdict[str, Tally] = defaultdict(Tally)
        for stat in self._kept(keep):
            tallies[stat.service].add(stat)
        return dict(tallies)

    def by_family(self, keep: int | None = None) -> dict[tuple[str, str], Tally]:
        tallies: defaultdict[tuple[str, str], Tally] = defaultdict(Tally)
        for stat in self._kept(keep):
            tallies[(stat.service, stat.family)].add(stat)
        return dict(tallies)

    def _kept(self, keep: int | None) -> Iterable[KeyStat]:
        return (s for s in self.stats if keep is None or s.ttl_ms < 0 or s.ttl_ms > keep)


def family_of(key: str, namespace: str, names: Mapping[str, str]) -> tuple[str, str]:
    """(service, family) of ``key`` under ``namespace``; ``names`` maps the chain's ids
    (locations, therapists) to their placeholder."""
    parts = key.removeprefix(f"{namespace}:").split(":")
    service = parts[0] if parts[0] in SERVICES else SHARED
    return service, ":".join(_segment(part, names) for part in parts)


def _segment(part: str, names: Mapping[str, str]) -> str:
    if part in names:
        return names[part]
    if _DAY.match(part):
        return "<day>"
    if _BUCKET.match(part):
        return "<id>"
    if _NUMBER.match(part):
        return "<n>"
    if _ID.search(part):
        return "<id>"
    return part


async def scan(
    redis: aioredis.Redis, namespace: str, names: Mapping[str, str], *, batch: int = 500
) -> Snapshot:
    """Every key of ``namespace``, its size and its time to live."""
    keys = [str(k) async for k in redis.scan_iter(f"{namespace}:*", count=2000)]
    snapshot = Snapshot()
    for start in range(0, len(keys), batch):
        chunk = keys[start : start + batch]
        async with redis.pipeline(transaction=False) as pipe:
            for key in chunk:
                pipe.memory_usage(key, samples=0)
                pipe.pttl(key)
            answers = await pipe.execute()
        for n, key in enumerate(chunk):
            size, ttl = answers[2 * n], answers[2 * n + 1]
            if size is None:  # gone between the scan and the read (a TTL ran out)
                continue
            service, family = family_of(key, namespace, names)
            snapshot.stats.append(KeyStat(service, family, int(size), int(ttl)))
    return snapshot


def difference(after: Mapping[G, Tally], before: Mapping[G, Tally]) -> dict[G, Tally]:
    """What ``after`` holds more than ``before``, per group."""
    empty = Tally()
    return {
        group: Tally(
            after.get(group, empty).keys - before.get(group, empty).keys,
            after.get(group, empty).bytes - before.get(group, empty).bytes,
        )
        for group in set(after) | set(before)
    }
