"""Delivery channels. The console/file outbox writes one JSON line per message
(and logs it): the development channel, and what tests read."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboundMessage:
    notification_id: str
    channel: str
    to: str
    subject: str
    body: str
    sent_at: str


class ConsoleOutbox:
    channel = "console"

    def __init__(self, path: Path) -> None:
        self.path = path

    async def deliver(self, message: OutboundMessage) -> None:
        await asyncio.to_thread(self._append, message)
        log.info("outbox: %s to %s: %s", message.notification_id, message.to, message.subject)

    def _append(self, message: OutboundMessage) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(asdict(message)) + "\n")
