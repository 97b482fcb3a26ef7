"""The offer round: every second, on every instance, each due freed slot is
taken under its location's lock and moved one step (``backfill.py`` says what
the steps are): a lapsed offer is closed, and the slot is offered to the next
waiting plan that fits, or finished when none does. The slot's state is read
again under the lock, so two instances running the round only repeat a step
that already happened."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from services.scheduler import waitlist
from services.scheduler.backfill import (
    OfferRecord,
    SlotState,
    StoredPlan,
    WaitingEntry,
    close_offer,
    current_plan,
    load_offer,
    offer_record,
    phase_of,
    plan_offer_record,
    slot_record,
)
from services.scheduler.booking import free_visit_id, interval_of
from services.scheduler.directory import Staffing
from services.scheduler.directory_store import staffing_at
from services.scheduler.outbox import deliver, staged
from services.scheduler.store import CalendarChange, CalendarStore, Overlap
from shared.envelope import Trace, derived_id
from shared.events import VisitBooked
from shared.events.visits import WaitlistOffered
from shared.kafka import Outgoing
from shared.locks import redis_lock
from shared.metrics import WAITLIST_SIZE
from shared.runtime import Runtime

log = logging.getLogger(__name__)

# what an offer says of the visit it holds
_SHARED_WITH_VISIT = set(WaitlistOffered.model_fields) & set(VisitBooked.model_fields)

ROUND_INTERVAL_S = 1.0
CANDIDATE_ATTEMPTS = 5  # a candidate whose hold overlaps after all: try the next one


async def offer_rounds(runtime: Runtime) -> None:
    """Offer every due slot, every second, until the service stops."""
    while True:
        try:
            await offer_due(runtime)
        except Exception:  # keep going: a slot that failed is still due next round
            log.exception("waitlist offer round failed")
        await asyncio.sleep(ROUND_INTERVAL_S)


async def waitlist_sizes(runtime: Runtime, *, every_s: float = 5.0) -> None:
    """Keep ``clinicflow_waitlist_size`` current for every location of the chain."""
    store = CalendarStore(runtime.redis, runtime.keys)
    while True:
        try:
            for location in runtime.chain.locations:
                WAITLIST_SIZE.labels(location.id).set(await store.waiting_count(location.id))
        except Exception as exc:  # Redis away: the gauge keeps its last value
            log.warning("waitlist sizes not read: %r", exc)
        await asyncio.sleep(every_s)


async def offer_due(runtime: Runtime) -> None:
    store = CalendarStore(runtime.redis, runtime.keys)
    due = await store.due_slots(runtime.clock.now())
    raw = {slot_id: await store.record(slot_record(slot_id)) for slot_id in due}
    # the earliest slot first: a waiting client is offered the soonest visit
    for slot_id in sorted(due, key=lambda s: _start_of(raw[s])):
        await advance(runtime, store, slot_id)


def _start_of(raw: str | None) -> datetime:
    return SlotState.model_validate_json(raw).start if raw else datetime.min.replace(tzinfo=UTC)


async def advance(runtime: Runtime, store: CalendarStore, slot_id: str) -> list[Outgoing]:
    """One step for a due slot: close a lapsed offer, then offer the slot to the
    next candidate, or finish the slot when nobody fits; returns what it published."""
    raw = await store.record(slot_record(slot_id))
    if not raw:
        await store.apply(CalendarChange(due={slot_id: None}), now=runtime.clock.now())
        return []
    location_id = SlotState.model_validate_json(raw).location_id
    async with redis_lock(runtime.redis, store.location_lock_key(location_id)):
        slot = SlotState.model_validate_json(await store.record(slot_record(slot_id)) or raw)
        skipped: list[str] = []
        for _ in range(CANDIDATE_ATTEMPTS):
            now = runtime.clock.now()
            change, published = await _step(runtime, store, slot, skipped, now)
            try:
                await store.apply(change, now=now)
            except Overlap as exc:  # the candidate's hold overlaps after all: next one
                if not published:
                    raise
                log.info("waitlist: offer of slot %s skipped: %s", slot_id, exc)
                skipped.append(published[0].envelope.subject)
                continue
            if published:  # in the lock's order, as the commands publish
                await deliver(runtime, store, published)
            return published
        # each skipped candidate stays tried, so the next round goes on from there
        kept = slot.model_copy(update={"tried": [*slot.tried, *skipped]})
        await store.apply(
            CalendarChange(records={slot_record(slot_id): kept.model_dump_json()}),
            now=runtime.clock.now(),
        )
    return []


async def _step(
    runtime: Runtime, store: CalendarStore, slot: SlotState, skipped: list[str], now: datetime
) -> tuple[CalendarChange, list[Outgoing]]:
    change = CalendarChange()
    tried = [*slot.tried, *skipped]
    if slot.current is not None:
        current = await load_offer(store, slot.current)
        if current is not None and current.state == "accepted":
            change.due[slot.slot_id] = None
            return change, []
        if current is not None and current.state == "open":
            if now < current.offer.hold_until:  # still held: look again when it ends
                change.due[slot.slot_id] = current.offer.hold_until
                return change, []
            close_offer(change, current, "lapsed", now=now)
        tried.append(slot.current)
    taken = await _taken(store, slot, releasing=change.free.keys())
    staffing = await staffing_at(runtime, slot.location_id)
    offer = None if taken else await _next_offer(runtime, store, slot, tried, now, staffing)
    if offer is None:
        change.due[slot.slot_id] = None
        change.records[slot_record(slot.slot_id)] = slot.model_copy(
            update={"tried": tried, "current": None}
        ).model_dump_json()
        return change, []
    event, visit, stored = offer
    change.computed_with(staffing)
    change.hold = [visit]
    change.status = {visit.visit_id: "offered"}
    change.records[offer_record(event.offer_id)] = OfferRecord(
        slot_id=slot.slot_id, offer=event, state="open"
    ).model_dump_json()
    change.records[plan_offer_record(event.plan_id)] = event.offer_id
    change.records[slot_record(slot.slot_id)] = slot.model_copy(
        update={"tried": tried, "current": event.offer_id}
    ).model_dump_json()
    change.due[slot.slot_id] = event.hold_until
    trace = Trace(
        chainid=runtime.chain.chain.id,
        correlationid=stored.correlationid,
        locationid=slot.location_id,
    )
    outgoing = runtime.outgoing(
        event,
        key=event.client_id,
        subject=event.offer_id,
        event_id=derived_id(event.event_type, event.offer_id),
        trace=trace,
        time=now,
    )
    change.outbox.update(staged([outgoing]))
    return change, [outgoing]


async def _taken(store: CalendarStore, slot: SlotState, *, releasing: Iterable[str]) -> bool:
    """Someone else holds the slot's therapist or room meanwhile (a booking, a move
    back into it): there is nothing left to offer."""
    ignored = set(releasing)
    return any(
        held.start < slot.end
        and slot.start < held.end
        and held.visit_id not in ignored
        and (held.therapist_id == slot.therapist_id or held.room == slot.room)
        for held in await store.intervals(slot.location_id, start=slot.start, end=slot.end)
    )


async def _next_offer(
    runtime: Runtime,
    store: CalendarStore,
    slot: SlotState,
    tried: list[str],
    now: datetime,
    staffing: Staffing,
) -> tuple[WaitlistOffered, VisitBooked, StoredPlan] | None:
    location = staffing.location
    policy = runtime.chain.policy_for(slot.location_id)
    sessions: list[waitlist.WaitingSession] = []
    plans: dict[str, StoredPlan] = {}
    taken: dict[str, set[str]] = {}  # plan id -> its visits' ids (``booking.free_visit_id``)
    for raw in (await store.waiting(slot.location_id)).values():
        entry = WaitingEntry.model_validate_json(raw)
        if await store.record(plan_offer_record(entry.plan_id)):
            continue  # one open offer per plan: its answer decides where it goes on
        stored = await current_plan(store, entry.plan_id)
        if stored is None or stored.plan().version != entry.plan_version:
            continue  # a revision replaces the entry; this one is on its way out
        plan = plans.setdefault(entry.plan_id, stored).plan()
        visits = await store.plan_visits(entry.client_id, entry.plan_id)
        taken[entry.plan_id] = {v.visit_id for v, state in visits if state != "released"}
        kept = [
            v
            for v, state in visits
            if state in ("booked", "completed") and v.sequence < entry.sequence
        ]
        previous = max(kept, key=lambda v: v.start, default=None)
        sessions.append(
            waitlist.WaitingSession(
                plan_id=plan.plan_id,
                plan_version=plan.version,
                client_id=plan.client_id,
                location_id=plan.location_id,
                sequence=entry.sequence,
                sessions_total=plan.sessions_total,
                visit_minutes=plan.visit_minutes,
                needs=plan.scheduling,
                since=entry.since,
                earliest=waitlist.earliest_after(
                    previous,
                    interval_days=phase_of(plan, entry.sequence).interval_days,
                    gap=policy.min_gap_same_area,
                    zone=location.zone,
                ),
            )
        )
    client_busy = {
        client_id: [
            interval_of(v)
            for v, state in await store.client_visits(client_id)
            if state in ("booked", "offered", "completed")
        ]
        for client_id in {s.client_id for s in sessions}
    }
    offer = waitlist.next_offer(
        slot.freed(),
        waiting=sessions,
        declined_or_expired=set(tried),
        staffing=staffing,
        policy=policy,
        now=now,
        client_busy=client_busy,
        hold=policy.waitlist_hold,
    )
    if offer is None:
        return None
    stored = plans[offer.plan_id]
    plan = stored.plan()
    visit = VisitBooked(
        visit_id=free_visit_id(plan, offer.sequence, taken[offer.plan_id]),
        plan_id=plan.plan_id,
        plan_version=plan.version,
        client_id=plan.client_id,
        location_id=offer.location_id,
        therapist_id=offer.therapist_id,
        room=offer.room,
        start=offer.start,
        end=offer.end,
        timezone=offer.timezone,
        sequence=offer.sequence,
        sessions_total=plan.sessions_total,
        phase=phase_of(plan, offer.sequence).name,
    )
    event = WaitlistOffered(
        **visit.model_dump(include=_SHARED_WITH_VISIT),
        offer_id=offer.offer_id,
        freed_visit_id=slot.visit_id,
        hold_until=offer.hold_until,
        offered_at=now,
    )
    return event, visit, stored
