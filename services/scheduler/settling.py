"""What the record of a handled plan event keeps once its events are out.

The record of a plan event (``record:<plan>:<version>``, ``record:<plan>:completed``,
``record:makeup:<visit>``) is what makes handling it twice harmless: the second pass
finds it and books nothing. While the consumer has not yet published what the first
pass produced (the process died between the calendar change and the broker's
acknowledgement), the second pass must publish it, the same events with the same ids
and bytes; so the record is written with the envelopes, by the same script as the
calendar change.

Once the consumer has published them it marks the event handled in its ledger
(``shared.redis_store.ProcessedEvents``: only after the broker acknowledged every
output), and from then on the envelopes are on the topic, not needed here. Each record
written with envelopes is listed in ``unsettled``; the settle round (every few
seconds, on every instance) rewrites each whose event the ledger holds as handled to
the ids of what it produced (``{"published": [...]}``: about 40 bytes an event instead
of 900). An event handled again after that (its ledger mark expired, a consumer group
reset to an old offset) finds the ids: what it produced went out, so it publishes
nothing and books nothing. A record whose event is not marked yet (its outputs not
acknowledged, or the event dead-lettered) is looked at again later.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime

import redis.asyncio as aioredis

from shared.codec import decode_envelope
from shared.envelope import Envelope
from shared.kafka import Outgoing
from shared.redis_store import Keys, ProcessedEvents
from shared.runtime import Runtime

log = logging.getLogger(__name__)

SETTLE_INTERVAL_S = 2.0
GRACE_S = 2.0  # the consumer publishes and marks within moments of the change
RECHECK_S = 60.0  # a record whose event is not marked handled yet
BATCH = 200


@dataclass(frozen=True)
class Cause:
    """The plan event a record answers, as the ledger knows it (``Marked``)."""

    id: str
    time: datetime


def unsettled(record: str, cause: Envelope) -> str:
    """The ``unsettled`` member of ``record``, written with ``cause``'s outputs."""
    return json.dumps([record, cause.id, cause.time.isoformat()])


def _member(member: str) -> tuple[str, Cause]:
    record, cause_id, at = json.loads(member)
    return str(record), Cause(str(cause_id), datetime.fromisoformat(str(at)))


def settled(envelope_ids: list[str]) -> str:
    """A record once its events are published: their ids."""
    return json.dumps({"published": envelope_ids})


def replayed(produced: str, client_id: str) -> list[Outgoing]:
    """What a plan event handled before publishes again: the envelopes its record still
    holds (``client_id``: the client the plan names now); nothing once they went out,
    nor for an event of a retired course (``produced`` is "")."""
    if not produced:
        return []
    stored = json.loads(produced)
    if isinstance(stored, dict):  # settled: published
        return []
    return [Outgoing(key=client_id, envelope=decode_envelope(raw.encode())) for raw in stored]


async def settle_once(
    redis: aioredis.Redis, keys: Keys, processed: ProcessedEvents, *, now_s: float
) -> int:
    """Shrink the due records whose event the ledger holds as handled; how many."""
    due = await redis.zrangebyscore(keys("unsettled"), "-inf", now_s - GRACE_S, start=0, num=BATCH)
    if not due:
        return 0
    members = [str(member) for member in due]
    named = [_member(member) for member in members]
    raw = await redis.mget([keys("record", record) for record, _ in named])
    done: list[str] = []  # members with nothing left to shrink
    shrunk: dict[str, tuple[str, Cause, str]] = {}  # member -> record, cause, its ids
    for member, (record, cause), value in zip(members, named, raw, strict=True):
        stored = json.loads(value) if value else None
        if not isinstance(stored, list) or not stored:  # gone, settled or empty
            done.append(member)
            continue
        shrunk[member] = (record, cause, settled([str(json.loads(e)["id"]) for e in stored]))
    handled = await processed.seen_among([cause for _, cause, _ in shrunk.values()])
    async with redis.pipeline(transaction=True) as pipe:
        for member, (record, cause, kept) in shrunk.items():
            if cause.id in handled:
                pipe.set(keys("record", record), kept, xx=True)
                done.append(member)
            else:
                pipe.zadd(keys("unsettled"), {member: now_s + RECHECK_S}, xx=True)
        if done:
            pipe.zrem(keys("unsettled"), *done)
        await pipe.execute()
    return sum(1 for _, cause, _ in shrunk.values() if cause.id in handled)


async def settle_records(runtime: Runtime) -> None:
    """The settle round, every ``SETTLE_INTERVAL_S``, until the service stops."""
    processed = ProcessedEvents(runtime.redis, runtime.keys)
    while True:
        try:
            while await settle_once(runtime.redis, runtime.keys, processed, now_s=time.time()):
                pass  # some were shrunk: more may be due
        except Exception:  # keep going: what failed is still due next round
            log.exception("settling plan event records failed")
        await asyncio.sleep(SETTLE_INTERVAL_S)
