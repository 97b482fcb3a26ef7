"""Possible duplicates: pairs of clients an intake found sharing an e-mail or phone
under another name or date of birth (``matching.py``), kept apart until an admin
merges them. Each pair is stored once (``<ns>:intake:clients:<chain>:duplicates``,
field ``<a>|<b>`` with the ids sorted); a merge removes its pair, and a pair naming a
merged client is read as naming the survivor."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from services.intake.clients import ClientDirectory
from services.intake.matching import Conflict, Handle
from shared.events.intake import ClientRecord


class DuplicateClient(BaseModel):
    client_id: str
    name: str


class DuplicatePair(BaseModel):
    """Two clients that may be one person, and the evidence for and against."""

    clients: list[DuplicateClient] = Field(min_length=2, max_length=2)
    shared: list[Handle] = Field(description="the handles both records have")
    conflicts: list[Conflict] = Field(description="why the intake was not joined to the other")
    location_id: str = Field(description="where the intake that raised it was recorded")
    flagged_at: AwareDatetime


async def possible_duplicates(
    directory: ClientDirectory, *, reaches: Callable[[str], bool]
) -> list[DuplicatePair]:
    """The pairs where the key reaches a record of each client (two round trips)."""
    redis = directory.redis
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(directory.key("duplicates"))
        pipe.hgetall(directory.shared_key("alias"))
        flags, aliases = await pipe.execute()
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for raw in flags.values():
        entry = json.loads(raw)
        first, second = sorted(aliases.get(cid, cid) for cid in entry["client_ids"])
        if first != second and (first, second) not in pairs:
            pairs[(first, second)] = entry
    ids = sorted({cid for pair in pairs for cid in pair})
    async with redis.pipeline(transaction=False) as pipe:
        for cid in ids:
            pipe.get(directory.key(cid, "details"))
            pipe.smembers(directory.key(cid, "locations"))
        answers = await pipe.execute()
    known: dict[str, tuple[ClientRecord, set[str]]] = {}
    for cid, details, locations in zip(ids, answers[::2], answers[1::2], strict=True):
        if details is not None and any(reaches(loc) for loc in locations):
            known[cid] = (ClientRecord.model_validate_json(details), set(locations))
    found = [
        DuplicatePair(
            clients=[
                DuplicateClient(client_id=cid, name=known[cid][0].name) for cid in (first, second)
            ],
            shared=entry["shared"],
            conflicts=entry["conflicts"],
            location_id=entry["location_id"],
            flagged_at=entry["flagged_at"],
        )
        for (first, second), entry in pairs.items()
        if first in known and second in known
    ]
    return sorted(found, key=lambda d: d.flagged_at)
