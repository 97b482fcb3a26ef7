"""A front desk decides a pending contact change (``contact_changes.py`` says why it
waits for one): confirmed, the record takes it and matching learns the new handles
(the old ones still find the client); declined, the record stays as it is."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from services.intake.clients import ClientDirectory
from services.intake.contact_changes import ContactChange, confirmed, decided
from services.intake.matching import KnownClient, handles_of, joined, known_from
from shared.events.intake import ClientRecord


async def decide_change(
    directory: ClientDirectory,
    client_id: str,
    change_id: str,
    *,
    confirm: bool,
    by: str,
    at: datetime,
    published: Callable[[Pipeline, ClientRecord], None] | None = None,
) -> ContactChange | None:
    """Confirm or decline a pending change (``contact_changes.decided``); None when there
    is no such change. Optimistic: the record, its profile and its changes are watched.
    ``published`` queues, in the same transaction, what a confirmed record announces."""
    async with directory.redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                return await _decide_once(
                    directory,
                    pipe,
                    client_id,
                    change_id,
                    confirm=confirm,
                    by=by,
                    at=at,
                    published=published,
                )
            except WatchError:
                continue


async def _decide_once(
    directory: ClientDirectory,
    pipe: Pipeline,
    client_id: str,
    change_id: str,
    *,
    confirm: bool,
    by: str,
    at: datetime,
    published: Callable[[Pipeline, ClientRecord], None] | None,
) -> ContactChange | None:
    details_key = directory.key(client_id, "details")
    changes_key = directory.key(client_id, "changes")
    profile_key = directory.key(client_id, "profile")
    await pipe.watch(details_key, changes_key, profile_key)
    raw_change = await pipe.hget(changes_key, change_id)
    raw_details = await pipe.get(details_key)
    raw_profile = await pipe.get(profile_key)
    if raw_change is None or raw_details is None:
        return None
    change = ContactChange.model_validate_json(raw_change)
    outcome = decided(change, confirm=confirm, by=by, at=at)
    if outcome == change:  # decided this way before: nothing to write
        return change
    pipe.multi()  # type: ignore[no-untyped-call]
    pipe.hset(changes_key, change_id, outcome.model_dump_json())
    if confirm:
        record = confirmed(ClientRecord.model_validate_json(raw_details), change.proposed)
        profile = None if raw_profile is None else str(raw_profile)
        _queue_record(directory, pipe, record, raw_profile=profile)
        if published is not None:
            published(pipe, record)
    await pipe.execute()
    return outcome


def _queue_record(
    directory: ClientDirectory, pipe: Pipeline, record: ClientRecord, *, raw_profile: str | None
) -> None:
    known = known_from(record.client_id, record)
    if raw_profile:
        known = joined(known, KnownClient.model_validate_json(raw_profile))
    pipe.set(directory.key(record.client_id, "details"), record.model_dump_json())
    pipe.set(directory.key(record.client_id, "profile"), known.model_dump_json())
    for handle, value in handles_of(record):
        pipe.sadd(directory.shared_key("by", f"{handle}:{value}"), record.client_id)
