"""A change to the staff directory, with what it re-plans, as one calendar change.

Under the locks of every location the change touches (a therapist's: all of
theirs; a closure's or a location policy's: that one), the current directory is
read, the change applied (``directory.apply``: a ``DirectoryError`` is a 422), and
every booked visit still to come there that the new directory has no room for is
moved or cancelled (``directory_replan.py``). One script then writes the new
directory and version, the moves and the cancels, and their events to the
outbox: ``directory.*`` on ``clinic.directory`` (keyed by the chain id), and
``visit.rescheduled``/``visit.cancelled`` with the cause ``staff_unavailable`` on
``clinic.visits``, so the notifier's change notices follow. A cancel is made up
by the scheduler's own reading of ``visit.cancelled`` (``makeup.py``): the session
booked after the plan's last visit, or waitlisted. A slot held for a waiting client
(an open waitlist offer) that the new directory does not have is withdrawn.

The script refuses the write if the directory moved on meanwhile (another
change) or a visit it moves changed (a command, a booking): the change is then
computed again, up to ``ATTEMPTS`` times.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fastapi import HTTPException, status

from services.scheduler import backfill
from services.scheduler.booking import first_sequence, interval_of, sessions_from
from services.scheduler.commands import booking_trace, moves_record, plan_needs
from services.scheduler.directory import (
    AddClosure,
    AddException,
    Change,
    Directory,
    RemoveClosure,
    RemoveException,
    SetHours,
    SetPolicy,
    apply,
    pruned,
    staffing,
)
from services.scheduler.directory_replan import Booked, replan_unfit, unfit
from services.scheduler.directory_store import DirectoryStore
from services.scheduler.outbox import deliver, staged
from services.scheduler.replan import staffed
from services.scheduler.store import CalendarChange, CalendarStore, Overlap
from shared.envelope import Trace, derived_id
from shared.events.base import EventData
from shared.events.plans import SchedulingNeeds
from shared.events.visits import VisitBooked, VisitCancelled, VisitRescheduled
from shared.kafka import Outgoing
from shared.locks import redis_lock
from shared.runtime import Runtime

ATTEMPTS = 3
KEPT = timedelta(days=30)  # exceptions and closures that ended longer ago leave the document
REASON = "the therapist or the location is not available then (staff directory)"

# the event of a change, from the directory it made and how many visits it re-planned
EventOf = Callable[[Directory, int, datetime], EventData]


@dataclass
class Replanned:
    moved: list[VisitRescheduled] = field(default_factory=list)
    cancelled: list[VisitCancelled] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.moved) + len(self.cancelled)


@dataclass(frozen=True)
class Applied:
    directory: Directory
    event: EventData
    replanned: Replanned


def touched_locations(runtime: Runtime, change: Change, current: Directory) -> list[str]:
    """The locations whose visits a change may re-plan, sorted (the lock order)."""
    chain = runtime.chain
    if isinstance(change, SetHours):
        return [change.location_id]
    if isinstance(change, AddException | RemoveException):
        if isinstance(change, AddException):
            therapist_id = change.exception.therapist_id
        else:
            found = current.exceptions.get(change.exception_id)
            therapist_id = found.therapist_id if found else ""
        return sorted(
            {loc for t in chain.therapists if t.id == therapist_id for loc in t.locations}
        )
    if isinstance(change, AddClosure):
        return [change.closure.location_id]
    if isinstance(change, RemoveClosure):
        closure = current.closures.get(change.closure_id)
        return [closure.location_id] if closure else []
    assert isinstance(change, SetPolicy)
    if change.location_id is not None:
        return [change.location_id]
    return sorted(loc.id for loc in chain.locations)


async def change_directory(
    runtime: Runtime, change_of: Callable[[Directory], Change], event_of: EventOf
) -> Applied:
    """Apply the change ``change_of`` builds from the current directory, re-plan what
    it touches, publish; ``DirectoryError`` if the directory cannot take it."""
    store = CalendarStore(runtime.redis, runtime.keys)
    directory = DirectoryStore(runtime.redis, runtime.keys, runtime.chain)
    for attempt in range(ATTEMPTS):
        current = await directory.current(fresh=True)
        change = change_of(current)
        locations = touched_locations(runtime, change, current)
        async with AsyncExitStack() as locks:
            for location_id in locations:
                lock = store.location_lock_key(location_id)
                await locks.enter_async_context(redis_lock(runtime.redis, lock))
            current = await directory.current(fresh=True)
            change = change_of(current)
            now = runtime.clock.now()
            updated = pruned(apply(current, change, runtime.chain), before=now.date() - KEPT)
            calendar = CalendarChange(directory=current.version, directory_document=updated)
            replanned = Replanned()
            for location_id in locations:
                await _replan_location(
                    runtime, store, updated, location_id, now, calendar, replanned
                )
            event = event_of(updated, replanned.count, now)
            outgoing = [
                _directory_event(runtime, event, updated, now),
                *[await _visit_event(runtime, store, fact, now) for fact in replanned.moved],
                *[await _visit_event(runtime, store, fact, now) for fact in replanned.cancelled],
            ]
            calendar.outbox.update(staged(outgoing))
            try:
                await store.apply(calendar, now=now)
            except Overlap:
                if attempt == ATTEMPTS - 1:
                    raise HTTPException(
                        status.HTTP_409_CONFLICT,
                        "the calendar or the directory changed while this change was made; retry",
                    ) from None
                continue
            directory.forget()
            await deliver(runtime, store, outgoing)
        return Applied(directory=updated, event=event, replanned=replanned)
    raise AssertionError("unreachable")


async def _replan_location(
    runtime: Runtime,
    store: CalendarStore,
    updated: Directory,
    location_id: str,
    now: datetime,
    calendar: CalendarChange,
    replanned: Replanned,
) -> None:
    """Move or cancel what the new directory has no room for at one location."""
    view = staffing(runtime.chain, updated, location_id)
    policy = runtime.chain.policy_for(location_id)
    calendar.turnover[location_id] = view.turnover
    if view.max_visits_per_day is not None:
        calendar.caps[location_id] = (view.max_visits_per_day, view.location.zone)
    held = await store.intervals(location_id, start=now, end=now + policy.horizon)
    visits = await store.visits(sorted({i.visit_id for i in held}))
    # a slot held for a waiting client that the directory no longer has: the offer goes
    withdrawn = [v for v, s in visits if s == "offered" and v.start > now and not staffed(v, view)]
    for visit in withdrawn:
        await _withdraw_offer(store, visit, calendar, now)
    gone_offers = {v.visit_id for v in withdrawn}
    upcoming = [v for v, s in visits if s == "booked" and v.start > now]
    fixed = [
        interval_of(v)
        for v, s in visits
        if not (s == "booked" and v.start > now) and v.visit_id not in gone_offers
    ]
    held = [i for i in held if i.visit_id not in gone_offers]
    touched = unfit(upcoming, staffing=view, fixed=fixed)
    if not touched:
        return
    moving = [await _booked(store, visit) for visit in touched]
    gone = {v.visit_id for v in touched}
    outcome = replan_unfit(
        moving,
        staffing=view,
        policy=policy,
        calendar=[i for i in held if i.visit_id not in gone],
        now=now,
    )
    for old, new in outcome.moved:
        calendar.hold.append(new)
        calendar.expect[old.visit_id] = ("booked", old.start)
        # counted as a reschedule counts its move: the calendar entry's SEQUENCE grows
        moves = int(await store.record(moves_record(old.visit_id)) or 0) + 1
        calendar.records[moves_record(old.visit_id)] = str(moves)
        backfill.slot_freed(calendar, old, now=now)
        replanned.moved.append(
            VisitRescheduled(
                visit_id=new.visit_id,
                plan_id=new.plan_id,
                client_id=new.client_id,
                location_id=new.location_id,
                therapist_id=new.therapist_id,
                room=new.room,
                previous_start=old.start,
                start=new.start,
                end=new.end,
                timezone=new.timezone,
                cause="staff_unavailable",
            )
        )
    for visit in outcome.cancelled:
        calendar.expect[visit.visit_id] = ("booked", visit.start)
    replanned.cancelled += backfill.cancel_by_clinic(
        calendar,
        outcome.cancelled,
        now=now,
        reason=REASON,
        cause="staff_unavailable",
        policy_of=runtime.chain.policy_for,
    )


async def _withdraw_offer(
    store: CalendarStore, visit: VisitBooked, calendar: CalendarChange, now: datetime
) -> None:
    """Close the open offer that holds ``visit``: the slot is released, and its offer
    round finds nobody for it (``waitlist.candidates`` reads the directory)."""
    offer_id = await store.record(backfill.plan_offer_record(visit.plan_id))
    record = await backfill.load_offer(store, offer_id) if offer_id else None
    if record is not None and record.state == "open" and record.offer.visit_id == visit.visit_id:
        backfill.close_offer(calendar, record, "withdrawn", now=now)


async def _booked(store: CalendarStore, visit: VisitBooked) -> Booked:
    """A visit to move, with its plan's standing visits, needs and cadence."""
    plan_visits = [
        v for v, s in await store.plan_visits(visit.client_id, visit.plan_id) if s in STANDING
    ]
    needs = await plan_needs(store, visit.plan_id)
    stored = await backfill.current_plan(store, visit.plan_id)
    cadence: dict[int, int] = {}
    if stored is not None:
        plan = stored.plan()
        cadence = {q: p.interval_days for q, p in sessions_from(plan, first_sequence(plan))}
    return Booked(
        visit=visit,
        plan_visits=plan_visits,
        needs=needs.scheduling if needs is not None else SchedulingNeeds(),
        interval_days=cadence,
    )


