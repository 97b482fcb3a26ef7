"""The planner's state in Redis: every plan version per client (the read model),
the current version and progress of each plan, the intake behind it, and what
each handled event produced.

Why Redis rather than faust tables: the read model the HTTP API serves, the
state the rules need and the record of what an event produced are written in
one MULTI transaction, so they can never disagree; faust tables would put them
in separate changelog partitions. Like the other services, the planner keeps
its state in the deployment's namespace, and on restart it reads it back as it
was (see the restart test)."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from services.planner.progress import Progress
from shared.events import EVENT_MODELS, EventData, IntakeSubmitted, PlanDeclined
from shared.events.plans import PlanCompleted, PlanData
from shared.redis_store import Keys


class PlanStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def produced_by(self, event_id: str) -> list[EventData] | None:
        """What handling ``event_id`` produced before, if it was handled."""
        raw = await self._redis.get(self._keys("produced", event_id))
        if raw is None:
            return None
        return [EVENT_MODELS[item["type"]].model_validate(item["data"]) for item in json.loads(raw)]

    async def save(
        self,
        *,
        cause: str,
        produced: list[EventData],
        intake: IntakeSubmitted | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Record the outcome of handling ``cause`` and the state it leaves, atomically."""
        async with self._redis.pipeline(transaction=True) as pipe:
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
            record = [{"type": e.event_type, "data": e.to_data()} for e in produced]
            pipe.set(self._keys("produced", cause), json.dumps(record))
            await pipe.execute()

    def _save_plan(self, pipe: Any, plan: PlanData) -> None:
        record = {"status": "active", "event_type": plan.event_type, "plan": plan.to_data()}
        field = f"{plan.created_at.timestamp():020.6f}:{plan.plan_id}:{plan.version:04d}"
        pipe.hset(self._keys("plans", plan.client_id), field, json.dumps(record))
        pipe.set(
            self._keys("current", plan.plan_id),
            json.dumps({"type": plan.event_type, "data": plan.to_data()}),
        )
        pipe.set(self._keys("active", plan.client_id), plan.plan_id)

    def _save_declined(self, pipe: Any, declined: PlanDeclined) -> None:
        record: dict[str, Any] = {"status": "declined", "event_type": declined.event_type}
        record["decline"] = declined.to_data()
        field = f"{declined.declined_at.timestamp():020.6f}:declined:{declined.intake_id}"
        pipe.hset(self._keys("plans", declined.client_id), field, json.dumps(record))

    def _save_completed(self, pipe: Any, done: PlanCompleted) -> None:
        """The history shows the completion; the plan is no longer the client's active one."""
        record: dict[str, Any] = {"status": "completed", "event_type": done.event_type}
        record["completion"] = done.to_data()
        field = f"{done.completed_at.timestamp():020.6f}:{done.plan_id}:completed"
        pipe.hset(self._keys("plans", done.client_id), field, json.dumps(record))
        pipe.delete(self._keys("active", done.client_id))

    async def current(self, plan_id: str) -> PlanData | None:
        raw = await self._redis.get(self._keys("current", plan_id))
        if raw is None:
            return None
        stored = json.loads(raw)
        plan = EVENT_MODELS[stored["type"]].model_validate(stored["data"])
        return plan if isinstance(plan, PlanData) else None

    async def active_plan_id(self, client_id: str) -> str | None:
        raw = await self._redis.get(self._keys("active", client_id))
        return None if raw is None else str(raw)

    async def intake(self, plan_id: str) -> IntakeSubmitted | None:
        raw = await self._redis.get(self._keys("intake", plan_id))
        return None if raw is None else IntakeSubmitted.model_validate_json(raw)

    async def progress(self, plan_id: str) -> Progress:
        raw = await self._redis.get(self._keys("progress", plan_id))
        return Progress(plan_id=plan_id) if raw is None else Progress.model_validate_json(raw)

    async def history(self, client_id: str) -> list[dict[str, Any]]:
        """Every plan version, decline and completion of a client, oldest first."""
        entries = await self._redis.hgetall(self._keys("plans", client_id))
        return [json.loads(entries[field]) for field in sorted(entries)]


def _plan_id(produced: list[EventData]) -> str:
    for event in produced:
        if isinstance(event, PlanData):
            return event.plan_id
    raise ValueError("an intake is stored with the plan it produced")


def location_of(record: dict[str, Any]) -> str:
    body = record.get("plan") or record.get("decline") or record.get("completion") or {}
    return str(body.get("location_id", ""))
