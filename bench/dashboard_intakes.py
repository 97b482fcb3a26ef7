"""Redis round trips the ops dashboard spends per intake, with the whole stack running.

    .venv/bin/python -m bench.dashboard_intakes [--intakes 10] [--every 2.0]

Starts the embedded broker (or uses ``KAFKA_BOOTSTRAP_SERVERS``), Redis and every
service as its own process, then submits ``--intakes`` intakes ``--every`` seconds
apart (a trickle: the worst case, each intake's records arrive in fetches of their
own) and reads ``clinicflow_redis_round_trips_total{service="dashboard"}`` from the
dashboard's ``/metrics`` before and after, once the projection has caught up. The
dashboard's idle rate (lease, empty fetches, the readiness report) is measured over a
quiet spell first and shown apart: it runs whether intakes come or not.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from services.dashboard.projector import rebuild
from services.dashboard.store import DashboardStore
from shared.clock import parse_clock
from shared.infra import local_infra
from shared.redis_store import Keys, connect
from shared.settings import DashboardSettings
from shared.stack import Stack, free_ports, running_stack

CHAIN = Path(__file__).resolve().parent.parent / "deploy" / "dev" / "chain.yaml"
FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
OPS = {"Authorization": "Bearer demo-ops"}
ROUND_TRIPS = re.compile(r'^clinicflow_redis_round_trips_total\{service="dashboard"\} (\S+)$', re.M)


def intake(n: int) -> dict[str, Any]:
    return {
        "location_id": "beaverton",
        "client": {
            "name": f"Bench Client {n}",
            "email": f"bench-{uuid.uuid4().hex[:10]}@example.com",
            "contact_consent": {"email": True},
        },
        "complaints": [
            {
                "region": "neck",
                "side": "right",
                "intensity": 7,
                "qualities": ["dull", "ache"],
                "onset": "2026-06-01",
            }
        ],
        "goals": ["turn my head without pain"],
        "preferences": {"modality": "either"},
    }


async def round_trips(http: httpx.AsyncClient, url: str) -> float:
    found = ROUND_TRIPS.search((await http.get(f"{url}/metrics")).text)
    return float(found.group(1)) if found else 0.0


async def records_projected(http: httpx.AsyncClient, url: str) -> int:
    view = (await http.get(f"{url}/v1/overview", headers=OPS)).json()
    return sum(int(t["count"]) for t in view["totals"])


async def settled(http: httpx.AsyncClient, url: str, *, quiet_s: float = 5.0) -> int:
    """The projected record count once it has not moved for ``quiet_s``."""
    last, since = -1, time.monotonic()
    while True:
        now = await records_projected(http, url)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return now
        await asyncio.sleep(0.5)


async def recounted(stack: Stack, namespace: str) -> tuple[int, int]:
    """The live projection's record count, and a rebuild's from offset 0 (what
    ``clinicflow replay`` finds on the topics): equal when nothing was counted twice
    or missed."""
    settings = DashboardSettings(
        KAFKA_BOOTSTRAP_SERVERS=stack.infra.kafka_bootstrap_servers,
        REDIS_URL=stack.infra.redis_url,
        CLINICFLOW_REDIS_NAMESPACE=namespace,
    )
    redis = connect(settings)
    try:
        store = DashboardStore(redis, Keys(namespace, "dashboard"))
        live = (await store.read(await store.generation(), [], None)).totals
        summary = await rebuild(settings, store, clock=parse_clock("system"), window_minutes=60)
        rebuilt = (await store.read(summary.generation, [], None)).totals
    finally:
        await redis.aclose()
    return sum(live.values()), sum(rebuilt.values())


async def measure(stack: Stack, namespace: str, intakes: int, every_s: float) -> list[str]:
    dashboard = stack.urls["dashboard"]
    async with httpx.AsyncClient(timeout=30) as http:
        await settled(http, dashboard)
        idle_from, idle_started = await round_trips(http, dashboard), time.monotonic()
        await asyncio.sleep(10)
        idle_rate = (await round_trips(http, dashboard) - idle_from) / (
            time.monotonic() - idle_started
        )
        before_records = await records_projected(http, dashboard)
        before, started = await round_trips(http, dashboard), time.monotonic()
        for n in range(intakes):
            answer = await http.post(
                f"{stack.urls['intake']}/v1/intakes", json=intake(n), headers=FRONT_DESK
            )
            answer.raise_for_status()
            await asyncio.sleep(every_s)
        records = await settled(http, dashboard) - before_records
        spent = await round_trips(http, dashboard) - before
        seconds = time.monotonic() - started
    live, rebuilt = await recounted(stack, namespace)
    idle = idle_rate * seconds
    return [
        f"intakes {intakes}, one every {every_s:.1f} s; {records} records projected "
        f"({records / intakes:.1f} per intake) in {seconds:.0f} s",
        f"dashboard round trips: {spent:.0f} in all, {spent / intakes:.1f} per intake",
        f"of which idle (lease, empty fetches, readiness; {idle_rate:.2f}/s): {idle:.0f}",
        f"beyond idle: {(spent - idle) / intakes:.1f} per intake",
        f"records counted live {live}, by a rebuild from offset 0 {rebuilt}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--intakes", type=int, default=10)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between intakes")
    parser.add_argument(
        "--clock",
        default="sim:2027-03-08T16:00:00Z@1x",
        help="CLINICFLOW_CLOCK (default: a Monday the demo chain books visits from, real speed)",
    )
    args = parser.parse_args()
    with local_infra() as infra, tempfile.TemporaryDirectory() as workdir:
        extra = {
            "CLINICFLOW_REDIS_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}",
            "CLINICFLOW_ENV": "test",
            "NOTIFIER_OUTBOX_PATH": str(Path(workdir) / "outbox.jsonl"),
            "API_RATE_LIMIT_PER_MINUTE": "60000",
            "API_RATE_LIMIT_BURST": "10000",
        }
        with running_stack(
            infra,
            config=CHAIN,
            clock=args.clock,
            ports=free_ports(),
            extra_env=extra,
            log_dir=Path(workdir),
        ) as stack:
            namespace = extra["CLINICFLOW_REDIS_NAMESPACE"]
            for line in asyncio.run(measure(stack, namespace, args.intakes, args.every)):
                print(line)
        asyncio.run(forget(infra.redis_url, extra["CLINICFLOW_REDIS_NAMESPACE"]))


async def forget(redis_url: str, namespace: str) -> None:
    """Delete the run's keys: the Redis may be the one a developer's stack uses."""
    redis = aioredis.Redis.from_url(redis_url)
    try:
        async for key in redis.scan_iter(match=f"{namespace}:*", count=500):
            await redis.delete(key)
    finally:
        await redis.aclose()


if __name__ == "__main__":
    main()