STANDING = ("booked", "completed")


def _directory_event(
    runtime: Runtime, event: EventData, updated: Directory, now: datetime
) -> Outgoing:
    chain_id = runtime.chain.chain.id
    trace = Trace(
        chainid=chain_id,
        correlationid=derived_id("directory", chain_id, updated.version),
        causationid=None,
        locationid=getattr(event, "location_id", None),
    )
    return runtime.outgoing(
        event,
        key=chain_id,
        subject=f"directory/{updated.version}",
        event_id=derived_id(event.event_type, chain_id, updated.version),
        trace=trace,
        time=now,
    )


async def _visit_event(
    runtime: Runtime,
    store: CalendarStore,
    fact: VisitRescheduled | VisitCancelled,
    now: datetime,
) -> Outgoing:
    """A re-planned visit's event, in the story of its booking."""
    trace = await booking_trace(runtime, store, fact)
    salt = fact.start.isoformat() if isinstance(fact, VisitRescheduled) else "staff"
    return runtime.outgoing(
        fact,
        key=fact.client_id,
        subject=fact.visit_id,
        event_id=derived_id(fact.event_type, fact.visit_id, "directory", salt),
        trace=trace,
        time=now,
    )


__all__ = ["ATTEMPTS", "Applied", "Replanned", "change_directory", "touched_locations"]
