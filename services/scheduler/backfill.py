"""Backfill: a freed slot goes to the waitlist, one client at a time.

- A plan whose sessions could not all be placed waits (``waiting:<loc>``, one
  entry per plan: its first waiting session; booking waitlists every later one
  too, because the cadence cannot continue past a missing visit).
- A visit still to come that is cancelled or moved away frees a slot: the change
  that cancels or moves it also stores the slot and marks it due (``slot_freed``).
- The offer round (``offer_round.py``, every second, on every instance) takes each
  due slot under its location's lock and offers it to the first waiting session
  that fits (``waitlist.next_offer``): the plan's visit is held in the calendar
  with status ``offered`` until the hold ends, and ``waitlist.offered`` goes out
  through the outbox. When the hold lapses, the client declines, or the plan
  changes (``withdraw_offer``), the visit is released and the slot is due again:
  the next round offers it to the next candidate. Nobody left: the slot is done.
- Accepting in time books the visit and the rest of the plan after it
  (``offer_commands.accept``).

Every step is one ``CalendarChange``, so an offered visit is held under the
same overlap check as any booking, and two instances running the round at once
only repeat a step that already happened (the slot's state is read again under
the lock).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel

from services.scheduler import operations, waitlist
from services.scheduler.booking import first_sequence, sessions_from
from services.scheduler.store import CalendarChange, CalendarStore
from shared.chain import Policy
from shared.envelope import derived_id
from shared.events import EVENT_MODELS, VisitBooked
from shared.events.plans import Phase, PlanData
from shared.events.visits import BookingWaitlisted, VisitCancelled, WaitlistOffered
from shared.vocabulary import CancelCause

log = logging.getLogger(__name__)

OfferState = Literal["open", "accepted", "declined", "lapsed", "withdrawn"]


def plan_record(plan_id: str) -> str:
    return f"plan:{plan_id}"


def offer_record(offer_id: str) -> str:
    return f"offer:{offer_id}"


def slot_record(slot_id: str) -> str:
    return f"slot:{slot_id}"


def ended_record(plan_id: str) -> str:
    """The plan's completion outcome, once it has ended: nothing of it is made up."""
    return f"ended:{plan_id}"


def plan_offer_record(plan_id: str) -> str:
    """The plan's open offer, if any ("" when none)."""
    return f"plan-offer:{plan_id}"


class StoredPlan(BaseModel):
    """The plan's current version, as booking needs it (``remember_plan``), and the
    story it belongs to."""

    type: str
    data: dict[str, object]
    correlationid: str

    def plan(self) -> PlanData:
        model = EVENT_MODELS[self.type]
        plan = model.model_validate(self.data)
        assert isinstance(plan, PlanData)
        return plan


class WaitingEntry(BaseModel):
    """A plan that waits: from ``sequence`` on, since ``since``, and why (the first
    waitlisted session's ``reason``, ``detail`` and ``cadence_note``; None in entries
    stored before they were kept)."""

    plan_id: str
    plan_version: int
    client_id: str
    location_id: str
    sequence: int
    sessions_total: int
    since: AwareDatetime
    reason: str | None = None
    detail: str | None = None
    cadence_note: str | None = None


class SlotState(BaseModel):
    """A freed slot: where and when, the offers already tried, the open one."""

    slot_id: str
    visit_id: str
    location_id: str
    timezone: str
    therapist_id: str
    room: int
    start: AwareDatetime
    end: AwareDatetime
    tried: list[str] = []
    current: str | None = None

    def freed(self) -> waitlist.FreedSlot:
        return waitlist.FreedSlot(
            visit_id=self.visit_id,
            location_id=self.location_id,
            timezone=self.timezone,
            therapist_id=self.therapist_id,
            room=self.room,
            start=self.start,
            end=self.end,
        )


class OfferRecord(BaseModel):
    """An offer as it stands, with the events its acceptance published."""

    slot_id: str
    offer: WaitlistOffered
    state: OfferState
    closed_at: AwareDatetime | None = None
    published: list[str] = []  # encoded envelopes, for a repeated accept


# --- what plan events and cancellations write -------------------------------------------


