"""Front desk and therapist commands on one visit: reschedule, cancel, no-show,
complete, and the client's confirmation (``confirmation.py``). Each runs under
the location's lock, checks the pure rules of ``operations.py``, and applies its
calendar change together with its event in one script (``store.CalendarChange``);
the event then goes out through the outbox, so an accepted command is never lost
to a broker outage.

Cancel, no-show and completion happen once to a visit, a confirmation once per
visit and start: the same request again answers what it answered the first time;
a different one is a 409 naming the visit's state. Who may act is checked before
either. A refusal is a ``Refused`` (409) with a stable reason code beside its
sentence, so the pages a client acts from can word it in the client's language."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import HTTPException, status
from pydantic import BaseModel

from services.scheduler import backfill, confirmation, operations
from services.scheduler.directory_store import staffing_at
from services.scheduler.outbox import deliver, staged
from services.scheduler.slots import BookedInterval
from services.scheduler.store import CalendarChange, CalendarStore, Overlap, VisitStatus
from shared.auth import Principal
from shared.chain import Policy
from shared.envelope import Trace, derived_id
from shared.events import EVENT_MODELS, EventData, VisitBooked
from shared.events.plans import PlanData, SchedulingNeeds
from shared.events.visits import (
    TriggerPointOutcome,
    VisitCancelled,
    VisitCompleted,
    VisitNoShow,
    VisitRescheduled,
)
from shared.kafka import Outgoing
from shared.locks import redis_lock
from shared.runtime import Runtime
from shared.vocabulary import CancelledBy, ConfirmedVia

ATTEMPTS = 3  # an Overlap means another instance wrote first: compute again

# who acts through a message's signed link: the signature names the one visit it
# opens, so it reaches that visit wherever it is; and the client's text reply, which
# the notifier matched to the visit it confirms
LINK = Principal(role="service", locations=("*",), name="signed link", key_id="signed-link")
TEXT_REPLY = Principal(role="service", locations=("*",), name="text reply", key_id="text-reply")


class Refused(HTTPException):
    """A 409: the visit cannot be changed so. ``reason`` is a stable code (the visit's
    state, ``started``, or a reschedule's ``operations.RefusalReason``); ``detail``
    the sentence the JSON answer carries."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(status.HTTP_409_CONFLICT, detail)
        self.reason = reason


@dataclass(frozen=True)
class Done:
    """A command's result: the event it published and whether this call made it."""

    event: EventData
    replayed: bool = False


def trace_record(visit_id: str) -> str:
    return f"trace:{visit_id}"


def command_record(visit_id: str, command: str) -> str:
    return f"command:{visit_id}:{command}"


def needs_record(plan_id: str) -> str:
    """What the plan's current version asks of the calendar (``PlanNeeds``)."""
    return f"needs:{plan_id}"


class PlanNeeds(BaseModel):
    """What the scheduler keeps of a plan's current version to place its visits."""

    plan_id: str
    client_id: str
    location_id: str
    visit_minutes: int
    scheduling: SchedulingNeeds

    @classmethod
    def of(cls, plan: PlanData) -> PlanNeeds:
        return cls(
            plan_id=plan.plan_id,
            client_id=plan.client_id,
            location_id=plan.location_id,
            visit_minutes=plan.visit_minutes,
            scheduling=plan.scheduling,
        )


async def plan_needs(store: CalendarStore, plan_id: str) -> PlanNeeds | None:
    raw = await store.record(needs_record(plan_id))
    return None if raw is None else PlanNeeds.model_validate_json(raw)


def moves_record(visit_id: str) -> str:
    return f"moves:{visit_id}"


def confirm_record(visit: VisitBooked) -> str:
    """The record of the confirmation of ``visit`` at its current start."""
    return command_record(visit.visit_id, f"confirm:{confirmation.salt_of(visit)}")


async def confirmed_now(
    store: CalendarStore, visits: Sequence[tuple[VisitBooked, VisitStatus]]
) -> set[str]:
    """The booked visits among ``visits`` confirmed at their current start (one read)."""
    booked = [v for v, state in visits if state == "booked"]
    found = await store.records([confirm_record(v) for v in booked])
    return {v.visit_id for v, raw in zip(booked, found, strict=True) if raw is not None}


async def confirm(
    runtime: Runtime, principal: Principal, visit_id: str, *, via: ConfirmedVia
) -> Done:
    """Confirm a booked visit at its current start, before it starts; a repeat answers
    the first confirmation, however it came (link, text or desk), while the visit
    stands there. Moved since: it needs confirming again."""

    async def decide(visit: VisitBooked, state: VisitStatus, now: datetime) -> _Decision:
        if (refused := confirmation.refusal(visit, now=now)) is not None:
            raise Refused("started", refused)
        event = confirmation.confirmation(visit, via=via, now=now)
        return _Decision(event, CalendarChange(), salt=confirmation.salt_of(visit))

    return await _run(
        runtime,
        principal,
        visit_id,
        "confirm",
        decide,
        request={},
        record=confirm_record,
        # a confirmation stands only while the visit does: a repeat once it was
        # cancelled or took place is refused like a first request
        guard=lambda visit, state: _must_be_booked(visit, state, "confirmed"),
    )


async def cancel(
    runtime: Runtime, principal: Principal, visit_id: str, *, by: CancelledBy, reason: str | None
) -> Done:
    async def decide(visit: VisitBooked, state: VisitStatus, now: datetime) -> _Decision:
        _must_be_booked(visit, state, "cancelled")
        policy = runtime.chain.policy_for(visit.location_id)
        event = operations.cancellation(visit, by=by, reason=reason, now=now, policy=policy)
        change = CalendarChange(free={visit.visit_id: "cancelled"})
        backfill.slot_freed(change, visit, now=now)  # offered to the waitlist next
        return _Decision(event, change)

    request = {"by": by, "reason": reason}
    return await _run(runtime, principal, visit_id, "cancel", decide, request=request)


async def no_show(runtime: Runtime, principal: Principal, visit_id: str) -> Done:
    async def decide(visit: VisitBooked, state: VisitStatus, now: datetime) -> _Decision:
        _must_be_booked(visit, state, "recorded as a no-show")
        refusal = operations.completion_refusal(visit, now=now, action="recorded as a no-show")
        if refusal is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, refusal)
        event = VisitNoShow(
            visit_id=visit.visit_id,
            plan_id=visit.plan_id,
            client_id=visit.client_id,
            location_id=visit.location_id,
            recorded_at=now,
        )
        return _Decision(event, CalendarChange(status={visit.visit_id: "no_show"}))

    return await _run(runtime, principal, visit_id, "no_show", decide, request={})


