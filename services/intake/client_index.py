"""The chain's client index in Redis, as matching reads it: one script finds every
client recorded with an intake's handles (or claims them for a new client, storing
its intake with the claim), and what it answers is turned back into candidates
for ``matching.decide``."""

from __future__ import annotations

from typing import Any, NamedTuple

from services.intake.guards import GUARD_ARGV_LUA
from services.intake.matching import KnownClient, PossibleDuplicate, known_from
from shared.events.intake import ClientDetails, ClientRecord
from shared.outbox import OLDER_WITH_KEYS_LUA

# One round trip for an intake: the guard - an Idempotency-Key or document key, or a
# session's draft leased for its submit, taken (or, on a later attempt, checked
# still this request's) - or why it cannot be taken; then the clients recorded with
# any of the handles (aliases followed, and the one-id-per-handle keys of earlier
# versions read too) with what is known about each, or - when exactly ``expected``
# are found - the new client claimed on every handle. Two submissions of one new
# person thus get one id: the second finds the first's claim. With the claim come
# the writes of the new client's intake (its records, the caller's answer, its
# events in the outbox), so a new client's intake is stored whole in this same round
# trip, followed by the outbox's oldest entries (shared/outbox.py).
#
# ARGV: the guard's kind ('' none, 'key', 'draft'), its key, value, lease in
# milliseconds and holder (guards.py's ``held_guard``: taken, or checked still
# this request's), the shared prefix, the own prefix, expected, the new id, its
# record and profile, the handle count n, n handles, the outbox queue, its
# entries, how many to read back, the count and ids of the events staged
# (``Outbox.peek_args``), then each write as its argument count and its
# arguments (none: the claim alone).
ADMIT_SCRIPT = (
    OLDER_WITH_KEYS_LUA
    + GUARD_ARGV_LUA
    + """
local shared, own, expected, new_id = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local handles = tonumber(ARGV[12])
local last = 12 + handles
local ids, seen = {}, {}
local function add(id)
  id = redis.call('HGET', shared .. ':alias', id) or id
  if not seen[id] then seen[id] = true; ids[#ids + 1] = id end
end
for i = 13, last do
  for _, id in ipairs(redis.call('SMEMBERS', shared .. ':by:' .. ARGV[i])) do add(id) end
  local legacy = redis.call('GET', shared .. ':' .. ARGV[i])
  if legacy then add(legacy) end
end
table.sort(ids)
if table.concat(ids, ',') ~= expected then
  local out = {'known'}
  for _, id in ipairs(ids) do
    out[#out + 1] = id
    out[#out + 1] = redis.call('GET', own .. ':' .. id .. ':profile') or ''
    out[#out + 1] = redis.call('GET', own .. ':' .. id .. ':details') or ''
    out[#out + 1] = table.concat(redis.call('SMEMBERS', own .. ':' .. id .. ':locations'), ',')
  end
  return out
end
if handles > 0 then
  for i = 13, last do redis.call('SADD', shared .. ':by:' .. ARGV[i], new_id) end
  redis.call('SET', own .. ':' .. new_id .. ':details', ARGV[10])
  redis.call('SET', own .. ':' .. new_id .. ':profile', ARGV[11])
end
local mine = {unpack(ARGV, last + 5, last + 4 + tonumber(ARGV[last + 4]))}
local i = last + 5 + #mine
while i <= #ARGV do
  local argc = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + argc))
  i = i + argc + 1
end
local out = {'claimed'}
if ARGV[last + 3] ~= '' then
  older_with_keys(ARGV[last + 1], ARGV[last + 2], tonumber(ARGV[last + 3]), mine, out)
end
return out
"""
)


# A returning client's intake (or an assessment) stored under its guard: the guard
# checked still this request's (``held_guard``; none: kind ''), then the writes,
# then the outbox's oldest entries as the admit script reads them. A request whose
# guard was taken over stores nothing, so of two requests of one key only the
# holder's intake is stored and published.
#
# ARGV: the guard (five, as the admit script takes it), the outbox read-back
# (``Outbox.peek_args``), then each write as its argument count and arguments.
STORE_SCRIPT = (
    OLDER_WITH_KEYS_LUA
    + GUARD_ARGV_LUA
    + """
local mine = {unpack(ARGV, 10, 9 + tonumber(ARGV[9]))}
local i = 10 + #mine
while i <= #ARGV do
  local argc = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + argc))
  i = i + argc + 1
end
local out = {'stored'}
older_with_keys(ARGV[6], ARGV[7], tonumber(ARGV[8]), mine, out)
return out
"""
)


def new_record(
    client_id: str, client: ClientDetails, flags: tuple[PossibleDuplicate, ...]
) -> ClientRecord:
    # constructed, not validated again: every field comes from validated details
    return ClientRecord.model_construct(
        client_id=client_id,
        possible_duplicate_of=[f.client_id for f in flags],
        **dict(client),
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
