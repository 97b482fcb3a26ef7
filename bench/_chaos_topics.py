"""Every event on the public topics from their beginning, read in the background by a
consumer of no group (it commits nothing, so it changes nothing a service reads)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from bench._reader import BackgroundReader
from shared.topics import PUBLIC_TOPICS


class TopicReader(BackgroundReader):
    def __init__(self, bootstrap: str) -> None:
        topics = (spec.name for spec in PUBLIC_TOPICS)
        super().__init__(bootstrap, topics, fetch_max_wait_ms=50, metadata_max_age_ms=1000)
        self.events: list[dict[str, Any]] = []
        self.undecodable = 0
        self._last: dict[tuple[str, int], int] = {}

    def take(
        self, tp: TopicPartition, records: Sequence[ConsumerRecord[Any, Any]], at: float
    ) -> None:
        for record in records:
            try:
                self.events.append(json.loads(record.value or b""))
            except ValueError:
                self.undecodable += 1
            self._last[(tp.topic, tp.partition)] = record.offset

    async def caught_up(self, *, within_s: float) -> None:
        """Wait until everything on the topics now has been read (judged by the records
        read, so it fails at its deadline if the broker does not answer)."""
        consumer = self._consumer
        async with asyncio.timeout(within_s):
            ends = await consumer.end_offsets(list(consumer.assignment()))
        wanted = {(tp.topic, tp.partition): end - 1 for tp, end in ends.items() if end > 0}
        deadline = time.monotonic() + within_s
        while behind := [k for k, last in wanted.items() if self._last.get(k, -1) < last]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics not read to the end within {within_s:.0f} s: {behind}")
            await asyncio.sleep(0.05)
