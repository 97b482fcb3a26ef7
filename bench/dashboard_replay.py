"""How fast ``clinicflow replay`` rebuilds the ops dashboard's read model.

    .venv/bin/python -m bench.dashboard_replay [--records 20000 50000]

Starts the embedded broker (or uses ``KAFKA_BOOTSTRAP_SERVERS``) and Redis,
publishes ``--records`` visit and notification events spread over a chain's
locations, then folds the public topics from offset 0 into a fresh read model,
as ``clinicflow replay`` does, and reports records per second, the CPU time this
process spent per 1000 records (decoding, folding, the Redis client; the figure
that holds on a shared machine, where wall time moves with the load) and the Redis
round trips per 1000 records. Each row is a
fresh broker topic set only when the broker is embedded; against a shared
broker the rows include what was already there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer

from services.dashboard.projector import rebuild
from services.dashboard.store import DashboardStore
from shared.clock import parse_clock
from shared.codec import encode, wrap
from shared.envelope import Trace
from shared.events import NotificationSent, VisitBooked
from shared.infra import local_infra
from shared.kafka import ensure_topics
from shared.metrics import REDIS_ROUND_TRIPS
from shared.redis_store import Keys, connect
from shared.settings import DashboardSettings

LOCATIONS = [f"loc-{n}" for n in range(10)]


def _event(n: int, now: datetime) -> tuple[str, bytes, bytes]:
    location = LOCATIONS[n % len(LOCATIONS)]
    client = f"c-{n % 997}"
    if n % 3:
        start = now + timedelta(days=3)
        data: VisitBooked | NotificationSent = VisitBooked(
            visit_id=f"v-{n}",
            plan_id=f"p-{client}",
            client_id=client,
            location_id=location,
            therapist_id="t-1",
            room=1,
            start=start,
            end=start + timedelta(hours=1),
            timezone="America/Los_Angeles",
            sequence=1,
            sessions_total=6,
        )
    else:
        data = NotificationSent(
            notification_id=f"n-{n}",
            client_id=client,
            location_id=location,
            kind="reminder",
            channel="email",
            due_at=now,
            sent_at=now,
        )
    envelope = wrap(
        data,
        event_id=str(uuid.uuid4()),
        service="bench",
        subject=client,
        trace=Trace(chainid="bench", correlationid=client, locationid=location),
        time=now,
    )
    topic = "clinic.visits" if n % 3 else "clinic.notifications"
    return topic, client.encode(), encode(envelope)


async def publish(bootstrap: str, records: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        now = datetime.now(UTC)
        pending = []
        for n in range(records):
            topic, key, value = _event(n, now)
            pending.append(await producer.send(topic, key=key, value=value))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def run(bootstrap: str, redis_url: str, sizes: list[int]) -> list[str]:
    await ensure_topics(bootstrap)
    lines = [
        f"{'published':>10} {'records read':>13} {'seconds':>8} {'records/s':>10}"
        f" {'CPU ms/1000':>12} {'trips/1000':>11}"
    ]
    published = 0
    for size in sizes:
        await publish(bootstrap, size - published)
        published = size
        settings = DashboardSettings(
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            REDIS_URL=redis_url,
            CLINICFLOW_REDIS_NAMESPACE=f"bench-{uuid.uuid4().hex[:8]}",
        )
        service = f"bench-replay-{uuid.uuid4().hex[:8]}"
        redis = connect(settings, service=service)
        trips = REDIS_ROUND_TRIPS.labels(service)
        try:
            store = DashboardStore(redis, Keys(settings.redis_namespace, "dashboard"))
            started, cpu = time.perf_counter(), time.process_time()
            summary = await rebuild(settings, store, clock=parse_clock("system"), window_minutes=60)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            spent = trips._value.get()
            async for key in redis.scan_iter(match=f"{settings.redis_namespace}:*", count=500):
                await redis.delete(key)
        finally:
            await redis.aclose()
        rate = summary.records / seconds if seconds else 0.0
        per = 1000 / summary.records if summary.records else 0.0
        lines.append(
            f"{size:>10} {summary.records:>13} {seconds:>8.2f} {rate:>10.0f}"
            f" {cpu * 1000 * per:>12.1f} {spent * per:>11.1f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, nargs="+", default=[10_000, 50_000])
    args = parser.parse_args()
    with local_infra() as infra:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", infra.kafka_bootstrap_servers)
        for line in asyncio.run(run(bootstrap, infra.redis_url, sorted(args.records))):
            print(line)


if __name__ == "__main__":
    main()
