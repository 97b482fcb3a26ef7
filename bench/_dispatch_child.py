"""One checkout's notifier dispatcher sending a backlog, for the dispatcher bench.

Run as a script with the checkout on ``PYTHONPATH`` (bench/dispatcher.py does), so the
dispatcher, store and settings are that checkout's; this file only uses what every
checkout measured has (``Dispatcher(runtime, settings, channels).run()``,
``NotificationStore.schedule`` and ``save_contact``). Settings come from the
environment. It arms ``--backlog`` reminders due now, for ``--clients`` clients who
take e-mail, then starts the dispatcher and waits until nothing is due or claimed,
and prints one JSON line: when the dispatcher started, how long it took, its own
CPU time over that span and the Redis round trips it made.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from services.notifier.channels import channels_from
from services.notifier.delivery import Consent, Contact
from services.notifier.dispatcher import Dispatcher
from services.notifier.store import NotificationStore
from shared.metrics import REDIS_ROUND_TRIPS
from shared.runtime import Foundations, running
from shared.settings import NotifierSettings


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _bucket_quantiles(name: str) -> dict[str, float | None]:
    """p50 and p99 of a histogram of the dispatcher, as the upper bound of the bucket
    they fall in (None where the checkout has no such histogram)."""
    from prometheus_client import REGISTRY

    buckets: dict[float, float] = {}
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == f"{name}_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    if not buckets or not buckets[max(buckets)]:
        return {"p50": None, "p99": None}
    total = buckets[max(buckets)]
    ordered = sorted(buckets.items())

    def upper(q: float) -> float:
        return next(bound for bound, count in ordered if count >= q * total)

    return {"p50": upper(0.5), "p99": upper(0.99)}


def _round_trips() -> float:
    return sum(
        sample.value
        for metric in REDIS_ROUND_TRIPS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


async def _emptied(redis: Any, *queues: str) -> None:
    """Until none of ``queues`` holds anything (Redis polled: no event says so)."""
    while True:
        if not sum([await redis.zcard(queue) for queue in queues]):
            return
        await asyncio.sleep(0.05)


async def run(backlog: int, clients: int, run_id: str) -> dict[str, Any]:
    settings = NotifierSettings()
    async with running(Foundations.load("notifier", settings)) as runtime:
        store = NotificationStore(runtime.redis, runtime.keys)
        now = datetime.now(UTC)
        visit = now + timedelta(days=1)
        for c in range(clients):
            client_id = f"bench-{run_id}-{c}"
            await store.save_contact(
                Contact(
                    client_id=client_id,
                    location_id="beaverton",
                    email=f"{client_id}@example.com",
                    consent=Consent(email=True),
                )
            )
        for n in range(backlog):
            client_id = f"bench-{run_id}-{n % clients}"
            record = {
                "notification_id": f"reminder-{run_id}-{n}",
                "client_id": client_id,
                "location_id": "beaverton",
                "visit_id": f"visit-{run_id}-{n}",
                "kind": "reminder",
                "channel": "email",
                "status": "scheduled",
                "due_at": now.isoformat(),
                "offset": "24h",
                "moved_for_quiet_hours": False,
                "attempts": 0,
                "context": {"visit_start": visit.isoformat()},
                "trace": {"chainid": "northwest-nmt", "correlationid": client_id},
            }
            await store.schedule(record, due_epoch=now.timestamp())
        dispatcher = Dispatcher(runtime, settings, channels_from(settings))
        due, inflight = runtime.keys("due"), runtime.keys("inflight")
        cpu, trips, started = _cpu_s(), _round_trips(), time.time()
        task = asyncio.create_task(dispatcher.run())
        emptied = asyncio.create_task(_emptied(runtime.redis, due, inflight))
        await asyncio.wait({task, emptied}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():  # the dispatcher ended on its own: what stopped it
            emptied.cancel()
            task.result()
            raise RuntimeError("the dispatcher returned with messages still due")
        seconds, cpu, trips = time.time() - started, _cpu_s() - cpu, _round_trips() - trips
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return {
        "started": started,
        "seconds": seconds,
        "cpu_s": cpu,
        "round_trips": trips,
        "send_s": _bucket_quantiles("clinicflow_notification_send_seconds"),
        "record_s": _bucket_quantiles("clinicflow_notification_record_seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backlog", type=int, required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--run", required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.backlog, args.clients, args.run))), flush=True)


if __name__ == "__main__":
    main()
