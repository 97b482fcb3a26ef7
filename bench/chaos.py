"""The stack under SIGKILL chaos: intakes posted at a steady rate while a random
service is killed every few seconds and started again at once; then the topics and
a real SMTP server are checked for anything lost, doubled or overlapping.

    .venv/bin/python -m bench.chaos --intakes 300 --kill-every 5 [--rate 2]
        [--seed 1] [--sites 10] [--workdir DIR]

What runs. The intake, planner, scheduler and notifier as separate processes
(shared/stack.py) on an embedded Tansu broker of their own (fresh consumer groups)
and a Redis namespace of their own, on a simulated clock running an hour a second
(reminders fall due during the run), the notifier sending e-mail to an aiosmtpd
server in this process that logs every message it accepts (``sink.log``:
bench/_smtp_sink.py). Each intake is a new client consenting to e-mail, with an
``Idempotency-Key`` of its own, retried with that key on a connection error, 409,
429 or 5xx until it is answered 202. Every ``--kill-every`` seconds of posting a
service drawn with ``--seed`` is SIGKILLed and started again without waiting; a
watcher times each restart to its first 200 on ``/readyz``.

When posting is done the kills stop, every service is waited ready, and the cut-off
is the simulated time then: the bench waits (with a deadline) until every accepted
intake has its plan decision and bookings, and every notification due before the
cut-off has a terminal event. Then bench/_chaos_checks.py checks the topics and the
sink. The services' logs, the sink's log, every event read (``events.jsonl``), every
kill (``kills.jsonl``) and the chain are left in ``--workdir``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
from aiosmtpd.controller import Controller

from bench._chain import FRONT_DESK_KEY, intake_document, write_chain
from bench._chaos_checks import (
    TERMINAL,
    Event,
    Findings,
    Mail,
    findings,
    message_id,
    open_notifications,
    simulated,
    unsettled_intakes,
)
from bench._chaos_kills import Chaos, Restart
from bench._chaos_report import table
from bench._chaos_topics import TopicReader
from bench._smtp_sink import Sink
from bench._stack import SERVICES, _forget
from shared.clock import SimulatedClock, parse_clock
from shared.infra import free_port, local_infra
from shared.stack import Stack, running_stack, wait_until_ready

# 2027-03-08 is a Monday morning in Oregon; an hour passes every real second
CLOCK = "sim:2027-03-08T16:00:00Z@3600x"
EMAIL_DOMAIN = "chaos.example"
RETRIED = frozenset({409, 429})  # at work under the same key / slow down: the same again
Log = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    intakes: int = 300
    kill_every_s: float = 5.0
    rate: float = 2.0
    seed: int = 1
    sites: int = 10
    workdir: Path | None = None
    answer_within_s: float = 120.0  # an intake not answered 202 by then is unanswered
    settle_within_s: float = 240.0  # the wait for every decision and terminal event


@dataclass
class Result:
    findings: Findings
    restarts: list[Restart]
    unanswered: list[int]
    settled: bool
    still_open: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    workdir: Path = Path()


def run(options: Options, log: Log = print) -> Result:
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="clinicflow-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    chain = write_chain(workdir / "chain.yaml", options.sites)
    smtp_port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    namespace = f"chaos-{uuid.uuid4().hex[:10]}"
    extra = {
        "CLINICFLOW_REDIS_NAMESPACE": namespace,
        "CLINICFLOW_ENV": "test",
        "NOTIFIER_OUTBOX_PATH": str(workdir / "outbox.jsonl"),
        "NOTIFIER_POLL_INTERVAL_S": "0.2",
        "NOTIFIER_SMTP_HOST": "127.0.0.1",
        "NOTIFIER_SMTP_PORT": str(smtp_port),
        "NOTIFIER_SMTP_SECURITY": "none",
        "NOTIFIER_EMAIL_FROM": f"clinic@{EMAIL_DOMAIN}",
        "API_RATE_LIMIT_PER_MINUTE": "10000000",
        "API_RATE_LIMIT_BURST": "1000000",
    }
    started = time.monotonic()
    with (workdir / "sink.log").open("a", encoding="utf-8") as sink_log:
        sink = Controller(Sink(sink_log), hostname="127.0.0.1", port=smtp_port)
        sink.start()
        try:
            with local_infra(workdir=workdir / "infra", env=env) as infra:
                try:
                    with running_stack(
                        infra,
                        config=chain,
                        clock=CLOCK,
                        ports={name: free_port() for name in SERVICES},
                        extra_env=extra,
                        log_dir=workdir / "logs",
                        ready_within_s=120.0,
                    ) as stack:
                        log(f"stack ready in {time.monotonic() - started:.0f} s; logs in {workdir}")
                        result = asyncio.run(_drive(stack, options, workdir, log))
                finally:
                    _forget(infra.redis_url, namespace)
        finally:
            sink.stop()
    result.seconds["total"] = time.monotonic() - started
    result.workdir = workdir
    return result


async def _drive(stack: Stack, options: Options, workdir: Path, log: Log) -> Result:
    clock = parse_clock(
        stack.environment["CLINICFLOW_CLOCK"],
        anchor=float(stack.environment["CLINICFLOW_CLOCK_ANCHOR"]),
    )
    assert isinstance(clock, SimulatedClock)
    seconds: dict[str, float] = {}
    async with TopicReader(stack.infra.kafka_bootstrap_servers) as topics:
        chaos = Chaos(stack, SERVICES, every_s=options.kill_every_s, seed=options.seed).start()
        began = time.monotonic()
        try:
            accepted, unanswered = await _post_all(stack, options)
        finally:
            chaos.stop()
        seconds["posting"] = time.monotonic() - began
        kills = len(chaos.restarts)
        log(f"posted {len(accepted)} intakes in {seconds['posting']:.0f} s, {kills} kills")
        await asyncio.to_thread(wait_until_ready, stack, deadline_s=120.0)
        await asyncio.to_thread(chaos.join_watchers, within_s=30.0)
        cutoff = simulated(clock, time.time())
        began = time.monotonic()
        still_open = await _settle(topics, accepted, cutoff, within_s=options.settle_within_s)
        seconds["settling"] = time.monotonic() - began
        await topics.caught_up(within_s=30.0)
        mails = _mails(workdir / "sink.log")
        # the stack keeps sending what falls due after the cut-off: a mail the sink
        # took just before it was read may have its terminal event still on its way
        await _mails_settled(topics, mails, within_s=30.0)
        # ...and a send whose terminal event was read by now may have reached the sink
        # after the first read (the sink logs a mail before it answers, so before the
        # event is published): read again, keeping the mails the events account for
        mails = _accounted(_mails(workdir / "sink.log"), mails, topics.events)
        with (workdir / "events.jsonl").open("w", encoding="utf-8") as kept:
            kept.writelines(json.dumps(event) + "\n" for event in topics.events)
        _keep_restarts(workdir / "kills.jsonl", chaos.restarts, clock)
        found = findings(
            topics.events,
            mails,
            accepted=accepted,
            cutoff=cutoff,
            clock=clock,
            domain=EMAIL_DOMAIN,
        )
    return Result(found, chaos.restarts, unanswered, not still_open, still_open, seconds)


async def _settle(
    topics: TopicReader, accepted: Sequence[str], cutoff: datetime, *, within_s: float
) -> list[str]:
    """Wait until nothing is owed; what still is at the deadline."""
    deadline = time.monotonic() + within_s
    while True:
        events = list(topics.events)
        owed = unsettled_intakes(events, accepted) + open_notifications(events, cutoff)
        if not owed or time.monotonic() > deadline:
            return owed
        await asyncio.sleep(0.5)


async def _mails_settled(topics: TopicReader, mails: Sequence[Mail], *, within_s: float) -> None:
    """Wait until every mail received is one whose notification has a terminal event,
    or until the deadline (the checks then report what is left)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        settled = {
            message_id(str(e["data"].get("notification_id")), EMAIL_DOMAIN)
            for e in list(topics.events)
            if e.get("type") in TERMINAL
        }
        if all(mail.message_id in settled for mail in mails):
            break
        await asyncio.sleep(0.2)
    await topics.caught_up(within_s=30.0)