def remember_plan(change: CalendarChange, plan: PlanData, *, correlationid: str) -> None:
    """Keep the plan's current version without its treatment protocol: the planner's
    and the therapist's, never read here (a third of the plan's bytes)."""
    data = {**plan.to_data(), "protocol": []}
    stored = StoredPlan(type=plan.event_type, data=data, correlationid=correlationid)
    change.records[plan_record(plan.plan_id)] = stored.model_dump_json()


async def current_plan(store: CalendarStore, plan_id: str) -> StoredPlan | None:
    raw = await store.record(plan_record(plan_id))
    return StoredPlan.model_validate_json(raw) if raw else None


def phase_of(plan: PlanData, sequence: int) -> Phase:
    return dict(sessions_from(plan, first_sequence(plan)))[sequence]


def set_waiting(
    change: CalendarChange,
    plan: PlanData,
    waitlisted: list[BookingWaitlisted],
    *,
    now: datetime,
    since: datetime | None = None,
) -> None:
    """The plan waits from its first waitlisted session on, or no longer waits.
    ``since``: when it started waiting, kept across revisions and acceptances."""
    key = (plan.location_id, plan.plan_id)
    if not waitlisted:
        change.waiting[key] = None
        return
    first = min(waitlisted, key=lambda w: w.sequence)
    change.waiting[key] = WaitingEntry(
        plan_id=plan.plan_id,
        plan_version=plan.version,
        client_id=plan.client_id,
        location_id=plan.location_id,
        sequence=first.sequence,
        sessions_total=plan.sessions_total,
        since=since if since is not None else now,
        reason=first.reason,
        detail=first.detail,
        cadence_note=first.cadence_note,
    ).model_dump_json()


async def waiting_since(store: CalendarStore, location_id: str, plan_id: str) -> datetime | None:
    raw = (await store.waiting(location_id)).get(plan_id)
    return WaitingEntry.model_validate_json(raw).since if raw else None


def cancel_by_clinic(
    change: CalendarChange,
    visits: Sequence[VisitBooked],
    *,
    now: datetime,
    reason: str,
    cause: CancelCause,
    policy_of: Callable[[str], Policy],
) -> list[VisitCancelled]:
    """Cancel ``visits`` by the clinic within ``change`` for ``cause``: each leaves the
    calendar and frees its slot for the waitlist; the events that say so.
    ``policy_of``: the policy of a location."""
    cancelled = []
    for visit in visits:
        cancelled.append(
            operations.cancellation(
                visit,
                by="clinic",
                reason=reason,
                now=now,
                policy=policy_of(visit.location_id),
                cause=cause,
            )
        )
        change.free[visit.visit_id] = "cancelled"
        slot_freed(change, visit, now=now)
    return cancelled


def slot_freed(change: CalendarChange, visit: VisitBooked, *, now: datetime) -> None:
    """A visit still to come leaves the calendar: offer its slot in the next round."""
    if visit.start <= now:
        return
    slot_id = derived_id("slot", visit.visit_id, visit.start.isoformat())
    slot = SlotState(
        slot_id=slot_id,
        visit_id=visit.visit_id,
        location_id=visit.location_id,
        timezone=visit.timezone,
        therapist_id=visit.therapist_id,
        room=visit.room,
        start=visit.start,
        end=visit.end,
    )
    change.records[slot_record(slot_id)] = slot.model_dump_json()
    change.due[slot_id] = now


async def load_offer(store: CalendarStore, offer_id: str) -> OfferRecord | None:
    raw = await store.record(offer_record(offer_id))
    return OfferRecord.model_validate_json(raw) if raw else None


def close_offer(
    change: CalendarChange, record: OfferRecord, state: OfferState, *, now: datetime
) -> None:
    """The offer ends without a booking: its visit is released and the slot is due
    again, for the next candidate."""
    offer = record.offer
    closed = record.model_copy(update={"state": state, "closed_at": now})
    change.records[offer_record(offer.offer_id)] = closed.model_dump_json()
    change.records[plan_offer_record(offer.plan_id)] = ""
    change.free[offer.visit_id] = "released"
    change.expect[offer.visit_id] = ("offered", offer.start)
    change.due[record.slot_id] = now


def withdraw_offer(change: CalendarChange, record: OfferRecord | None, *, now: datetime) -> None:
    """The plan changed (revised, completed): its offer (``record``, as read with the
    plan's state), if still open, no longer stands."""
    if record is not None and record.state == "open":
        close_offer(change, record, "withdrawn", now=now)
