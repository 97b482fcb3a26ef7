"""``POST /v1/intakes`` under load: the intake service alone, driven open loop.

    .venv/bin/python -m bench.intake_load [--rates 100,200,300] [--seconds 20]

Starts the intake service as its own process against the broker and Redis of
``shared.infra.local_infra`` (embedded Tansu unless ``KAFKA_BOOTSTRAP_SERVERS``
is set), in a namespace of its own and with the per-key rate limit raised out
of the way. Then, per rate, sends intakes at fixed times (open loop: a slow
answer does not delay the next send) and reports latency measured from each
request's scheduled send time, the answers that were not 202, the intake
process's CPU time per request (user + system from ``/proc/<pid>/stat``) and
its Redis round trips per request (``clinicflow_redis_round_trips_total``).
``--closed N`` adds a closed-loop run with N callers, for the throughput one
process sustains. Every intake names a new client with its own Idempotency-Key;
``--returning`` makes that share of them a client seen before.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import redis

from shared.infra import Infra, free_port, local_infra
from shared.kafka import ensure_topics

ROOT = Path(__file__).resolve().parent.parent
KEY = "demo-frontdesk-beaverton"
ROUND_TRIPS = re.compile(r'^clinicflow_redis_round_trips_total\{service="intake"\} (\S+)$', re.M)


def document(n: int, run: str, *, returning: bool) -> dict[str, Any]:
    who = "regular" if returning else f"{run}-{n}"
    return {
        "location_id": "beaverton",
        "client": {
            "name": f"Client {who}",
            "email": f"{who}@load.example",
            "date_of_birth": "1984-02-01",
            "contact_consent": {"email": True, "sms": False},
        },
        "complaints": [
            {
                "region": "neck",
                "side": "right",
                "intensity": 6,
                "qualities": ["dull", "ache"],
                "onset": "2026-03-01",
            }
        ],
        "health": {"contraindications": [], "precautions": [{"code": "hypertension"}]},
        "goals": ["turn my head without pain"],
        "preferences": {"modality": "either", "days": ["mon"], "times": ["morning"]},
        "consent": {"treatment": True},
    }


def cpu_ms(pid: int) -> float:
    """User + system CPU time of ``pid`` so far, in milliseconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """Busy and total CPU ticks of the whole machine so far (``/proc/stat``)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


@dataclass
class Run:
    label: str
    latencies_ms: list[float]
    statuses: Counter[int]
    seconds: float
    cpu_ms: float
    round_trips: float
    machine_busy: float  # share of all cores busy meanwhile, whoever used them
    own_cpu_ms: float  # this load generator's CPU time

    def row(self) -> str:
        ordered = sorted(self.latencies_ms)
        n = len(ordered)

        def pct(p: float) -> float:
            return ordered[min(n - 1, int(p * n))] if n else float("nan")

        errors = sum(c for s, c in self.statuses.items() if s != 202)
        others = ",".join(f"{s}:{c}" for s, c in sorted(self.statuses.items()) if s != 202)
        return (
            f"{self.label:>10} {n / self.seconds:8.1f} {pct(0.5):8.1f} {pct(0.99):8.1f} "
            f"{pct(1.0):8.1f} {100 * errors / max(n, 1):6.1f}% {self.cpu_ms / max(n, 1):7.2f} "
            f"{self.round_trips / max(n, 1):6.2f} {100 * self.machine_busy:5.0f}% "
            f"{self.own_cpu_ms / max(n, 1):6.2f}  {others}"
        )


HEADER = (
    f"{'load':>10} {'done/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7} "
    f"{'cpu ms':>7} {'redis':>6} {'busy':>6} {'gen ms':>6}  statuses"
)


class Target:
    def __init__(self, url: str, pid: int, returning: float) -> None:
        self.url = url
        self.pid = pid
        self.returning = returning
        self.run = uuid.uuid4().hex[:8]
        self.sent = 0

    def body(self) -> tuple[bytes, dict[str, str]]:
        self.sent += 1
        every = round(1 / self.returning) if self.returning > 0 else 0
        returning = every > 0 and self.sent % every == 0
        headers = {
            "Authorization": f"Bearer {KEY}",
            "Idempotency-Key": f"{self.run}-{self.sent}",
            "Content-Type": "application/json",
        }
        return json.dumps(document(self.sent, self.run, returning=returning)).encode(), headers

    async def round_trips(self, http: aiohttp.ClientSession) -> float:
        async with http.get(f"{self.url}/metrics") as answer:
            found = ROUND_TRIPS.search(await answer.text())
        return float(found.group(1)) if found else 0.0

    async def one(self, http: aiohttp.ClientSession) -> int:
        body, headers = self.body()
        try:
            async with http.post(f"{self.url}/v1/intakes", data=body, headers=headers) as answer:
                await answer.read()
                return answer.status
        except (aiohttp.ClientError, TimeoutError):
            return 0

    async def measured(self, http: aiohttp.ClientSession, label: str, work: Any) -> Run:
        trips, cpu = await self.round_trips(http), cpu_ms(self.pid)
        busy, ticks = machine_ticks()
        own = time.process_time()
        started = time.perf_counter()
        latencies, statuses = await work
        seconds = time.perf_counter() - started
        cpu_used = cpu_ms(self.pid) - cpu
        own_used = (time.process_time() - own) * 1000
        busy_after, ticks_after = machine_ticks()
        share = (busy_after - busy) / max(1, ticks_after - ticks)
        trips_used = await self.round_trips(http) - trips - 1  # the first scrape's own
        return Run(
            label, latencies, statuses, seconds, cpu_used, max(0.0, trips_used), share, own_used
        )

    async def open_loop(self, http: aiohttp.ClientSession, rate: float, seconds: float) -> Any:
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        start = time.perf_counter() + 0.05

        async def at(due: float) -> None:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            statuses[await self.one(http)] += 1
            latencies.append((time.perf_counter() - due) * 1000)

        total = int(rate * seconds)
        await asyncio.gather(*(at(start + i / rate) for i in range(total)))
        return latencies, statuses

    async def closed_loop(self, http: aiohttp.ClientSession, callers: int, seconds: float) -> Any:
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        until = time.perf_counter() + seconds

        async def caller() -> None:
            while time.perf_counter() < until:
                sent = time.perf_counter()
                statuses[await self.one(http)] += 1
                latencies.append((time.perf_counter() - sent) * 1000)

        await asyncio.gather(*(caller() for _ in range(callers)))
        return latencies, statuses


@contextmanager
def intake_service(infra: Infra, extra_env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """The intake service as its own process; yields its URL and pid once it is ready.
    What it stored in Redis is removed afterwards."""
    port = free_port()
    namespace = f"bench-intake-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        **infra.environment(),
        "CLINICFLOW_REDIS_NAMESPACE": namespace,
        "INTAKE_PORT": str(port),
        "API_RATE_LIMIT_PER_MINUTE": "100000000",
        "API_RATE_LIMIT_BURST": "1000000",
        "PYTHONUNBUFFERED": "1",
        **extra_env,
    }
    asyncio.run(ensure_topics(infra.kafka_bootstrap_servers))
    proc = subprocess.Popen([sys.executable, "-m", "services.intake"], env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(_ready(url, proc))
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        removed(infra.redis_url, namespace)


def removed(redis_url: str, namespace: str) -> None:
    """Delete every key of ``namespace`` (a bench run leaves thousands)."""
    client = redis.Redis.from_url(redis_url)
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{namespace}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
    finally:
        client.close()


async def _ready(url: str, proc: subprocess.Popen[bytes], deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the intake service exited with {proc.returncode}")
            try:
                async with http.get(f"{url}/readyz") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the intake service was not ready within {deadline_s:.0f} s")


async def drive(target: Target, rates: list[float], seconds: float, closed: int) -> list[str]:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    lines = [HEADER]
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        await target.measured(http, "warm-up", target.open_loop(http, 50, 2))
        if closed:
            work = target.closed_loop(http, closed, seconds)
            lines.append((await target.measured(http, f"closed {closed}", work)).row())
            print(lines[-1], flush=True)
        for rate in rates:
            work = target.open_loop(http, rate, seconds)
            lines.append((await target.measured(http, f"{rate:g}/s", work)).row())
            print(lines[-1], flush=True)
            await asyncio.sleep(2)  # let a backlog drain before the next rate
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="100,200,300")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--closed", type=int, default=0, help="callers of a closed-loop run")
    parser.add_argument("--returning", type=float, default=0.0, help="share of known clients")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the service")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    rates = [float(r) for r in args.rates.split(",") if r]
    with local_infra() as infra, intake_service(infra, extra) as (url, pid):
        print(f"intake service pid {pid} at {url}", file=sys.stderr, flush=True)
        print(HEADER, flush=True)
        asyncio.run(drive(Target(url, pid, args.returning), rates, args.seconds, args.closed))


if __name__ == "__main__":
    main()
