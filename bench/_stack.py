"""The four services of one checkout as separate processes, for the pipeline bench.

``shared/stack.py`` starts the services of the tree it is imported from; the bench
also measures other checkouts (an older commit beside the current one), so it
starts each service with this virtualenv's Python, the checkout as working
directory and first on ``PYTHONPATH``: ``python -m services.<name>`` then imports
that checkout's code. The dashboard is not started: it is on no intake's path.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import redis

from shared.infra import Infra, free_port
from shared.kafka import ensure_topics
from shared.stack import Stack, stack_environment, wait_until_ready

SERVICES = ("intake", "planner", "scheduler", "notifier")
# 2027-03-08 is a Monday; at real-time speed no reminder falls due during a run
CLOCK = "sim:2027-03-08T16:00:00Z@1x"


@contextmanager
def running_tree(
    tree: Path,
    infra: Infra,
    *,
    config: Path,
    workdir: Path,
    redis_urls: Mapping[str, str] | None = None,
) -> Iterator[Stack]:
    """Start ``tree``'s services on ``infra`` in a Redis namespace of their own (each
    through its own address in ``redis_urls``, if given); on exit stop them and delete
    the namespace's keys."""
    namespace = f"bench-{uuid.uuid4().hex[:10]}"
    ports = {name: free_port() for name in SERVICES}
    extra = {
        "CLINICFLOW_REDIS_NAMESPACE": namespace,
        "CLINICFLOW_ENV": "test",
        "NOTIFIER_OUTBOX_PATH": str(workdir / "outbox.jsonl"),
        # the bench is the only caller; the rate limit has tests of its own
        "API_RATE_LIMIT_PER_MINUTE": "10000000",
        "API_RATE_LIMIT_BURST": "1000000",
        "PYTHONPATH": str(tree),
    }
    env = stack_environment(infra, config=config, clock=CLOCK, ports=ports, extra=extra)
    asyncio.run(ensure_topics(infra.kafka_bootstrap_servers))
    log_dir = workdir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs = {name: log_dir / f"{name}.log" for name in SERVICES}
    try:
        for name in SERVICES:
            with logs[name].open("ab") as sink:
                own = {"REDIS_URL": redis_urls[name]} if redis_urls else {}
                processes[name] = subprocess.Popen(
                    [sys.executable, "-m", f"services.{name}"],
                    env={**env, **own},
                    cwd=tree,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        stack = Stack(infra=infra, urls=urls, processes=processes, logs=logs, environment=env)
        wait_until_ready(stack, deadline_s=120.0)
        yield stack
    finally:
        end_processes(processes.values())
        _forget(infra.redis_url, namespace)


def end_processes(processes: Iterable[subprocess.Popen[bytes]], grace_s: float = 3.0) -> None:
    """Terminate, then kill what is still running after ``grace_s``: the measurement is
    over, and a worker's orderly leave of its consumer group can take a session timeout."""
    running = [proc for proc in processes if proc.poll() is None]
    for proc in running:
        proc.terminate()
    deadline = time.monotonic() + grace_s
    for proc in running:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _forget(url: str, namespace: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(f"{namespace}:*", count=2000):
            batch.append(key)
            if len(batch) >= 1000:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
    finally:
        client.close()
