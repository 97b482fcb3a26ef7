"""Planner wiring: intakes, visit outcomes and assessments in; plan events out.

Each handled event's outputs are stored under its id together with the state
they leave, so a redelivered event republishes exactly what it produced the
first time: no new version, no second completion.

``client.merged``: the retired client's plan records move to the survivor
(``store.PlanStore.merge``); events that still name the retired id are handled
under the survivor (``shared.aliases.following_merges``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from services.planner import domain, progress
from services.planner.store import PlanStore
from shared.aliases import ClientAliases, following_merges, merge_follower, rehomed
from shared.envelope import Envelope, Trace, derived_id
from shared.events import EventData, IntakeSubmitted, PlanCreated
from shared.events.intake import AssessmentRecorded, ClientMerged
from shared.events.plans import PlanData
from shared.events.visits import VisitCompleted
from shared.kafka import Outgoing
from shared.runtime import Runtime
from shared.streams import Handler, Rejected

Rule = Callable[[Envelope, EventData], Awaitable[list[EventData]]]
"""Decides what an event produces and stores it with the state it leaves."""


def handlers(runtime: Runtime) -> Mapping[str, Handler]:
    store = PlanStore(runtime.redis, runtime.keys)
    aliases = ClientAliases(runtime.redis, runtime.keys)

    def replaying(expected: type[EventData], rule: Rule) -> Handler:
        """The handler for ``expected``: what a redelivered event produced before, else
        what ``rule`` decides now, as outgoing events caused by the envelope."""

        async def handle(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
            if not isinstance(data, expected):
                raise Rejected(f"expected {expected.event_type}, got {type(data).__name__}")
            produced = await store.produced_by(envelope.id)
            if produced is None:
                produced = await rule(envelope, data)
            return [_outgoing(runtime, envelope, event) for event in produced]

        return handle

    async def on_intake(envelope: Envelope, data: EventData) -> list[EventData]:
        assert isinstance(data, IntakeSubmitted)  # checked by ``replaying``
        if not runtime.chain.has_location(data.location_id):
            raise Rejected(f"unknown location {data.location_id!r}")
        decision = domain.decide(data, policy=runtime.chain.policy_for(data.location_id))
        planned = isinstance(decision, PlanCreated)
        await store.save(cause=envelope.id, produced=[decision], intake=data if planned else None)
        return [decision]

    async def on_visit_completed(envelope: Envelope, data: EventData) -> list[EventData]:
        assert isinstance(data, VisitCompleted)
        stored = await store.current(data.plan_id)
        if stored is None:
            raise Rejected(f"visit {data.visit_id} names an unknown plan {data.plan_id!r}")
        # the plan of a client merged while this outcome was on its way
        plan = rehomed(stored, await aliases.resolve(stored.client_id))
        assert isinstance(plan, PlanData)
        change, moved = progress.next_step(
            plan,
            progress.recorded(await store.progress(plan.plan_id), data),
            now=runtime.clock.now(),
        )
        produced: list[EventData] = [] if change is None else [change]
        await store.save(cause=envelope.id, produced=produced, progress=moved)
        return produced

    async def on_assessment(envelope: Envelope, data: EventData) -> list[EventData]:
        assert isinstance(data, AssessmentRecorded)
        plan = await _active_plan(store, data.client_id)
        intake = None if plan is None else await store.intake(plan.plan_id)
        revised = None
        if plan is not None and intake is not None:
            done = (await store.progress(plan.plan_id)).sessions_done
            revised = domain.revise_for_assessment(
                plan, intake, data, sessions_done=done, now=runtime.clock.now()
            )
        produced: list[EventData] = [] if revised is None else [revised]
        await store.save(cause=envelope.id, produced=produced)
        return produced

    async def move_merged(_: ClientMerged, retired: str, survivor: str) -> None:
        await store.merge(aliases, retired=retired, survivor=survivor)

    return {
        **following_merges(
            aliases,
            {
                "intake.submitted": replaying(IntakeSubmitted, on_intake),
                "visit.completed": replaying(VisitCompleted, on_visit_completed),
                "assessment.recorded": replaying(AssessmentRecorded, on_assessment),
            },
        ),
        "client.merged": merge_follower(aliases, move_merged),
    }


def _outgoing(runtime: Runtime, cause: Envelope, event: EventData) -> Outgoing:
    data = event.to_data()
    return runtime.outgoing(
        event,
        key=str(data["client_id"]),
        subject=str(data.get("plan_id") or data["client_id"]),
        event_id=derived_id(event.event_type, cause.id),
        trace=Trace.following(cause, locationid=str(data["location_id"])),
    )


async def _active_plan(store: PlanStore, client_id: str) -> PlanData | None:
    plan_id = await store.active_plan_id(client_id)
    return None if plan_id is None else await store.current(plan_id)
