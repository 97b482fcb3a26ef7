"""What a waiting client does with an offered slot: accept it, or decline it.

Accepting while the hold lasts books the offered visit and then the rest of the
plan after it, with the cadence and soreness gap counted from the accepted visit
(``booking.book_sessions``); what still does not fit keeps waiting. Declining
releases the visit and the slot goes to the next candidate in the next round
(``backfill``). Both happen once: asking again answers the same, and an offer
that closed otherwise (lapsed, withdrawn) is a 409 that says so."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException, status

from services.scheduler import waitlist
from services.scheduler.backfill import (
    OfferRecord,
    close_offer,
    current_plan,
    load_offer,
    offer_record,
    plan_offer_record,
    set_waiting,
    waiting_since,
)
from services.scheduler.booking import book_sessions, first_sequence, sessions_from
from services.scheduler.commands import trace_record
from services.scheduler.directory_store import staffing_at
from services.scheduler.outbox import deliver, staged, unstaged
from services.scheduler.store import CalendarChange, CalendarStore, Overlap
from shared.envelope import Trace, derived_id
from shared.events.visits import VisitBooked
from shared.kafka import Outgoing
from shared.locks import redis_lock
from shared.runtime import Runtime

Reach = Callable[[str], bool]  # may the caller act at this location?


@dataclass(frozen=True)
class Answer:
    record: OfferRecord
    booked: list[VisitBooked]
    replayed: bool = False


async def accept(runtime: Runtime, offer_id: str, *, reach: Reach) -> Answer:
    store = CalendarStore(runtime.redis, runtime.keys)
    found = await _found(store, offer_id, reach)
    async with redis_lock(runtime.redis, store.location_lock_key(found.offer.location_id)):
        record = await load_offer(store, offer_id) or found
        if record.state == "accepted":
            return Answer(record, _booked(record), replayed=True)
        _must_be_open(record, "accepted")
        now = runtime.clock.now()
        offer = record.offer
        refusal = waitlist.accept_refusal(_as_offer(record), now=now)
        if refusal is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, refusal)
        stored = await current_plan(store, offer.plan_id)
        offered = await store.visit(offer.visit_id)
        if stored is None or offered is None or stored.plan().version != offer.plan_version:
            raise HTTPException(status.HTTP_409_CONFLICT, "the plan changed; the offer is void")
        plan = stored.plan()
        visit = offered[0]
        staffing = await staffing_at(runtime, offer.location_id)
        policy = runtime.chain.policy_for(offer.location_id)
        visits = await store.plan_visits(plan.client_id, plan.plan_id)
        kept = [v for v, state in visits if state in ("booked", "completed")]
        rest = book_sessions(
            plan,
            [(q, p) for q, p in sessions_from(plan, first_sequence(plan)) if q > offer.sequence],
            staffing=staffing,
            policy=policy,
            existing=await store.intervals(offer.location_id, start=now, end=now + policy.horizon),
            now=now,
            held=[*kept, visit],
            taken={v.visit_id for v, state in visits if state != "released"} | {visit.visit_id},
        )
        booked = [visit, *rest.booked]
        trace = Trace(
            chainid=runtime.chain.chain.id,
            correlationid=stored.correlationid,
            locationid=offer.location_id,
        )
        published = [
            runtime.outgoing(
                v,
                key=v.client_id,
                subject=v.visit_id,
                event_id=derived_id(v.event_type, offer_id, v.sequence),
                trace=trace,
                time=now,
            )
            for v in booked
        ]
        change = CalendarChange(
            hold=rest.booked,
            status={visit.visit_id: "booked"},
            expect={visit.visit_id: ("offered", visit.start)},
            due={record.slot_id: None},
        ).computed_with(staffing)
        accepted = record.model_copy(
            update={
                "state": "accepted",
                "closed_at": now,
                "published": list(staged(published).values()),
            }
        )
        change.records[offer_record(offer_id)] = accepted.model_dump_json()
        change.records[plan_offer_record(plan.plan_id)] = ""
        for v, event in zip(booked, published, strict=True):
            change.records[trace_record(v.visit_id)] = json.dumps(
                {"correlationid": trace.correlationid, "causationid": event.envelope.id}
            )
        since = await waiting_since(store, plan.location_id, plan.plan_id)
        set_waiting(change, plan, rest.waitlisted, now=now, since=since)
        change.outbox.update(staged(published))
        try:
            await store.apply(change, now=now)
        except Overlap:
            raise HTTPException(
                status.HTTP_409_CONFLICT, "the calendar changed while this request was handled"
            ) from None
        await deliver(runtime, store, published)  # in the lock's order, as commands do
    return Answer(accepted, booked)


async def decline(runtime: Runtime, offer_id: str, *, reach: Reach) -> Answer:
    store = CalendarStore(runtime.redis, runtime.keys)
    found = await _found(store, offer_id, reach)
    async with redis_lock(runtime.redis, store.location_lock_key(found.offer.location_id)):
        record = await load_offer(store, offer_id) or found
        if record.state == "declined":
            return Answer(record, [], replayed=True)
        _must_be_open(record, "declined")
        now = runtime.clock.now()
        change = CalendarChange()
        close_offer(change, record, "declined", now=now)
        await store.apply(change, now=now)
    declined = await load_offer(store, offer_id)
    assert declined is not None
    return Answer(declined, [])


async def offer_of(store: CalendarStore, offer_id: str, *, reach: Reach) -> OfferRecord:
    return await _found(store, offer_id, reach)


async def _found(store: CalendarStore, offer_id: str, reach: Reach) -> OfferRecord:
    record = await load_offer(store, offer_id)
    if record is None or not reach(record.offer.location_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return record


def _must_be_open(record: OfferRecord, verb: str) -> None:
    if record.state != "open":
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"this offer is {record.state}; it cannot be {verb}"
        )


def _booked(record: OfferRecord) -> list[VisitBooked]:
    items: list[Outgoing] = [unstaged(raw) for raw in record.published]
    return [VisitBooked.model_validate(item.envelope.data) for item in items]


def _as_offer(record: OfferRecord) -> waitlist.Offer:
    o = record.offer
    return waitlist.Offer(
        offer_id=o.offer_id,
        plan_id=o.plan_id,
        plan_version=o.plan_version,
        client_id=o.client_id,
        location_id=o.location_id,
        sequence=o.sequence,
        therapist_id=o.therapist_id,
        room=o.room,
        start=o.start,
        end=o.end,
        timezone=o.timezone,
        hold_until=o.hold_until,
        offered_at=o.offered_at,
    )
