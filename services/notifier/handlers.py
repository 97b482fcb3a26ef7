"""Notifier wiring for incoming events: what each one arms, re-times or cancels.

- ``intake.submitted``: the client's contact details and per-channel consent; for
  a known client the intake only withdraws consent (a STOP texted earlier, the
  client's own opt-ins and quiet hours are kept).
- ``client.updated``: a change the front desk confirmed takes effect whole.
- ``plan.created``: the plan summary; every plan version is remembered for the
  aftercare it shapes (stretches, self-massage, FMM breathing practice).
- ``plan.declined``: the referral notice (never its reasons); the course ends.
- ``plan.completed``: joins the plan's notice; the course ends. An ended course
  stays as it is for the policy's ``keep_finished_courses``, then leaves a marker
  (services/notifier/courses.py); an event of a course retired so arms nothing.
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
the location's). A message for a client with no contact yet waits for one
(services/notifier/waits.py): the intake, the update or the merge that brings it
releases what waits. Notification ids derive from their cause, so a redelivered
event arms nothing new and republishes the same events, in the bytes first
published (stored with each record).

Each handler reads once and writes once (services/notifier/arming.py); the
``visit.booked`` of one client that arrive together are handled as one run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from services.notifier.arming import Arming
from services.notifier.courses import Courses, Ending, declined_plan
from services.notifier.delivery import Contact, contact_from, merged_contact
from services.notifier.gathering import Gathering, Joined, Known
from services.notifier.notices import Draft
from services.notifier.waits import Waits
from services.notifier.writes import Outcome, Writes
from shared.aliases import ClientAliases, merge_follower
from shared.envelope import Envelope, Trace, derived_id
from shared.events import (
    ClientMerged,
    ClientUpdated,
    EventData,
    IntakeSubmitted,
    NotificationCancelled,
    PlanCreated,
)
from shared.events.plans import PlanCompleted, PlanData, PlanDeclined
from shared.events.visits import (
    BookingWaitlisted,
    VisitBooked,
    VisitCancelled,
    VisitCompleted,
    VisitConfirmed,
    VisitNoShow,
    VisitRescheduled,
    WaitlistOffered,
)
from shared.kafka import Outgoing
from shared.runtime import Runtime
from shared.streams import Batched, Handler, Rejected
from shared.vocabulary import Channel

E = TypeVar("E", bound=EventData)
Configured = frozenset[Channel]
Closing = list[tuple[dict[str, Any], dict[str, Any] | None]]


def handlers(runtime: Runtime, configured: Configured = frozenset()) -> Mapping[str, Handler]:
    arming = Arming(runtime, configured)
    store = arming.store
    waits = Waits(arming)
    gathering = Gathering(arming)
    aliases = ClientAliases(runtime.redis, runtime.keys)
    courses = Courses(runtime)

    def close_pending(
        envelope: Envelope,
        visit_id: str,
        records: list[dict[str, Any]],
        reason: str,
        writes: Writes,
    ) -> Closing:
        """Queue the cancel of each of the visit's reminders not yet sent, and the end
        of those still waiting for a contact (never announced, so they end unannounced);
        each reminder with its cancelled form (None: it was not pending)."""
        writes.drop_visit_waits(visit_id)
        now = runtime.clock.now()
        closing: Closing = []
        for record in records:
            if record["kind"] != "reminder":
                continue
            closed = None
            if record["status"] == "scheduled":
                closed = {
                    **record,
                    "status": "cancelled",
                    "reason": reason,
                    "cancelled_by": envelope.id,
                    "cancelled_at": now.isoformat(),
                }
                writes.move(closed, expected="scheduled")
            closing.append((record, closed))
        return closing

    def cancellations(
        envelope: Envelope, visit_id: str, closing: Closing, outcome: Outcome
    ) -> list[Outgoing]:
        """What the cancel made. A redelivered event republishes the cancellations it
        made (they remember their cause), and only those, as first announced: at the
        time they were cancelled."""
        moved = iter(outcome.moved)
        cancelled = []
        for record, closed in closing:
            if closed is not None and next(moved):
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
                    time=datetime.fromisoformat(record["cancelled_at"]),
                )
            )
        return cancelled

    async def on_intake(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, IntakeSubmitted):
            raise Rejected(f"expected intake.submitted, got {type(data).__name__}")
        client = data.client
        who = (await store.reach([client.client_id]))[client.client_id]
        survivor, known = who.client_id, who.contact
        given = contact_from(
            client,
            client_id=survivor,
            location_id=data.location_id,
            known=known,
            confirmed=False,
        )
        if survivor != client.client_id:  # an intake of a client merged since
            given = merged_contact(known, given, client_id=survivor) or given
        await arrived(given)
        return []

    async def arrived(contact: Contact) -> None:
        """Save ``contact`` and release what waited for it (announced through the
        outbox: services/notifier/waits.py)."""
        writes = store.writes()
        writes.save_contact(contact)
        writes.waiting(contact.client_id)
        found = (await writes.commit()).found
        if found:
            await waits.release(found, contact, client_id=contact.client_id)

    async def on_plan(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, PlanData):
            raise Rejected(f"expected a plan, got {type(data).__name__}")
        arming.location_of(data.location_id)
        event, contact, known = await reach(data)
        if known.retired:  # a course swept since: its history is on the topics
            return []
        writes = store.writes()
        writes.remember(
            "plan",
            event.plan_id,
            {
                "version": event.version,
                "modality": event.modality,
                "sessions_total": event.sessions_total,
                "phases": [p.model_dump(mode="json") for p in event.phases],
                "home_program": event.home_program.model_dump(mode="json"),
                # the plan summary says the first visit assesses and the rest waits
                # for the doctor (never why)
                "awaiting_medical_check": event.awaiting_medical_check is not None,
            },
        )
        if not isinstance(data, PlanCreated):
            # a revision changes the aftercare, and the client hears of the outcome
            # (reassessment, taper, referral...) with the visits it moves, in one notice
            return await gathered(envelope, event, contact, known, writes)
        now = runtime.clock.now()
        summary = arming.soon(
            envelope,
            contact,
            kind="plan_summary",
            cause_id=f"{event.plan_id}:{event.version}",
            client_id=event.client_id,
            location_id=event.location_id,
            at=now,
            context={"plan_id": event.plan_id},
        )
        return await arming.armed(writes, [(summary, contact)])

    async def reach(data: E) -> tuple[E, Contact | None, Known]:
        """``Arming.reached`` and what the event's batch needs known, in one read."""
        [(event, contact)], known = await gathering.reached([data])
        return event, contact, known

    async def gathered(
        envelope: Envelope,
        event: EventData,
        contact: Contact | None,
        known: Known,
        writes: Writes,
    ) -> list[Outgoing]:
        """``event`` into its plan's batch (services/notifier/gathering.py), with the
        visit book kept, in ``writes``'s one transaction."""
        joined = gathering.join(writes, envelope, event, contact, known)
        gathering.book(writes, event, known)
        await writes.commit()
        return await gathering.announced([joined])

    def gathering_only(expected: type[PlanCompleted | BookingWaitlisted]) -> Handler:
        """A handler for an event that only joins its plan's notice."""

        async def on_event(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
            if not isinstance(data, expected):
                raise Rejected(f"expected {expected.event_type}, got {type(data).__name__}")
            arming.location_of(data.location_id)
            event, contact, known = await reach(data)
            if known.retired:
                return []
            writes = store.writes()
            if isinstance(event, PlanCompleted):
                ending = Ending(event.client_id, event.location_id, event.outcome)
                courses.ended(writes, event.plan_id, ending, ended_at=event.completed_at)
            return await gathered(envelope, event, contact, known, writes)

        return on_event

    async def on_confirmed(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        """``visit.confirmed``: the visit book knows it (nothing is sent)."""
        if not isinstance(data, VisitConfirmed):
            raise Rejected(f"expected visit.confirmed, got {type(data).__name__}")
        event, _, known = await reach(data)
        if known.retired:
            return []
        writes = store.writes()
        gathering.book(writes, event, known)
        await writes.commit()
        return []

    async def booked(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        return (await booked_run([(envelope, data)]))[0]

    async def booked_run(
        items: Sequence[tuple[Envelope, EventData]],
    ) -> Sequence[Sequence[Outgoing]]:
        """``Arming.booked_run``'s reminders, and each visit into its plan's batch
        (the booking confirmation, or a change notice), in the same transaction."""
        visits = []
        for _, data in items:
            if not isinstance(data, VisitBooked):
                raise Rejected(f"expected visit.booked, got {type(data).__name__}")
            arming.location_of(data.location_id)
            visits.append(data)
        reached, known = await gathering.reached(visits)
        writes = store.writes()
        now = runtime.clock.now()
        joined: list[Joined | None] = []
        runs: list[list[tuple[Draft, Contact | None]]] = []
        for (envelope, _), (visit, contact) in zip(items, reached, strict=True):
            if visit.plan_id in known.retired:  # a course swept since: nothing to remind of
                joined.append(None)
                runs.append([])
                continue
            joined.append(gathering.join(writes, envelope, visit, contact, known))
            gathering.book(writes, visit, known)
            runs.append([(d, contact) for d in arming.reminders(envelope, visit, contact, now=now)])
        armed = await arming.armed_runs(writes, runs)
        return [
            [*reminders, *await gathering.announced([j])]
            for reminders, j in zip(armed, joined, strict=True)
        ]

    async def on_declined(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, PlanDeclined):
            raise Rejected(f"expected plan.declined, got {type(data).__name__}")
        event, contact, retired = await arming.reached_course(data)
        if retired:
            return []
        now = runtime.clock.now()
        plan_id = declined_plan(event.intake_id)
        notice = arming.soon(
            envelope,
            contact,
            kind="referral",
            cause_id=event.intake_id,
            client_id=event.client_id,
            location_id=event.location_id,
            at=now,
            context={"plan_id": plan_id},
        )
        writes = store.writes()
        ending = Ending(event.client_id, event.location_id, "declined")
        courses.ended(writes, plan_id, ending, ended_at=event.declined_at)
        return await arming.armed(writes, [(notice, contact)])

    async def on_rescheduled(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, VisitRescheduled):
            raise Rejected(f"expected visit.rescheduled, got {type(data).__name__}")
        arming.location_of(data.location_id)
        event, contact, known = await reach(data)
        if known.retired:
            return []
        records = await store.for_visit(event.client_id, event.visit_id)
        writes = store.writes()
        closing = close_pending(envelope, event.visit_id, records, "rescheduled", writes)
        joined = gathering.join(writes, envelope, event, contact, known)
        gathering.book(writes, event, known)
        drafts = arming.reminders(envelope, event, contact, now=runtime.clock.now())
        made: list[Outcome] = []
        armed = await arming.armed(writes, [(d, contact) for d in drafts], committed=made.append)
        return [
            *cancellations(envelope, event.visit_id, closing, made[0]),
            *armed,
            *await gathering.announced([joined]),
        ]

    async def on_cancelled(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        """The visit's pending reminders cancelled (found in the log of the client the
        event's client id names now: a merge moved the log there)."""
        if not isinstance(data, VisitCancelled | VisitNoShow):
            raise Rejected(f"expected a cancel or no-show, got {type(data).__name__}")
        reason = "visit cancelled" if isinstance(data, VisitCancelled) else "no-show"
        event, contact, known = await reach(data)
        if known.retired:
            return []
        writes = store.writes()
        records = await store.for_visit(event.client_id, data.visit_id)
        closing = close_pending(envelope, data.visit_id, records, reason, writes)
        joined = None
        if runtime.chain.has_location(event.location_id):
            joined = gathering.join(writes, envelope, event, contact, known)
        gathering.book(writes, event, known)
        cancelled = cancellations(envelope, data.visit_id, closing, await writes.commit())
        return [*cancelled, *await gathering.announced([joined])]

    async def on_completed(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, VisitCompleted):
            raise Rejected(f"expected visit.completed, got {type(data).__name__}")
        event, contact, known = await reach(data)
        if known.retired:
            return []
        policy = runtime.chain.policy_for(event.location_id)
        context = {"plan_id": event.plan_id, "completed_at": event.completed_at.isoformat()}
        seen = known.visits.get(event.visit_id)
        if seen and seen.get("start"):  # messages name the visit by its scheduled time
            context["visit_start"] = seen["start"]
        now = runtime.clock.now()
        fields: dict[str, Any] = {
            "cause_id": event.visit_id,
            "client_id": event.client_id,
            "location_id": event.location_id,
            "visit_id": event.visit_id,
            "context": context,
        }
        aftercare = arming.soon(
            envelope, contact, kind="aftercare", at=max(event.completed_at, now), **fields
        )
        checkin = arming.soon(
            envelope,
            contact,
            kind="checkin",
            at=event.completed_at + policy.aftercare_checkin_after,
            **fields,
        )
        writes = store.writes()
        gathering.book(writes, event, known)
        return await arming.armed(writes, [(aftercare, contact), (checkin, contact)])

    async def on_offered(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if not isinstance(data, WaitlistOffered):
            raise Rejected(f"expected waitlist.offered, got {type(data).__name__}")
        event, contact, retired = await arming.reached_course(data)
        if retired:
            return []
        now = runtime.clock.now()
        offer = arming.soon(
            envelope,
            contact,
            kind="waitlist_offer",
            cause_id=event.offer_id,
            client_id=event.client_id,
            location_id=event.location_id,
            at=now,
            visit_id=event.visit_id,
            context={
                "offer_id": event.offer_id,
                "plan_id": event.plan_id,
                "visit_start": event.start.isoformat(),
                "hold_until": event.hold_until.isoformat(),
            },
            quiet=runtime.chain.policy_for(event.location_id)
            .message_rule("waitlist_offer")
            .quiet_hours,  # by default the hold is short: it goes now or not at all
        )
        writes = store.writes()
        gathering.offer_made(writes, event.visit_id, event.offer_id)
        return await arming.armed(writes, [(offer, contact)])

    async def on_updated(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        """A change the front desk confirmed: the client is reached as it says from now."""
        if not isinstance(data, ClientUpdated):
            raise Rejected(f"expected client.updated, got {type(data).__name__}")
        event, known = await arming.reached(data)
        await arrived(
            contact_from(
                event.client,
                client_id=event.client.client_id,
                location_id=event.location_id,
                known=known,
                confirmed=True,
            )
        )
        return []

    async def move_merged(_: ClientMerged, retired: str, survivor: str) -> None:
        """The merge, then the retired client's waits: the survivor's, released when
        the survivor has a contact (the merge may have brought it)."""
        await store.merge(aliases, retired=retired, survivor=survivor)
        writes = store.writes()
        writes.merged_waits(retired=retired, survivor=survivor)
        found = (await writes.commit()).found
        if found:
            contact = await store.contact(survivor)
            await waits.release(found, contact, client_id=survivor)

    # every handler but the merge's reads the client it names through merges itself
    # (``Arming.reached``), with its contact, in one round trip
    return {
        "intake.submitted": on_intake,
        "client.updated": on_updated,
        "plan.created": on_plan,
        "plan.revised": on_plan,
        "plan.declined": on_declined,
        "plan.completed": gathering_only(PlanCompleted),
        # the visits of a plan arrive together for one client: read and written as a run
        "visit.booked": Batched(one=booked, many=booked_run),
        "booking.waitlisted": gathering_only(BookingWaitlisted),
        "visit.confirmed": on_confirmed,
        "visit.rescheduled": on_rescheduled,
        "visit.cancelled": on_cancelled,
        "visit.no_show": on_cancelled,
        "visit.completed": on_completed,
        "waitlist.offered": on_offered,
        "client.merged": merge_follower(aliases, move_merged),
    }
