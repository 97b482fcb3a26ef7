"""clinicflow_consumer_lag on a real consumer: records waiting behind a stuck
handler show as lag on their partition, and the lag goes back to zero once the
handler moves on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import REGISTRY

from shared import lag
from shared.codec import wrap
from shared.envelope import Envelope, Trace
from shared.events import EventData, PlanCompleted
from shared.infra import Infra
from shared.kafka import Outgoing, Publisher
from shared.runtime import Foundations, running
from shared.settings import CommonSettings
from shared.topics import PLANS
from tests.conftest import DEMO_CHAIN
from tests.support import until

pytestmark = pytest.mark.integration


def completed(client_id: str, n: int) -> Outgoing:
    data = PlanCompleted(
        plan_id=f"p-{client_id}-{n}",
        version=1,
        client_id=client_id,
        location_id="beaverton",
        reason="sessions done",
        completed_at=datetime.now(UTC),
    )
    envelope = wrap(
        data,
        event_id=str(uuid.uuid4()),
        service="lag-test",
        subject=client_id,
        trace=Trace(chainid="northwest-nmt", correlationid=f"i-{client_id}"),
        time=datetime.now(UTC),
    )
    return Outgoing(key=client_id, envelope=envelope)


def lag_on(service: str, partition: int) -> float | None:
    return REGISTRY.get_sample_value(
        "clinicflow_consumer_lag",
        {"service": service, "topic": PLANS.name, "partition": str(partition)},
    )


async def test_lag_shows_records_waiting_behind_a_stuck_handler(
    infra: Infra, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lag, "LAG_INTERVAL_S", 0.5)
    service = f"lag-{uuid.uuid4().hex[:8]}"
    client = f"c-{uuid.uuid4().hex[:8]}"
    settings = CommonSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
        REDIS_URL=infra.redis_url,
        CLINICFLOW_REDIS_NAMESPACE=namespace,
        CLINICFLOW_CHAIN_CONFIG=DEMO_CHAIN,
        CLINICFLOW_ENV="test",
    )
    release = asyncio.Event()
    reached: list[str] = []

    async def handler(envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        if envelope.subject == client:  # the run's other plan events pass straight through
            reached.append(envelope.id)
            await release.wait()
        return []

    publisher = Publisher(settings, client_id="lag-test")
    await publisher.start()
    try:
        async with running(
            Foundations.load(service, settings),
            consumes=[PLANS],
            handlers=lambda runtime: {"plan.completed": handler},
        ):
            events = [completed(client, n) for n in range(4)]
            await publisher.publish(events)
            await until(lambda: _true(reached), timeout=60)
            partition = partition_of(client)
            # the first record is in the handler; the other three (at least) wait behind it
            await until(lambda: _lag_at_least(service, partition, 3), timeout=60)
            release.set()
            assert await until(lambda: _lag_zero(service, partition), timeout=60)
            assert len(reached) == 4
    finally:
        release.set()  # never leave the consumer stuck, whatever failed
        await publisher.stop()


async def _true(found: list[str]) -> bool:
    return bool(found)


def partition_of(client: str) -> int:
    """Where the producer's partitioner put the records keyed by the client."""
    partitions = list(range(PLANS.partitions))
    return int(DefaultPartitioner()(client.encode(), partitions, partitions))


async def _lag_at_least(service: str, partition: int, n: int) -> float | None:
    value = lag_on(service, partition)
    return value if value is not None and value >= n else None


async def _lag_zero(service: str, partition: int) -> bool:
    return lag_on(service, partition) == 0
