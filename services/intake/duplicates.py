"""Possible duplicates: pairs of clients an intake found sharing an e-mail or phone
under another name or date of birth (``matching.py``), kept apart until an admin
merges them, or staff keep them apart (two people; the pair is not raised again).
Each pair is stored once (``<ns>:intake:clients:<chain>:duplicates``,
field ``<a>|<b>`` with the ids sorted); a merge removes its pair, and a pair naming a
merged client is read as naming the survivor."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
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
    kept_apart: bool = Field(default=False, description="staff found them to be two people")


class KeepApartInput(BaseModel):
    model_config = {"extra": "forbid"}

    other_client_id: str = Field(min_length=1, max_length=100)


async def possible_duplicates(
    directory: ClientDirectory, *, reaches: Callable[[str], bool]
) -> list[DuplicatePair]:
    """The open pairs where the key reaches a record of each client (two round trips)."""
    pairs = await _pairs(directory)
    known = await _in_scope(directory, sorted({cid for pair in pairs for cid in pair}), reaches)
    found = [
        _pair(first, second, entries, known)
        for (first, second), entries in pairs.items()
        if first in known and second in known and not _kept_apart(entries)
    ]
    return sorted(found, key=lambda d: d.flagged_at)


async def keep_apart(
    directory: ClientDirectory,
    client_id: str,
    other_id: str,
    *,
    by: str,
    at: datetime,
    reaches: Callable[[str], bool],
) -> DuplicatePair | None:
    """Staff found the two to be different people: the pair leaves the list, and later
    intakes do not raise it again. None when there is no such pair in the key's scope."""
    first, second = sorted(
        [await directory.canonical(client_id), await directory.canonical(other_id)]
    )
    entries = (await _pairs(directory)).get((first, second))
    known = await _in_scope(directory, [first, second], reaches)
    if not entries or len(known) != 2:
        return None
    # a repeat is answered alike and writes nothing: the first decision's who and when stand
    fresh = [(field, entry) for field, entry in entries if "kept_apart_by" not in entry]
    if fresh:
        async with directory.redis.pipeline(transaction=True) as pipe:
            for field, entry in fresh:
                marked = {**entry, "kept_apart_by": by, "kept_apart_at": at.isoformat()}
                pipe.hset(directory.key("duplicates"), field, json.dumps(marked))
            await pipe.execute()
    return _pair(first, second, entries, known).model_copy(update={"kept_apart": True})


Entries = list[tuple[str, dict[str, Any]]]


async def _pairs(directory: ClientDirectory) -> dict[tuple[str, str], Entries]:
    """Every flag by the pair it names now (a merged client read as its survivor)."""
    async with directory.redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(directory.key("duplicates"))
        pipe.hgetall(directory.shared_key("alias"))
        flags, aliases = await pipe.execute()
    pairs: dict[tuple[str, str], Entries] = {}
    for field, raw in sorted(flags.items()):
        entry = json.loads(raw)
        first, second = sorted(aliases.get(cid, cid) for cid in entry["client_ids"])
        if first != second:
            pairs.setdefault((first, second), []).append((field, entry))
    return pairs


async def _in_scope(
    directory: ClientDirectory, ids: list[str], reaches: Callable[[str], bool]
) -> dict[str, ClientRecord]:
    """The clients among ``ids`` with a record at one of the key's locations."""
    async with directory.redis.pipeline(transaction=False) as pipe:
        for cid in ids:
            pipe.get(directory.key(cid, "details"))
            pipe.smembers(directory.key(cid, "locations"))
        answers = await pipe.execute()
    return {
        cid: ClientRecord.model_validate_json(details)
        for cid, details, locations in zip(ids, answers[::2], answers[1::2], strict=True)
        if details is not None and any(reaches(loc) for loc in locations)
    }


def _kept_apart(entries: Entries) -> bool:
    return any("kept_apart_by" in entry for _, entry in entries)


def _pair(
    first: str, second: str, entries: Entries, known: dict[str, ClientRecord]
) -> DuplicatePair:
    entry = entries[0][1]
    return DuplicatePair(
        clients=[DuplicateClient(client_id=cid, name=known[cid].name) for cid in (first, second)],
        shared=entry["shared"],
        conflicts=entry["conflicts"],
        location_id=entry["location_id"],
        flagged_at=entry["flagged_at"],
        kept_apart=_kept_apart(entries),
    )
