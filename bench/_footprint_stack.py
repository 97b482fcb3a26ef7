"""The whole stack of one checkout for the footprint bench: the four services and the
dashboard as separate processes in a Redis namespace of their own, restartable onto a
later instant of the simulated clock with everything they keep in Redis.

Like bench/_stack.py, each process runs with this virtualenv's Python, the checkout
as working directory and first on ``PYTHONPATH``, so it is that checkout's code. A
restart stops every process (SIGTERM, so each leaves its consumer group in order)
and starts them again on ``sim:<instant>@1x``: the way the bench moves a deployment
weeks on without waiting for them (a visit that has started, a retention period
that has passed). On exit the namespace's keys are deleted.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from bench._reader import BackgroundReader
from bench._stack import _forget
from shared.infra import Infra, free_port
from shared.kafka import ensure_topics
from shared.stack import Stack, stack_environment, stop_processes, wait_until_ready

PROCESSES = ("intake", "planner", "scheduler", "notifier", "dashboard")
TOPICS = ("clinic.plans", "clinic.visits", "clinic.notifications")


def sim_clock(at: datetime) -> str:
    return f"sim:{at.astimezone(UTC).isoformat().replace('+00:00', 'Z')}@1x"


class FootprintStack:
    """One checkout's processes on one namespace; ``restart`` moves the clock."""

    def __init__(self, tree: Path, infra: Infra, *, config: Path, workdir: Path) -> None:
        self.tree = tree
        self.infra = infra
        self.config = config
        self.workdir = workdir
        self.namespace = f"footprint-{uuid.uuid4().hex[:10]}"
        self.ports = {name: free_port() for name in PROCESSES}
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.environment: dict[str, str] = {}

    def start(self, at: datetime) -> None:
        extra = {
            "CLINICFLOW_REDIS_NAMESPACE": self.namespace,
            "CLINICFLOW_ENV": "test",
            "NOTIFIER_OUTBOX_PATH": str(self.workdir / "outbox.jsonl"),
            # the bench is the only caller; the rate limit has tests of its own
            "API_RATE_LIMIT_PER_MINUTE": "10000000",
            "API_RATE_LIMIT_BURST": "1000000",
            "PYTHONPATH": str(self.tree),
        }
        env = stack_environment(
            self.infra, config=self.config, clock=sim_clock(at), ports=self.ports, extra=extra
        )
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        paths = {name: logs / f"{name}.log" for name in PROCESSES}
        for name in PROCESSES:
            with paths[name].open("ab") as sink:
                self.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", f"services.{name}"],
                    env=env,
                    cwd=self.tree,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
        self.environment = env
        stack = Stack(self.infra, self.urls, self.processes, paths, env)
        wait_until_ready(stack, deadline_s=120.0)

    def stop(self) -> None:
        stop_processes(self.processes)
        self.processes = {}

    def restart(self, at: datetime) -> None:
        self.stop()
        self.start(at)


@contextmanager
def footprint_stack(
    tree: Path, infra: Infra, *, config: Path, workdir: Path, at: datetime
) -> Iterator[FootprintStack]:
    asyncio.run(ensure_topics(infra.kafka_bootstrap_servers))
    stack = FootprintStack(tree, infra, config=config, workdir=workdir)
    try:
        stack.start(at)
        yield stack
    finally:
        stack.stop()
        _forget(infra.redis_url, stack.namespace)


@dataclass
class Course:
    """What the topics show of one intake's course."""

    plan_id: str | None = None
    plan_events: set[str] = field(default_factory=set)
    sessions: int = 0
    visits: dict[str, tuple[int, datetime]] = field(default_factory=dict)  # id -> sequence, start
    reminded: set[str] = field(default_factory=set)
    waitlisted: set[int] = field(default_factory=set)  # sequences no slot was found for

    def declined(self) -> bool:
        return "plan.declined" in self.plan_events

    def completed(self) -> bool:
        return "plan.completed" in self.plan_events

    def booked(self) -> bool:
        """Every visit of the plan is booked (or waitlisted), and each booked one has the
        notifier's decision."""
        return (
            self.sessions > 0
            and len(self.visits) + len(self.waitlisted) >= self.sessions
            and set(self.visits) <= self.reminded
        )

    def __str__(self) -> str:
        return (
            f"plan events {sorted(self.plan_events)}, {len(self.visits)} of {self.sessions} "
            f"visits booked, {len(self.waitlisted)} waitlisted, "
            f"{len(set(self.visits) & self.reminded)} with the notifier's decision"
        )

    def in_order(self) -> list[tuple[str, datetime]]:
        ordered = sorted(self.visits.items(), key=lambda item: item[1][0])
        return [(visit_id, start) for visit_id, (_, start) in ordered]


class Courses(BackgroundReader):
    """The courses on the plans, visits and notifications topics, by intake id (the
    correlation id every event of an intake carries) and by plan id."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, TOPICS, fetch_max_wait_ms=25)
        self.by_intake: dict[str, Course] = {}
        self._plan_intake: dict[str, str] = {}

    def course(self, intake_id: str) -> Course:
        return self.by_intake.setdefault(intake_id, Course())

    def take(
        self, tp: TopicPartition, records: Sequence[ConsumerRecord[Any, Any]], at: float
    ) -> None:
        for record in records:
            self._take(record)

    def _take(self, record: ConsumerRecord[Any, Any]) -> None:
        envelope = json.loads(record.value or b"{}")
        kind = str(envelope.get("type", ""))
        data = envelope.get("data") or {}
        plan_id = data.get("plan_id")
        intake_id = self._plan_intake.get(plan_id or "") or envelope.get("correlationid") or ""
        course = self.course(intake_id)
        if kind.startswith("plan."):
            course.plan_events.add(kind)
            if plan_id and kind == "plan.created":
                course.plan_id = plan_id
                self._plan_intake[plan_id] = intake_id
        elif kind == "visit.booked":
            course.sessions = max(course.sessions, int(data["sessions_total"]))
            start = datetime.fromisoformat(data["start"])
            course.visits[data["visit_id"]] = (int(data["sequence"]), start)
        elif kind == "booking.waitlisted":
            course.sessions = max(course.sessions, int(data["sessions_total"]))
            course.waitlisted.add(int(data["sequence"]))
        elif kind in ("notification.scheduled", "notification.suppressed") and data.get("visit_id"):
            course.reminded.add(data["visit_id"])

    async def wait(
        self, intake_ids: list[str], done: Callable[[Course], bool], *, within_s: float, what: str
    ) -> None:
        """Wait until ``done(course)`` holds for every intake of ``intake_ids``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while True:
            left = [i for i in intake_ids if not done(self.course(i))]
            if not left:
                return
            if loop.time() > deadline:
                shown = "; ".join(f"{i}: {self.course(i)}" for i in left[:3])
                raise RuntimeError(
                    f"{len(left)} of {len(intake_ids)} intakes not {what} within "
                    f"{within_s:.0f} s ({shown})"
                )
            await asyncio.sleep(0.1)
