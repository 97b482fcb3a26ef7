"""Arming notifications for a deployment: the chain's policy and the client's
contact applied to the pure rules (``timing.reminder_times``,
``notices.notice``), and what that arms written in one transaction.

A handler reads once (``NotificationStore.reach``: who the client is now, after
merges, and how to reach them), decides, and writes once (``Writes``). The
visit reminders of a run of ``visit.booked`` for one client are read and
written together the same way (``booked_run``): its outputs are exactly those of
``booked`` on each visit in turn, whose reminders are independent of each other."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from services.notifier.delivery import Contact, after_quiet_hours
from services.notifier.notices import Notice, notice
from services.notifier.store import NotificationStore
from services.notifier.timing import offset_label, reminder_times
from services.notifier.writes import Writes
from shared.aliases import client_of, rehomed
from shared.chain import Location
from shared.envelope import Envelope, derived_id
from shared.events import EventData, VisitBooked
from shared.events.visits import VisitRescheduled
from shared.kafka import Outgoing
from shared.runtime import Runtime
from shared.streams import Rejected
from shared.vocabulary import Channel, NotificationKind

E = TypeVar("E", bound=EventData)


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
        named = [client_of(data) for data in events]
        reach = await self.store.reach([c for c in named if c is not None])
        found: list[tuple[E, Contact | None]] = []
        for data, client_id in zip(events, named, strict=True):
            if client_id is None:
                found.append((data, None))
            else:
                who = reach[client_id]
                found.append((cast(E, rehomed(data, who.client_id)), who.contact))
        return found

    def notice(
        self, cause: Envelope, contact: Contact | None, *, now: datetime, **fields: Any
    ) -> Notice:
        """``notices.notice`` on this deployment's channels."""
        return notice(
            cause,
            contact,
            configured=self.channels,
            production=self.production,
            now=now,
            **fields,
        )

    def soon(
        self,
        cause: Envelope,
        contact: Contact | None,
        *,
        now: datetime,
        kind: NotificationKind,
        cause_id: str,
        client_id: str,
        location_id: str,
        at: datetime,
        visit_id: str | None = None,
        context: dict[str, Any] | None = None,
        quiet: bool = True,
    ) -> Notice:
        """One message due at ``at``, or at the end of the quiet hours it falls in."""
        location = self.location_of(location_id)
        due = at
        if quiet:
            window = self.quiet_hours(contact, location_id)
            due = after_quiet_hours(at, quiet_hours=window, zone=location.zone)
        return self.notice(
            cause,
            contact,
            now=now,
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
    ) -> list[Notice]:
        """The policy's reminders of one visit still to come, outside quiet hours."""
        location = self.location_of(visit.location_id)
        policy = self.runtime.chain.policy_for(visit.location_id)
        planned = reminder_times(
            visit_start=visit.start,
            offsets=policy.reminders,
            quiet_hours=self.quiet_hours(contact, visit.location_id),
            zone=location.zone,
            now=now,
        )
        armed = []
        for reminder in planned:
            label = offset_label(reminder.offset)
            armed.append(
                self.notice(
                    cause,
                    contact,
                    now=now,
                    kind="reminder",
                    notification_id=derived_id(
                        "reminder", visit.visit_id, label, visit.start.isoformat()
                    ),
                    client_id=visit.client_id,
                    location_id=visit.location_id,
                    due_at=reminder.due_at,
                    visit_id=visit.visit_id,
                    context={"visit_start": visit.start.isoformat(), "plan_id": visit.plan_id},
                    offset=label,
                    moved_for_quiet_hours=reminder.moved_for_quiet_hours,
                )
            )
        return armed

    def queue(self, writes: Writes, notices: Sequence[Notice]) -> None:
        """Queue the records (and timers) of ``notices``; those that exist stay as they are."""
        for armed in notices:
            writes.arm(armed.record, due_epoch=armed.due_epoch, logged_epoch=time.time())

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

    async def armed(self, writes: Writes, notices: Sequence[Notice]) -> list[Outgoing]:
        """Write ``notices`` with whatever else ``writes`` holds, and announce them."""
        self.queue(writes, notices)
        await writes.commit()
        return [self.announced(n) for n in notices]

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
        planned = [
            self.reminders(envelope, visit, contact, now=self.runtime.clock.now())
            for (envelope, _), (visit, contact) in zip(items, reached, strict=True)
        ]
        writes = self.store.writes()
        for notices in planned:
            self.queue(writes, notices)
        await writes.commit()
        return [[self.announced(n) for n in notices] for notices in planned]