@dataclass(frozen=True)
class Outcome:
    pain_before: int
    pain_after: int
    pressure_tolerance: int | None
    techniques: list[str]
    trigger_points: list[TriggerPointOutcome]
    notes: str | None


async def complete(runtime: Runtime, principal: Principal, visit_id: str, outcome: Outcome) -> Done:
    async def decide(visit: VisitBooked, state: VisitStatus, now: datetime) -> _Decision:
        _must_be_booked(visit, state, "completed")
        if (refusal := operations.completion_refusal(visit, now=now)) is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, refusal)
        event = VisitCompleted(
            visit_id=visit.visit_id,
            plan_id=visit.plan_id,
            client_id=visit.client_id,
            location_id=visit.location_id,
            therapist_id=visit.therapist_id,
            pain_before=outcome.pain_before,
            pain_after=outcome.pain_after,
            pressure_tolerance=outcome.pressure_tolerance,
            techniques=outcome.techniques,
            trigger_points=outcome.trigger_points,
            notes=outcome.notes,
            completed_at=now,
        )
        return _Decision(event, CalendarChange(status={visit.visit_id: "completed"}))

    return await _run(
        runtime,
        principal,
        visit_id,
        "complete",
        decide,
        request={
            **dataclasses.asdict(outcome),
            "trigger_points": [tp.model_dump(mode="json") for tp in outcome.trigger_points],
        },
    )


