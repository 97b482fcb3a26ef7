"""Sends due notifications on the shared clock.

Due times live in a Redis sorted set; a claim moves a notification to the
in-flight set under a real-time lease, so two notifier instances never send the
same one and a crashed sender's claims come back when the lease expires. A
record already past ``scheduled`` is never sent again, only its event is
republished (same id, so downstream sees it once).

At send time consent is read again (a STOP texted a minute ago is honoured),
then the rate limits: over the per-client limit the message is suppressed (a
flood to one person is a fault, not news), over the global one it waits for
the next window. A transient channel failure is retried with capped, jittered
backoff (``delivery.next_attempt``); the last failure, or a permanent one, is
``notification.failed`` and a record on the dead-letter topic."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from services.notifier.channels import Channel as Sender
from services.notifier.channels import PermanentSendError, SendError, channels_from
from services.notifier.compose import Links, compose
from services.notifier.delivery import Backoff, Route, Suppressed, next_attempt, route
from services.notifier.messages import Templates
from services.notifier.store import NotificationStore
from shared.clock import sleep_until
from shared.envelope import Trace, derived_id
from shared.events import (
    EventData,
    NotificationFailed,
    NotificationSent,
    NotificationSuppressed,
    RecordDeadLettered,
)
from shared.kafka import Outgoing
from shared.runtime import Runtime
from shared.settings import NotifierSettings
from shared.streams import TRANSIENT
from shared.topics import NOTIFICATIONS
from shared.vocabulary import Channel

log = logging.getLogger(__name__)

CLIENT_WINDOW_S = 3600
GLOBAL_WINDOW_S = 60


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
        )
        self.backoff = Backoff(
            base=timedelta(seconds=settings.retry_base_s),
            cap=timedelta(seconds=settings.retry_cap_s),
            attempts=settings.max_attempts,
        )

    @property
    def configured(self) -> frozenset[Channel]:
        return frozenset(c for c in ("email", "sms", "webhook", "console") if c in self.channels)

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
                next_due = await self.store.next_due_epoch()
            except TRANSIENT as exc:
                log.warning("dispatcher: transient failure, retrying: %r", exc)
                next_due = None
            if next_due is None:
                await asyncio.sleep(self.settings.poll_interval_s)
            else:
                wake = datetime.fromtimestamp(next_due, UTC)
                await sleep_until(self.runtime.clock, wake, at_most=self.settings.poll_interval_s)

    async def tick(self) -> int:
        """Send everything due now; returns how many were handled."""
        await self.store.recover_expired()
        now = self.runtime.clock.now()
        claimed = await self.store.claim_due(
            now_epoch=now.timestamp(), lease_s=self.settings.claim_lease_s
        )
        for notification_id in claimed:
            await self.deliver(notification_id)
        return len(claimed)

    async def deliver(self, notification_id: str) -> None:
        record = await self.store.get(notification_id)
        if record is not None and record["status"] == "scheduled":
            record = await self._attempt(record)
        if record is not None and record["status"] in ("sent", "failed", "suppressed"):
            await self.runtime.publisher.publish(self._events(record))
        await self.store.release(notification_id)

    async def _attempt(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """One try at a scheduled notification: the record as it stands afterwards
        (None: it was moved by someone else, or put back to wait)."""
        now = self.runtime.clock.now()
        contact = await self.store.contact(record["client_id"])
        production = self.settings.env == "production"
        way = route(contact, configured=self.configured, production=production)
        if isinstance(way, Suppressed):
            return await self._close(record, "suppressed", now, reason=way.reason)
        client_ok = await self.store.within_rate(
            f"client:{record['client_id']}",
            window_s=CLIENT_WINDOW_S,
            limit=self.settings.client_max_per_hour,
            now_epoch=now.timestamp(),
        )
        if not client_ok:
            return await self._close(record, "suppressed", now, reason="rate_limited")
        if not await self.store.within_rate(
            "global",
            window_s=GLOBAL_WINDOW_S,
            limit=self.settings.global_max_per_minute,
            now_epoch=now.timestamp(),
        ):
            window_end = (math.floor(now.timestamp() / GLOBAL_WINDOW_S) + 1) * GLOBAL_WINDOW_S
            await self.store.rearm(record["notification_id"], due_epoch=window_end)
            return None
        plan_id = (record.get("context") or {}).get("plan_id")
        plan = await self.store.recall("plan", plan_id) if plan_id else None
        assert contact is not None  # routed
        try:
            message = compose(
                record,
                way=way,
                language=contact.language,
                chain=self.runtime.chain,
                plan=plan,
                urls=self.links,
                templates=self.templates,
                sent_at=now,
            )
            await self.channels[way.channel].deliver(message)
        except SendError as exc:
            return await self._failed_attempt(record, way, now, exc)
        if record["kind"] == "checkin":
            await self.store.remember(
                "checkin", record["client_id"], {"notification_id": record["notification_id"]}
            )
        return await self._close(record, "sent", now, channel=way.channel)

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
        waiting = {**record, "attempts": attempts, "last_error": exc.reason}
        await self.store.move(waiting, expected="scheduled", due_epoch=retry.timestamp())
        return None

    async def _close(
        self, record: dict[str, Any], status: str, now: datetime, **fields: Any
    ) -> dict[str, Any] | None:
        closed = {**record, "status": status, f"{status}_at": now.isoformat(), **fields}
        if not await self.store.move(closed, expected="scheduled"):
            return await self.store.get(record["notification_id"])  # a cancel won
        return closed

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
