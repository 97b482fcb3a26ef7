"""Planner wiring: intakes, visit outcomes and assessments in; plan events out.

Each handled event's outputs are stored under its id together with the state
they leave, so a redelivered event republishes exactly what it produced the
first time: no new version, no second completion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from services.planner import domain, progress
from services.planner.store import PlanStore
from shared.envelope import Envelope, Trace, derived_id
from shared.events import EventData, IntakeSubmitted, PlanCreated
from shared.events.intake import AssessmentRecorded
from shared.events.plans import PlanData
from shared.events.visits import VisitCompleted
from shared.kafka import Outgoing
from shared.runtime import Runtime
from shared.streams import Handler, Rejected


def handlers(runtime: Runtime) -> Mapping[str, Handler]:
    store = PlanStore(runtime.redis, runtime.keys)

    def publishable(envelope: Envelope, produced: list[EventData]) -> list[Outgoing]:
        return [
            runtime.outgoing(
                event,
                key=str(event.to_data()["client_id"]),
                subject=str(event.to_data().get("plan_id") or event.to_data()["client_id"]),
                event_id=derived_id(event.event_type, envelope.id),
                trace=Trace.following(envelope, locationid=str(event.to_data()["location_id"])),
            )
            for event in produced
        ]

    async def on_intake(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, IntakeSubmitted):
            raise Rejected(f"expected intake.submitted, got {type(data).__name__}")
        if not runtime.chain.has_location(data.location_id):
            raise Rejected(f"unknown location {data.location_id!r}")
        before = await store.produced_by(envelope.id)
        if before is not None:
            return publishable(envelope, before)
        decision = domain.decide(data, policy=runtime.chain.policy_for(data.location_id))
        planned = isinstance(decision, PlanCreated)
        await store.save(cause=envelope.id, produced=[decision], intake=data if planned else None)
        return publishable(envelope, [decision])

    async def on_visit_completed(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, VisitCompleted):
            raise Rejected(f"expected visit.completed, got {type(data).__name__}")
        before = await store.produced_by(envelope.id)
        if before is not None:
            return publishable(envelope, before)
        plan = await store.current(data.plan_id)
        if plan is None:
            raise Rejected(f"visit {data.visit_id} names an unknown plan {data.plan_id!r}")
        now = runtime.clock.now()
        change, moved = progress.next_step(
            plan, progress.recorded(await store.progress(plan.plan_id), data), now=now
        )
        produced: list[EventData] = [] if change is None else [change]
        await store.save(cause=envelope.id, produced=produced, progress=moved)
        return publishable(envelope, produced)

    async def on_assessment(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, AssessmentRecorded):
            raise Rejected(f"expected assessment.recorded, got {type(data).__name__}")
        before = await store.produced_by(envelope.id)
        if before is not None:
            return publishable(envelope, before)
        plan = await _active_plan(store, data.client_id)
        intake = None if plan is None else await store.intake(plan.plan_id)
        if plan is None or intake is None:
            await store.save(cause=envelope.id, produced=[])  # nothing to revise yet
            return []
        done = (await store.progress(plan.plan_id)).sessions_done
        revised = domain.revise_for_assessment(
            plan, intake, data, sessions_done=done, now=runtime.clock.now()
        )
        produced: list[EventData] = [] if revised is None else [revised]
        await store.save(cause=envelope.id, produced=produced)
        return publishable(envelope, produced)

    return {
        "intake.submitted": on_intake,
        "visit.completed": on_visit_completed,
        "assessment.recorded": on_assessment,
    }


async def _active_plan(store: PlanStore, client_id: str) -> PlanData | None:
    plan_id = await store.active_plan_id(client_id)
    return None if plan_id is None else await store.current(plan_id)
