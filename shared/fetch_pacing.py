"""A consumer's fetch wait: short while records flow, longer once it has been idle.

The embedded broker answers a fetch only when its wait ends, even if records arrive
meanwhile, so the wait is what a record waits at every hop; it has to be short
(``KAFKA_FETCH_MAX_WAIT_MS``, 25 ms). But an idle consumer then asks forty times a
second, and a stack of idle consumers keeps the broker busy doing nothing. Paced, a
consumer that has had no records for ``KAFKA_IDLE_AFTER_S`` waits
``KAFKA_IDLE_FETCH_MAX_WAIT_MS`` per fetch, and the first fetch that brings records
sets the short wait again: a stack with traffic keeps every hop short, an idle one
costs next to nothing, and only the first record after a quiet spell can wait up to
the idle wait at each hop. Apache Kafka answers a waiting fetch as soon as records
arrive; there both waits can be long (docker-compose.yml: 500 ms).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer

from shared.settings import KafkaTuning


def next_wait_ms(
    *, got_records: bool, idle_for_s: float, busy_ms: int, idle_ms: int, idle_after_s: float
) -> int:
    """The wait of the next fetch, given what the last one brought."""
    if got_records or idle_for_s < idle_after_s:
        return busy_ms
    return max(busy_ms, idle_ms)


def pace_fetches(consumer: AIOKafkaConsumer, kafka: KafkaTuning) -> None:
    """Pace a started consumer's fetches (see the module docstring)."""
    fetcher: Any = consumer._fetcher  # built by start(); aiokafka reads the wait per request
    original: Callable[..., Awaitable[bool]] = fetcher._proc_fetch_request
    last_records = time.monotonic()

    async def fetch(*args: Any) -> bool:
        nonlocal last_records
        woke = await original(*args)  # True when the fetch buffered records (or an error)
        now = time.monotonic()
        if woke:
            last_records = now
        fetcher._fetch_max_wait_ms = next_wait_ms(
            got_records=woke,
            idle_for_s=now - last_records,
            busy_ms=kafka.fetch_max_wait_ms,
            idle_ms=kafka.idle_fetch_max_wait_ms,
            idle_after_s=kafka.idle_after_s,
        )
        return woke

    fetcher._proc_fetch_request = fetch
