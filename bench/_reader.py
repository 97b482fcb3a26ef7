"""A consumer of no group reading topics from their beginning in the background, for
the benches: it commits nothing, so it changes nothing a service reads. Subclasses
say what to keep of each batch (``take``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Sequence
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition


class BackgroundReader:
    def __init__(self, bootstrap: str, topics: Iterable[str], **consumer: Any) -> None:
        self._consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **consumer,
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            at = time.time()
            for tp, records in batches.items():
                self.take(tp, records, at)

    def take(
        self, tp: TopicPartition, records: Sequence[ConsumerRecord[Any, Any]], at: float
    ) -> None:
        """Keep what matters of ``records`` of ``tp``, read at ``at`` (Unix time)."""
        raise NotImplementedError
