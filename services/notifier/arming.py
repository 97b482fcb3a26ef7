"""Arming notifications for a deployment: the chain's policy and the client's
contact applied to the pure rules (``timing.reminder_times``,
``timing.missed_reminders``, ``notices.notice``), and what that arms written in
one transaction.

A handler reads once (``NotificationStore.reach``: who the client is now, after
merges, and how to reach them), decides, and writes once (``Writes``). The
visit reminders of a run of ``visit.booked`` for one client are read and
written together the same way (``booked_run``): its outputs are exactly those of
``booked`` on each visit in turn, whose reminders are independent of each other.

A notification of a client with no contact yet waits for it (``Writes.wait``,
services/notifier/waits.py); one that was armed before (a redelivered cause) is
announced as it was stored and first announced, byte for byte."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar, cast

from services.notifier.announcements import kept, restored
from services.notifier.courses import plan_of
from services.notifier.delivery import Contact, after_quiet_hours
from services.notifier.notices import TOO_LATE, Draft, Notice, notice
from services.notifier.store import NotificationStore
from services.notifier.timing import (
    missed_reminders,
    next_outside_quiet_hours,
    offset_label,
    reminder_times,
)
from services.notifier.writes import Outcome, Writes
from shared.aliases import client_of, rehomed
from shared.chain import Location
from shared.envelope import Envelope, Trace, derived_id
from shared.events import EventData, VisitBooked
from shared.events.visits import VisitRescheduled
from shared.kafka import Outgoing
from shared.runtime import Runtime
from shared.streams import Rejected
from shared.vocabulary import Channel, NotificationKind

E = TypeVar("E", bound=EventData)
Placed = tuple[Draft, Contact | None]
DECIDE_AGAIN = 3  # a client can become known between the read and the write this often


class Arming:
    def __init__(self, runtime: Runtime, configured: frozenset[Channel]) -> None:
        self.runtime = runtime
        self.store = NotificationStore(runtime.redis, runtime.keys)
        self.channels: frozenset[Channel] = configured or frozenset({"console"})
        self.production = runtime.base.settings.env == "production"

    def location_of(self, location_id: str) -> Location:
        if not self.runtime.chain.has_location(location_id):
            raise Rejected(f"unknown location {location_id!r}")
        return self.runtime.chain.location(location_id)

    def quiet_hours(self, contact: Contact | None, location_id: str) -> str:
        """The client's own window when they set one, else the location's."""
        if contact is not None and contact.quiet_hours:
            return contact.quiet_hours
        return self.runtime.chain.policy_for(location_id).quiet_hours

    async def reached(self, data: E) -> tuple[E, Contact | None]:
        """``data`` as if about the client it names now (the survivor of a merge:
        ``shared.aliases``), and that client's contact, in one read."""
        [found] = await self.reached_all([data])
        return found

    async def reached_all(self, events: Sequence[E]) -> list[tuple[E, Contact | None]]:
        """``reached`` of each of ``events``, all in the one read (none when no event
        names a client)."""
        return (await self.reached_and_read(events, []))[0]

    async def reached_and_read(
        self, events: Sequence[E], keys: Sequence[str]
    ) -> tuple[list[tuple[E, Contact | None]], list[Any]]:
        """``reached_all``, and the values at ``keys``, in the same one read."""
        found, also, _ = await self.reached_read_retired(events, keys)
        return found, also

    async def reached_course(self, data: E) -> tuple[E, Contact | None, bool]:
        """``reached``, and whether the course ``data`` is of was retired
        (services/notifier/courses.py: then it arms nothing), in the same read."""
        [(event, contact)], _, retired = await self.reached_read_retired([data], [])
        return event, contact, bool(retired)

    async def reached_read_retired(
        self, events: Sequence[E], keys: Sequence[str]
    ) -> tuple[list[tuple[E, Contact | None]], list[Any], set[str]]:
        """``reached_and_read``, and the plan ids among ``events``' courses that were
        retired, in the same one read."""
        named = [client_of(data) for data in events]
        plans = [p for data in events if (p := plan_of(data)) is not None]
        reach, also, retired = await self.store.reach_read_retired(
            [c for c in named if c is not None], keys, plans
        )
        found: list[tuple[E, Contact | None]] = []
        for data, client_id in zip(events, named, strict=True):
            if client_id is None:
                found.append((data, None))
            else:
                who = reach[client_id]
                found.append((cast(E, rehomed(data, who.client_id)), who.contact))
        return found, also, retired

    def notice(self, draft: Draft, contact: Contact | None, *, now: datetime) -> Notice:
        """``notices.notice`` on this deployment's channels."""
        return notice(draft, contact, configured=self.channels, production=self.production, now=now)

    def soon(
        self,
        cause: Envelope,
        contact: Contact | None,
        *,
        kind: NotificationKind,
        cause_id: str,
        client_id: str,
        location_id: str,
        at: datetime,
        visit_id: str | None = None,
        context: dict[str, Any] | None = None,
        quiet: bool = True,
    ) -> Draft:
        """One message due at ``at``, or at the end of the quiet hours it falls in."""
        location = self.location_of(location_id)
        due = at
        if quiet:
            window = self.quiet_hours(contact, location_id)
            due = after_quiet_hours(at, quiet_hours=window, zone=location.zone)
        return Draft(
            trace=Trace.following(cause, locationid=location_id),
            kind=kind,
            notification_id=derived_id(kind, cause_id),
            client_id=client_id,
            location_id=location_id,
            due_at=due,
            visit_id=visit_id,
            context=context,
            moved_for_quiet_hours=due != at,
        )

    def reminders(
        self,
        cause: Envelope,
        visit: VisitBooked | VisitRescheduled,
        contact: Contact | None,
        *,
        now: datetime,
    ) -> list[Draft]:
        """The policy's reminders of one visit still to come, outside quiet hours; and
        those that fell due since the visit was booked (``cause``'s time): the last
        of them late, the others too late (``timing.missed_reminders``)."""
        location = self.location_of(visit.location_id)
        policy = self.runtime.chain.policy_for(visit.location_id)
        quiet_hours = self.quiet_hours(contact, visit.location_id)
        timed: dict[str, Any] = {
            "visit_start": visit.start,
            "offsets": policy.reminders,
            "quiet_hours": quiet_hours,
            "zone": location.zone,
            "now": now,
        }
        missed = missed_reminders(
            **timed, booked_at=cause.time, min_lead=policy.late_reminder_min_lead
        )
        base: dict[str, Any] = {
            "trace": Trace.following(cause, locationid=visit.location_id),
            "kind": "reminder",
            "client_id": visit.client_id,
            "location_id": visit.location_id,
            "visit_id": visit.visit_id,
            "context": {"visit_start": visit.start.isoformat(), "plan_id": visit.plan_id},
        }

        def reminder_id(offset: str) -> str:
            return derived_id("reminder", visit.visit_id, offset, visit.start.isoformat())

        drafts = []
        for late in missed:
            label = offset_label(late.offset)
            drafts.append(
                Draft(
                    **base,
                    notification_id=reminder_id(label),
                    due_at=late.late_at or late.planned_at,
                    offset=label,
                    moved_for_quiet_hours=late.late_at is not None and late.late_at != now,
                    planned_due_at=late.planned_at if late.late_at is not None else None,
                    reason=None if late.late_at is not None else TOO_LATE,
                )
            )
        for reminder in reminder_times(**timed):
            label = offset_label(reminder.offset)
            drafts.append(
                Draft(
                    **base,
                    notification_id=reminder_id(label),
                    due_at=reminder.due_at,
                    offset=label,
                    moved_for_quiet_hours=reminder.moved_for_quiet_hours,
                )
            )
        return drafts

    def as_of(self, draft: Draft, contact: Contact | None, *, now: datetime) -> Draft:
        """A draft that waited, as it goes ``now``: when its time passed meanwhile, a
        reminder goes late (or is too late, as ``timing.missed_reminders`` says), an
        offer whose hold ended is too late, anything else goes now, outside quiet hours."""
        if draft.due_at >= now or draft.reason is not None:
            return draft
        zone = self.location_of(draft.location_id).zone
        context = draft.context or {}
        if draft.kind == "waitlist_offer":
            hold = datetime.fromisoformat(str(context.get("hold_until", now.isoformat())))
            return replace(draft, reason=TOO_LATE) if hold <= now else replace(draft, due_at=now)
        window = self.quiet_hours(contact, draft.location_id)
        goes = next_outside_quiet_hours(now, quiet_hours=window, zone=zone)
        if draft.kind != "reminder":
            return replace(draft, due_at=goes, moved_for_quiet_hours=goes != now)
        lead = self.runtime.chain.policy_for(draft.location_id).late_reminder_min_lead
        if datetime.fromisoformat(str(context["visit_start"])) - goes < lead:
            return replace(draft, reason=TOO_LATE)
        planned = draft.planned_due_at or draft.due_at
        return replace(
            draft, due_at=goes, planned_due_at=planned, moved_for_quiet_hours=goes != now
        )

    def announced(self, armed: Notice) -> Outgoing:
        record = armed.record
        return self.runtime.outgoing(
            armed.fact,
            key=record["client_id"],
            subject=record["notification_id"],
            event_id=armed.event_id,
            trace=armed.trace,
            time=armed.at,
        )

    def stored(self, armed: Notice) -> tuple[dict[str, Any], Outgoing]:
        """The record to store for ``armed``, with the bytes it is announced in."""
        outgoing = self.announced(armed)
        return {**armed.record, "announced": kept(outgoing, armed.record)}, outgoing

    def wait_until(self, draft: Draft, *, now: datetime) -> float:
        """When a draft waiting for its client's contact stops waiting (clock epoch)."""
        policy = self.runtime.chain.policy_for(draft.location_id)
        return (now + policy.contact_wait).timestamp()

    async def armed(
        self,
        writes: Writes,
        placed: Sequence[Placed],
        *,
        committed: Callable[[Outcome], object] | None = None,
    ) -> list[Outgoing]:
        """Write ``placed`` with whatever else ``writes`` holds, and announce them;
        ``committed`` is handed what the transaction did."""
        return (await self.armed_runs(writes, [placed], committed=committed))[0]

    async def armed_runs(
        self,
        writes: Writes,
        runs: Sequence[Sequence[Placed]],
        *,
        tries: int = DECIDE_AGAIN,
        committed: Callable[[Outcome], object] | None = None,
    ) -> list[list[Outgoing]]:
        """``armed`` of several runs in one transaction: each draft armed and
        announced, or (its client unknown) left waiting unannounced; a draft armed
        before is announced as stored. A client that became known between the read
        and the write is read and decided again."""
        now = self.runtime.clock.now()
        slots: list[list[Outgoing | Draft]] = []
        for run in runs:
            queued: list[Outgoing | Draft] = []
            for draft, contact in run:
                if contact is None and draft.needs_contact:
                    until = self.wait_until(draft, now=now)
                    writes.wait(
                        draft.notification_id,
                        draft.client_id,
                        draft.visit_id,
                        draft=draft.to_json(),
                        until_epoch=until,
                    )
                    queued.append(draft)
                    continue
                armed = self.notice(draft, contact, now=now)
                record, outgoing = self.stored(armed)
                writes.arm(record, due_epoch=armed.due_epoch, logged_epoch=time.time())
                queued.append(outgoing)
            slots.append(queued)
        outcome = await writes.commit()
        if committed is not None:
            committed(outcome)
        existing, waited = iter(outcome.existing), iter(outcome.waited)
        out: list[list[Outgoing]] = []
        again: list[list[Draft]] = []
        for queued in slots:
            announced: list[Outgoing] = []
            known: list[Draft] = []
            for item in queued:
                if isinstance(item, Outgoing):
                    announced.append(_as_first(item, next(existing)))
                    continue
                answer = next(waited)
                if isinstance(answer, dict) and (first := _stored_announcement(answer)):
                    announced.append(first)
                elif answer == "known":
                    known.append(item)
            out.append(announced)
            again.append(known)
        if any(again):
            if tries == 0:
                raise RuntimeError("a client kept changing while their messages were armed")
            decided = await self._decide_again(again, tries=tries - 1)
            for announced, more in zip(out, decided, strict=True):
                announced.extend(more)
        return out

    async def _decide_again(
        self, again: Sequence[Sequence[Draft]], *, tries: int
    ) -> list[list[Outgoing]]:
        """Drafts whose client became known since the read: read who the client is now
        and how to reach them, and arm them (or wait under the survivor of a merge)."""
        reach = await self.store.reach([d.client_id for drafts in again for d in drafts])
        runs = [
            [
                (d.for_client(reach[d.client_id].client_id), reach[d.client_id].contact)
                for d in drafts
            ]
            for drafts in again
        ]
        return await self.armed_runs(self.store.writes(), runs, tries=tries)

    async def booked(self, envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        """``visit.booked``: the policy's reminders of the visit."""
        return (await self.booked_run([(envelope, data)]))[0]

    async def booked_run(
        self, items: Sequence[tuple[Envelope, EventData]]
    ) -> Sequence[Sequence[Outgoing]]:
        """``booked`` on each of a run of visits, read in one round trip and written in
        one transaction; a record it cannot act on fails the run (each is then taken
        alone, and only that one is refused)."""
        visits = []
        for _, data in items:
            if not isinstance(data, VisitBooked):
                raise Rejected(f"expected visit.booked, got {type(data).__name__}")
            self.location_of(data.location_id)
            visits.append(data)
        reached = await self.reached_all(visits)
        now = self.runtime.clock.now()
        runs = [
            [(d, contact) for d in self.reminders(envelope, visit, contact, now=now)]
            for (envelope, _), (visit, contact) in zip(items, reached, strict=True)
        ]
        return await self.armed_runs(self.store.writes(), runs)


def _as_first(fresh: Outgoing, stored: dict[str, Any] | None) -> Outgoing:
    """What announces a notification: the bytes stored with it when it was armed
    before (a redelivered cause), else ``fresh``."""
    return (_stored_announcement(stored) if stored is not None else None) or fresh


def _stored_announcement(stored: dict[str, Any]) -> Outgoing | None:
    """The announcement kept with a record (none for one armed before they were kept)."""
    return restored(stored)
