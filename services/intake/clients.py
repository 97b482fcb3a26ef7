"""Client identity within a chain: a returning client (same e-mail or phone) keeps
their ``client_id``."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from shared.events.intake import ClientDetails
from shared.redis_store import Keys


def contact_handles(client: ClientDetails) -> list[str]:
    handles = []
    if client.email:
        handles.append(f"email:{client.email.strip().lower()}")
    if client.phone:
        handles.append(f"phone:{client.phone}")
    return handles


async def resolve_client_id(
    redis: aioredis.Redis, keys: Keys, *, chain_id: str, client: ClientDetails
) -> str:
    """The existing client id for any of the contact handles, else a new one (race-safe)."""
    handles = [keys.shared("clients", chain_id, handle) for handle in contact_handles(client)]
    for handle in handles:
        known = await redis.get(handle)
        if known:
            await _link(redis, handles, str(known))
            return str(known)
    candidate = str(uuid.uuid4())
    if not handles:
        return candidate
    # SET NX: when two submissions race, the first writer's id wins for both
    await redis.set(handles[0], candidate, nx=True)
    winner = str(await redis.get(handles[0]))
    await _link(redis, handles[1:], winner)
    return winner


async def _link(redis: aioredis.Redis, handles: list[str], client_id: str) -> None:
    for handle in handles:
        await redis.set(handle, client_id, nx=True)
