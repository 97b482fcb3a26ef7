"""Finished courses in the notifier: noted when they end, swept when their retention
ends (shared/retention.py).

A course ends with its plan: ``plan.completed``, or ``plan.declined`` (the course of
the plan the intake would have had, ``derived_id("plan", intake_id)``). The handler
notes the end in its own transaction (``Retirement.note_ended``) with who the course
was for and where (``course-ending``: plan id -> ``client|location|outcome``). Until
``ended_at + keep_finished_courses`` (the policy of the course's location) everything
stays as it was. Then the sweep removes, in one MULTI with the marker:

- each notification of the course (a record whose ``context.plan_id`` is the plan):
  the record, its place in the client's log, its timers (due, in flight), its batch
  members and its check-in reply, and the client's latest check-in when it is one
  of them;
- the course's visit book (``plan-visits:<plan>`` names the visits: their
  ``seen-visit``, ``offer-visit`` and place in ``upcoming``), the remembered plan,
  its open batch, its confirmation flag and its batch ledger (``batch-of:<plan>``).

The client's contact, consent, phone and quiet hours are the client's, not the
course's: they stay. So does everything of the client's other courses. Each course
is swept once: the transaction watches the client's log and the due list, and a
second instance finding the marker does nothing. A later event of a retired course
(a redelivery, a replay) finds the marker in the handler's first read and arms and
sends nothing (services/notifier/handlers.py)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter

from services.notifier.writes import Writes
from shared.aliases import alias_key
from shared.envelope import derived_id
from shared.events import EventData
from shared.events.plans import PlanDeclined
from shared.retention import SEPARATOR, RetiredCourse, Retirement
from shared.runtime import Runtime

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 30.0  # real seconds between rounds: courses end on the calendar
SWEEP_BATCH = 200  # courses per round at most
HISTORY = "clinic.notifications"  # where a retired course's notifications live on

COURSES_RETIRED = Counter(
    "clinicflow_notifier_courses_retired_total",
    "Finished courses whose notifications the notifier's sweep removed (a marker stays).",
)


def declined_plan(intake_id: str) -> str:
    """The plan id a declined intake's course is known by (the planner's)."""
    return derived_id("plan", intake_id)


def plan_of(event: EventData) -> str | None:
    """The plan whose course ``event`` is of (None: an event outside any course)."""
    if isinstance(event, PlanDeclined):
        return declined_plan(event.intake_id)
    plan_id = getattr(event, "plan_id", None)
    return None if plan_id is None else str(plan_id)


def course_of(record: dict[str, Any]) -> str | None:
    """The plan a notification belongs to, or None (one outside any course)."""
    plan_id = (record.get("context") or {}).get("plan_id")
    return None if plan_id is None else str(plan_id)


@dataclass(frozen=True)
class Ending:
    """Who a finished course was for, where, and how it ended."""

    client_id: str
    location_id: str
    outcome: str

    def encode(self) -> str:
        return SEPARATOR.join((self.client_id, self.location_id, self.outcome))

    @classmethod
    def decode(cls, value: str) -> Ending:
        client_id, location_id, outcome = value.rsplit(SEPARATOR, 2)
        return cls(client_id, location_id, outcome)


class Courses:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.redis = runtime.redis
        self.keys = runtime.keys
        self.retirement = Retirement(runtime.redis, runtime.keys)

    def ended(self, writes: Writes, plan_id: str, ending: Ending, *, ended_at: datetime) -> None:
        """Queue on ``writes``: the course of ``plan_id`` ended (the first end holds)."""
        key = self.keys("course-ending")
        # one command per plain write: the transaction reads one answer for each
        writes.plain(lambda pipe: self.retirement.note_ended(pipe, plan_id, ended_at))
        writes.plain(lambda pipe: pipe.hsetnx(key, plan_id, ending.encode()))

    def keep(self, location_id: str) -> timedelta:
        return self.runtime.chain.keep_finished_courses(location_id)

    async def sweep(self, *, limit: int = SWEEP_BATCH) -> int:
        """Retire the courses whose retention ended by now; how many this round."""
        now = self.runtime.clock.now()
        keeps = {self.keep(loc.id) for loc in self.runtime.chain.locations}
        keeps.add(self.runtime.chain.policy.keep_finished_courses)
        candidates: list[str] = []
        for keep in sorted(keeps, reverse=True):  # the longest first: all of those are due
            for plan_id in await self.retirement.due(now, keep, limit=limit):
                if plan_id not in candidates:
                    candidates.append(plan_id)
        retired = 0
        for plan_id in candidates[:limit]:
            if await self.retire(plan_id, now=now):
                retired += 1
        if retired:
            COURSES_RETIRED.inc(retired)
        return retired

    async def retire(self, plan_id: str, *, now: datetime) -> bool:
        """Retire one course if its period is over: False when it is not yet due, or
        already retired (by another instance)."""
        raw = await self.redis.hget(self.keys("course-ending"), plan_id)
        ending = Ending.decode(str(raw)) if raw else Ending("", "", "ended")
        score = await self.redis.zscore(self.keys("ended"), plan_id)
        if score is None:
            return False  # retired meanwhile
        ended_at = datetime.fromtimestamp(float(score), UTC)
        if ended_at + self.keep(ending.location_id) > now:
            return False
        alias = await self.redis.get(alias_key(self.keys, ending.client_id))
        client_id = str(alias) if alias else ending.client_id
        course = RetiredCourse(plan_id, client_id, ended_at, ending.outcome)
        watched = [self.keys("client-notifications", client_id), self.keys("ended")]

        retiring: list[bool] = []

        async def queue(pipe: Any) -> None:
            retiring.append(await self._queue_retire(pipe, course))

        # redis-py's optimistic transaction: watch, read, MULTI, retried on a change
        await self.redis.transaction(queue, *watched)
        return retiring[-1]

    async def _queue_retire(self, pipe: Any, course: RetiredCourse) -> bool:
        """Read (watched) what the course holds, then queue its removal and its marker;
        False (nothing queued) when another instance retired it first."""
        k = self.keys
        plan_id, client_id = course.plan_id, course.client_id
        if await pipe.hexists(k("retired"), plan_id):
            pipe.multi()
            return False
        log_key = k("client-notifications", client_id)
        ids = [str(i) for i in await pipe.zrange(log_key, 0, -1)]
        raw = await pipe.mget([k("notification", i) for i in ids]) if ids else []
        records = [json.loads(r) for r in raw if r]
        mine = [str(r["notification_id"]) for r in records if course_of(r) == plan_id]
        visits = {str(v) for v in await pipe.smembers(k("plan-visits", plan_id))}
        visits |= {
            str(r["visit_id"]) for r in records if course_of(r) == plan_id and r.get("visit_id")
        }
        latest = await pipe.get(k("checkin", client_id))
        latest_is_mine = latest is not None and json.loads(latest).get("notification_id") in mine
        pipe.multi()
        _queue_deletions(pipe, k, mine, sorted(visits), client_id=client_id)
        for key in ("plan", "plan-visits", "batch-open", "plan-confirmed", "batch-of"):
            pipe.delete(k(key, plan_id))
        if latest_is_mine:
            pipe.delete(k("checkin", client_id))
        pipe.hdel(k("course-ending"), plan_id)
        self.retirement.retire(pipe, course)
        return True

    async def of_client(self, client_ids: Sequence[str]) -> list[RetiredCourse]:
        """The retired courses of a client known by ``client_ids``, in the order they ended."""
        found: dict[str, RetiredCourse] = {}
        for client_id in client_ids:
            for course in await self.retirement.of_client(client_id):
                found[course.plan_id] = course
        return sorted(found.values(), key=lambda c: c.ended_at)


def _queue_deletions(
    pipe: Any, k: Any, notification_ids: list[str], visit_ids: list[str], *, client_id: str
) -> None:
    if notification_ids:
        pipe.delete(*[k("notification", i) for i in notification_ids])
        pipe.delete(*[k(kind, i) for i in notification_ids for kind in ("batch", "reply")])
        pipe.zrem(k("client-notifications", client_id), *notification_ids)
        pipe.zrem(k("due"), *notification_ids)
        pipe.zrem(k("inflight"), *notification_ids)
    if visit_ids:
        pipe.delete(*[k(kind, v) for v in visit_ids for kind in ("seen-visit", "offer-visit")])
        pipe.delete(*[k("visit-notifications", v) for v in visit_ids])
        pipe.zrem(k("upcoming", client_id), *visit_ids)


async def tend_courses(runtime: Runtime) -> None:
    """Retire finished courses whose period ended, until cancelled (a background task
    of the notifier)."""
    courses = Courses(runtime)
    while True:
        try:
            await courses.sweep()
        except Exception:  # the next round retries: a course not swept is still due
            log.exception("finished courses: a sweep failed")
        await asyncio.sleep(SWEEP_INTERVAL_S)
