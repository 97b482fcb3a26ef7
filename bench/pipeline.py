"""The whole pipeline, HTTP to the last reminder: the stack beside a bare aiokafka
pipeline of the same shape, in one run.

    .venv/bin/python -m bench.pipeline [--tree /tmp/cf-before ...] [--quick]
        [--intakes 500] [--in-flight 32] [--before-intakes 150]
        [--latency-rate 2] [--latency-seconds 60]
        [--api-rates 100,200,300] [--api-seconds 10] [--sites 40]
        [--proxy-intakes 20]

What runs. Each system gets an embedded Tansu broker of its own (started like
``clinicflow up`` does) and, for a stack, a Redis namespace of its own; nothing
else shares them. A *stack* is the intake, planner, scheduler and notifier
services of one checkout as separate processes, run with this virtualenv's
Python: this checkout, or each ``--tree PATH`` in order (another checkout, e.g.
``git worktree add /tmp/cf-before <commit>``).
Intakes are chronic neck-and-shoulder cases (a nine-visit plan) of new clients,
spread over a chain of ``--sites`` clones of the demo's Beaverton so calendars
never fill up. The *bare* pipeline is four processes of plain aiokafka
(bench/_bare.py): an aiohttp API that publishes one record and answers 202, then
intake -> plan -> visits -> reminders, each stage a consumer group with the
stack's ``fetch_max_wait_ms``, ``acks=all`` producers, and the fan-out and record
sizes measured on the stack's topics in the same run. No Redis, no validation,
no rules: it is what the broker and the client library cost on this machine, the
floor the stack is measured against.

What each figure means.
- *Intakes processed per second*: ``--intakes`` intakes posted with
  ``--in-flight`` requests open at a time; an intake is fully processed when every
  visit of its plan is on the visits topic and every visit's reminders are on the
  notifications topic, as a subscriber reads them; the rate is the intakes
  divided by the time from the first request to the last such record.
- *CPU ms per intake*: user + system CPU (``/proc/<pid>/stat``) each process spent
  over that same pass, divided by the intakes; the broker is the Tansu process.
  On a shared two-core machine this is the figure that holds; rates move with
  the load. The bench's own client and follower are not counted, nor is Redis
  (a server others may share).
- *Redis round trips per intake*: each service's
  ``clinicflow_redis_round_trips_total`` (a command or a whole pipeline is one)
  read before and after the pass; ``n/a`` for code that does not count them.
  *... through a proxy*: the same counted from outside, for any code: a stack
  started again with a TCP proxy in front of Redis for each service
  (bench/_redis_proxy.py), ``--proxy-intakes`` intakes at the latency rate, in a
  pass of its own so the proxy's hop is in no other figure, beside the counter's
  figure for that same pass (the two should agree). All include what a service
  does on its own meanwhile (timer polls, outbox relay), which weighs more at a
  low rate, and a batching consumer makes fewer round trips per intake under load.
- *202 -> first / last visit.booked*, *-> last notification.scheduled*: intakes
  posted at ``--latency-rate`` per second for ``--latency-seconds``, an idle
  pipeline otherwise: from the API's 202 to the intake's first and last
  ``visit.booked`` and its last reminder as a subscriber reads them (p50 and p99
  over the intakes).
- *Intake API p50 / p99 / errors*: ``POST /v1/intakes`` open loop at each of
  ``--api-rates`` for ``--api-seconds``; latency from each request's scheduled
  send time, so a queue shows; a non-202 or no answer within 5 s is an error.
  These passes come last: the downstream processes are paused (SIGSTOP) during
  them, so the backlog they create does not compete with the API for the cores.
- The last column divides the last checkout's figures by the bare pipeline's.

Before and after in one run: ``git worktree add /tmp/cf-before <commit>``, then
``--tree /tmp/cf-before --tree .`` (``--before-intakes`` sizes all but the last
for slower code). The full run takes about 7 minutes on two cores; ``--quick``
is a smoke run of under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import httpx

from bench._bare import TOPICS, Fanout, bare_event, running_bare
from bench._chain import FRONT_DESK_KEY, write_chain
from bench._follow import stack_event
from bench._measure import Figures, Options, Target, count_through, measure
from bench._proc import broker_pid, redis_round_trips
from bench._redis_proxy import CountingProxies
from bench._report import SERVICES, markdown
from bench._stack import running_tree
from shared.infra import Infra, free_port, local_infra
from shared.stack import Stack

PROJECT_ROOT = Path(__file__).resolve().parent.parent
QUICK = Options(
    intakes=8,
    in_flight=4,
    warmup=1,
    latency_rate=2.0,
    latency_s=3.0,
    api_rates=(20.0,),
    api_s=2.0,
    sites=4,
    proxy_intakes=4,
)
STACK_TOPICS = ["clinic.visits", "clinic.notifications"]
SIZED_TOPICS = ["clinic.intake", "clinic.plans", *STACK_TOPICS]
Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Report:
    stacks: list[Figures]
    bare: Figures
    fanout: Fanout
    table: str


def _own_broker(workdir: Path) -> AbstractContextManager[Infra]:
    """A broker of the system's own (never one named in the environment), Redis as usual."""
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    return local_infra(workdir=workdir, env=env)