@dataclass(frozen=True)
class MoveReads:
    """What a move of a visit is decided from (``operations.reschedule``)."""

    plan_visits: list[VisitBooked]  # the plan's visits that stand: booked or done
    held: list[BookedInterval]  # the location's calendar from now to the horizon
    needs: SchedulingNeeds


async def move_reads(
    store: CalendarStore, visit: VisitBooked, *, policy: Policy, now: datetime
) -> MoveReads:
    """The reads a move of ``visit`` (or the page proposing one) decides from."""
    others = [
        v
        for v, s in await store.plan_visits(visit.client_id, visit.plan_id)
        # the soreness gap counts from a treatment that happened, too
        if s in ("booked", "completed")
    ]
    held = await store.intervals(visit.location_id, start=now, end=now + policy.horizon)
    known = await plan_needs(store, visit.plan_id)
    needs = known.scheduling if known is not None else SchedulingNeeds()
    return MoveReads(plan_visits=others, held=held, needs=needs)


async def reschedule(
    runtime: Runtime, principal: Principal, visit_id: str, *, start: datetime | None
) -> Done:
    store = CalendarStore(runtime.redis, runtime.keys)

    async def decide(visit: VisitBooked, state: VisitStatus, now: datetime) -> _Decision:
        _must_be_booked(visit, state, "rescheduled")
        policy = runtime.chain.policy_for(visit.location_id)
        reads = await move_reads(store, visit, policy=policy, now=now)
        needs = reads.needs
        if principal.role == "therapist":  # their own visit stays theirs when it moves
            needs = needs.model_copy(update={"therapist_id": principal.therapist_id})
        staffing = await staffing_at(runtime, visit.location_id)
        placed = operations.reschedule(
            visit,
            plan_visits=reads.plan_visits,
            start=start,
            staffing=staffing,
            needs=needs,
            policy=policy,
            existing=reads.held,
            now=now,
        )
        if isinstance(placed, operations.Refusal):
            raise Refused(placed.reason, placed.detail)
        moved = visit.model_copy(
            update={
                "therapist_id": placed.therapist_id,
                "room": placed.room,
                "start": placed.start,
                "end": placed.end,
            }
        )
        event = VisitRescheduled(
            visit_id=visit.visit_id,
            plan_id=visit.plan_id,
            client_id=visit.client_id,
            location_id=visit.location_id,
            therapist_id=moved.therapist_id,
            room=moved.room,
            previous_start=visit.start,
            start=moved.start,
            end=moved.end,
            timezone=visit.timezone,
        )
        moves = int(await store.record(moves_record(visit.visit_id)) or 0) + 1
        change = CalendarChange(hold=[moved], records={moves_record(visit.visit_id): str(moves)})
        change.computed_with(staffing)
        backfill.slot_freed(change, visit, now=now)  # the old time, for the waitlist
        return _Decision(event, change, once=False, salt=str(moves))

    return await _run(runtime, principal, visit_id, "reschedule", decide, request={"start": start})


# --- the shared command flow -----------------------------------------------------------


# what each command does to a visit, for the therapist rule's answer
VERBS = {
    "confirm": "confirm",
    "cancel": "cancel",
    "no_show": "record a no-show for",
    "complete": "complete",
    "reschedule": "reschedule",
}


def authorize(principal: Principal, visit: VisitBooked, command: str) -> None:
    """A therapist's key changes only the therapist's own visits (403 otherwise);
    front desk, admin and service keys change any visit at their locations."""
    if principal.role == "therapist" and principal.therapist_id != visit.therapist_id:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"only the visit's therapist may {VERBS[command]} it"
        )


@dataclass(frozen=True)
class _Decision:
    event: EventData
    change: CalendarChange
    once: bool = True  # cancel, no-show, complete: a repeat answers the first result
    salt: str = ""  # tells apart events of a command that may happen again (a move)


Decide = Callable[[VisitBooked, VisitStatus, datetime], Awaitable[_Decision]]
Guard = Callable[[VisitBooked, VisitStatus], None]