def _accounted(again: Sequence[Mail], first: Sequence[Mail], events: Sequence[Event]) -> list[Mail]:
    """The mails of the second read that were in the first or whose notification has
    a terminal event among ``events`` (what came after both is past the cut-off)."""
    known = {mail.message_id for mail in first}
    settled = {
        message_id(str(e["data"].get("notification_id")), EMAIL_DOMAIN)
        for e in events
        if e.get("type") in TERMINAL
    }
    return [mail for mail in again if mail.message_id in known or mail.message_id in settled]


async def _post_all(stack: Stack, options: Options) -> tuple[list[str], list[int]]:
    """Post ``options.intakes`` intakes at ``options.rate`` a second: the ids answered
    202, and the numbers of those not answered within ``options.answer_within_s``."""
    run_id = uuid.uuid4().hex[:8]
    url = f"{stack.urls['intake']}/v1/intakes"
    start = time.monotonic()
    async with httpx.AsyncClient(timeout=10.0) as http:

        async def one(n: int) -> str | None:
            await asyncio.sleep(max(0.0, start + n / options.rate - time.monotonic()))
            headers = {
                "Authorization": f"Bearer {FRONT_DESK_KEY}",
                "Idempotency-Key": f"chaos-{run_id}-{n}",
            }
            document = intake_document(n, sites=options.sites, run=run_id)
            deadline = time.monotonic() + options.answer_within_s
            while time.monotonic() < deadline:
                wait = 0.5
                try:
                    response = await http.post(url, json=document, headers=headers)
                except httpx.TransportError:
                    pass
                else:
                    if response.status_code == 202:
                        return str(response.json()["intake_id"])
                    if response.status_code not in RETRIED and response.status_code < 500:
                        raise RuntimeError(f"intake {n}: {response.status_code} {response.text}")
                    wait = min(2.0, float(response.headers.get("Retry-After", wait)))
                await asyncio.sleep(wait)
            return None

        answers = await asyncio.gather(*(one(n) for n in range(options.intakes)))
    accepted = [a for a in answers if a is not None]
    return accepted, [n for n, a in enumerate(answers) if a is None]


