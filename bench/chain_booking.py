"""Booking a plan through the scheduler's handler (real Redis) as the chain grows.

    .venv/bin/python -m bench.chain_booking [--probe 20] [--redis redis://127.0.0.1:6379/0]

Each row is a fresh calendar in its own Redis namespace: a chain of
``locations`` locations (Beaverton's hours, three rooms, three therapists each),
every location but the probe filled with ``elsewhere`` plans, the probe
location already holding ``here`` plans. Then ``--probe`` plans are booked at
the probe location one after another, each one ``plan.created`` handled as the
consumer would, and the row reports the mean and the slowest.

What it shows: the time per plan stays flat as locations and plans elsewhere
grow (a booking reads and checks only its own location's calendar, between now
and the horizon, and the script's overlap checks are range reads on sorted
sets), and it grows only with what is held at the probe location itself - the
candidate slots the search has to walk past.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any, cast

import redis.asyncio as aioredis
import yaml

from services.planner.domain import build_plan
from services.scheduler.handlers import handlers
from shared.chain import ChainConfig, parse_chain_config
from shared.clock import Clock
from shared.codec import wrap
from shared.envelope import Trace
from shared.events import IntakeSubmitted, PlanCreated
from shared.events.intake import ClientRecord, Complaint, Health, Screening
from shared.kafka import Publisher
from shared.redis_store import Keys
from shared.runtime import Foundations, Runtime
from shared.settings import DEFAULT_CHAIN_CONFIG, SchedulerSettings

NOW = datetime(2027, 3, 1, 16, tzinfo=UTC)
SERIES = [
    # (locations, plans at each other location, plans already at the probe)
    (1, 0, 0),
    (10, 0, 0),
    (50, 0, 0),
    (10, 10, 0),
    (10, 40, 0),
    (50, 20, 0),
    (1, 0, 40),
    (1, 0, 80),
]


class FixedClock(Clock):
    def now(self) -> datetime:
        return NOW

    def real_seconds_until(self, instant: datetime) -> float:
        return 0.0


class _NoBroker:
    """Plan handlers return their events (the consumer publishes them): no broker here."""

    async def publish(self, items: object) -> None:
        raise AssertionError("the bench publishes nothing")


def chain_of(locations: int) -> ChainConfig:
    demo: dict[str, Any] = yaml.safe_load(DEFAULT_CHAIN_CONFIG.read_text())
    beaverton = next(loc for loc in demo["locations"] if loc["id"] == "beaverton")
    sites = [{**beaverton, "id": f"site-{n}", "name": f"Site {n}"} for n in range(locations)]
    staff = [
        {"id": f"t-{n}-{k}", "name": f"Therapist {n}-{k}", "locations": [f"site-{n}"]}
        | {"skills": ["nmt", "fmm"] if k == 0 else ["nmt"]}
        for n in range(locations)
        for k in range(3)
    ]
    document = {**demo, "locations": sites, "therapists": staff}
    document["api_keys"] = [{"key": "bench-admin-key", "role": "admin", "locations": ["*"]}]
    return parse_chain_config(document, source=DEFAULT_CHAIN_CONFIG)


def plan_at(location_id: str, n: int, chain: ChainConfig) -> PlanCreated:
    intake = IntakeSubmitted(
        intake_id=f"bench-{location_id}-{n}",
        client=ClientRecord(client_id=f"client-{location_id}-{n}", name="Bench Client"),
        location_id=location_id,
        complaints=[
            Complaint(region="neck", intensity=7, qualities=["ache"], onset=date(2026, 6, 1)),
        ],
        health=Health(),
        screening=Screening(outcome="clear"),
        submitted_at=NOW,
    )
    return build_plan(intake, policy=chain.policy_for(location_id))


async def row(redis_url: str, locations: int, elsewhere: int, here: int, probe: int) -> str:
    settings = SchedulerSettings(
        REDIS_URL=redis_url, CLINICFLOW_CHAIN_CONFIG=str(DEFAULT_CHAIN_CONFIG)
    )
    chain = chain_of(locations)
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    runtime = Runtime(
        base=Foundations(service="scheduler", settings=settings, chain=chain, clock=FixedClock()),
        redis=redis,
        keys=Keys(namespace, "scheduler"),
        publisher=cast(Publisher, _NoBroker()),
    )
    handle = handlers(runtime)["plan.created"]

    async def book(plan: PlanCreated) -> float:
        cause = wrap(
            plan,
            event_id=str(uuid.uuid4()),
            service="planner",
            subject=plan.plan_id,
            trace=Trace(chainid=chain.chain.id, correlationid=plan.plan_id),
            time=NOW,
        )
        started = time.perf_counter()
        await handle(cause, plan)
        return time.perf_counter() - started

    try:
        for site in range(1, locations):
            for n in range(elsewhere):
                await book(plan_at(f"site-{site}", n, chain))
        for n in range(here):
            await book(plan_at("site-0", n, chain))
        held = await redis.zcard(runtime.keys("location-visits", "site-0"))
        spent = [await book(plan_at("site-0", here + n, chain)) for n in range(probe)]
    finally:
        keys = [k async for k in redis.scan_iter(f"{namespace}:*", count=1000)]
        for start in range(0, len(keys), 500):
            await redis.delete(*keys[start : start + 500])
        await redis.aclose()
    total_elsewhere = (locations - 1) * elsewhere
    return (
        f"{locations:>9} {total_elsewhere:>14} {held:>11} "
        f"{statistics.mean(spent) * 1000:>9.1f} {max(spent) * 1000:>9.1f}"
    )


async def run(redis_url: str, probe: int, series: list[tuple[int, int, int]]) -> list[str]:
    lines = [
        f"{'locations':>9} {'plans elsewhere':>14} {'visits here':>11} {'ms/plan':>9} {'max ms':>9}"
    ]
    print(lines[0], flush=True)
    for locations, elsewhere, here in series:
        line = await row(redis_url, locations, elsewhere, here, probe)
        print(line, flush=True)
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--probe", type=int, default=20, help="plans booked and timed per row")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    asyncio.run(run(args.redis, args.probe, SERIES))


if __name__ == "__main__":
    main()