async def _run(
    runtime: Runtime,
    principal: Principal,
    visit_id: str,
    command: str,
    decide: Decide,
    *,
    request: Mapping[str, object],
    record: Callable[[VisitBooked], str] | None = None,
    guard: Guard | None = None,
) -> Done:
    """Decide under the location's lock and apply; a once-only command that was
    already carried out answers its first result if ``request`` is the same.
    ``record``: where that result is kept, from the visit as it stands (default: one
    per visit and command); ``guard``: what must hold even for a repeat."""
    store = CalendarStore(runtime.redis, runtime.keys)
    found = await store.visit(visit_id)
    if found is None or not principal.reaches(found[0].location_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    authorize(principal, found[0], command)
    asked = json.dumps(request, sort_keys=True, default=str)
    for attempt in range(ATTEMPTS):
        async with redis_lock(runtime.redis, store.location_lock_key(found[0].location_id)):
            current = await store.visit(visit_id)
            assert current is not None  # visits are never deleted
            visit, state = current
            if guard is not None:
                guard(visit, state)
            kept = record(visit) if record is not None else command_record(visit_id, command)
            replay = await store.record(kept)
            if replay is not None:
                first = json.loads(replay)
                if first["request"] != asked:
                    _must_be_booked(visit, state, "changed by a different request")
                return Done(_event_of(first), replayed=True)
            now = runtime.clock.now()
            decision = await decide(visit, state, now)
            outgoing = await _outgoing(runtime, store, visit, decision, now)
            change = decision.change
            change.expect[visit_id] = (state, visit.start)  # unless another instance moved it
            change.outbox.update(staged([outgoing]))
            if decision.once:
                change.records[kept] = json.dumps(
                    {
                        "type": decision.event.event_type,
                        "data": decision.event.to_data(),
                        "request": asked,
                    }
                )
            try:
                await store.apply(change, now=now)
            except Overlap:  # another instance wrote first: read again and decide again
                if attempt == ATTEMPTS - 1:
                    raise Refused(
                        "calendar_changed",
                        "the calendar changed while this request was handled; retry",
                    ) from None
                continue
            # published before the lock is let go: a command on this location in
            # another instance, which waits for the lock, publishes after this one,
            # so the topic tells the changes in the order the calendar took them
            await deliver(runtime, store, [outgoing])
        return Done(decision.event)
    raise AssertionError("unreachable")


async def _outgoing(
    runtime: Runtime, store: CalendarStore, visit: VisitBooked, decision: _Decision, now: datetime
) -> Outgoing:
    """The command's event, in the story of the booking it acts on."""
    event = decision.event
    event_id = derived_id(event.event_type, visit.visit_id, decision.salt)
    trace = await booking_trace(runtime, store, visit)
    return runtime.outgoing(
        event, key=visit.client_id, subject=visit.visit_id, event_id=event_id, trace=trace, time=now
    )


async def booking_trace(
    runtime: Runtime, store: CalendarStore, visit: VisitBooked | VisitRescheduled | VisitCancelled
) -> Trace:
    """The trace of an event about a booked visit: the story its booking belongs to
    (``trace_record``), or the plan's when the booking left none."""
    raw = await store.record(trace_record(visit.visit_id))
    known = json.loads(raw) if raw else {}
    return Trace(
        chainid=runtime.chain.chain.id,
        correlationid=known.get("correlationid", visit.plan_id),
        causationid=known.get("causationid"),
        locationid=visit.location_id,
    )


def _must_be_booked(visit: VisitBooked, state: VisitStatus, verb: str) -> None:
    if state != "booked":
        raise Refused(
            state, f"visit {visit.visit_id} is {state.replace('_', '-')}; it cannot be {verb}"
        )


def _event_of(stored: Mapping[str, Any]) -> EventData:
    return EVENT_MODELS[stored["type"]].model_validate(stored["data"])


__all__ = [
    "LINK",
    "TEXT_REPLY",
    "Done",
    "Outcome",
    "PlanNeeds",
    "Refused",
    "cancel",
    "complete",
    "confirm",
    "confirm_record",
    "confirmed_now",
    "needs_record",
    "no_show",
    "plan_needs",
    "reschedule",
]
