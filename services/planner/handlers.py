"""Planner wiring: intake events in, plan events out, plans kept for the HTTP API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from services.planner import domain
from services.planner.store import PlanStore
from shared.envelope import Envelope, Trace, derived_id
from shared.events import EventData, IntakeSubmitted, PlanCreated
from shared.kafka import Outgoing
from shared.runtime import Runtime
from shared.streams import Handler, Rejected


def handlers(runtime: Runtime) -> Mapping[str, Handler]:
    store = PlanStore(runtime.redis, runtime.keys)

    async def on_intake(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        assert isinstance(data, IntakeSubmitted)
        if not runtime.chain.has_location(data.location_id):
            raise Rejected(f"unknown location {data.location_id!r}")
        decision = domain.decide(data, policy=runtime.chain.policy_for(data.location_id))
        if isinstance(decision, PlanCreated):
            await store.save(decision)
            subject = decision.plan_id
        else:
            await store.save_declined(decision)
            subject = data.client.client_id
        return [
            runtime.outgoing(
                decision,
                key=data.client.client_id,
                subject=subject,
                event_id=derived_id(decision.event_type, envelope.id),
                trace=Trace.following(envelope, locationid=data.location_id),
            )
        ]

    return {"intake.submitted": on_intake}
