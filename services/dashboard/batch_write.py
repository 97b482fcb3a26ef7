"""How one batch travels to Redis: the script that checks and writes it, its
argument, and where a batch heavy with dead letters is cut into parts.

Every key the script writes by name is declared (KEYS), and an operation names
its key by its place among them; only the flow minutes it prunes are found, and
named, inside the script.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from services.dashboard.fold import Positioned

# dead letters one script carries at most (a batch of cut 1 MB records is split):
# a script's argument has to fit Redis's bulk limit, and a long script holds up the server
WRITE_BYTES = 4_000_000


class BatchWrite:
    """One batch's writes, as ``APPLY`` takes them."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._places: dict[str, int] = {}
        self.hincrby: list[list[Any]] = []
        self.zadd: list[list[Any]] = []
        self.lpush: list[list[Any]] = []
        self.ltrim: list[int] = []
        self.set: list[list[Any]] = []
        self.partitions: list[str] = []
        self.first: list[str] = []
        self.next: list[str] = []

    def key(self, name: str) -> int:
        """``name``'s place in KEYS (Lua counts from 1)."""
        if name not in self._places:
            self.keys.append(name)
            self._places[name] = len(self.keys)
        return self._places[name]

    def payload(self, header: dict[str, Any]) -> str:
        return json.dumps(
            {
                **header,
                "hincrby": self.hincrby,
                "zadd": self.zadd,
                "lpush": self.lpush,
                "ltrim": self.ltrim,
                "set": self.set,
                "partitions": self.partitions,
                "first": self.first,
                "next": self.next,
            }
        )


def parts(batch: Sequence[Positioned]) -> Iterable[Sequence[Positioned]]:
    """``batch`` cut after the record that brings its dead letters to ``WRITE_BYTES``."""
    start, carried = 0, 0
    for end, item in enumerate(batch, start=1):
        dead = item.observation.dead_letter
        carried += len(dead.payload) if dead else 0
        if carried >= WRITE_BYTES or end == len(batch):
            yield batch[start:end]
            start, carried = end, 0


# One batch: check it follows what is stored, then write it all. Returns 1 when
# written; 0 the lease is another's, -1 the generation is no longer current, -2 the
# stored offsets are past the batch's first record (it, or part of it, is counted).
# Every number travels as a string: Lua's own numbers would round large ones.
APPLY = """#!lua
local b = cjson.decode(ARGV[1])
if b.lease then
  if redis.call('get', KEYS[b.lease]) ~= b.token then return 0 end
  if (redis.call('get', KEYS[b.generation]) or '1') ~= b.current then return -1 end
end
local offsets = KEYS[b.offsets]
for i, where in ipairs(b.partitions) do
  local stored = redis.call('hget', offsets, where)
  if stored and tonumber(stored) > tonumber(b.first[i]) then return -2 end
end
for _, op in ipairs(b.hincrby) do redis.call('hincrby', KEYS[op[1]], op[2], op[3]) end
for _, op in ipairs(b.zadd) do redis.call('zadd', KEYS[op[1]], op[2], op[3]) end
for _, op in ipairs(b.set) do redis.call('set', KEYS[op[1]], op[2]) end
for _, op in ipairs(b.lpush) do redis.call('lpush', KEYS[op[1]], op[2]) end
for _, place in ipairs(b.ltrim) do redis.call('ltrim', KEYS[place], 0, tonumber(b.kept) - 1) end
redis.call('hset', offsets, unpack(b.next))
-- flow minutes older than the window go (which ones is read here)
local minutes = KEYS[b.minutes]
local old = redis.call('zrangebyscore', minutes, '-inf', '(' .. b.keep_from)
for _, minute in ipairs(old) do redis.call('del', b.flow_prefix .. minute) end
if #old > 0 then redis.call('zremrangebyscore', minutes, '-inf', '(' .. b.keep_from) end
if b.lease then redis.call('set', KEYS[b.lease], b.token, 'PX', b.lease_ms) end
return 1
"""
