"""What the intake service and the dashboard keep in Redis per intake, key family by
key family (the README's table of their keys): the intake keeps the client's record
and a short-lived duplicate guard, the dashboard only counters that do not grow with
the intakes."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from services.dashboard.store import DashboardStore
from services.intake.app import build_app
from shared.infra import Infra
from shared.redis_store import Keys
from tests.integration.test_dashboard_batches import intake_records, positioned
from tests.integration.test_intake_access import BEAVERTON, document
from tests.support import in_process_service, intake_settings

pytestmark = pytest.mark.integration
INTAKES = 20
# family -> keys per intake, for an intake of a new client with an e-mail address
INTAKE_FAMILIES = {
    "intake:clients:<chain>:<id>:details": 1,  # the client's record
    "intake:clients:<chain>:<id>:profile": 1,  # every name, e-mail, phone it was known by
    "intake:clients:<chain>:<id>:intakes": 1,  # intake id -> its summary
    "intake:clients:<chain>:<id>:locations": 1,  # where the record is seen
    "intake:intake-document:<id>:<id>": 1,  # the duplicate guard, for a day
    "clients:<chain>:by:email:<id>": 1,  # the chain's index: e-mail -> client ids
}


@pytest.fixture
async def redis(infra: Infra) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(infra.redis_url, decode_responses=True)
    yield client
    await client.aclose()


def family(key: str, namespace: str) -> str:
    """``key`` without the namespace, ids (anything with a digit or an @) replaced."""
    parts = key.removeprefix(f"{namespace}:").split(":")
    return ":".join(
        "<chain>" if part == "northwest-nmt" else "<id>" if re.search(r"[0-9@]", part) else part
        for part in parts
    )


async def scan(redis: aioredis.Redis, namespace: str) -> tuple[Counter[str], Counter[str]]:
    """Keys and bytes (``MEMORY USAGE``) per family under ``namespace``."""
    keys: Counter[str] = Counter()
    size: Counter[str] = Counter()
    async for key in redis.scan_iter(match=f"{namespace}:*", count=1000):
        name = family(key, namespace)
        keys[name] += 1
        size[name] += await redis.memory_usage(key, samples=0) or 0
    return keys, size


async def test_an_intake_keeps_the_clients_record_and_a_guard_for_a_day(
    infra: Infra, redis: aioredis.Redis
) -> None:
    namespace = f"inventory-{uuid.uuid4().hex[:8]}"
    async with in_process_service(build_app, intake_settings(infra, namespace)) as http:
        keys_before, bytes_before = await scan(redis, namespace)
        for n in range(INTAKES):
            body = document(name=f"Client {n} {uuid.uuid4().hex[:6]}", email=f"c{n}@example.org")
            answer = await http.post("/v1/intakes", json=body, headers=BEAVERTON)
            assert answer.status_code == 202, answer.text
        keys_after, bytes_after = await scan(redis, namespace)
        guard = [k async for k in redis.scan_iter(match=f"{namespace}:intake:intake-document:*")]
        guard_ttl = await redis.ttl(guard[0])

    grown = {name: (keys_after[name] - keys_before[name]) / INTAKES for name in keys_after}
    grown = {name: n for name, n in grown.items() if n}
    per_family = {name: (bytes_after[name] - bytes_before[name]) / INTAKES for name in grown}
    for name, n in sorted(grown.items()):
        print(f"{name:45} {n:5.2f} keys {per_family[name]:7.0f} bytes per intake")
    assert grown == INTAKE_FAMILIES
    assert 0 < guard_ttl <= 86_400  # INTAKE_DUPLICATE_WINDOW_S
    kept = sum(b for name, b in per_family.items() if "intake-document" not in name)
    assert kept <= 2 * 1024  # what stays once the guard has expired


async def test_the_dashboard_keeps_counters_that_do_not_grow_with_the_intakes(
    infra: Infra, redis: aioredis.Redis
) -> None:
    namespace = f"inventory-{uuid.uuid4().hex[:8]}"
    store = DashboardStore(redis, Keys(namespace, "dashboard"))
    location = f"inventory-{uuid.uuid4().hex[:6]}"
    offset = 0

    async def add(intakes: int) -> None:
        nonlocal offset
        for _ in range(intakes):
            batch = positioned(intake_records(location, str(uuid.uuid4())), start=offset)
            await store.add(1, batch, keep_from_minute=0)
            offset += len(batch)

    await add(10)
    keys_at_10, bytes_at_10 = await scan(redis, namespace)
    await add(40)
    keys_at_50, bytes_at_50 = await scan(redis, namespace)

    print(sum(bytes_at_10.values()), sum(bytes_at_50.values()))
    assert keys_at_50 == keys_at_10  # no key per intake, visit or message
    assert sum(bytes_at_50.values()) - sum(bytes_at_10.values()) <= 64 * 40
