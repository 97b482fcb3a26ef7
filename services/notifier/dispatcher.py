"""Sends due notifications on the shared clock.

Due times live in a Redis sorted set; a claim moves a notification to the
in-flight set under a real-time lease, so two notifier instances never send the
same one. The lease is short and renewed while its sender lives, so the claims of
a killed instance come back within a lease. A record already past ``scheduled`` is
never sent again, only its event is republished (same id, so downstream sees it
once); one found ``sending`` is an attempt nobody saw end (services/notifier/attempts.py).

Sends run side by side, at most ``send_concurrency`` per channel, and the
dispatcher claims only what it can start soon (two rounds of that), so a claim
never waits behind a long queue of its own sender's.

At send time consent is read again (a STOP texted a minute ago is honoured),
then the rate limits: over the per-client limit the message is suppressed (a
flood to one person is a fault, not news), over the global one it waits for
the next window. The attempt is recorded (``sending``) the moment before the
channel hands the message over, and the provider's acceptance (``sent``) right
after. A transient channel failure is retried with capped, jittered backoff
(``delivery.next_attempt``); the last failure, or a permanent one, is
``notification.failed`` and a record on the dead-letter topic."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from services.notifier.attempts import (
    CLOSED,
    SENDING,
    accepted,
    begun,
    closed,
    retry_after_failure,
    unknown,
)
from services.notifier.batches import BATCH_KINDS, changes
from services.notifier.channels import Channel as Sender
from services.notifier.channels import (
    OutboundMessage,
    PermanentSendError,
    SendError,
    TransientSendError,
    channels_from,
)
from services.notifier.compose import Links, compose
from services.notifier.delivery import Backoff, Route, Suppressed, next_attempt, route
from services.notifier.messages import Templates
from services.notifier.store import NotificationStore, Rate
from services.notifier.timing import too_late_to_send
from shared.clock import sleep_until
from shared.envelope import Trace, derived_id
from shared.events import (
    EventData,
    NotificationCancelled,
    NotificationFailed,
    NotificationSent,
    NotificationSuppressed,
    RecordDeadLettered,
)
from shared.kafka import Outgoing
from shared.metrics import SEND_LAG_SECONDS, SEND_RECORD_SECONDS, SEND_SECONDS, SENDS_UNKNOWN
from shared.runtime import Runtime
from shared.settings import NotifierSettings
from shared.streams import TRANSIENT
from shared.topics import NOTIFICATIONS
from shared.vocabulary import Channel

log = logging.getLogger(__name__)

UNDONE = "undone"
"""A notice whose changes undid each other while it was held: it is cancelled, not sent."""

CLIENT_WINDOW_S = 3600
GLOBAL_WINDOW_S = 60
STOP_GRACE_S = 0.8  # a stopping sender lets sends already handed over finish this long
RECORD_TRIES_S = 5.0  # how long an acceptance is retried into Redis before it is left


class _Overtaken(Exception):
    """The record moved between the claim and the send (a cancel won): nothing goes."""


class Dispatcher:
    def __init__(
        self,
        runtime: Runtime,
        settings: NotifierSettings,
        channels: dict[str, Sender] | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self.store = NotificationStore(runtime.redis, runtime.keys)
        self.channels = channels if channels is not None else channels_from(settings)
        self.templates = Templates(settings.template_dir)
        self.links = Links(
            secret=settings.link_secret.get_secret_value(),
            confirm=settings.confirm_url_template,
            offer=settings.offer_url_template,
            checkin=settings.checkin_url_template,
            calendar=settings.calendar_url_template,
        )
        self.backoff = Backoff(
            base=timedelta(seconds=settings.retry_base_s),
            cap=timedelta(seconds=settings.retry_cap_s),
            attempts=settings.max_attempts,
        )
        self.slots = {name: asyncio.Semaphore(settings.send_concurrency) for name in self.channels}
        self.capacity = 2 * settings.send_concurrency
        self._held: dict[str, asyncio.Task[None]] = {}  # claimed, being handled
        self._handed_over: set[str] = set()  # of those, the ones whose send has begun
        self._woken = asyncio.Event()

    @property
    def configured(self) -> frozenset[Channel]:
        return frozenset(c for c in ("email", "sms", "webhook", "console") if c in self.channels)

    async def run(self) -> None:
        renewing = asyncio.create_task(self._renew_leases())
        try:
            while True:
                self._woken.clear()
                next_due = None
                try:
                    await self.tick()
                    next_due = await self.store.next_due_epoch()
                except TRANSIENT as exc:
                    log.warning("dispatcher: transient failure, retrying: %r", exc)
                await self._pause(next_due)
        finally:
            renewing.cancel()
            await self._stop()

    async def tick(self) -> int:
        """Claim what is due now, as much as can start soon, and start sending it;
        returns how many were claimed."""
        free = self.capacity - len(self._held)
        if free <= 0:
            return 0
        await self.store.recover_expired()
        now = self.runtime.clock.now()
        claimed = await self.store.claim_due(
            now_epoch=now.timestamp(), lease_s=self.settings.claim_lease_s, limit=free
        )
        for notification_id in claimed:
            self._held[notification_id] = asyncio.create_task(self._handle(notification_id))
        return len(claimed)

    async def _pause(self, next_due: float | None) -> None:
        """Until a send ends (room for more), the next due time, or the poll interval."""
        poll = self.settings.poll_interval_s
        if next_due is None or len(self._held) >= self.capacity:
            timer = asyncio.sleep(poll)
        else:
            wake = datetime.fromtimestamp(next_due, UTC)
            timer = sleep_until(self.runtime.clock, wake, at_most=poll)
        waits = {asyncio.ensure_future(timer), asyncio.ensure_future(self._woken.wait())}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def _handle(self, notification_id: str) -> None:
        try:
            await self.deliver(notification_id)
        except TRANSIENT as exc:
            # the claim is no longer renewed: it comes back when its lease runs out
            log.warning("dispatcher: %s left for its lease to expire: %r", notification_id, exc)
        except Exception:
            log.exception("dispatcher: %s left for its lease to expire", notification_id)
        finally:
            self._held.pop(notification_id, None)
            self._handed_over.discard(notification_id)
            self._woken.set()

    async def _renew_leases(self) -> None:
        lease = self.settings.claim_lease_s
        while True:
            await asyncio.sleep(lease / 3)
            try:
                await self.store.renew(list(self._held), lease_s=lease)
            except TRANSIENT as exc:
                log.warning("dispatcher: lease renewal failed, retrying: %r", exc)

    async def _stop(self) -> None:
        """Stopping: claims not yet begun go back at once (a successor sends them
        without waiting for the lease); sends already handed over get a moment to end."""
        waiting = [i for i in self._held if i not in self._handed_over]
        for notification_id in waiting:
            self._held[notification_id].cancel()
        sending = [self._held[i] for i in self._handed_over if i in self._held]
        # each step on its own: the service cancels a stopping task again each second
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self.store.unclaim(waiting)
        with contextlib.suppress(Exception, asyncio.CancelledError):
            if sending:
                await asyncio.wait(sending, timeout=STOP_GRACE_S)
        for task in sending:  # still not answered: its outcome is left unknown
            task.cancel()

    async def deliver(self, notification_id: str) -> None:
        record = await self.store.get(notification_id)
        if record is not None and record["status"] == "scheduled":
            record = await self._attempt(record)
        elif record is not None and record["status"] == SENDING:
            record = await self._unknown_outcome(record)
        if record is not None and (record["status"] in CLOSED or record.get("reason") == UNDONE):
            await self.runtime.publisher.publish(self._events(record))
        await self.store.release(notification_id)

    async def _attempt(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """One try at a scheduled notification: the record as it stands afterwards
        (None: it was moved by someone else, or put back to wait)."""
        now = self.runtime.clock.now()
        plan_id = (record.get("context") or {}).get("plan_id")
        contact, plan = await self.store.sending(record["client_id"], plan_id)
        members = None
        if record["kind"] in BATCH_KINDS:  # the changes a notice gathered
            members = await self.store.members(record["notification_id"])
            if changes(members).empty:  # undone within the grace period: nothing to tell
                return await self._close(record, "cancelled", now, reason=UNDONE)
        production = self.settings.env == "production"
        way = route(contact, configured=self.configured, production=production)
        if isinstance(way, Suppressed):  # nothing may carry it: that is the reason given
            return await self._close(record, "suppressed", now, reason=way.reason)
        if self._too_late(record, now):
            return await self._close(record, "suppressed", now, reason="too_late")
        client = Rate(
            f"client:{record['client_id']}", CLIENT_WINDOW_S, self.settings.client_max_per_hour
        )
        chain = Rate("global", GLOBAL_WINDOW_S, self.settings.global_max_per_minute)
        over = await self.store.over_rates([client, chain], now_epoch=now.timestamp())
        if over is client:
            return await self._close(record, "suppressed", now, reason="rate_limited")
        if over is chain:
            window_end = (math.floor(now.timestamp() / GLOBAL_WINDOW_S) + 1) * GLOBAL_WINDOW_S
            await self.store.rearm(record["notification_id"], due_epoch=window_end)
            return None
        assert contact is not None  # routed
        async with self.slots[way.channel]:
            return await self._send(record, way, contact.language, plan, members)

    def _composed(
        self,
        record: dict[str, Any],
        way: Route,
        language: str,
        plan: dict[str, Any] | None,
        now: datetime,
        members: list[dict[str, Any]] | None = None,
    ) -> OutboundMessage:
        """The message, or a permanent failure when its record cannot make one (a field
        it needs is missing or malformed): no later try would do better. The reason
        names the error's type only; its text could quote the record."""
        try:
            return compose(
                record,
                way=way,
                language=language,
                chain=self.runtime.chain,
                plan=plan,
                urls=self.links,
                templates=self.templates,
                sent_at=now,
                members=members,
            )
        except SendError:
            raise
        except Exception as exc:
            reason = f"compose: {type(exc).__name__}"  # the record is on the dead letter
            log.error("notification %s cannot be composed (%s)", record["notification_id"], reason)
            raise PermanentSendError(reason) from None

    def _too_late(self, record: dict[str, Any], now: datetime) -> bool:
        """A reminder that falls due while the notifier was down or behind, and would
        reach the client too near the visit (the policy's ``late_reminder_min_lead``)."""
        visit_start = (record.get("context") or {}).get("visit_start")
        if record["kind"] != "reminder" or not visit_start:
            return False
        policy = self.runtime.chain.policy_for(record["location_id"])
        return too_late_to_send(
            visit_start=datetime.fromisoformat(visit_start),
            due_at=datetime.fromisoformat(record["due_at"]),
            now=now,
            min_lead=policy.late_reminder_min_lead,
        )

    async def _send(
        self,
        record: dict[str, Any],
        way: Route,
        language: str,
        plan: dict[str, Any] | None,
        members: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any] | None:
        now = self.runtime.clock.now()
        notification_id = record["notification_id"]
        attempt = begun(record, channel=way.channel, at=now)
        began = False

        async def begin() -> None:
            nonlocal began
            self._handed_over.add(notification_id)
            if not await self.store.move(attempt, expected="scheduled"):
                raise _Overtaken
            began = True

        started = time.monotonic()
        try:
            message = self._composed(record, way, language, plan, now, members)
            answer = await self.channels[way.channel].deliver(message, begin=begin)
        except _Overtaken:
            return await self.store.get(notification_id)  # a cancel won
        except SendError as exc:
            if began and isinstance(exc, TransientSendError) and exc.ambiguous:
                return await self._unknown_outcome(attempt)
            return await self._failed_attempt(attempt if began else record, way, now, exc)
        answered = time.monotonic()
        service = self.runtime.service
        SEND_SECONDS.labels(service, way.channel).observe(answered - started)
        due = datetime.fromisoformat(record["due_at"])
        SEND_LAG_SECONDS.labels(service, way.channel).observe(max(0.0, (now - due).total_seconds()))
        sent = accepted(attempt, at=now, ref=answer.ref)
        if not await self._record_acceptance(sent):
            return await self.store.get(notification_id)
        SEND_RECORD_SECONDS.labels(service, way.channel).observe(time.monotonic() - answered)
        if record["kind"] == "checkin":
            await self.store.remember(
                "checkin", record["client_id"], {"notification_id": notification_id}
            )
        return sent

    async def _record_acceptance(self, sent: dict[str, Any]) -> bool:
        """Record that the provider took the message, retrying a Redis failure for a
        while (the message is out: losing this record would make it an unknown
        outcome). False: the record was moved meanwhile (its lease ran out and
        another instance closed it as an unknown outcome)."""
        deadline = time.monotonic() + RECORD_TRIES_S
        while True:
            try:
                if await self.store.move(sent, expected=SENDING):
                    return True
                log.warning(
                    "notification %s was accepted after its attempt was given up",
                    sent["notification_id"],
                )
                return False
            except TRANSIENT:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def _unknown_outcome(self, attempt: dict[str, Any]) -> dict[str, Any] | None:
        """A send that began and was never seen to end (attempts.py): repeated only
        where the provider drops a repeat, else failed as ``outcome_unknown``."""
        channel = self.channels.get(attempt["channel"])
        repeat = channel is not None and channel.dedupes_repeats
        SENDS_UNKNOWN.labels(self.runtime.service, attempt["channel"]).inc()
        now = self.runtime.clock.now()
        if repeat:
            attempts = int(attempt.get("attempts", 0)) + 1
            again = retry_after_failure(attempt, attempts=attempts, error="outcome_unknown")
            await self.store.move(again, expected=SENDING, due_epoch=now.timestamp())
            return None
        log.warning(
            "notification %s: its send began and was never seen to end; not sent again",
            attempt["notification_id"],
        )
        gone = unknown(attempt, at=now)
        if not await self.store.move(gone, expected=SENDING):
            return await self.store.get(attempt["notification_id"])
        return gone

    async def _failed_attempt(
        self, record: dict[str, Any], way: Route, now: datetime, exc: SendError
    ) -> dict[str, Any] | None:
        attempts = int(record.get("attempts", 0)) + 1
        retry = (
            None
            if isinstance(exc, PermanentSendError)
            else next_attempt(attempts, now=now, policy=self.backoff)
        )
        if retry is None:
            log.warning(
                "notification %s failed after %d attempt(s): %s",
                record["notification_id"],
                attempts,
                exc.reason,
            )
            return await self._close(
                record, "failed", now, reason=exc.reason, attempts=attempts, channel=way.channel
            )
        waiting = retry_after_failure(record, attempts=attempts, error=exc.reason)
        await self.store.move(waiting, expected=record["status"], due_epoch=retry.timestamp())
        return None

    async def _close(
        self, record: dict[str, Any], status: str, now: datetime, **fields: Any
    ) -> dict[str, Any] | None:
        done = closed(record, status, now, **fields)
        if not await self.store.move(done, expected=record["status"]):
            return await self.store.get(record["notification_id"])  # a cancel won
        return done

    def _events(self, record: dict[str, Any]) -> list[Outgoing]:
        status = record["status"]
        base = {
            "notification_id": record["notification_id"],
            "client_id": record["client_id"],
            "location_id": record["location_id"],
            "visit_id": record.get("visit_id"),
            "kind": record["kind"],
            "channel": record["channel"],
        }
        at = datetime.fromisoformat(record[f"{status}_at"])
        fact: EventData
        if status == "sent":
            fact = NotificationSent(
                **base, due_at=datetime.fromisoformat(record["due_at"]), sent_at=at
            )
        elif status == "failed":
            fact = NotificationFailed(
                **base, reason=record["reason"], attempts=record["attempts"], failed_at=at
            )
        elif status == "cancelled":
            fact = NotificationCancelled(**base, reason=record["reason"], cancelled_at=at)
        else:
            fact = NotificationSuppressed(**base, reason=record["reason"], suppressed_at=at)
        trace = Trace.model_validate(record["trace"])
        events = [self._outgoing(fact, record, trace, at)]
        if status == "failed":
            events.append(self._dead_letter(record, trace, at))
        return events

    def _outgoing(
        self, fact: EventData, record: dict[str, Any], trace: Trace, at: datetime
    ) -> Outgoing:
        return self.runtime.outgoing(
            fact,
            key=record["client_id"],
            subject=record["notification_id"],
            event_id=derived_id(fact.event_type, record["notification_id"]),
            trace=trace,
            time=at,
        )

    def _dead_letter(self, record: dict[str, Any], trace: Trace, at: datetime) -> Outgoing:
        """The failed notification on the dead-letter topic, to inspect and replay:
        its record without the rendered text (there is none stored) or contact data."""
        kept = {k: v for k, v in record.items() if k != "trace"}
        fact = RecordDeadLettered(
            source_topic=NOTIFICATIONS.name,
            partition=-1,
            offset=-1,
            key=record["client_id"],
            error=f"notification {record['kind']} failed: {record['reason']}",
            payload=json.dumps(kept),
            payload_encoding="utf-8",
            service=self.runtime.service,
            failed_at=at,
        )
        return self._outgoing(fact, record, trace, at)  # its own event type: its own id