def _pids(infra: Infra, processes: dict[str, int]) -> dict[str, int]:
    broker = broker_pid(infra.kafka_bootstrap_servers)
    return processes if broker is None else {**processes, "broker": broker}


def _git(tree: Path, *argv: str) -> str:
    found = subprocess.run(["git", "-C", str(tree), *argv], capture_output=True, text=True)
    return found.stdout.strip()


def tree_label(tree: Path) -> str:
    """The checkout's directory and commit, marked when its code has uncommitted changes."""
    changed = _git(tree, "status", "--porcelain", "--untracked-files=no", "shared", "services")
    return f"{tree.name} {_git(tree, 'rev-parse', '--short', 'HEAD')}{'+edits' if changed else ''}"


def _stack_target(label: str, infra: Infra, stack: Stack) -> Target:
    pids = _pids(infra, {name: proc.pid for name, proc in stack.processes.items()})
    return Target(
        label=label,
        intake_url=stack.urls["intake"],
        headers={"Authorization": f"Bearer {FRONT_DESK_KEY}"},
        bootstrap=infra.kafka_bootstrap_servers,
        topics=STACK_TOPICS,
        parse=stack_event,
        pids=pids,
        downstream=[pids[name] for name in SERVICES[1:]],
        round_trips=lambda: {name: redis_round_trips(stack.urls[name]) for name in SERVICES},
        run=uuid.uuid4().hex[:8],
        sized_topics=SIZED_TOPICS,
    )


def measure_tree(tree: Path, options: Options, chain: Path, workdir: Path, log: Log) -> Figures:
    with (
        _own_broker(workdir / "infra") as infra,
        running_tree(tree, infra, config=chain, workdir=workdir) as stack,
    ):
        label = tree_label(tree)
        figures = asyncio.run(measure(_stack_target(label, infra, stack), options, log))
    if options.proxy_intakes:
        proxied = count_round_trips(tree, label, options, chain, workdir, log)
        figures.proxied_round_trips, figures.counted_beside_proxy = proxied
    return figures


def count_round_trips(
    tree: Path, label: str, options: Options, chain: Path, workdir: Path, log: Log
) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Redis round trips per intake counted by a proxy in front of each service's Redis
    (bench/_redis_proxy.py), on a stack started for this pass alone, and by the
    services' own counter in the same pass."""
    with (
        _own_broker(workdir / "infra-proxied") as infra,
        CountingProxies(infra.redis_url, SERVICES) as proxies,
        running_tree(
            tree,
            infra,
            config=chain,
            workdir=workdir / "proxied",
            redis_urls={name: proxies.url(name) for name in SERVICES},
        ) as stack,
    ):
        target = _stack_target(label, infra, stack)

        def counted() -> dict[str, int]:
            return dict(proxies.round_trips)

        return asyncio.run(count_through(target, options, counted, log))


def fanout_of(figures: Figures) -> Fanout:
    """The bare pipeline's shape: the stack's records per intake and their sizes."""
    sizes, default = figures.sizes, Fanout()
    return Fanout(
        visits=max(1, round(figures.visits)),
        reminders=max(round(figures.visits), round(figures.reminders)),
        intake_bytes=round(sizes.get("intake.submitted", default.intake_bytes)),
        plan_bytes=round(sizes.get("plan.created", default.plan_bytes)),
        visit_bytes=round(sizes.get("visit.booked", default.visit_bytes)),
        reminder_bytes=round(sizes.get("notification.scheduled", default.reminder_bytes)),
    )


