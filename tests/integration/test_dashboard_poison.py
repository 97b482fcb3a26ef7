"""The dashboard's projection reads past 1 MB poison records on every public topic
(binary, and JSON nested too deeply to parse): each is counted as ``undecodable``
and the record behind it is projected. A dead letter cut to fit keeps its size and
digest on the dashboard, and is not replayed from the beginning it kept."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from services.dashboard.app import build_app
from services.dashboard.store import DashboardStore
from shared.clock import parse_clock
from shared.codec import encode, wrap
from shared.envelope import Trace
from shared.events import VisitNoShow
from shared.infra import Infra
from shared.kafka import Publisher, ensure_topics
from shared.redis_store import Keys, connect
from shared.settings import DashboardSettings
from shared.streams import RawRecord, StreamProcessor
from shared.topics import PUBLIC_TOPICS
from tests.support import in_process_service, until

pytestmark = pytest.mark.integration
OPS = {"Authorization": "Bearer demo-ops"}
ADMIN = {"Authorization": "Bearer demo-admin"}
POISON_BYTES = 1_000_000


@pytest.fixture
def settings(infra: Infra) -> DashboardSettings:
    return DashboardSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
        REDIS_URL=infra.redis_url,
        CLINICFLOW_REDIS_NAMESPACE=f"dash-poison-{uuid.uuid4().hex[:10]}",
        CLINICFLOW_ENV="test",
        DASHBOARD_SERVICES="intake=http://127.0.0.1:9",
    )


@pytest.fixture
async def producer(infra: Infra) -> AsyncIterator[AIOKafkaProducer]:
    await ensure_topics(infra.kafka_bootstrap_servers)
    sender = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap_servers, acks="all")
    await sender.start()
    yield sender
    await sender.stop()


def no_show(client_id: str, location: str) -> bytes:
    data = VisitNoShow(
        visit_id=f"v-{client_id}",
        plan_id="p-1",
        client_id=client_id,
        location_id=location,
        recorded_at=datetime.now(UTC),
    )
    trace = Trace(chainid="northwest-nmt", correlationid=f"i-{client_id}", locationid=location)
    envelope = wrap(
        data,
        event_id=str(uuid.uuid4()),
        service="dashboard-test",
        subject=client_id,
        trace=trace,
        time=datetime.now(UTC),
    )
    return encode(envelope)


async def test_poison_on_every_topic_is_counted_and_the_next_record_projected(
    settings: DashboardSettings, producer: AIOKafkaProducer
) -> None:
    # a location of this test's own: its counts are this test's records only
    location = f"poison-{uuid.uuid4().hex[:8]}"
    client = str(uuid.uuid4())
    key = client.encode()
    behind: dict[tuple[str, int], int] = {}
    for spec in PUBLIC_TOPICS:
        await producer.send_and_wait(spec.name, key=key, value=os.urandom(POISON_BYTES))
        await producer.send_and_wait(spec.name, key=key, value=b"[" * POISON_BYTES)
        good = await producer.send_and_wait(spec.name, key=key, value=no_show(client, location))
        behind[(spec.name, good.partition)] = good.offset

    redis = connect(settings)
    store = DashboardStore(redis, Keys(settings.redis_namespace, "dashboard"))
    try:
        async with in_process_service(build_app, settings):

            async def past_every_good_record() -> bool:
                offsets = await store.offsets(await store.generation())
                return all(offsets.get(tp, 0) > offset for tp, offset in behind.items())

            await until(past_every_good_record, timeout=60)
            totals = await redis.hgetall(
                Keys(settings.redis_namespace, "dashboard")(
                    "g", str(await store.generation()), "totals"
                )
            )
        for spec in PUBLIC_TOPICS:
            assert totals[f"{location}|{spec.name}|visit.no_show"] == "1"
            assert int(totals[f"unknown|{spec.name}|undecodable"]) >= 2
    finally:
        await redis.aclose()


async def test_a_cut_dead_letter_shows_its_size_and_digest_and_is_not_replayed(
    settings: DashboardSettings, infra: Infra
) -> None:
    publisher = Publisher(settings, client_id="dashboard-poison-test")
    await publisher.start()
    value = os.urandom(POISON_BYTES)
    failing = StreamProcessor(
        service="analytics",
        chain_id="northwest-nmt",
        locations=["beaverton"],
        handlers={},
        publisher=publisher,
        processed=None,  # type: ignore[arg-type]
        clock=parse_clock("system"),
    )
    record = RawRecord(
        topic="clinic.visits", partition=0, offset=10**9 + 7, key=b"c-poison", value=value
    )
    dead = failing.dead_letter_event(record, "value is not JSON", None)
    try:
        await publisher.publish([dead])
    finally:
        await publisher.stop()
    assert dead.envelope.data["payload_truncated"] is True

    async with in_process_service(build_app, settings) as http:
        path = f"/v1/deadletters/{dead.envelope.id}"

        async def inspected() -> dict[str, object] | None:
            answer = await http.get(path, headers=OPS)
            return answer.json() if answer.status_code == 200 else None

        detail = await until(inspected, timeout=60)
        assert detail["payload_truncated"] is True
        assert detail["payload_bytes"] == POISON_BYTES
        assert detail["payload_sha256"] == hashlib.sha256(value).hexdigest()
        replay = await http.post(f"{path}/replay", headers=ADMIN)
        assert replay.status_code == 409
        assert "only the beginning" in replay.json()["detail"]
