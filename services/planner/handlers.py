"""Planner wiring: intakes, visit outcomes, assessments and check-in answers in; plan
events out. The review date sweep (``review_sweep.py``) runs beside the handlers.

Each handled event's outputs are recorded under its id together with the state
they leave (as references to the records they wrote: ``outputs.py``), so a
redelivered event republishes exactly what it produced the first time: no new
version, no second completion. An event of a course that has left the hot state
(``retirement.py``) produces nothing: the first read asks for the marker of the plan
the event names (an intake: the plan id it derives), and a retired course is never
a client's active plan.

An event costs two round trips (an assessment three): one read that holds the
replay check, the client's survivor and what the rule reads first
(``store.PlanStore.first_read``), and one transaction that stores the outcome.

``client.merged``: the retired client's plan records move to the survivor
(``store.PlanStore.merge``); events that still name the retired id are handled
under the survivor, found by that first read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from services.planner import domain, progress, reviews
from services.planner.outputs import course_of
from services.planner.progress import Progress
from services.planner.store import FirstRead, PlanStore
from services.planner.trajectory import answer_of
from shared.aliases import ClientAliases, client_of, merge_follower, rehomed
from shared.envelope import Envelope, Trace, derived_id
from shared.events import EventData, IntakeSubmitted, PlanCreated
from shared.events.intake import AssessmentRecorded, ClientMerged, MedicalCheckRecorded
from shared.events.notifications import CheckinReplied
from shared.events.plans import PlanCompleted, PlanData
from shared.events.visits import VisitCompleted
from shared.kafka import Outgoing
from shared.runtime import Runtime
from shared.streams import Handler, Rejected

Rule = Callable[[Envelope, EventData, FirstRead], Awaitable[list[EventData]]]
"""Decides what an event produces (under the client it names now, from what its
first read found) and stores it with the state it leaves."""


def handlers(runtime: Runtime) -> Mapping[str, Handler]:
    store = PlanStore(runtime.redis, runtime.keys)
    aliases = ClientAliases(runtime.redis, runtime.keys)

    def replaying(
        expected: type[EventData],
        rule: Rule,
        *,
        active: bool = False,
        plan_of: Callable[[EventData], str | None] | None = None,
    ) -> Handler:
        """The handler for ``expected``: what a redelivered event produced before, else
        what ``rule`` decides now, as outgoing events caused by the envelope. The replay
        check, the client's survivor and what the rule reads first (``active``: the
        client's current plan; ``plan_of``: the plan the event names) are one read."""

        async def handle(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
            if not isinstance(data, expected):
                raise Rejected(f"expected {expected.event_type}, got {type(data).__name__}")
            named = client_of(data)
            assert named is not None  # every event the planner consumes names its client
            read = await store.first_read(
                cause=envelope.id,
                client_id=named,
                active=active,
                plan_id=None if plan_of is None else plan_of(data),
            )
            produced = read.produced
            if produced is None:  # a retired course's event: [] (``FirstRead.retired``)
                produced = await rule(envelope, rehomed(data, read.client_id), read)
            return [_outgoing(runtime, envelope, event) for event in produced]

        return handle

    async def on_intake(envelope: Envelope, data: EventData, read: FirstRead) -> list[EventData]:
        assert isinstance(data, IntakeSubmitted)  # checked by ``replaying``
        if not runtime.chain.has_location(data.location_id):
            raise Rejected(f"unknown location {data.location_id!r}")
        decision = domain.decide(data, policy=runtime.chain.policy_for(data.location_id))
        planned = isinstance(decision, PlanCreated)
        intake = data if planned else None
        await store.save(cause=envelope.id, produced=[decision], named=read.named, intake=intake)
        return [decision]

    async def on_visit_completed(
        envelope: Envelope, data: EventData, read: FirstRead
    ) -> list[EventData]:
        assert isinstance(data, VisitCompleted)
        stored = read.plan
        if stored is None:
            raise Rejected(f"visit {data.visit_id} names an unknown plan {data.plan_id!r}")
        # the plan of a client merged while this outcome was on its way
        owner = (
            read.client_id
            if stored.client_id in (read.named, read.client_id)
            else await aliases.resolve(stored.client_id)
        )
        plan = rehomed(stored, owner)
        assert isinstance(plan, PlanData)
        now = runtime.clock.now()
        change, moved = progress.next_step(
            plan,
            progress.recorded(read.progress or Progress(plan_id=plan.plan_id), data),
            now=now,
        )
        produced: list[EventData] = [] if change is None else [change]
        # the review date sweep may decide on this plan meanwhile (``review_sweep.py``)
        unchanged = (stored.plan_id, read.seen) if reviews.sweep_may_write(plan, now=now) else None
        await store.save(
            cause=envelope.id,
            produced=produced,
            named=read.named,
            course=plan.plan_id,
            progress=moved,
            unchanged=unchanged,
        )
        return produced

    async def on_assessment(
        envelope: Envelope, data: EventData, read: FirstRead
    ) -> list[EventData]:
        assert isinstance(data, AssessmentRecorded)
        revised = None
        held = None
        unchanged = None
        if read.active_plan_id is not None:
            parts = await store.plan_parts(read.active_plan_id)
            plan, intake, done = parts.plan, parts.intake, parts.progress
            if plan is not None and reviews.sweep_may_write(plan, now=runtime.clock.now()):
                unchanged = (plan.plan_id, parts.seen)
            if plan is not None and plan.awaiting_medical_check is not None:
                held = (plan.plan_id, data)  # shapes the protocol once the check is in
            elif plan is not None and intake is not None:
                revised = domain.revise_for_assessment(
                    plan, intake, data, sessions_done=done.sessions_done, now=runtime.clock.now()
                )
        produced: list[EventData] = [] if revised is None else [revised]
        await store.save(
            cause=envelope.id,
            produced=produced,
            named=read.named,
            course=read.active_plan_id or "",
            held=held,
            unchanged=unchanged,
        )
        return produced

    async def on_medical_check(
        envelope: Envelope, data: EventData, read: FirstRead
    ) -> list[EventData]:
        """DOMAIN.md 1 red flag: the doctor's check (or the therapist's override) lets
        the client's waiting course go on, or ends it referred."""
        assert isinstance(data, MedicalCheckRecorded)
        decided = None
        finished: Progress | None = None
        unchanged = None
        if read.active_plan_id is not None:
            parts = await store.plan_parts(read.active_plan_id)
            plan, intake, done = parts.plan, parts.intake, parts.progress
            if plan is not None and reviews.sweep_may_write(plan, now=runtime.clock.now()):
                unchanged = (plan.plan_id, parts.seen)
            if plan is not None and intake is not None:
                decided = domain.after_medical_check(
                    plan,
                    intake,
                    data,
                    assessment=await store.held_assessment(plan.plan_id),
                    sessions_done=done.sessions_done,
                    now=runtime.clock.now(),
                )
                if isinstance(decided, PlanCompleted):
                    finished = done.model_copy(update={"finished": True})
        produced: list[EventData] = [] if decided is None else [decided]
        await store.save(
            cause=envelope.id,
            produced=produced,
            named=read.named,
            course=read.active_plan_id or "",
            progress=finished,
            unchanged=unchanged,
        )
        return produced

    async def on_checkin(envelope: Envelope, data: EventData, read: FirstRead) -> list[EventData]:
        """DOMAIN.md 5: a check-in's pain score is a reading of the plan's trajectory
        between visits (``trajectory.py``); the reviews use it, it decides nothing alone."""
        assert isinstance(data, CheckinReplied)
        plan_id = data.plan_id or read.active_plan_id
        if plan_id is not None:
            await store.record_checkin(plan_id, answer_of(data))
        await store.save(cause=envelope.id, produced=[], named=read.named, course=plan_id or "")
        return []

    async def move_merged(_: ClientMerged, retired: str, survivor: str) -> None:
        await store.merge(aliases, retired=retired, survivor=survivor)

    return {
        "intake.submitted": replaying(IntakeSubmitted, on_intake, plan_of=_intake_course),
        "visit.completed": replaying(VisitCompleted, on_visit_completed, plan_of=_completed_plan),
        "assessment.recorded": replaying(AssessmentRecorded, on_assessment, active=True),
        "medical_check.recorded": replaying(MedicalCheckRecorded, on_medical_check, active=True),
        "checkin.replied": replaying(
            CheckinReplied, on_checkin, active=True, plan_of=_checkin_plan
        ),
        "client.merged": merge_follower(aliases, move_merged),
    }


def _completed_plan(data: EventData) -> str | None:
    assert isinstance(data, VisitCompleted)  # checked by ``replaying`` before
    return data.plan_id


def _intake_course(data: EventData) -> str | None:
    """The plan an intake makes (or the course it declines), by its derived id."""
    assert isinstance(data, IntakeSubmitted)
    return course_of(data.intake_id)


def _checkin_plan(data: EventData) -> str | None:
    assert isinstance(data, CheckinReplied)
    return data.plan_id


def _outgoing(runtime: Runtime, cause: Envelope, event: EventData) -> Outgoing:
    data = event.to_data()
    return runtime.outgoing(
        event,
        key=str(data["client_id"]),
        subject=str(data.get("plan_id") or data["client_id"]),
        event_id=derived_id(event.event_type, cause.id),
        trace=Trace.following(cause, locationid=str(data["location_id"])),
    )
