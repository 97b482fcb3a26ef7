"""One system under the pipeline bench (a checkout's stack, or the bare pipeline):
the passes it goes through and the figures they give."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench._chain import intake_document
from bench._follow import Follower, Parse, Progress, sizes_on
from bench._load import OpenLoop, Post, Refused, in_flight, open_loop, percentile, steady
from bench._proc import cpu_of

Log = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    intakes: int = 500
    in_flight: int = 32
    warmup: int = 3
    latency_rate: float = 2.0
    latency_s: float = 60.0
    api_rates: tuple[float, ...] = (100.0, 200.0, 300.0)
    api_s: float = 10.0
    api_timeout_s: float = 5.0
    sites: int = 40
    settle_s: float = 1.0
    proxy_intakes: int = 20


@dataclass
class Target:
    """How to reach and watch one running system."""

    label: str
    intake_url: str
    headers: dict[str, str]
    bootstrap: str
    topics: list[str]
    parse: Parse
    pids: dict[str, int]  # process name -> pid, the broker's included
    downstream: list[int]  # paused while the API is measured alone
    round_trips: Callable[[], dict[str, float | None]]
    run: str  # makes this run's e-mails (so clients) its own
    sized_topics: list[str] = field(default_factory=list)  # where event sizes are read


@dataclass
class Figures:
    label: str
    intakes: int = 0
    processed: int = 0
    in_flight: int = 0
    per_second: float = 0.0
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per intake, by process
    round_trips: dict[str, float | None] = field(default_factory=dict)  # per intake
    proxied_round_trips: dict[str, float | None] = field(default_factory=dict)  # per intake
    counted_beside_proxy: dict[str, float | None] = field(default_factory=dict)  # per intake
    first_visit_ms: tuple[float | None, float | None] = (None, None)  # p50, p99
    last_visit_ms: tuple[float | None, float | None] = (None, None)
    last_reminder_ms: tuple[float | None, float | None] = (None, None)
    steady: int = 0
    api: list[OpenLoop] = field(default_factory=list)
    visits: float = 0.0  # per intake, measured
    reminders: float = 0.0
    sizes: dict[str, float] = field(default_factory=dict)  # bytes by event type
    warm_ids: list[str] = field(default_factory=list)


def poster(target: Target, sites: int) -> Post:
    async def post(http: aiohttp.ClientSession, n: int) -> str:
        document = intake_document(n, sites=sites, run=target.run)
        url = f"{target.intake_url}/v1/intakes"
        async with http.post(url, json=document, headers=target.headers) as response:
            if response.status != 202:
                raise Refused(f"{response.status}: {(await response.text())[:300]}")
            body: dict[str, Any] = await response.json()
            return str(body["intake_id"])

    return post


async def measure(target: Target, options: Options, log: Log) -> Figures:
    figures = Figures(target.label, intakes=options.intakes, in_flight=options.in_flight)
    post = poster(target, options.sites)
    numbers = itertools.count()
    async with Follower(target.bootstrap, target.topics, target.parse) as follower:
        log(f"{target.label}: warm-up ({options.warmup} intakes)")
        warm = await in_flight(post, numbers, options.warmup, options.warmup)
        figures.warm_ids = [a.intake_id for a in warm]
        if len(await follower.wait_done(figures.warm_ids, within_s=180)) < len(warm):
            raise RuntimeError(f"{target.label}: the warm-up intakes were not fully processed")
        await asyncio.sleep(options.settle_s)
        warmed = [follower.progress[i] for i in figures.warm_ids]
        figures.visits = sum(len(p.visits) for p in warmed) / len(warmed)
        figures.reminders = sum(p.reminders for p in warmed) / len(warmed)
        if target.sized_topics:
            ids = set(figures.warm_ids)
            figures.sizes = await sizes_on(target.bootstrap, target.sized_topics, ids)

        log(f"{target.label}: {options.intakes} intakes, {options.in_flight} in flight")
        await _throughput(target, options, follower, post, numbers, figures)

        count = max(1, round(options.latency_rate * options.latency_s))
        log(f"{target.label}: {count} intakes at {options.latency_rate:g}/s")
        accepted = await steady(post, numbers, options.latency_rate, options.latency_s)
        await follower.wait_done([a.intake_id for a in accepted], within_s=180)
        await asyncio.sleep(options.settle_s)
        progress = [follower.progress[a.intake_id] for a in accepted]
        figures.steady = len(accepted)
        figures.first_visit_ms = _p50_p99(
            [(p.first_visit - a.accepted_at) * 1000 for a, p in _booked(accepted, progress)]
        )
        figures.last_visit_ms = _p50_p99(
            [(p.last_visit - a.accepted_at) * 1000 for a, p in _booked(accepted, progress)]
        )
        figures.last_reminder_ms = _p50_p99(
            [
                (p.last_reminder - a.accepted_at) * 1000
                for a, p in zip(accepted, progress, strict=True)
                if p.done() is not None and p.last_reminder is not None
            ]
        )
    with paused_for_good(target.downstream):
        for rate in options.api_rates:
            log(f"{target.label}: intake API at {rate:g} req/s for {options.api_s:g} s")
            passed = await open_loop(post, numbers, rate, options.api_s, options.api_timeout_s)
            figures.api.append(passed)
            await asyncio.sleep(1.0)  # the API drains what is still open before the next pass
    return figures


async def count_through(
    target: Target, options: Options, counted: Callable[[], dict[str, int]], log: Log
) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Round trips per intake as ``counted`` counts them, and as the services' counter
    does, over ``proxy_intakes`` intakes posted at the latency rate (a pass of its own:
    nothing is timed)."""
    post = poster(target, options.sites)
    numbers = itertools.count()
    seconds = options.proxy_intakes / options.latency_rate
    async with Follower(target.bootstrap, target.topics, target.parse) as follower:
        log(f"{target.label}: Redis round trips through a proxy, {options.proxy_intakes} intakes")
        warm = await in_flight(post, numbers, 1, 1)
        await follower.wait_done([a.intake_id for a in warm], within_s=180)
        # the counter's window holds the proxy's: read before it at the start, after it at
        # the end, so the services' idle polling between the reads falls to the counter
        counter_before = target.round_trips()
        before = counted()
        accepted = await steady(post, numbers, options.latency_rate, seconds)
        await follower.wait_done([a.intake_id for a in accepted], within_s=180)
        after = counted()
        counter_after = target.round_trips()
    proxied: dict[str, float | None] = {
        name: (after[name] - before[name]) / len(accepted) for name in after
    }
    return proxied, per_intake(counter_before, counter_after, len(accepted))


