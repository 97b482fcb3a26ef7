"""Merging two clients found to be one person (admin): ``client.merged`` on
``clinic.intake``, then the retired record folded into the survivor.

The merge's id is derived from the pair, so a repeat is recognised: once recorded, the
same merge answers as before and publishes nothing. Both ids are held (shared/locks.py,
60 s) before either is read, so two merges of one client never interleave and none acts
on what another changed since. The fold of the directory
and ``client.merged`` in the outbox are one transaction (shared/outbox.py), so 202 means
both happened and the event is on the broker or will be; 503 means neither.

After the merge the retired id is an alias of the survivor (``<ns>:clients:<chain>:alias``):
reads and assessments under it reach the survivor, its handles and names find the
survivor, and its intakes, assessments and pending changes are the survivor's. The
survivor's details stand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import HTTPException, status
from pydantic import AwareDatetime, BaseModel, Field

from services.intake.client_index import known_of
from services.intake.clients import ClientDirectory
from services.intake.matching import joined
from services.intake.submission import intake_outbox
from shared.auth import Principal
from shared.envelope import Trace, derived_id
from shared.events.intake import ClientMerged, ClientRecord
from shared.kafka import Outgoing
from shared.locks import redis_lock
from shared.routes import visible
from shared.runtime import Runtime

HOLD_S = 60.0

# ARGV: shared prefix, own prefix, survivor, retired, survivor's profile, survivor's
# details, merge record, the retired client's handles...
_FOLD = """
local shared, own, s, r = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local function k(id, part) return own .. ':' .. id .. ':' .. part end
for _, part in ipairs({'intakes', 'assessments', 'changes'}) do
  local flat = redis.call('HGETALL', k(r, part))
  for i = 1, #flat, 2 do redis.call('HSETNX', k(s, part), flat[i], flat[i + 1]) end
end
redis.call('SUNIONSTORE', k(s, 'locations'), k(s, 'locations'), k(r, 'locations'))
for i = 8, #ARGV do
  redis.call('SREM', shared .. ':by:' .. ARGV[i], r)
  redis.call('SADD', shared .. ':by:' .. ARGV[i], s)
