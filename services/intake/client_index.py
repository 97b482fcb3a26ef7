"""The chain's client index in Redis, as matching reads it: one script finds every
client recorded with an intake's handles (or claims them for a new client), and
what it answers is turned back into candidates for ``matching.decide``."""

from __future__ import annotations

from typing import Any, NamedTuple

from services.intake.matching import KnownClient, PossibleDuplicate, known_from
from shared.events.intake import ClientDetails, ClientRecord

# One round trip: the clients recorded with any of the handles (aliases followed, and the
# one-id-per-handle keys of earlier versions read too) with what is known about each, or -
# when exactly ``expected`` are found - the new client claimed on every handle. Two
# submissions of one new person thus get one id: the second finds the first's claim.
FIND_SCRIPT = """
local shared, own, expected, new_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ids, seen = {}, {}
local function add(id)
  id = redis.call('HGET', shared .. ':alias', id) or id
  if not seen[id] then seen[id] = true; ids[#ids + 1] = id end
end
for i = 7, #ARGV do
  for _, id in ipairs(redis.call('SMEMBERS', shared .. ':by:' .. ARGV[i])) do add(id) end
  local legacy = redis.call('GET', shared .. ':' .. ARGV[i])
  if legacy then add(legacy) end
end
table.sort(ids)
if table.concat(ids, ',') == expected then
  for i = 7, #ARGV do redis.call('SADD', shared .. ':by:' .. ARGV[i], new_id) end
  redis.call('SET', own .. ':' .. new_id .. ':details', ARGV[5])
  redis.call('SET', own .. ':' .. new_id .. ':profile', ARGV[6])
  return {'claimed'}
end
local out = {'known'}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('GET', own .. ':' .. id .. ':profile') or ''
  out[#out + 1] = redis.call('GET', own .. ':' .. id .. ':details') or ''
  out[#out + 1] = table.concat(redis.call('SMEMBERS', own .. ':' .. id .. ':locations'), ',')
end
return out
"""


def new_record(
    client_id: str, client: ClientDetails, flags: tuple[PossibleDuplicate, ...]
) -> ClientRecord:
    return ClientRecord(
        client_id=client_id,
        possible_duplicate_of=[f.client_id for f in flags],
        **client.model_dump(),
    )


class Candidate(NamedTuple):
    known: KnownClient
    record: ClientRecord
    locations: tuple[str, ...]


def candidates_from(flat: list[Any]) -> dict[str, Candidate]:
    """The found clients with what matching knows, the record and where it has records;
    a client recorded before profiles existed is known by its record, and one with
    neither is skipped."""
    found: dict[str, Candidate] = {}
    for i in range(0, len(flat), 4):
        client_id, profile, details = str(flat[i]), flat[i + 1], flat[i + 2]
        locations = tuple(str(flat[i + 3]).split(",")) if flat[i + 3] else ()
        if not details:
            continue
        record = ClientRecord.model_validate_json(details)
        found[client_id] = Candidate(known_of(client_id, record, profile), record, locations)
    return found


def known_of(client_id: str, record: ClientRecord, profile: str | None) -> KnownClient:
    """What matching knows of a client: its stored profile, or (recorded before profiles
    existed) what its record says."""
    if profile:
        return KnownClient.model_validate_json(profile)
    return known_from(client_id, record)
