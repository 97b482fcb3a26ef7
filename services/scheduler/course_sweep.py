"""Finished courses leave the scheduler's hot state (``shared.retention``).

- A course ends with ``plan.completed``: its handler notes when
  (``Retirement.note_ended``, the first end noted holds). A declined intake
  (``plan.declined``) never had a plan here: the scheduler keeps nothing of it, so
  there is nothing to retire.
- Until ``ended_at + keep_finished_courses`` (the policy of the plan's location) the
  course stays as it was: its visits on the client's list, the location's days and
  the FHIR reads, its records answering redeliveries.
- Then the sweep (every ``SWEEP_INTERVAL_S``, on every instance) retires it, under
  its location's lock (the one bookings, commands and offers take): it deletes the
  plan's visits (documents, statuses, held intervals, the therapist's, room's,
  client's and location's indexes, the location's cancelled list) with the records
  kept of them (trace, moves, commands, the confirmation at the visit's start, the
  slot it freed there, its make-up) and of the plan (every version's record, the
  completion's, the plan copy, its needs, its end, its offer and waiting entry), and
  writes the marker, in one MULTI. Only visits of the plan are named, so no hold of
  another plan is ever touched; a plan that still holds a visit to come is left as it
  is (and logged). A second instance finding the marker does nothing.
- After that an event of the course (a redelivered or replayed ``plan.created``,
  ``plan.revised``, ``plan.completed``, a lost visit's make-up) finds the marker in
  the same read that looks for its record (``scripts.TAKE``) and produces nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, cast

import redis.asyncio as aioredis

from services.scheduler.backfill import (
    StoredPlan,
    current_plan,
    ended_record,
    offer_record,
    plan_offer_record,
    plan_record,
    slot_record,
)
from services.scheduler.commands import (
    command_record,
    confirm_record,
    moves_record,
    needs_record,
    trace_record,
)
from services.scheduler.store import CalendarStore, VisitStatus
from shared.envelope import derived_id
from shared.events import VisitBooked
from shared.locks import redis_lock
from shared.redis_store import Keys
from shared.retention import RetiredCourse, Retirement
from shared.runtime import Runtime

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 60.0
BATCH = 100  # courses retired per round, at most
PAGES = 5  # pages of candidates read per round, past those not due at their location
COMMANDS = ("cancel", "no_show", "complete", "reschedule")
STANDING = ("booked", "offered")  # a visit that holds its place


@dataclass
class Deletion:
    """What retiring one course removes: keys, hash fields and sorted set members."""

    keys: set[str] = field(default_factory=set)
    fields: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    members: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def course_deletion(
    keys: Keys,
    plan: StoredPlan,
    visits: Sequence[tuple[VisitBooked, VisitStatus]],
    *,
    offer_id: str | None,
) -> Deletion:
    """Everything the scheduler holds of the course of ``plan`` (its ``visits``, its
    offer ``offer_id`` if the plan names one), as keys of ``keys``."""
    plan_id = str(plan.data["plan_id"])
    location_id = str(plan.data["location_id"])
    version = int(str(plan.data.get("version", 1)))
    out = Deletion()

    def record(name: str) -> str:
        return keys("record", name)

    for name in (
        *(f"{plan_id}:{v}" for v in range(1, version + 1)),
        f"{plan_id}:completed",
        plan_record(plan_id),
        needs_record(plan_id),
        ended_record(plan_id),
        plan_offer_record(plan_id),
        *([offer_record(offer_id)] if offer_id else []),
    ):
        out.keys.add(record(name))
    out.fields[keys("waiting", location_id)].add(plan_id)
    for visit, _ in visits:
        vid = visit.visit_id
        slot_id = derived_id("slot", vid, visit.start.isoformat())
        out.keys.update(
            (
                keys("visit", vid),
                record(trace_record(vid)),
                record(moves_record(vid)),
                record(f"makeup:{vid}"),
                record(confirm_record(visit)),
                record(slot_record(slot_id)),
                *(record(command_record(vid, command)) for command in COMMANDS),
            )
        )
        out.fields[keys("visit-status")].add(vid)
        out.fields[keys("held")].add(vid)
        for index in (
            keys("busy", "therapist", visit.therapist_id),
            keys("busy", "room", visit.location_id, str(visit.room)),
            keys("busy", "client", visit.client_id),
            keys("client-visits", visit.client_id),
            keys("location-visits", visit.location_id),
            keys("location-cancelled", visit.location_id),
        ):
            out.members[index].add(vid)
        out.members[keys("offers-due")].add(slot_id)
    return out


def still_to_come(visits: Sequence[tuple[VisitBooked, VisitStatus]], now: datetime) -> list[str]:
    """The visits that still hold a place from ``now`` on: a course with any is not
    swept (a completed plan cancels its visits to come)."""
    return [v.visit_id for v, state in visits if state in STANDING and v.end > now]


Swept = Literal["retired", "kept", "gone"]  # kept: not due yet, or still holding visits


class CourseSweep:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._redis: aioredis.Redis = runtime.redis
        self._keys = runtime.keys
        self._store = CalendarStore(runtime.redis, runtime.keys)
        self.retirement = Retirement(runtime.redis, runtime.keys)

    async def once(self) -> int:
        """Retire the courses due now (up to ``BATCH``); how many. Candidates are the
        courses that ended before the chain's shortest period; those whose location
        keeps courses longer stay in place and are read past (up to ``PAGES`` pages)."""
        now = self._runtime.clock.now()
        before = (now - self._runtime.chain.shortest_keep_finished_courses()).timestamp()
        retired = kept = 0
        for _ in range(PAGES):
            found = await self._redis.zrangebyscore(
                self._keys("ended"), "-inf", f"({before}", start=kept, num=BATCH, withscores=True
            )
            ended = cast("list[tuple[str, float]]", found)
            for plan_id, score in ended:
                ended_at = datetime.fromtimestamp(float(score), UTC)
                outcome = await self.retire(str(plan_id), ended_at, now=now)
                retired += outcome == "retired"
                kept += outcome == "kept"
                if retired >= BATCH:
                    return retired
            if len(ended) < BATCH:
                break
        return retired

    async def retire(self, plan_id: str, ended_at: datetime, *, now: datetime) -> Swept:
        """Retire the course of ``plan_id`` if its location's period has passed."""
        if await self.retirement.among([plan_id]):
            await self._redis.zrem(self._keys("ended"), plan_id)  # another instance did
            return "gone"
        plan = await current_plan(self._store, plan_id)
        if plan is None:  # the scheduler never held the plan: only its end is known
            log.warning("plan %s ended but was never booked here", plan_id)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(
                    self._keys("record", ended_record(plan_id)),
                    self._keys("record", f"{plan_id}:completed"),
                )
                pipe.zrem(self._keys("ended"), plan_id)
                await pipe.execute()
            return "gone"
        location_id = str(plan.data["location_id"])
        keep = self._runtime.chain.keep_finished_courses(location_id)
        if ended_at + keep >= now:
            return "kept"  # its location keeps courses longer
        async with redis_lock(self._redis, self._store.location_lock_key(location_id)):
            if await self.retirement.among([plan_id]):
                return "gone"
            plan = await current_plan(self._store, plan_id) or plan  # as it is under the lock
            visits = await self._store.plan_visits(str(plan.data["client_id"]), plan_id)
            if coming := still_to_come(visits, now):
                log.warning("plan %s ended but still holds visits %s", plan_id, coming)
                return "kept"
            offer_id = await self._store.record(plan_offer_record(plan_id))
            outcome = await self._store.record(ended_record(plan_id))
            course = RetiredCourse(
                plan_id=plan_id,
                client_id=str(plan.data["client_id"]),
                ended_at=ended_at,
                outcome=outcome or "completed",
                location_id=location_id,
            )
            deletion = course_deletion(self._keys, plan, visits, offer_id=offer_id or None)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(*sorted(deletion.keys))
                for name, fields in deletion.fields.items():
                    pipe.hdel(name, *sorted(fields))
                for name, members in deletion.members.items():
                    pipe.zrem(name, *sorted(members))
                self.retirement.retire(pipe, course)
                await pipe.execute()
        return "retired"


async def course_sweep(runtime: Runtime) -> None:
    """Retire the finished courses past their period, every ``SWEEP_INTERVAL_S``."""
    sweep = CourseSweep(runtime)
    while True:
        try:
            while await sweep.once() >= BATCH:
                pass  # a full batch: more are due
        except Exception:  # keep going: a course that failed is still due next round
            log.exception("course sweep failed")
        await asyncio.sleep(SWEEP_INTERVAL_S)
