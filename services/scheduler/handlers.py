"""Scheduler wiring: a plan in, its visits booked (or waitlisted) out.

Booking holds a per-location lock in Redis while it reads the calendar, places
the visits and writes them, so two scheduler instances never place overlapping
visits at one location. The events a plan version produced are stored with the
visits; a redelivered plan publishes the same events again (same ids) and books
nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from services.scheduler.booking import book_plan
from services.scheduler.store import CalendarStore
from shared.codec import decode_envelope, encode
from shared.envelope import Envelope, Trace, derived_id
from shared.events import BookingWaitlisted, EventData, PlanCreated, VisitBooked
from shared.kafka import Outgoing
from shared.locks import redis_lock
from shared.runtime import Runtime
from shared.streams import Handler, Rejected


def handlers(runtime: Runtime) -> Mapping[str, Handler]:
    store = CalendarStore(runtime.redis, runtime.keys)

    async def on_plan(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        assert isinstance(data, PlanCreated)
        if not runtime.chain.has_location(data.location_id):
            raise Rejected(f"unknown location {data.location_id!r}")
        plan_key = f"{data.plan_id}:{data.version}"
        async with redis_lock(runtime.redis, store.location_lock_key(data.location_id)):
            already = await store.outcome(plan_key)
            if already is not None:
                return [
                    Outgoing(key=data.client_id, envelope=decode_envelope(raw.encode()))
                    for raw in already
                ]
            location = runtime.chain.location(data.location_id)
            policy = runtime.chain.policy_for(data.location_id)
            now = runtime.clock.now()
            existing = await store.intervals(data.location_id, start=now, end=now + policy.horizon)
            therapists = [
                (t, runtime.chain.therapist_hours(t, location))
                for t in runtime.chain.therapists_at(data.location_id)
            ]
            outcome = book_plan(
                data,
                location=location,
                therapists=therapists,
                policy=policy,
                existing=existing,
                now=now,
            )
            trace = Trace.following(envelope, locationid=data.location_id)
            facts: list[VisitBooked | BookingWaitlisted] = [*outcome.booked, *outcome.waitlisted]
            events = [
                runtime.outgoing(
                    fact,
                    key=data.client_id,
                    subject=fact.visit_id if isinstance(fact, VisitBooked) else data.plan_id,
                    event_id=derived_id(fact.event_type, plan_key, fact.sequence),
                    trace=trace,
                    time=now,
                )
                for fact in facts
            ]
            stored = [encode(event.envelope).decode() for event in events]
            await store.save_outcome(plan_key, outcome.booked, stored)
        return events

    return {"plan.created": on_plan}
