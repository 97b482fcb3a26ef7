"""Sends due notifications on the shared clock.

Due times live in a Redis sorted set; a claim moves a notification to the
in-flight set under a real-time lease, so two notifier instances never send the
same one and a crashed sender's claims come back when the lease expires. A
record already marked sent is never sent again, only its event is republished
(same id, so downstream sees it once)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from services.notifier.channels import ConsoleOutbox, OutboundMessage
from services.notifier.store import NotificationStore
from services.notifier.timing import render_reminder
from shared import links
from shared.clock import sleep_until
from shared.envelope import Trace, derived_id
from shared.events import NotificationSent
from shared.kafka import Outgoing
from shared.runtime import Runtime
from shared.settings import NotifierSettings
from shared.streams import TRANSIENT

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, runtime: Runtime, settings: NotifierSettings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.store = NotificationStore(runtime.redis, runtime.keys)
        self.outbox = ConsoleOutbox(settings.outbox_path)

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
        if record is None or record["status"] not in ("scheduled", "sent"):
            await self.store.release(notification_id)
            return
        if record["status"] == "scheduled":
            sent_at = self.runtime.clock.now()
            contact = await self.store.contact(record["client_id"]) or {}
            language = str(contact.get("language") or "en")
            await self.outbox.deliver(self._message(record, sent_at, language))
            record = {**record, "status": "sent", "sent_at": sent_at.isoformat()}
            await self.store.update(record)
        await self.runtime.publisher.publish([self._sent_event(record)])
        await self.store.release(notification_id)

    def _message(self, record: dict[str, Any], sent_at: datetime, language: str) -> OutboundMessage:
        chain = self.runtime.chain
        location = chain.location(record["location_id"])
        text = render_reminder(
            clinic_name=chain.chain.name,
            location_name=location.name,
            address=location.address,
            phone=location.phone,
            visit_start=datetime.fromisoformat(record["visit_start"]),
            zone=location.zone,
            confirm_url=self.settings.confirm_url_template.format(
                visit_id=record["visit_id"],
                sig=links.sign(
                    self.settings.link_secret.get_secret_value(), "visit", record["visit_id"]
                ),
            ),
            language=language,
        )
        return OutboundMessage(
            notification_id=record["notification_id"],
            channel=self.outbox.channel,
            to=f"client:{record['client_id']}",
            subject=text.subject,
            body=text.body,
            sent_at=sent_at.isoformat(),
        )

    def _sent_event(self, record: dict[str, Any]) -> Outgoing:
        sent_at = datetime.fromisoformat(record["sent_at"])
        fact = NotificationSent(
            notification_id=record["notification_id"],
            client_id=record["client_id"],
            location_id=record["location_id"],
            visit_id=record.get("visit_id"),
            kind=record["kind"],
            channel=record["channel"],
            due_at=datetime.fromisoformat(record["due_at"]),
            sent_at=sent_at,
        )
        return self.runtime.outgoing(
            fact,
            key=record["client_id"],
            subject=record["notification_id"],
            event_id=derived_id("notification.sent", record["notification_id"]),
            trace=Trace.model_validate(record["trace"]),
            time=sent_at,
        )
