"""Notifier wiring for incoming events: what each one arms, re-times or cancels.

- ``intake.submitted``: the client's contact details and per-channel consent; for
  a known client the intake only withdraws consent (a STOP texted earlier, the
  client's own opt-ins and quiet hours are kept).
- ``client.updated``: a change the front desk confirmed takes effect whole.
- ``plan.created``: the plan summary; every plan version is remembered for the
  aftercare it shapes (stretches, self-massage, FMM breathing practice).
- ``plan.declined``: the referral notice (never its reasons).
- ``visit.booked``: the policy's reminders. ``visit.rescheduled``: the pending
  reminders are cancelled and new ones armed for the new time.
  ``visit.cancelled`` / ``visit.no_show``: the pending reminders are cancelled.
- ``visit.completed``: aftercare now, and the check-in after
  ``aftercare_checkin_after``.
- ``waitlist.offered``: the offer, at once (its hold is short).
- ``client.merged``: the retired client's contact, log and pending messages
  become the survivor's (``store.NotificationStore.merge``); the survivor's
  contact and consent win. Events that still name the retired id are handled
  under the survivor (``shared.aliases.following_merges``), and a late intake of
  the retired client does not replace the survivor's contact.

Everything but the offer waits for the end of quiet hours (the client's own, or
the location's). Notification ids derive from their cause, so a redelivered
event arms nothing new and republishes the same events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from services.notifier.delivery import (
    Contact,
    Route,
    Suppressed,
    after_quiet_hours,
    contact_from,
    merged_contact,
    route,
)
from services.notifier.store import NotificationStore
from services.notifier.timing import offset_label, reminder_times
from shared.aliases import ClientAliases, following_merges, merge_follower
from shared.envelope import Envelope, Trace, derived_id
from shared.events import (
    ClientMerged,
    ClientUpdated,
    EventData,
    IntakeSubmitted,
    NotificationCancelled,
    NotificationScheduled,
    NotificationSuppressed,
    PlanCreated,
    VisitBooked,
)
from shared.events.plans import PlanData, PlanDeclined
from shared.events.visits import (
    VisitCancelled,
    VisitCompleted,
    VisitNoShow,
    VisitRescheduled,
    WaitlistOffered,
)
from shared.kafka import Outgoing
from shared.runtime import Runtime
from shared.streams import Handler, Rejected
from shared.vocabulary import Channel, NotificationKind

Configured = frozenset[Channel]


def handlers(runtime: Runtime, configured: Configured = frozenset()) -> Mapping[str, Handler]:
    store = NotificationStore(runtime.redis, runtime.keys)
    aliases = ClientAliases(runtime.redis, runtime.keys)
    production = runtime.base.settings.env == "production"

    def location_of(location_id: str) -> Any:
        if not runtime.chain.has_location(location_id):
            raise Rejected(f"unknown location {location_id!r}")
        return runtime.chain.location(location_id)

    async def quiet_hours(contact: Contact | None, location_id: str) -> str:
        if contact is not None and contact.quiet_hours:
            return contact.quiet_hours
        return runtime.chain.policy_for(location_id).quiet_hours

    async def arm(
        envelope: Envelope,
        *,
        kind: NotificationKind,
        notification_id: str,
        client_id: str,
        location_id: str,
        due_at: datetime,
        visit_id: str | None = None,
        context: dict[str, Any] | None = None,
        offset: str | None = None,
        moved_for_quiet_hours: bool = False,
    ) -> Outgoing:
        """Store one notification with its timer and say so; or, when nothing may carry
        it, store it suppressed and say why."""
        now = runtime.clock.now()
        contact = await store.contact(client_id)
        way = route(contact, configured=configured or {"console"}, production=production)
        channel: Channel = way.channel if isinstance(way, Route) else "console"
        trace = Trace.following(envelope, locationid=location_id)
        base: dict[str, Any] = {
            "notification_id": notification_id,
            "client_id": client_id,
            "location_id": location_id,
            "visit_id": visit_id,
            "kind": kind,
            "channel": channel,
        }
        fact: EventData
        if isinstance(way, Suppressed):
            fact = NotificationSuppressed(**base, reason=way.reason, suppressed_at=now)
            status = "suppressed"
        else:
            fact = NotificationScheduled(
                **base, due_at=due_at, offset=offset, moved_for_quiet_hours=moved_for_quiet_hours
            )
            status = "scheduled"
        event_id = derived_id(fact.event_type, notification_id)
        record = {
            **base,
            "status": status,
            "due_at": due_at.isoformat(),
            "offset": offset,
            "moved_for_quiet_hours": moved_for_quiet_hours,
            "attempts": 0,
            "context": context or {},
            "trace": {**trace.model_dump(), "causationid": event_id},
            **({"reason": way.reason} if isinstance(way, Suppressed) else {}),
        }
        if status == "scheduled":
            await store.schedule(record, due_epoch=due_at.timestamp())
        else:
            await store.schedule_closed(record)
        return runtime.outgoing(
            fact, key=client_id, subject=notification_id, event_id=event_id, trace=trace, time=now
        )

    async def arm_soon(
        envelope: Envelope,
        *,
        kind: NotificationKind,
        cause: str,
        client_id: str,
        location_id: str,
        at: datetime,
        visit_id: str | None = None,
        context: dict[str, Any] | None = None,
        quiet: bool = True,
    ) -> Outgoing:
        """One message due at ``at``, or at the end of the quiet hours it falls in."""
        location = location_of(location_id)
        due = at
        if quiet:
            window = await quiet_hours(await store.contact(client_id), location_id)
            due = after_quiet_hours(at, quiet_hours=window, zone=location.zone)
        return await arm(
            envelope,
            kind=kind,
            notification_id=derived_id(kind, cause),
            client_id=client_id,
            location_id=location_id,
            due_at=due,
            visit_id=visit_id,
            context=context,
            moved_for_quiet_hours=due != at,
        )

    async def reminders(
        envelope: Envelope, visit: VisitBooked | VisitRescheduled
    ) -> list[Outgoing]:
        location = location_of(visit.location_id)
        policy = runtime.chain.policy_for(visit.location_id)
        window = await quiet_hours(await store.contact(visit.client_id), visit.location_id)
        armed = []
        for planned in reminder_times(
            visit_start=visit.start,
            offsets=policy.reminders,
            quiet_hours=window,
            zone=location.zone,
            now=runtime.clock.now(),
        ):
            label = offset_label(planned.offset)
            armed.append(
                await arm(
                    envelope,
                    kind="reminder",
                    notification_id=derived_id(
                        "reminder", visit.visit_id, label, visit.start.isoformat()
                    ),
                    client_id=visit.client_id,
                    location_id=visit.location_id,
                    due_at=planned.due_at,
                    visit_id=visit.visit_id,
                    context={"visit_start": visit.start.isoformat(), "plan_id": visit.plan_id},
                    offset=label,
                    moved_for_quiet_hours=planned.moved_for_quiet_hours,
                )
            )
        return armed

    async def cancel_pending(envelope: Envelope, visit_id: str, reason: str) -> list[Outgoing]:
        """Cancel the visit's reminders not yet sent. A redelivered event republishes
        the cancellations it made (they remember their cause), and only those."""
        now = runtime.clock.now()
        cancelled = []
        for record in await store.for_visit(visit_id):
            if record["kind"] != "reminder":
                continue
            if record["status"] == "scheduled":
                closed = {
                    **record,
                    "status": "cancelled",
                    "reason": reason,
                    "cancelled_by": envelope.id,
                    "cancelled_at": now.isoformat(),
                }
                if await store.move(closed, expected="scheduled"):
                    record = closed
            if record["status"] != "cancelled" or record.get("cancelled_by") != envelope.id:
                continue
            fact = NotificationCancelled(
                notification_id=record["notification_id"],
                client_id=record["client_id"],
                location_id=record["location_id"],
                visit_id=visit_id,
                kind="reminder",
                channel=record["channel"],
                reason=record["reason"],
                cancelled_at=datetime.fromisoformat(record["cancelled_at"]),
            )
            cancelled.append(
                runtime.outgoing(
                    fact,
                    key=record["client_id"],
                    subject=record["notification_id"],
                    event_id=derived_id(fact.event_type, record["notification_id"]),
                    trace=Trace.following(envelope, locationid=record["location_id"]),
                    time=now,
                )
            )
        return cancelled

    async def on_intake(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, IntakeSubmitted):
            raise Rejected(f"expected intake.submitted, got {type(data).__name__}")
        client = data.client
        survivor = await aliases.resolve(client.client_id)
        known = await store.contact(survivor)
        given = contact_from(
            client,
            client_id=survivor,
            location_id=data.location_id,
            known=known,
            confirmed=False,
        )
        if survivor != client.client_id:  # an intake of a client merged since
            given = merged_contact(known, given, client_id=survivor) or given
        await store.save_contact(given)
        return []

    async def on_plan(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, PlanData):
            raise Rejected(f"expected a plan, got {type(data).__name__}")
        location_of(data.location_id)
        await store.remember(
            "plan",
            data.plan_id,
            {
                "version": data.version,
                "modality": data.modality,
                "sessions_total": data.sessions_total,
                "phases": [p.model_dump(mode="json") for p in data.phases],
                "home_program": data.home_program.model_dump(mode="json"),
            },
        )
        if not isinstance(data, PlanCreated):
            return []  # a revision changes the aftercare, not what the client was told
        summary = await arm_soon(
            envelope,
            kind="plan_summary",
            cause=f"{data.plan_id}:{data.version}",
            client_id=data.client_id,
            location_id=data.location_id,
            at=runtime.clock.now(),
            context={"plan_id": data.plan_id},
        )
        return [summary]

    async def on_declined(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, PlanDeclined):
            raise Rejected(f"expected plan.declined, got {type(data).__name__}")
        notice = await arm_soon(
            envelope,
            kind="referral",
            cause=data.intake_id,
            client_id=data.client_id,
            location_id=data.location_id,
            at=runtime.clock.now(),
        )
        return [notice]

    async def on_booked(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, VisitBooked):
            raise Rejected(f"expected visit.booked, got {type(data).__name__}")
        return await reminders(envelope, data)

    async def on_rescheduled(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, VisitRescheduled):
            raise Rejected(f"expected visit.rescheduled, got {type(data).__name__}")
        location_of(data.location_id)
        cancelled = await cancel_pending(envelope, data.visit_id, "rescheduled")
        return [*cancelled, *await reminders(envelope, data)]

    async def on_cancelled(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, VisitCancelled | VisitNoShow):
            raise Rejected(f"expected a cancel or no-show, got {type(data).__name__}")
        reason = "visit cancelled" if isinstance(data, VisitCancelled) else "no-show"
        return await cancel_pending(envelope, data.visit_id, reason)

    async def on_completed(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, VisitCompleted):
            raise Rejected(f"expected visit.completed, got {type(data).__name__}")
        policy = runtime.chain.policy_for(data.location_id)
        context = {"plan_id": data.plan_id, "completed_at": data.completed_at.isoformat()}
        aftercare = await arm_soon(
            envelope,
            kind="aftercare",
            cause=data.visit_id,
            client_id=data.client_id,
            location_id=data.location_id,
            at=max(data.completed_at, runtime.clock.now()),
            visit_id=data.visit_id,
            context=context,
        )
        checkin = await arm_soon(
            envelope,
            kind="checkin",
            cause=data.visit_id,
            client_id=data.client_id,
            location_id=data.location_id,
            at=data.completed_at + policy.aftercare_checkin_after,
            visit_id=data.visit_id,
            context=context,
        )
        return [aftercare, checkin]

    async def on_offered(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, WaitlistOffered):
            raise Rejected(f"expected waitlist.offered, got {type(data).__name__}")
        offer = await arm_soon(
            envelope,
            kind="waitlist_offer",
            cause=data.offer_id,
            client_id=data.client_id,
            location_id=data.location_id,
            at=runtime.clock.now(),
            visit_id=data.visit_id,
            context={
                "offer_id": data.offer_id,
                "visit_start": data.start.isoformat(),
                "hold_until": data.hold_until.isoformat(),
            },
            quiet=False,  # the hold is short: it goes now or not at all
        )
        return [offer]

    async def on_updated(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        """A change the front desk confirmed: the client is reached as it says from now."""
        if not isinstance(data, ClientUpdated):
            raise Rejected(f"expected client.updated, got {type(data).__name__}")
        known = await store.contact(data.client.client_id)
        await store.save_contact(
            contact_from(
                data.client,
                client_id=data.client.client_id,
                location_id=data.location_id,
                known=known,
                confirmed=True,
            )
        )
        return []

    async def move_merged(_: ClientMerged, retired: str, survivor: str) -> None:
        await store.merge(aliases, retired=retired, survivor=survivor)

    by_type: dict[str, Handler] = {
        "intake.submitted": on_intake,
        "client.updated": on_updated,
        "plan.created": on_plan,
        "plan.revised": on_plan,
        "plan.declined": on_declined,
        "visit.booked": on_booked,
        "visit.rescheduled": on_rescheduled,
        "visit.cancelled": on_cancelled,
        "visit.no_show": on_cancelled,
        "visit.completed": on_completed,
        "waitlist.offered": on_offered,
    }
    # an intake resolves its client itself: a merged client's intake keeps the survivor's contact
    resolved = following_merges(aliases, by_type, except_types=("intake.submitted",))
    return {**resolved, "client.merged": merge_follower(aliases, move_merged)}
