"""Scheduler wiring: plan events in, bookings and their changes out.

- ``plan.created``: book every session (or waitlist what cannot be placed).
- ``plan.revised``: re-plan the visits still to come - keep what fits the new
  cadence, cancel the rest and book the difference (``replan.replan``).
- ``plan.completed``: cancel the visits still to come (by the clinic); the course
  is retired once the location's ``keep_finished_courses`` has passed
  (``course_sweep.py``), and any event of it after that produces nothing.
- ``visit.cancelled``, ``visit.no_show``: a visit lost leaves the plan a session
  short; a make-up visit keeps the course whole (``makeup.py``). A visit cancelled
  by a plan change leaves nothing to make up: the change re-planned the course.
- What cannot be placed waits, and every visit cancelled here frees its slot
  for the waitlist (``backfill.py``); a plan that changes withdraws its open
  offer.
- ``plan.declined``: nothing was booked for it; nothing to do.
- ``reply.received`` with intent ``confirm`` (``clinic.notifications``): the
  client texted "Y" to the visit the notifier named; the visit is confirmed via
  ``sms`` (``commands.confirm``: once per visit and start). A visit cancelled, done
  or started meanwhile is skipped. The other types of that topic are ignored
  unread (``codec.peek_type``), so the topic costs little more than its fetches.
- ``client.merged``: the retired client's visits become the survivor's
  (``merging.py``); plan events that still name the retired id are handled
  under the survivor, resolved by the read that takes the location's lock.
- ``intake.submitted``, ``client.updated``: the client's name, for the front desk's
  views (``client_names.py``); nothing is published.

Who works where and when is the staff directory's (``directory.py``): each booking
reads the location's view of it and names its version in the calendar change, so
a directory changed meanwhile makes the booking compute again.

A plan event costs three round trips when nothing competes (a revision or a
completion four): two or three pipelines take the location's lock and read what
the decision needs (``plan_reads.begin``), and one script applies the result as
one ``CalendarChange`` and lets the lock go. The change's overlap check is what
rules out double booking (see ``store.py``); an ``Overlap`` means another instance
wrote first, so the handler reads the calendar again and computes afresh. What a
plan event produced is stored with the change, so a redelivered event republishes
the same events (same ids) and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from services.scheduler import backfill, client_names, commands
from services.scheduler.booking import book_plan
from services.scheduler.commands import PlanNeeds, needs_record, trace_record
from services.scheduler.directory import Staffing
from services.scheduler.directory_store import DirectoryStore
from services.scheduler.makeup import make_up
from services.scheduler.merging import follow_merge
from services.scheduler.plan_reads import PlanReads, Replay, Turn
from services.scheduler.replan import replan
from services.scheduler.settling import replayed, unsettled
from services.scheduler.store import CalendarChange, CalendarStore, Overlap
from shared.aliases import merge_follower
from shared.chain import Policy
from shared.codec import encode
from shared.envelope import Envelope, Trace, derived_id
from shared.events import ClientMerged, EventData, PlanCreated, VisitBooked
from shared.events.notifications import ReplyReceived
from shared.events.plans import PlanCompleted, PlanData, PlanDeclined, PlanRevised
from shared.events.visits import BookingWaitlisted, VisitCancelled, VisitNoShow
from shared.kafka import Outgoing
from shared.runtime import Runtime
from shared.streams import Handler, Rejected, StateMoved
from shared.vocabulary import CancelCause

ATTEMPTS = 3
TOOK_PLACE = ("booked", "completed", "no_show")  # with a start in the past
LOST = ("cancelled", "no_show")  # a visit lost to the course, to be made up

Fact = VisitBooked | BookingWaitlisted | VisitCancelled
Lost = VisitCancelled | VisitNoShow
A = TypeVar("A", PlanCreated, PlanRevised, PlanCompleted, Lost)
Decide = Callable[[A, Turn, datetime], Awaitable[tuple[list[Fact], CalendarChange]]]


def handlers(runtime: Runtime) -> Mapping[str, Handler]:
    store = CalendarStore(runtime.redis, runtime.keys)
    directory = DirectoryStore(runtime.redis, runtime.keys, runtime.chain)
    reads = PlanReads(runtime.redis, runtime.keys, store.location_lock_key)
    in_process: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def produce(
        envelope: Envelope, about: A, *, key: str, decide: Decide[A], changes: bool = False
    ) -> Sequence[Outgoing]:
        """Decide under the lock of the plan's location and apply; replay what ``key``
        produced before. ``about`` is handled under the client it names now; a plan
        that ``changes`` is decided with its state (``Turn.plan``)."""
        location_id = about.location_id
        # the consumer runs the records of different clients side by side: plans of one
        # location wait for each other here rather than polling the lock in Redis
        async with in_process[location_id]:
            return await produce_locked(envelope, about, key=key, decide=decide, changes=changes)

    async def produce_locked(
        envelope: Envelope, about: A, *, key: str, decide: Decide[A], changes: bool
    ) -> Sequence[Outgoing]:
        location_id = about.location_id
        horizon = runtime.chain.policy_for(location_id).horizon
        for attempt in range(ATTEMPTS):
            now = runtime.clock.now()
            turn = await reads.begin(
                record=key,
                course=about.plan_id,
                location_id=location_id,
                client_id=about.client_id,
                start=now,
                end=now + horizon,
                plan_id=about.plan_id if changes else None,
            )
            if isinstance(turn, Replay):
                return replayed(turn.produced, turn.client_id)
            try:
                subject = _named(about, turn.client_id)
                facts, change = await decide(subject, turn, now)
                events = events_of(envelope, subject, facts, change, key=key, now=now)
                await store.apply(change, now=now, unlock=turn.lock)
            except Overlap:  # the script let the lock go
                if attempt == ATTEMPTS - 1:
                    raise
                continue
            except BaseException:
                await reads.release(turn.lock)
                raise
            return events
        raise AssertionError("unreachable")

    def events_of(
        envelope: Envelope,
        about: PlanData | PlanCompleted | Lost,
        facts: list[Fact],
        change: CalendarChange,
        *,
        key: str,
        now: datetime,
    ) -> list[Outgoing]:
        """The events of ``facts``, stored with ``change`` as what ``key`` produced,
        with the trace each booked visit's later commands follow."""
        trace = Trace.following(envelope, locationid=about.location_id)
        events = [
            runtime.outgoing(
                fact,
                key=about.client_id,
                subject=_subject(fact),
                event_id=derived_id(fact.event_type, key, _part(fact)),
                trace=trace,
                time=now,
            )
            for fact in facts
        ]
        for fact, event in zip(facts, events, strict=True):
            if isinstance(fact, VisitBooked):
                change.records[trace_record(fact.visit_id)] = json.dumps(
                    {"correlationid": trace.correlationid, "causationid": event.envelope.id}
                )
        change.records[key] = json.dumps([encode(e.envelope).decode() for e in events])
        if events:
            change.settle.append(unsettled(key, envelope))  # envelopes until published
        return events

    async def calendar(plan: PlanData) -> Calendar:
        return Calendar(
            await directory.staffing(plan.location_id),
            runtime.chain.policy_for(plan.location_id),
        )

    def clinic_cancel(
        change: CalendarChange,
        visits: Sequence[VisitBooked],
        now: datetime,
        reason: str,
        cause: CancelCause,
    ) -> list[VisitCancelled]:
        return backfill.cancel_by_clinic(
            change, visits, now=now, reason=reason, cause=cause, policy_of=runtime.chain.policy_for
        )

    async def on_created(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        async def decide(
            plan: PlanCreated, turn: Turn, now: datetime
        ) -> tuple[list[Fact], CalendarChange]:
            at = await calendar(plan)
            outcome = book_plan(
                plan,
                staffing=at.staffing,
                policy=at.policy,
                existing=turn.intervals,
                now=now,
            )
            change = CalendarChange(
                hold=list(outcome.booked),
                records={needs_record(plan.plan_id): PlanNeeds.of(plan).model_dump_json()},
            ).computed_with(at.staffing)
            backfill.remember_plan(change, plan, correlationid=envelope.correlationid)
            backfill.set_waiting(change, plan, outcome.waitlisted, now=now)
            return [*outcome.booked, *outcome.waitlisted], change

        plan = _plan(runtime, data, PlanCreated)
        return await produce(envelope, plan, key=f"{plan.plan_id}:{plan.version}", decide=decide)

    async def on_revised(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        async def decide(
            plan: PlanRevised, turn: Turn, now: datetime
        ) -> tuple[list[Fact], CalendarChange]:
            found = turn.plan
            assert found is not None  # asked for: the plan changes
            visits = found.visits
            coming = [v for v, state in visits if state == "booked" and v.start > now]
            offered = {v.visit_id for v, state in visits if state == "offered"}
            started = [v for v, state in visits if v.start <= now and state in TOOK_PLACE]
            moving = {v.visit_id for v in coming} | offered
            at = await calendar(plan)
            result = replan(
                plan,
                visits=coming,
                anchor=started[-1] if started else None,
                staffing=at.staffing,
                policy=at.policy,
                existing=[i for i in turn.intervals if i.visit_id not in moving],
                now=now,
                taken={v.visit_id for v, _ in visits},
            )
            change = CalendarChange(
                hold=[*result.renumbered, *result.book],
                records={needs_record(plan.plan_id): PlanNeeds.of(plan).model_dump_json()},
            ).computed_with(at.staffing)
            reason = f"plan {plan.plan_id} revised to version {plan.version}"
            cancelled = clinic_cancel(change, result.cancel, now, reason, "plan_revised")
            backfill.remember_plan(change, plan, correlationid=envelope.correlationid)
            backfill.withdraw_offer(change, found.offer, now=now)
            since = found.waiting_since
            backfill.set_waiting(change, plan, result.waitlisted, now=now, since=since)
            return [*cancelled, *result.book, *result.waitlisted], change

        plan = _plan(runtime, data, PlanRevised)
        key = f"{plan.plan_id}:{plan.version}"
        return await produce(envelope, plan, key=key, decide=decide, changes=True)

    async def on_completed(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, PlanCompleted):
            raise Rejected(f"expected plan.completed, got {type(data).__name__}")
        if not runtime.chain.has_location(data.location_id):
            raise Rejected(f"unknown location {data.location_id!r}")

        async def decide(
            done: PlanCompleted, turn: Turn, now: datetime
        ) -> tuple[list[Fact], CalendarChange]:
            state = turn.plan
            assert state is not None  # asked for: the plan changes
            coming = [v for v, s in state.visits if s == "booked" and v.start > now]
            change = CalendarChange(waiting={(done.location_id, done.plan_id): None})
            change.ended[done.plan_id] = done.completed_at  # retired after the period
            change.records[backfill.ended_record(done.plan_id)] = done.outcome  # no make-ups
            reason = f"plan {done.plan_id} completed ({done.outcome})"
            cancelled = clinic_cancel(change, coming, now, reason, "plan_completed")
            backfill.withdraw_offer(change, state.offer, now=now)
            return list(cancelled), change

        key = f"{data.plan_id}:completed"
        return await produce(envelope, data, key=key, decide=decide, changes=True)

    async def on_lost(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        """A cancelled or missed visit: the plan's course made whole (``makeup.py``)."""
        if not isinstance(data, VisitCancelled | VisitNoShow):
            raise Rejected(f"expected a cancel or no-show, got {type(data).__name__}")
        if not runtime.chain.has_location(data.location_id):
            raise Rejected(f"unknown location {data.location_id!r}")

        async def decide(
            gone: Lost, turn: Turn, now: datetime
        ) -> tuple[list[Fact], CalendarChange]:
            state = turn.plan
            assert state is not None  # asked for: the plan changes
            stored = await backfill.current_plan(store, gone.plan_id)
            ended = await store.record(backfill.ended_record(gone.plan_id))
            lost = next(
                (v for v, s in state.visits if v.visit_id == gone.visit_id and s in LOST), None
            )
            if stored is None or ended or lost is None:
                return [], CalendarChange()
            plan = stored.plan()
            moving = {v.visit_id for v, s in state.visits if s == "offered" or v.start > now}
            at = await calendar(plan)
            result = make_up(
                plan,
                lost=lost,
                visits=state.visits,
                staffing=at.staffing,
                policy=at.policy,
                existing=[i for i in turn.intervals if i.visit_id not in moving],
                now=now,
                waiting_from=state.waiting_from,
            )
            if result is None:
                return [], CalendarChange()
            change = CalendarChange(hold=[*result.renumbered, *result.book])
            change.computed_with(at.staffing)
            reason = f"make-up for visit {lost.visit_id}: no longer keeps the cadence"
            cancelled = clinic_cancel(change, result.cancel, now, reason, "makeup")
            # the plan's course moved: an open offer was made for its old place
            backfill.withdraw_offer(change, state.offer, now=now)
            if result.waitlisted:
                since = state.waiting_since
                backfill.set_waiting(change, plan, result.waitlisted, now=now, since=since)
            facts: list[Fact] = [*cancelled, *result.renumbered, *result.book]
            return [*facts, *result.waitlisted], change

        key = f"makeup:{data.visit_id}"
        return await produce(envelope, data, key=key, decide=decide, changes=True)

    async def on_declined(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, PlanDeclined):
            raise Rejected(f"expected plan.declined, got {type(data).__name__}")
        return []  # a declined intake never had a plan, so nothing was booked

    async def on_reply(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        """A text reply: ``confirm`` confirms the visit it names (published by the
        command itself, through the outbox); other intents are the notifier's."""
        if not isinstance(data, ReplyReceived):
            raise Rejected(f"expected reply.received, got {type(data).__name__}")
        if data.intent != "confirm":
            return []
        if data.visit_id is None:
            raise Rejected("a confirm reply names no visit")
        found = await store.visit(data.visit_id)
        if found is None:
            raise Rejected(f"unknown visit {data.visit_id!r}")
        texted_by = await store.aliases.resolve(data.client_id)  # the survivor of a merge
        if texted_by != await store.aliases.resolve(found[0].client_id):
            raise Rejected(f"visit {data.visit_id!r} is another client's")
        try:
            await commands.confirm(runtime, commands.TEXT_REPLY, data.visit_id, via="sms")
        except commands.Refused as refused:
            if refused.reason == "calendar_changed":
                raise StateMoved(refused.detail) from refused
            # cancelled, done or started since the text: nothing left to confirm
        return []

    async def move_merged(merge: ClientMerged, retired: str, survivor: str) -> None:
        await follow_merge(runtime, retired=retired, survivor=survivor, seen_at=merge.location_ids)

    return {
        "plan.created": on_created,
        "plan.revised": on_revised,
        "plan.completed": on_completed,
        "plan.declined": on_declined,
        "visit.cancelled": on_lost,
        "visit.no_show": on_lost,
        "reply.received": on_reply,
        "client.merged": merge_follower(
            store.aliases, client_names.keeping_names(runtime, move_merged)
        ),
        **client_names.handlers(runtime),  # intake.submitted, client.updated
    }


@dataclass(frozen=True)
class Calendar:
    """What booking at one location reads: the directory's view of it, the policy."""

    staffing: Staffing
    policy: Policy


P = TypeVar("P", bound=PlanData)


def _plan(runtime: Runtime, data: EventData, expected: type[P]) -> P:
    if not isinstance(data, expected):
        raise Rejected(f"expected {expected.event_type}, got {type(data).__name__}")
    if not runtime.chain.has_location(data.location_id):
        raise Rejected(f"unknown location {data.location_id!r}")
    return data


def _named(about: A, client_id: str) -> A:
    """``about`` under the client it names now (the survivor of a merge)."""
    if about.client_id == client_id:
        return about
    return about.model_copy(update={"client_id": client_id})


def _subject(fact: Fact) -> str:
    return fact.plan_id if isinstance(fact, BookingWaitlisted) else fact.visit_id


def _part(fact: Fact) -> object:
    """What tells apart the events of one kind that one plan event produces."""
    return fact.visit_id if isinstance(fact, VisitCancelled) else fact.sequence