def _keep_restarts(path: Path, restarts: Sequence[Restart], clock: SimulatedClock) -> None:
    """Each kill: the service, when (epoch and simulated) and how long it took to be ready."""
    with path.open("w", encoding="utf-8") as kept:
        for r in restarts:
            at = simulated(clock, r.killed_at).isoformat()
            line = {"service": r.service, "killed_at": r.killed_at, "simulated": at}
            kept.write(json.dumps({**line, "ready_s": r.ready_s}) + "\n")


def _mails(path: Path) -> list[Mail]:
    mails = []
    for line in path.read_text(encoding="utf-8").splitlines():
        kind, *rest = line.split(" ", 2)
        if kind == "mail" and len(rest) == 2:
            mails.append(Mail(float(rest[0]), rest[1]))
    return mails


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intakes", type=int, default=Options.intakes)
    parser.add_argument("--kill-every", type=float, default=Options.kill_every_s)
    parser.add_argument("--rate", type=float, default=Options.rate, help="intakes per second")
    parser.add_argument("--seed", type=int, default=Options.seed)
    parser.add_argument("--sites", type=int, default=Options.sites)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    options = Options(
        intakes=args.intakes,
        kill_every_s=args.kill_every,
        rate=args.rate,
        seed=args.seed,
        sites=args.sites,
        workdir=args.workdir,
    )
    result = run(options)
    print(table(result.findings, result.restarts, len(result.unanswered)))
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    print(f"\n{timing}; settled: {result.settled}; workdir {result.workdir}")
    for problem, items in result.findings.examples.items():
        print(f"{problem}: {', '.join(items)}")
    if result.still_open:
        print(f"still open at the deadline ({len(result.still_open)}): {result.still_open[:10]}")


if __name__ == "__main__":
    main()
