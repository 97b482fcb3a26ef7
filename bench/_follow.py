"""Following an intake's visits and reminders on the topics, as a subscriber sees them.

Every record is stamped with the wall-clock time the follower received it (the
consumer's fetch wait included), so the stack and the bare pipeline, followed the
same way, are measured alike. The follower reads only the visits and reminders
topics: what it costs the broker is the same for both.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from bench._reader import BackgroundReader


@dataclass(frozen=True)
class Seen:
    """One record that matters to the bench, read out of its value."""

    correlation: str
    kind: str  # "visit" or "reminder"
    visit: str  # the visit it is or is about ("" for a notification of no visit)
    sessions: int = 0  # the visits the intake's plan books (on a visit)


@dataclass
class Progress:
    """What one intake has produced so far."""

    sessions: int = 0
    visits: set[str] = field(default_factory=set)
    reminded: set[str] = field(default_factory=set)
    reminders: int = 0
    first_visit: float | None = None
    last_visit: float | None = None
    last_reminder: float | None = None

    def add(self, seen: Seen, at: float) -> None:
        if seen.kind == "visit":
            self.sessions = max(self.sessions, seen.sessions)
            self.visits.add(seen.visit)
            self.first_visit = at if self.first_visit is None else min(self.first_visit, at)
            self.last_visit = at if self.last_visit is None else max(self.last_visit, at)
        else:
            self.reminders += 1
            self.reminded.add(seen.visit)
            self.last_reminder = at if self.last_reminder is None else max(self.last_reminder, at)

    def booked(self) -> bool:
        return self.sessions > 0 and len(self.visits) >= self.sessions

    def done(self) -> float | None:
        """When the intake was fully processed: its last reminder, once every visit of its
        plan is booked and every visit has its reminders (they leave in one batch)."""
        if not self.booked() or not self.visits <= self.reminded:
            return None
        return self.last_reminder


Parse = Callable[[bytes], Seen | None]


class Follower(BackgroundReader):
    """Reads ``topics`` from their beginning in the background, by intake."""

    def __init__(self, bootstrap: str, topics: Iterable[str], parse: Parse) -> None:
        super().__init__(bootstrap, topics, fetch_max_wait_ms=25)
        self._parse = parse
        self.progress: defaultdict[str, Progress] = defaultdict(Progress)

    def take(
        self, tp: TopicPartition, records: Sequence[ConsumerRecord[Any, Any]], at: float
    ) -> None:
        for record in records:
            seen = self._parse(record.value or b"")
            if seen is not None:
                self.progress[seen.correlation].add(seen, at)

    async def wait_done(self, ids: Iterable[str], *, within_s: float) -> dict[str, float]:
        """Wait until every intake of ``ids`` is fully processed (or the deadline passes);
        return when each one was, for those that were."""
        wanted = list(ids)
        deadline = time.monotonic() + within_s
        while True:
            finished = {i: t for i in wanted if (t := self.progress[i].done()) is not None}
            if len(finished) == len(wanted) or time.monotonic() > deadline:
                return finished
            await asyncio.sleep(0.05)


def stack_event(value: bytes) -> Seen | None:
    """A ``visit.booked``, or the notifier's decision on a visit's message
    (``notification.scheduled``, or ``notification.suppressed``: a message held back,
    for instance a booking handled before its client's contact), of the stack's topics."""
    if (
        b'"visit.booked"' not in value
        and b'"notification.scheduled"' not in value
        and b'"notification.suppressed"' not in value
    ):
        return None
    envelope = json.loads(value)
    data = envelope.get("data") or {}
    correlation = envelope.get("correlationid") or ""
    if envelope.get("type") == "visit.booked":
        return Seen(correlation, "visit", data["visit_id"], int(data["sessions_total"]))
    if envelope.get("type") in ("notification.scheduled", "notification.suppressed"):
        return Seen(correlation, "reminder", data.get("visit_id") or "")
    return None


async def sizes_on(bootstrap: str, topics: Iterable[str], ids: set[str]) -> dict[str, float]:
    """The mean size in bytes of each event type on ``topics`` that one of the intakes
    ``ids`` caused (read from the topics' beginning to their current end)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    sizes: defaultdict[str, list[int]] = defaultdict(list)
    try:
        await consumer.topics()  # the metadata of every topic
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        left = {tp for tp in partitions if ends[tp] > 0}
        while left:
            batches = await consumer.getmany(*left, timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    envelope = json.loads(record.value or b"{}")
                    if envelope.get("correlationid") in ids:
                        sizes[str(envelope.get("type"))].append(len(record.value or b""))
                if records and records[-1].offset + 1 >= ends[tp]:
                    left.discard(tp)
    finally:
        await consumer.stop()
    return {kind: sum(found) / len(found) for kind, found in sizes.items()}
