"""The bare pipeline: the stack's fan-out and record sizes with nothing but aiokafka.

``python -m bench._bare <stage> --bootstrap HOST:PORT --fanout JSON [--port N]``

Stages, one process each: ``api`` (an aiohttp server: ``POST /v1/intakes`` publishes
one record and answers 202), ``planner`` (one plan per intake), ``scheduler`` (the
plan's visits) and ``notifier`` (the visits' reminders). A consumer stage is a plain
consumer group: ``getmany``, send every output with the sends in flight together,
await the acknowledgements, commit. Producers wait for ``acks=all`` and consumers
fetch with the stack's ``fetch_max_wait_ms``, as the services do. Records are JSON
padded to the byte size of the stack's event of the same place, and carry the
intake's id so the bench follows them as it follows the stack's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from subprocess import Popen

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from bench._follow import Seen
from bench._stack import end_processes
from shared.settings import KafkaTuning

TOPICS = {"intake": "bare.intake", "plan": "bare.plans", "visit": "bare.visits"}
TOPICS["reminder"] = "bare.reminders"
PARTITIONS = 6  # as the public topics
STAGES = ("api", "planner", "scheduler", "notifier")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Fanout:
    """Records per intake and their sizes in bytes, as measured on the stack's topics."""

    visits: int = 9
    reminders: int = 19
    intake_bytes: int = 1500
    plan_bytes: int = 3000
    visit_bytes: int = 900
    reminder_bytes: int = 900

    def reminders_of(self, sequence: int) -> int:
        """Visit ``sequence``'s share of the reminders (they add up to ``reminders``)."""
        share = self.reminders * sequence // self.visits
        return share - self.reminders * (sequence - 1) // self.visits


def record(correlation: str, kind: str, size: int, visit: str = "", sessions: int = 0) -> bytes:
    """A JSON record of ``size`` bytes (or the smallest one that holds its fields)."""
    fields = {"c": correlation, "k": kind, "v": visit, "n": sessions, "p": ""}
    bare = len(json.dumps(fields).encode())
    fields["p"] = "x" * max(0, size - bare)
    return json.dumps(fields).encode()


def bare_event(value: bytes) -> Seen | None:
    """A visit or reminder record of the bare pipeline, for the follower."""
    fields = json.loads(value)
    return Seen(fields["c"], fields["k"], fields["v"], fields["n"])


def outputs(stage: str, fields: dict[str, object], fanout: Fanout) -> list[tuple[str, bytes]]:
    """What one record yields at ``stage``: (topic, value) pairs."""
    correlation = str(fields["c"])
    if stage == "planner":
        return [(TOPICS["plan"], record(correlation, "plan", fanout.plan_bytes))]
    if stage == "scheduler":
        size, total = fanout.visit_bytes, fanout.visits
        return [
            (TOPICS["visit"], record(correlation, "visit", size, f"{correlation}:{n}", total))
            for n in range(1, total + 1)
        ]
    visit = str(fields["v"])
    sequence = int(visit.rsplit(":", 1)[1])
    reminder = record(correlation, "reminder", fanout.reminder_bytes, visit)
    return [(TOPICS["reminder"], reminder)] * fanout.reminders_of(sequence)


SOURCES = {"planner": "intake", "scheduler": "plan", "notifier": "visit"}


def producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=0, enable_idempotence=False
    )


async def consume(stage: str, bootstrap: str, fanout: Fanout) -> None:
    tuning = KafkaTuning()
    consumer = AIOKafkaConsumer(
        TOPICS[SOURCES[stage]],
        bootstrap_servers=bootstrap,
        group_id=f"bare-{stage}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=tuning.fetch_max_wait_ms,
        rebalance_timeout_ms=int(tuning.rebalance_timeout_s * 1000),
        session_timeout_ms=int(tuning.session_timeout_s * 1000),
        heartbeat_interval_ms=int(tuning.heartbeat_interval_s * 1000),
    )
    sender = producer(bootstrap)
    await sender.start()
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            pending = []
            for records in batches.values():
                for incoming in records:
                    fields = json.loads(incoming.value or b"{}")
                    for topic, value in outputs(stage, fields, fanout):
                        pending.append(await sender.send(topic, value, key=incoming.key))
            if pending:
                await asyncio.gather(*pending)
                await consumer.commit()
    finally:
        await consumer.stop()
        await sender.stop()


async def serve_api(bootstrap: str, port: int, fanout: Fanout) -> None:
    sender = producer(bootstrap)
    await sender.start()

    async def intake(request: web.Request) -> web.Response:
        await request.read()
        intake_id = str(uuid.uuid4())
        value = record(intake_id, "intake", fanout.intake_bytes)
        await sender.send_and_wait(TOPICS["intake"], value, key=intake_id.encode())
        return web.json_response({"intake_id": intake_id}, status=202)

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.add_routes([web.post("/v1/intakes", intake), web.get("/readyz", ready)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await sender.stop()


async def create_topics(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in TOPICS.values()])
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()


@contextmanager
def running_bare(
    bootstrap: str, fanout: Fanout, api_port: int, log_dir: Path
) -> Iterator[dict[str, Popen[bytes]]]:
    """Start the four stages as processes; stop them on exit."""
    asyncio.run(create_topics(bootstrap))
    log_dir.mkdir(parents=True, exist_ok=True)
    processes: dict[str, Popen[bytes]] = {}
    argv = ["--bootstrap", bootstrap, "--fanout", json.dumps(asdict(fanout))]
    try:
        for stage in STAGES:
            with (log_dir / f"bare-{stage}.log").open("wb") as sink:
                processes[stage] = Popen(
                    [sys.executable, "-m", "bench._bare", stage, *argv, "--port", str(api_port)],
                    cwd=PROJECT_ROOT,
                    stdout=sink,
                    stderr=sink,
                )
        yield processes
    finally:
        end_processes(processes.values())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--fanout", required=True, help="the Fanout as JSON")
    parser.add_argument("--port", type=int, default=0, help="the api stage's port")
    args = parser.parse_args(argv)
    fanout = Fanout(**json.loads(args.fanout))
    if args.stage == "api":
        asyncio.run(serve_api(args.bootstrap, args.port, fanout))
    else:
        asyncio.run(consume(args.stage, args.bootstrap, fanout))


if __name__ == "__main__":
    main()
