"""The planner's state in Redis: every plan version per client (the read model),
the current version and progress of each plan, the intake behind it, what each
handled event produced, and when each course ended.

Each plan version is kept once. The client's history (``plans:<client>``) holds every
superseded version, decline and completion in full, and for the plan's current
version a stand-in naming the plan; the version itself is ``current:<plan>`` (the
history record plus its field), which the handlers read with their first read. A new
version moves the previous one into the history in the same script
(``_NEXT_VERSION``). What an event produced is kept as references to those records
(``outputs.py``), in one hash per client the event names (``outputs:<client>``).

Why Redis rather than faust tables: the read model the HTTP API serves, the
state the rules need and the record of what an event produced are written in
one MULTI transaction, so they can never disagree; faust tables would put them
in separate changelog partitions. Like the other services, the planner keeps
its state in the deployment's namespace, and on restart it reads it back as it
was (see the restart test)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from services.planner import merging
from services.planner.outputs import Outputs, course_of, field_of, outputs_of
from services.planner.progress import Progress
from services.planner.trajectory import CheckinOutcome, with_checkins
from shared.aliases import ClientAliases, alias_key
from shared.events import EVENT_MODELS, EventData, IntakeSubmitted, PlanDeclined
from shared.events.intake import AssessmentRecorded
from shared.events.plans import PlanCompleted, PlanData
from shared.redis_store import Keys
from shared.retention import RetiredCourse, Retirement
from shared.streams import StateMoved

REVIEW_DUE = "review-due"  # plan id -> the ordinal of its current version's review date
ENDED_OF = "ended-of"  # plan id of a course that ended and is not retired yet -> its client

# KEYS: the client's current plan, its active plans by last change. ARGV: the plan id,
# and its last change (epoch) while it stays active, '' once it has ended. The current
# plan is the active one created or revised last (``merging``).
_ACTIVE = """
if ARGV[2] ~= '' then redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
else redis.call('ZREM', KEYS[2], ARGV[1]) end
local top = redis.call('ZREVRANGE', KEYS[2], 0, 0)
if top[1] then redis.call('SET', KEYS[1], top[1])
elseif ARGV[2] == '' and redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1])
end
return 1
"""

# KEYS: the plan's current version, the client's history. ARGV: the new version's
# field, its stored form, its stand-in in the history. The previous version (which
# knows its field) moves into the history in full; the new one is current.
_NEXT_VERSION = """
local previous = redis.call('GET', KEYS[1])
if previous then
  local field = cjson.decode(previous)['field']
  if field and field ~= ARGV[1] then redis.call('HSET', KEYS[2], field, previous) end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"""


@dataclass(frozen=True)
class FirstRead:
    """What handling an event starts from (``PlanStore.first_read``)."""

    produced: list[EventData] | None  # what the event produced, if it was handled
    client_id: str  # the client the event names now: the survivor of a merge
    named: str  # the client id the event itself names
    active_plan_id: str | None  # the client's current plan, when asked for
    plan: PlanData | None  # the current version of the plan asked for
    progress: Progress | None  # and its progress, if any was recorded
    seen: tuple[Any, Any] = (None, None)  # that plan's stored version and progress, as read
    retired: bool = False  # the course of the plan asked for has left the hot state


@dataclass(frozen=True)
class PlanParts:
    """What a handler that changes a plan reads (``PlanStore.plan_parts``)."""

    plan: PlanData | None
    intake: IntakeSubmitted | None
    progress: Progress
    seen: tuple[Any, Any]  # the stored version and progress, as read (``save``'s guard)


class PlanStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self.retirement = Retirement(redis, keys)

    async def first_read(
        self, *, cause: str, client_id: str, active: bool = False, plan_id: str | None = None
    ) -> FirstRead:
        """What handling ``cause`` starts from, in one round trip (one more GET when the
        client was merged and its active plan is asked for, one or two more to rebuild
        what a redelivered event produced when that is no longer the plan's current
        version): what the event produced if it was handled, the client ``client_id``
        names now, and as asked the client's active plan id and the current version,
        progress (with its check-in answers) and retirement of ``plan_id``."""
        keys = [self._keys("produced", cause), alias_key(self._keys, client_id)]
        if active:
            keys.append(self._keys("active", client_id))
        answers: dict[str, str] = {}
        retired = None
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(self._keys("outputs", client_id), cause)
            if plan_id is None:
                pipe.mget(keys)
                outputs, values = await pipe.execute()
            else:
                keys += [self._keys("current", plan_id), self._keys("progress", plan_id)]
                pipe.mget(keys)
                pipe.hgetall(self._keys("checkins", plan_id))
                pipe.hget(self._keys("retired"), plan_id)  # ``Retirement``'s markers
                outputs, values, answers, retired = await pipe.execute()
        legacy, alias = values[0], values[1]
        survivor = client_id if alias is None else str(alias)
        active_plan = values[2] if active else None
        if active and alias is not None:  # a merge moved the active plan to the survivor
            active_plan = await self._redis.get(self._keys("active", survivor))
        current, progress = values[-2:] if plan_id is not None else (None, None)
        produced = None
        if retired is None and outputs is not None:
            produced = await self.produced_by(Outputs.decode(outputs), current=current)
        elif retired is None and legacy is not None:  # recorded before references were
            produced = events_of(legacy)
        return FirstRead(
            produced=[] if retired is not None else produced,
            client_id=survivor,
            named=client_id,
            active_plan_id=None if active_plan is None else str(active_plan),
            plan=None if current is None else plan_of(current),
            progress=None
            if progress is None and not answers
            else progress_of(plan_id or "", progress, answers),
            seen=(current, progress),
            retired=retired is not None,
        )

    async def produced_by(self, outputs: Outputs, *, current: Any = None) -> list[EventData]:
        """The events ``outputs`` names, rebuilt from the records they wrote (the plan's
        current version, ``current`` when already read, else the history); what is no
        longer there (a retired course's) is left out: it is not produced again."""
        if not outputs.refs:
            return []
        if current is None and outputs.course:
            current = await self._redis.get(self._keys("current", outputs.course))
        stored = None if current is None else json.loads(current)
        if stored is not None and stored.get("field") is None:
            stored = None  # the older form: its versions are all in the history
        found: dict[str, Any] = {}
        if stored is not None:
            found[str(stored["field"])] = stored
        wanted = [ref.field for ref in outputs.refs if ref.field not in found]
        if wanted:
            owner = outputs.client
            if stored is not None:  # a merge since moved the records to the plan's client
                owner = str(stored["plan"]["client_id"])
            else:
                owner = await ClientAliases(self._redis, self._keys).resolve(owner)
            values = await self._redis.hmget(self._keys("plans", owner), wanted)
            found |= {f: json.loads(v) for f, v in zip(wanted, values, strict=True) if v}
        events: list[EventData] = []
        for ref in outputs.refs:
            record = found.get(ref.field)
            if record is not None and "current" not in record:
                events.append(event_of(record))
        return events

    async def plan_parts(self, plan_id: str) -> PlanParts:
        """The current version of a plan, the intake behind it and its progress, in one
        MGET."""
        keys = [self._keys(name, plan_id) for name in ("current", "intake", "progress")]
        current, intake, progress = await self._redis.mget(keys)
        return PlanParts(
            None if current is None else plan_of(current),
            None if intake is None else IntakeSubmitted.model_validate_json(intake),
            Progress(plan_id=plan_id)
            if progress is None
            else Progress.model_validate_json(progress),
            seen=(current, progress),
        )

    async def save(
        self,
        *,
        cause: str,
        produced: list[EventData],
        named: str,
        course: str = "",
        intake: IntakeSubmitted | None = None,
        progress: Progress | None = None,
        held: tuple[str, AssessmentRecorded] | None = None,
        unchanged: tuple[str, tuple[Any, Any]] | None = None,
    ) -> None:
        """Record the outcome of handling ``cause`` (an event naming the client
        ``named``, acting on the plan ``course`` if any) and the state it leaves,
        atomically; ``held``: an assessment kept for a plan waiting for a doctor's
        check, which shapes its protocol once the check is recorded
        (``medical_check.py``). ``unchanged``: (plan id, what was read of it:
        ``FirstRead.seen``, ``PlanParts.seen``) - write only if that plan's version and
        progress are still what the handler read (two more round trips; the review
        date sweep writes plans too), else raise ``StateMoved`` and the record is
        handled again."""
        pipe: Any
        async with self._redis.pipeline(transaction=True) as pipe:
            if unchanged is not None:
                plan_id, seen = unchanged
                keys = [self._keys("current", plan_id), self._keys("progress", plan_id)]
                await pipe.watch(*keys)
                if tuple(await pipe.mget(keys)) != seen:
                    raise StateMoved(f"plan {plan_id} changed while an event was handled")
                pipe.multi()
            self.queue(pipe, produced=produced, intake=intake, progress=progress, held=held)
            outputs = outputs_of(produced, course=course or _course(produced), client=named)
            pipe.hset(self._keys("outputs", named), cause, outputs.encode())
            try:
                await pipe.execute()
            except WatchError as moved:
                raise StateMoved(f"plan {unchanged and unchanged[0]} changed meanwhile") from moved

    def queue(
        self,
        pipe: Any,
        *,
        produced: list[EventData],
        intake: IntakeSubmitted | None = None,
        progress: Progress | None = None,
        held: tuple[str, AssessmentRecorded] | None = None,
    ) -> None:
        """Queue the state ``produced`` leaves on a MULTI ``pipe`` of the caller's (what
        an event produced is recorded by ``save``; the review sweep keeps its own)."""
        if held is not None:
            pipe.set(self._keys("held-assessment", held[0]), held[1].model_dump_json())
        for event in produced:
            if isinstance(event, PlanData):
                self._save_plan(pipe, event)
            elif isinstance(event, PlanDeclined):
                self._save_declined(pipe, event)
            elif isinstance(event, PlanCompleted):
                self._save_completed(pipe, event)
        if intake is not None:
            pipe.set(self._keys("intake", _plan_id(produced)), intake.model_dump_json())
        if progress is not None:
            pipe.set(self._keys("progress", progress.plan_id), progress.model_dump_json())

    def _save_plan(self, pipe: Any, plan: PlanData) -> None:
        field = field_of(plan)
        record = {"status": "active", "event_type": plan.event_type, "plan": plan.to_data()}
        stand_in = {"status": "active", "event_type": plan.event_type, "current": plan.plan_id}
        keys = [self._keys("current", plan.plan_id), self._keys("plans", plan.client_id)]
        stored = json.dumps({"field": field, **record})
        pipe.eval(_NEXT_VERSION, 2, *keys, field, stored, json.dumps(stand_in))
        self._set_active(pipe, plan.client_id, plan.plan_id, plan.created_at.timestamp())
        # the review date sweep's index (``review_sweep.py``): plans by review date
        pipe.zadd(self._keys(REVIEW_DUE), {plan.plan_id: plan.review_by.toordinal()})

    def _set_active(self, pipe: Any, client_id: str, plan_id: str, at: float | None) -> None:
        """The plan is active since ``at`` (None: it has ended); the current plan follows."""
        keys = [self._keys("active", client_id), self._keys("active-plans", client_id)]
        pipe.eval(_ACTIVE, 2, *keys, plan_id, "" if at is None else repr(at))

    def _save_declined(self, pipe: Any, declined: PlanDeclined) -> None:
        """The history shows the decline; the course (the plan id its intake would have
        had) has ended."""
        record: dict[str, Any] = {"status": "declined", "event_type": declined.event_type}
        record["decline"] = declined.to_data()
        pipe.hset(self._keys("plans", declined.client_id), field_of(declined), json.dumps(record))
        self._ended(pipe, course_of(declined.intake_id), declined.client_id, declined.declined_at)

    def _save_completed(self, pipe: Any, done: PlanCompleted) -> None:
        """The history shows the completion; the plan is no longer the client's active
        one, and its course has ended."""
        record: dict[str, Any] = {"status": "completed", "event_type": done.event_type}
        record["completion"] = done.to_data()
        pipe.hset(self._keys("plans", done.client_id), field_of(done), json.dumps(record))
        self._set_active(pipe, done.client_id, done.plan_id, None)
        pipe.zrem(self._keys(REVIEW_DUE), done.plan_id)
        self._ended(pipe, done.plan_id, done.client_id, done.completed_at)

    def _ended(self, pipe: Any, course: str, client_id: str, at: datetime) -> None:
        """The course ended: it leaves the hot state once its location's
        ``keep_finished_courses`` has passed (``retirement.py``)."""
        self.retirement.note_ended(pipe, course, at)
        pipe.hsetnx(self._keys(ENDED_OF), course, client_id)

    async def held_assessment(self, plan_id: str) -> AssessmentRecorded | None:
        """The latest assessment recorded while the plan waited for a doctor's check."""
        raw = await self._redis.get(self._keys("held-assessment", plan_id))
        return None if raw is None else AssessmentRecorded.model_validate_json(raw)

    async def active_plan_id(self, client_id: str) -> str | None:
        raw = await self._redis.get(self._keys("active", client_id))
        return None if raw is None else str(raw)

    async def progress(self, plan_id: str) -> Progress:
        """The plan's progress with its check-in answers, in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self._keys("progress", plan_id))
            pipe.hgetall(self._keys("checkins", plan_id))
            raw, answers = await pipe.execute()
        return progress_of(plan_id, raw, answers)

    async def record_checkin(self, plan_id: str, answer: CheckinOutcome) -> None:
        """Keep a check-in answer of the plan (the first one per check-in stands): apart
        from the progress a visit's handler writes, so neither can overwrite the other."""
        await self._redis.hsetnx(
            self._keys("checkins", plan_id), answer.notification_id, answer.model_dump_json()
        )

    async def history(self, *client_ids: str) -> list[dict[str, Any]]:
        """Every plan version, decline and completion of a client (known by
        ``client_ids``: the survivor of a merge and the ids retired into it), oldest
        first; a plan's current version read from where it is kept (one more read)."""
        entries: dict[str, dict[str, Any]] = {}
        for client_id in client_ids:
            found = await self._redis.hgetall(self._keys("plans", client_id))
            entries.update({str(field): json.loads(raw) for field, raw in found.items()})
        stand_ins = {f: str(r["current"]) for f, r in entries.items() if "current" in r}
        if stand_ins:
            plan_ids = sorted(set(stand_ins.values()))
            raws = await self._redis.mget([self._keys("current", p) for p in plan_ids])
            currents = {p: json.loads(r) for p, r in zip(plan_ids, raws, strict=True) if r}
            for field, plan_id in stand_ins.items():
                current = currents.get(plan_id)
                if current is not None and current.get("field") == field:
                    entries[field] = current
                else:  # nothing behind it (a course swept meanwhile)
                    del entries[field]
        return [history_record(entries[field]) for field in sorted(entries)]

    async def retired_of(self, *client_ids: str) -> list[RetiredCourse]:
        """The client's courses that left the hot state (``retirement.py``), in the
        order they ended."""
        found: dict[str, RetiredCourse] = {}
        for client_id in client_ids:
            for course in await self.retirement.of_client(client_id):
                found[course.plan_id] = course
        return sorted(found.values(), key=lambda course: (course.ended_at, course.plan_id))

    async def merge(self, aliases: ClientAliases, *, retired: str, survivor: str) -> None:
        """Move every plan record of ``retired`` to ``survivor`` and retire the id, in
        one transaction (retried when a handler writes either client meanwhile); a
        second run finds nothing left to move and writes the same aliases."""
        watched = [
            self._keys(name, client)
            for name in ("plans", "active", "active-plans")
            for client in (retired, survivor)
        ]

        async def move(pipe: Any) -> None:
            await self._move(pipe, aliases, retired=retired, survivor=survivor)

        # redis-py's optimistic transaction: watch, read, MULTI, retried on a change
        await self._redis.transaction(move, *watched)

    async def _move(
        self, pipe: Any, aliases: ClientAliases, *, retired: str, survivor: str
    ) -> None:
        """Read (watched) what ``retired`` holds, then queue its move on ``pipe``."""
        entries = await pipe.hgetall(self._keys("plans", retired))
        records = {f: json.loads(raw) for f, raw in entries.items()}
        plan_ids = sorted({p for r in records.values() if (p := plan_id_of(r)) is not None})
        currents = {p: await pipe.get(self._keys("current", p)) for p in plan_ids}
        legacy = await pipe.get(self._keys("active", retired))  # before active-plans existed
        actives = [
            dict(await pipe.zrange(self._keys("active-plans", c), 0, -1, withscores=True))
            for c in (retired, survivor)
        ]
        if legacy is not None and legacy not in actives[0] and currents.get(legacy):
            actives[0][legacy] = _changed_at(json.loads(currents[legacy]))
        retired_aliases = await aliases.aliases_of(retired)
        swept = await pipe.smembers(self._keys("retired-of", retired))
        pipe.multi()
        for field, record in records.items():
            moved = merging.rehomed_record(record, survivor, retired)
            pipe.hset(self._keys("plans", survivor), field, json.dumps(moved))
        for plan_id, raw in currents.items():
            if raw is not None:
                moved_plan = merging.rehomed_current(json.loads(raw), survivor, retired)
                pipe.set(self._keys("current", plan_id), json.dumps(moved_plan))
        merged, current = merging.active_plans(actives[1], actives[0])
        if merged:
            pipe.zadd(self._keys("active-plans", survivor), merged)
        if current is not None:
            pipe.set(self._keys("active", survivor), current)
        pipe.delete(*(self._keys(name, retired) for name in ("plans", "active", "active-plans")))
        self.retirement.moved(pipe, (str(plan_id) for plan_id in swept), old=retired, new=survivor)
        aliases.record(pipe, retired, survivor, retired_aliases)


def events_of(raw: str | bytes) -> list[EventData]:
    """What an event produced, in the form kept before references (``outputs.py``)."""
    return [EVENT_MODELS[item["type"]].model_validate(item["data"]) for item in json.loads(raw)]


def plan_of(raw: str | bytes) -> PlanData | None:
    """A stored current version: its history record with its field, or the older
    ``{"type", "data"}`` form."""
    stored = json.loads(raw)
    if "plan" in stored:
        plan = EVENT_MODELS[stored["event_type"]].model_validate(stored["plan"])
    else:
        plan = EVENT_MODELS[stored["type"]].model_validate(stored["data"])
    return plan if isinstance(plan, PlanData) else None


def event_of(record: dict[str, Any]) -> EventData:
    """The event a history record keeps (a plan version, a decline or a completion)."""
    body = record.get("plan") or record.get("decline") or record.get("completion")
    return EVENT_MODELS[record["event_type"]].model_validate(body)


def history_record(stored: dict[str, Any]) -> dict[str, Any]:
    """A history record as the views read it, from a current version in either form."""
    if "data" in stored and "type" in stored:
        return {"status": "active", "event_type": stored["type"], "plan": stored["data"]}
    return {k: v for k, v in stored.items() if k != "field"}


def progress_of(plan_id: str, raw: str | bytes | None, answers: dict[str, str]) -> Progress:
    progress = Progress(plan_id=plan_id) if raw is None else Progress.model_validate_json(raw)
    return with_checkins(
        progress, (CheckinOutcome.model_validate_json(a) for a in answers.values())
    )


def _plan_id(produced: list[EventData]) -> str:
    for event in produced:
        if isinstance(event, PlanData):
            return event.plan_id
    raise ValueError("an intake is stored with the plan it produced")


def _course(produced: list[EventData]) -> str:
    """The course the events belong to, '' if none does."""
    for event in produced:
        if isinstance(event, PlanData | PlanCompleted):
            return event.plan_id
        if isinstance(event, PlanDeclined):
            return course_of(event.intake_id)
    return ""


def plan_id_of(record: dict[str, Any]) -> str | None:
    """The plan a stored history record belongs to (a decline has none)."""
    if "current" in record:
        return str(record["current"])
    body = record.get("plan") or record.get("completion") or {}
    plan_id = body.get("plan_id")
    return None if plan_id is None else str(plan_id)


def _changed_at(stored: dict[str, Any]) -> float:
    """When a stored plan version was made (epoch seconds)."""
    body = stored["plan"] if "plan" in stored else stored["data"]
    return datetime.fromisoformat(str(body["created_at"])).timestamp()


def location_of(record: dict[str, Any]) -> str:
    body = record.get("plan") or record.get("decline") or record.get("completion") or {}
    return str(body.get("location_id", ""))