end
local retired = redis.call('SMEMBERS', k(r, 'merged'))
retired[#retired + 1] = r
for _, id in ipairs(retired) do
  redis.call('HSET', shared .. ':alias', id, s)
  redis.call('SADD', k(s, 'merged'), id)
end
for _, part in ipairs({'intakes', 'assessments', 'changes', 'locations', 'merged', 'profile',
                       'details'}) do
  redis.call('DEL', k(r, part))
end
redis.call('SET', k(s, 'profile'), ARGV[5])
redis.call('SET', k(s, 'details'), ARGV[6])
redis.call('HSET', own .. ':merges', r, ARGV[7])
local a, b = s, r
if b < a then a, b = b, a end
redis.call('HDEL', own .. ':duplicates', a .. '|' .. b)
return 1
"""


class MergeInput(BaseModel):
    model_config = {"extra": "forbid"}

    merged_client_id: str = Field(
        min_length=1, max_length=100, description="the client to retire into this one"
    )
    reason: str | None = Field(default=None, max_length=500)


class MergeAccepted(BaseModel):
    merge_id: str
    client_id: str = Field(description="the surviving client")
    merged_client_id: str = Field(description="the retired client, now an alias")
    location_ids: list[str]
    merged_at: AwareDatetime


async def merge(
    runtime: Runtime, principal: Principal, survivor: str, request: MergeInput
) -> MergeAccepted:
    """Retire ``request.merged_client_id`` into ``survivor``: 404 for a client unknown or
    out of the key's scope, 409 for a self-merge or a client already merged elsewhere."""
    retired = request.merged_client_id
    if retired == survivor:
        raise HTTPException(status.HTTP_409_CONFLICT, "a client cannot be merged into itself")
    directory = ClientDirectory.of(runtime)
    # held before anything is read, so what the checks below read still stands at the fold
    async with _holding(directory, survivor, retired):
        return await _merge_held(runtime, principal, directory, survivor, request)


@asynccontextmanager
async def _holding(directory: ClientDirectory, *client_ids: str) -> AsyncIterator[None]:
    """Every one of ``client_ids`` held for one merge (``HOLD_S`` at most, should the
    process die); 409 while another merge holds one of them."""
    async with AsyncExitStack() as held:
        for client_id in sorted(client_ids):
            key = directory.key("merging", client_id)
            try:
                await held.enter_async_context(
                    redis_lock(directory.redis, key, lease_s=HOLD_S, wait_s=0)
                )
            except TimeoutError:
                raise HTTPException(
                    status.HTTP_409_CONFLICT,
                    "a merge of one of these clients is under way; retry shortly",
                    headers={"Retry-After": "1"},
                ) from None
        yield


async def _merge_held(
    runtime: Runtime,
    principal: Principal,
    directory: ClientDirectory,
    survivor: str,
    request: MergeInput,
) -> MergeAccepted:
    retired = request.merged_client_id
    redis = directory.redis
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hget(directory.key("merges"), retired)
        pipe.hmget(directory.shared_key("alias"), [survivor, retired])
        for cid in (survivor, retired):
            pipe.get(directory.key(cid, "details"))
            pipe.get(directory.key(cid, "profile"))
            pipe.smembers(directory.key(cid, "locations"))
        (
            done,
            aliases,
            s_details,
            s_profile,
            s_locs,
            r_details,
            r_profile,
            r_locs,
        ) = await pipe.execute()
    if done is not None:
        record = MergeAccepted.model_validate_json(done)
        visible(principal, record.location_ids)
        if record.client_id != survivor:
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"client {retired} was merged into another client"
            )
        return record
    for cid, survived_by in zip((survivor, retired), aliases, strict=True):
        if survived_by:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"client {cid} was merged into {survived_by}; merge into that client",
            )
    if s_details is None or r_details is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    visible(principal, list(s_locs))
    visible(principal, list(r_locs))
    now = runtime.clock.now()
    merge_id = derived_id("client.merge", survivor, retired)
    accepted = MergeAccepted(
        merge_id=merge_id,
        client_id=survivor,
        merged_client_id=retired,
        location_ids=sorted(set(s_locs) | set(r_locs)),
        merged_at=now,
    )
    merged = _merged(runtime, principal, accepted, reason=request.reason)
    survivor_record = ClientRecord.model_validate_json(s_details)
    retired_record = ClientRecord.model_validate_json(r_details)
    retired_known = known_of(retired, retired_record, r_profile)
    profile = joined(known_of(survivor, survivor_record, s_profile), retired_known)
    cleaned = survivor_record.model_copy(
        update={
            "possible_duplicate_of": [
                c for c in survivor_record.possible_duplicate_of if c != retired
            ]
        }
    )
    retired_handles = [
        *[f"email:{v}" for v in retired_known.emails],
        *[f"phone:{v}" for v in retired_known.phones],
    ]

    async def fold(pipe: Any) -> None:
        pipe.eval(
            _FOLD,
            0,
            directory.shared_key(),
            directory.key(),
            survivor,
            retired,
            profile.model_dump_json(),
            cleaned.model_dump_json(),
            accepted.model_dump_json(),
            *retired_handles,
        )

    # the fold and its event land together: 202 means both, 503 neither
    await intake_outbox(runtime).commit(runtime.publisher, [merged], fold)
    return accepted


def _merged(
    runtime: Runtime, principal: Principal, accepted: MergeAccepted, *, reason: str | None
) -> Outgoing:
    event = ClientMerged(
        merge_id=accepted.merge_id,
        client_id=accepted.client_id,
        merged_client_id=accepted.merged_client_id,
        location_ids=accepted.location_ids,
        merged_by=principal.key_id,
        reason=reason,
        merged_at=accepted.merged_at,
    )
    return runtime.outgoing(
        event,
        key=accepted.client_id,
        subject=accepted.client_id,
        event_id=derived_id("client.merged", accepted.merge_id),
        trace=Trace(chainid=runtime.chain.chain.id, correlationid=accepted.merge_id),
        time=accepted.merged_at,
    )