def per_intake(
    before: dict[str, float | None], after: dict[str, float | None], intakes: int
) -> dict[str, float | None]:
    """Counter increases per intake; ``None`` where the code has no such counter."""
    return {
        name: None if count is None or (was := before[name]) is None else (count - was) / intakes
        for name, count in after.items()
    }


async def _throughput(
    target: Target,
    options: Options,
    follower: Follower,
    post: Post,
    numbers: Iterable[int],
    figures: Figures,
) -> None:
    before, trips_before = cpu_of(target.pids), target.round_trips()
    started = time.time()
    accepted = await in_flight(post, iter(numbers), options.intakes, options.in_flight)
    ids = [a.intake_id for a in accepted]
    done = await follower.wait_done(ids, within_s=120 + options.intakes)
    after, trips_after = cpu_of(target.pids), target.round_trips()
    await asyncio.sleep(options.settle_s)  # a plan's summary may trail its reminders
    ends = [follower.progress[i].last_reminder or 0.0 for i in done]
    figures.processed = len(done)
    figures.per_second = len(done) / (max(ends) - started) if ends else 0.0
    figures.cpu_ms = {name: (after[name] - before[name]) / len(ids) for name in after}
    figures.round_trips = per_intake(trips_before, trips_after, len(ids))


def _booked(accepted: list[Any], progress: list[Progress]) -> list[tuple[Any, Any]]:
    return [
        (a, p)
        for a, p in zip(accepted, progress, strict=True)
        if p.booked() and p.first_visit is not None and p.last_visit is not None
    ]


def _p50_p99(values: list[float]) -> tuple[float | None, float | None]:
    return percentile(values, 50), percentile(values, 99)


@contextmanager
def paused_for_good(pids: list[int]) -> Iterator[None]:
    """Stop ``pids`` (SIGSTOP) for the block, so the backlog an API pass creates does not
    compete with the API for the cores, then end them (SIGKILL): the API passes are the
    system's last, and a consumer resumed after missing its heartbeats only delays its
    own shutdown."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
