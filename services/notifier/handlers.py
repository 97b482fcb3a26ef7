"""Notifier wiring for incoming events: remember contacts from intakes, and arm
the policy's reminders for every booked visit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from services.notifier.store import NotificationStore
from services.notifier.timing import offset_label, reminder_times
from shared.envelope import Envelope, Trace, derived_id
from shared.events import EventData, IntakeSubmitted, NotificationScheduled, VisitBooked
from shared.kafka import Outgoing
from shared.runtime import Runtime
from shared.streams import Handler, Rejected

CHANNEL = "console"


def handlers(runtime: Runtime) -> Mapping[str, Handler]:
    store = NotificationStore(runtime.redis, runtime.keys)

    async def on_intake(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        assert isinstance(data, IntakeSubmitted)
        client = data.client
        await store.save_contact(
            client.client_id,
            {
                "language": client.language,
                "email": client.email,
                "phone": client.phone,
                "consent": client.contact_consent.model_dump(),
                "location_id": data.location_id,
            },
        )
        return []

    async def on_visit_booked(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        assert isinstance(data, VisitBooked)
        if not runtime.chain.has_location(data.location_id):
            raise Rejected(f"unknown location {data.location_id!r}")
        location = runtime.chain.location(data.location_id)
        policy = runtime.chain.policy_for(data.location_id)
        now = runtime.clock.now()
        outgoing = []
        for planned in reminder_times(
            visit_start=data.start,
            offsets=policy.reminders,
            quiet_hours=policy.quiet_hours,
            zone=location.zone,
            now=now,
        ):
            label = offset_label(planned.offset)
            notification_id = derived_id("reminder", data.visit_id, label)
            event_id = derived_id("notification.scheduled", notification_id)
            fact = NotificationScheduled(
                notification_id=notification_id,
                client_id=data.client_id,
                location_id=data.location_id,
                visit_id=data.visit_id,
                kind="reminder",
                channel=CHANNEL,
                due_at=planned.due_at,
                offset=label,
                moved_for_quiet_hours=planned.moved_for_quiet_hours,
            )
            trace = Trace.following(envelope, locationid=data.location_id)
            await store.schedule(
                {
                    **fact.to_data(),
                    "status": "scheduled",
                    "visit_start": data.start.isoformat(),
                    "trace": {**trace.model_dump(), "causationid": event_id},
                },
                due_epoch=planned.due_at.timestamp(),
            )
            outgoing.append(
                runtime.outgoing(
                    fact,
                    key=data.client_id,
                    subject=notification_id,
                    event_id=event_id,
                    trace=trace,
                    time=now,
                )
            )
        return outgoing

    return {"intake.submitted": on_intake, "visit.booked": on_visit_booked}
