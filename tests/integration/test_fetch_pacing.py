"""Fetch pacing on a real consumer: idle past the quiet spell it asks with the idle
wait, and the fetch that brings a record sets the short wait again."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.fetch_pacing import pace_fetches
from shared.infra import Infra
from shared.settings import KafkaTuning
from shared.topics import PLANS
from tests.support import until

pytestmark = pytest.mark.integration


async def test_an_idle_consumer_waits_longer_and_a_record_brings_the_short_wait_back(
    infra: Infra,
) -> None:
    tuning = KafkaTuning(fetch_max_wait_ms=25, idle_fetch_max_wait_ms=300, idle_after_s=1.0)
    consumer = AIOKafkaConsumer(
        PLANS.name,
        bootstrap_servers=infra.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="latest",
        fetch_max_wait_ms=tuning.fetch_max_wait_ms,
    )
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap_servers)
    await consumer.start()
    await producer.start()
    try:
        pace_fetches(consumer, tuning)
        fetcher: Any = consumer._fetcher
        await consumer.getmany(timeout_ms=100)  # positions settled at the end

        async def waits(ms: int) -> bool | None:
            await consumer.getmany(timeout_ms=50)
            return True if fetcher._fetch_max_wait_ms == ms else None

        assert await until(lambda: waits(300), timeout=30)
        marker = uuid.uuid4().hex.encode()
        await producer.send_and_wait(PLANS.name, key=marker, value=b"{}")

        async def delivered() -> bool | None:
            batches = await consumer.getmany(timeout_ms=100)
            return any(r.key == marker for rs in batches.values() for r in rs) or None

        assert await until(delivered, timeout=30)
        assert fetcher._fetch_max_wait_ms == 25
    finally:
        await producer.stop()
        await consumer.stop()