def measure_bare(fanout: Fanout, options: Options, workdir: Path, log: Log) -> Figures:
    port = free_port()
    with (
        _own_broker(workdir / "infra") as infra,
        running_bare(infra.kafka_bootstrap_servers, fanout, port, workdir / "logs") as processes,
    ):
        url = f"http://127.0.0.1:{port}"
        _wait_answers(url, processes)
        pids = _pids(infra, {name: proc.pid for name, proc in processes.items()})
        pids["intake"] = pids.pop("api")
        target = Target(
            label="bare aiokafka",
            intake_url=url,
            headers={},
            bootstrap=infra.kafka_bootstrap_servers,
            topics=[TOPICS["visit"], TOPICS["reminder"]],
            parse=bare_event,
            pids=pids,
            downstream=[pids[name] for name in SERVICES[1:]],
            round_trips=lambda: {name: 0.0 for name in SERVICES},
            run=uuid.uuid4().hex[:8],
        )
        figures = asyncio.run(measure(target, options, log))
    figures.proxied_round_trips = dict.fromkeys(SERVICES, 0.0)
    figures.counted_beside_proxy = dict.fromkeys(SERVICES, 0.0)
    return figures


def _wait_answers(url: str, processes: dict[str, subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if dead := [name for name, proc in processes.items() if proc.poll() is not None]:
            raise RuntimeError(f"bare stages exited while starting: {dead}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the bare API did not answer within 60 s")


def heading(figures: Figures) -> str:
    return f"{figures.label} (N={figures.intakes})"


def run(
    options: Options,
    *,
    trees: Sequence[Path] = (PROJECT_ROOT,),
    before_intakes: int | None = None,
    workdir: Path | None = None,
    log: Log = print,
) -> Report:
    """Measure the stack of each of ``trees`` in order (all but the last with
    ``before_intakes`` intakes), then the bare pipeline shaped like the last one's
    stack; the figures and their table."""
    base = workdir or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    base.mkdir(parents=True, exist_ok=True)
    chain = write_chain(base / "chain.yaml", options.sites)
    stacks = []
    for index, tree in enumerate(trees):
        last = index == len(trees) - 1
        intakes = options.intakes if last or before_intakes is None else before_intakes
        sized = dataclasses.replace(options, intakes=intakes)
        log(f"starting the stack of {tree}")
        measured = measure_tree(Path(tree).resolve(), sized, chain, base / f"stack-{index}", log)
        stacks.append(measured)
    fanout = fanout_of(stacks[-1])
    log(f"bare pipeline shaped as {fanout}")
    log("starting the bare pipeline")
    bare = measure_bare(fanout, options, base / "bare", log)
    return Report(stacks, bare, fanout, markdown(stacks, bare, heading))


def _rates(text: str) -> tuple[float, ...]:
    return tuple(float(rate) for rate in text.split(",") if rate)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tree",
        action="append",
        type=Path,
        help="a checkout to measure (repeat: in order, the last one against the bare pipeline; "
        "default: this one)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--intakes", type=int)
    parser.add_argument("--in-flight", type=int)
    parser.add_argument(
        "--before-intakes", type=int, help="intakes for every --tree but the last (default 150)"
    )
    parser.add_argument("--latency-rate", type=float)
    parser.add_argument("--latency-seconds", type=float)
    parser.add_argument("--api-rates", type=_rates)
    parser.add_argument("--api-seconds", type=float)
    parser.add_argument("--sites", type=int)
    parser.add_argument(
        "--proxy-intakes", type=int, help="intakes of the proxied pass (0: no such pass)"
    )
    parser.add_argument("--workdir", type=Path, help="logs and chain file (default: a temp dir)")
    args = parser.parse_args(argv)
    options = QUICK if args.quick else Options()
    chosen = {
        "intakes": args.intakes,
        "in_flight": args.in_flight,
        "latency_rate": args.latency_rate,
        "latency_s": args.latency_seconds,
        "api_rates": args.api_rates,
        "api_s": args.api_seconds,
        "sites": args.sites,
        "proxy_intakes": args.proxy_intakes,
    }
    options = dataclasses.replace(options, **{k: v for k, v in chosen.items() if v is not None})
    before = args.before_intakes or (options.intakes if args.quick else 150)
    started = time.monotonic()
    trees = args.tree or [PROJECT_ROOT]

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {line}", flush=True)

    report = run(options, trees=trees, before_intakes=before, workdir=args.workdir, log=log)
    print(f"\n{report.table}\n\n(bench ran {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
