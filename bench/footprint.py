"""What Redis holds per client: keys and bytes per active intake, per service and key
family, what a finished course keeps after its retention period, and what 100,000
active clients need; per checkout, in one run.

    git -C /work/main worktree add /tmp/wt-before 1ff3988
    .venv/bin/python -m bench.footprint --tree /tmp/wt-before --tree . [--intakes 100]
        [--finished 10] [--workdir DIR]
    git -C /work/main worktree remove /tmp/wt-before

What runs. For each checkout (``--tree``, repeat; default this one) the intake,
planner, scheduler and notifier services and the dashboard of that checkout run as
separate processes (bench/_footprint_stack.py) on an embedded broker of their own and
a fresh Redis namespace on the local Redis, on the demo chain with each location
cloned so calendars stay open (bench/_footprint_chain.py), on the simulated clock
from 2027-03-08 16:00 UTC at real speed.

1. The empty namespace is scanned (bench/_footprint_scan.py): what the services keep
   before any intake (the seeded directory, the dashboard's probes).
2. *Finished courses* (``--finished``): half are declined intakes (a DVT, which
   screening refers: ``plan.declined``); the other half are booked, then the stack is
   restarted onto the clock just after each plan's second visit has started, and both
   visits are completed through the scheduler's API (the second with no pain carried
   in, so the course ends ``goals_met``: ``plan.completed``). Then the stack is
   restarted past the longest ``keep_finished_courses`` of the chain (one day
   more) and, once every service's due list (``<ns>:<service>:ended``) is empty and
   the namespace has stopped changing, scanned again. What a finished course keeps
   is that scan less the first, per course, counting only keys that outlive the
   period (a key with a shorter TTL, such as a processed-event mark, is gone by then
   on a real calendar though the bench's clock jumped), and only the course's and its
   client's own keys (a family with an id in it); what the courses added to keys of
   the whole chain (an index, the directory the first booking seeds, the dashboard's
   counts) is a row of its own.
3. *Active intakes* (``--intakes``): varied intakes are posted (16 in flight) and
   followed on the topics until every visit of every plan is booked and each visit
   has the notifier's decision, then the namespace is scanned once it has stopped
   changing. Per active intake is that scan less the one before, divided by the
   intakes. The projection is bytes per active intake times 100,000.

Keys are counted by ``SCAN`` and sized by ``MEMORY USAGE key SAMPLES 0``: Redis's
own figure for each key, value and overhead, not its process RSS. A checkout whose
services never note a course's end has no retention: its finished course keeps its
hot state, and the table says so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from bench._footprint_chain import ADMIN_KEY, FRONT_DESK_KEY, intake_document, write_chain
from bench._footprint_scan import SERVICES, SHARED, Snapshot, Tally, difference, scan
from bench._footprint_stack import Course, Courses, FootprintStack, footprint_stack
from shared.chain import load_chain_config
from shared.clock import parse_clock
from shared.infra import Infra, local_infra

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START = datetime(2027, 3, 8, 16, tzinfo=UTC)  # a Monday
CLIENTS = 100_000
GROUPS = (*SERVICES, SHARED)
Log = Callable[[str], None]


@dataclass
class TreeFigures:
    label: str
    intakes: int
    finished: int
    retention: bool  # the checkout's services note a course's end
    keep: timedelta
    active: dict[str, Tally] = field(default_factory=dict)  # per service, all intakes
    active_families: dict[tuple[str, str], Tally] = field(default_factory=dict)
    ended_families: dict[tuple[str, str], Tally] = field(default_factory=dict)

    def per_intake(self, service: str | None = None) -> tuple[float, float]:
        return _per(self.active, self.intakes, service)

    def per_finished(
        self, service: str | None = None, *, chain_wide: bool = False
    ) -> tuple[float, float]:
        """Per finished course: its own keys (a family with an id: the client's, the
        plan's, a visit's...), or with ``chain_wide`` what it added to the keys of the
        whole chain (indexes, the directory, the dashboard's counts)."""
        chosen: dict[str, Tally] = {}
        for (group, family), tally in self.ended_families.items():
            if ("<id>" in family) != chain_wide:
                total = chosen.setdefault(group, Tally())
                total.keys += tally.keys
                total.bytes += tally.bytes
        return _per(chosen, self.finished, service)


def _per(tallies: dict[str, Tally], count: int, service: str | None) -> tuple[float, float]:
    chosen = [t for s, t in tallies.items() if service is None or s == service]
    if not count:
        return 0.0, 0.0
    return sum(t.keys for t in chosen) / count, sum(t.bytes for t in chosen) / count


# --- one checkout -----------------------------------------------------------------------------


def _git(tree: Path, *argv: str) -> str:
    found = subprocess.run(["git", "-C", str(tree), *argv], capture_output=True, text=True)
    return found.stdout.strip()


def tree_label(tree: Path) -> str:
    """The checkout's directory and commit, marked when its code has uncommitted changes."""
    changed = _git(tree, "status", "--porcelain", "--untracked-files=no", "shared", "services")
    return f"{tree.name} {_git(tree, 'rev-parse', '--short', 'HEAD')}{'+edits' if changed else ''}"


def has_retention(tree: Path) -> bool:
    """Whether any service of the checkout notes a course's end for its sweep."""
    return any("note_ended(" in path.read_text() for path in (tree / "services").rglob("*.py"))


def sim_now(stack: FootprintStack) -> datetime:
    env = stack.environment
    return parse_clock(env["CLINICFLOW_CLOCK"], anchor=float(env["CLINICFLOW_CLOCK_ANCHOR"])).now()


@contextmanager
def own_broker(workdir: Path) -> Iterator[Infra]:
    """A broker of the checkout's own (never one named in the environment), Redis as usual."""
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    with local_infra(workdir=workdir, env=env) as infra:
        yield infra


def measure_tree(
    tree: Path,
    *,
    intakes: int,
    finished: int,
    chain: Path,
    workdir: Path,
    log: Log,
) -> TreeFigures:
    config = load_chain_config(chain)
    keep = max(config.policy_for(loc.id).keep_finished_courses for loc in config.locations)
    figures = TreeFigures(tree_label(tree), intakes, finished, has_retention(tree), keep)
    with (
        own_broker(workdir / "infra") as infra,
        footprint_stack(tree, infra, config=chain, workdir=workdir, at=START) as stack,
    ):
        log(f"{figures.label}: the stack is ready (namespace {stack.namespace})")
        asyncio.run(_measure(stack, figures, chain_locations(chain), log))
    return figures


def chain_locations(chain: Path) -> list[dict[str, Any]]:
    import yaml

    document: dict[str, Any] = yaml.safe_load(chain.read_text())
    return list(document["locations"])


def placeholders(locations: list[dict[str, Any]], chain: Path) -> dict[str, str]:
    import yaml

    document: dict[str, Any] = yaml.safe_load(chain.read_text())
    names = {loc["id"]: "<location>" for loc in locations}
    names.update({t["id"]: "<therapist>" for t in document["therapists"]})
    return names


async def _measure(
    stack: FootprintStack, figures: TreeFigures, locations: list[dict[str, Any]], log: Log
) -> None:
    names = placeholders(locations, stack.config)
    redis = aioredis.Redis.from_url(stack.infra.redis_url, decode_responses=True)
    run = uuid.uuid4().hex[:6]
    rng = random.Random(1)
    try:
        async with Courses(stack.infra.kafka_bootstrap_servers) as courses:
            empty = await settled(redis, stack.namespace, names)
            before_active = empty
            if figures.finished:
                log(f"{figures.label}: {figures.finished} courses to their end")
                ended = await finish_courses(stack, courses, redis, figures, locations, run, log)
                keep_ms = int(figures.keep.total_seconds() * 1000)
                figures.ended_families = difference(
                    ended.by_family(keep=keep_ms), empty.by_family(keep=keep_ms)
                )
                before_active = ended
            log(f"{figures.label}: {figures.intakes} active intakes")
            today = sim_now(stack).date()
            documents = [
                intake_document(
                    rng,
                    n,
                    location=locations[n % len(locations)],
                    today=today,
                    run=run,
                    declined=False,
                )
                for n in range(figures.intakes)
            ]
            ids = await post_all(stack, documents)
            await courses.wait(
                ids, Course.booked, within_s=120 + 2 * len(ids), what="booked and reminded"
            )
            active = await settled(redis, stack.namespace, names)
            figures.active = difference(active.by_service(), before_active.by_service())
            figures.active_families = difference(active.by_family(), before_active.by_family())
    finally:
        await redis.aclose()


async def finish_courses(
    stack: FootprintStack,
    courses: Courses,
    redis: aioredis.Redis,
    figures: TreeFigures,
    locations: list[dict[str, Any]],
    run: str,
    log: Log,
) -> Snapshot:
    """Decline half the courses and complete the other half, move the clock past the
    retention period, and scan the namespace once every sweep has run."""
    today = sim_now(stack).date()
    declined_count = figures.finished // 2
    documents = [
        plain_document(n, locations[n % len(locations)], today, run, declined=n < declined_count)
        for n in range(figures.finished)
    ]
    ids = await post_all(stack, documents)
    declined, completing = ids[:declined_count], ids[declined_count:]
    await courses.wait(declined, Course.declined, within_s=120, what="declined")
    await courses.wait(completing, Course.booked, within_s=180, what="booked and reminded")
    if completing:
        second = max(courses.course(i).in_order()[1][1] for i in completing)
        moved_to = second + timedelta(minutes=5)
        log(f"{figures.label}: restarting on {moved_to.isoformat()} to complete two visits each")
        await asyncio.to_thread(stack.restart, moved_to)
        async with httpx.AsyncClient(base_url=stack.urls["scheduler"], timeout=30) as http:
            for intake_id in completing:
                (first, _), (last, _) = courses.course(intake_id).in_order()[:2]
                await complete(http, first, pain_before=5, pain_after=3)
                await complete(http, last, pain_before=1, pain_after=0)
        await courses.wait(completing, Course.completed, within_s=120, what="completed")
    past = sim_now(stack) + figures.keep + timedelta(days=1)
    log(f"{figures.label}: restarting on {past.isoformat()}, past the retention period")
    await asyncio.to_thread(stack.restart, past)
    await swept(redis, stack.namespace)
    return await settled(redis, stack.namespace, placeholders(locations, stack.config))


def plain_document(
    n: int, location: dict[str, Any], today: date, run: str, *, declined: bool
) -> dict[str, Any]:
    """An acute neck, no preferences: a short course whose first visits come soon."""
    return {
        "location_id": location["id"],
        "client": {
            "name": f"Finished Client {n}",
            "email": f"finished-{run}-{n}@example.com",
            "contact_consent": {"email": True},
        },
        "complaints": [
            {
                "region": "neck",
                "intensity": 6,
                "qualities": ["tender"],
                "onset": (today - timedelta(days=30)).isoformat(),
                "improving": True,
            }
        ],
        "health": {"contraindications": [{"code": "dvt"}]} if declined else {},
    }


async def post_all(stack: FootprintStack, documents: list[dict[str, Any]]) -> list[str]:
    """Post ``documents`` to the intake API, 16 at a time; their intake ids, in order."""
    headers = {"Authorization": f"Bearer {FRONT_DESK_KEY}"}
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=stack.urls["intake"], timeout=60) as http:

        async def post(document: dict[str, Any]) -> str:
            async with limit:
                answer = await http.post("/v1/intakes", json=document, headers=headers)
            if answer.status_code != 202:
                raise RuntimeError(f"intake refused: {answer.status_code} {answer.text[:300]}")
            return str(answer.json()["intake_id"])

        return list(await asyncio.gather(*(post(d) for d in documents)))


async def complete(
    http: httpx.AsyncClient, visit_id: str, *, pain_before: int, pain_after: int
) -> None:
    body = {"pain_before": pain_before, "pain_after": pain_after, "techniques": []}
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    answer = await http.post(f"/v1/visits/{visit_id}/complete", json=body, headers=headers)
    if answer.status_code not in (200, 202):
        raise RuntimeError(f"completing {visit_id}: {answer.status_code} {answer.text[:300]}")


async def swept(redis: aioredis.Redis, namespace: str, *, within_s: float = 180.0) -> None:
    """Wait until no service has a course still due for its sweep (``<ns>:*:ended``)."""
    deadline = time.monotonic() + within_s
    while True:
        due = [key async for key in redis.scan_iter(f"{namespace}:*:ended", count=1000)]
        left = sum([await redis.zcard(key) for key in due])
        if not left:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{left} finished courses still not swept after {within_s:.0f} s")
        await asyncio.sleep(0.5)


async def settled(
    redis: aioredis.Redis, namespace: str, names: dict[str, str], *, within_s: float = 60.0
) -> Snapshot:
    """The namespace once it has stopped changing: the same keys and about the same bytes
    (within 0.1%) in two scans a second apart (the dashboard's projection and the
    services' own writes trail the last event a subscriber reads)."""
    deadline = time.monotonic() + within_s
    previous = await scan(redis, namespace, names)
    while True:
        await asyncio.sleep(1.0)
        current = await scan(redis, namespace, names)
        was, now = _totals(previous), _totals(current)
        if was[0] == now[0] and abs(was[1] - now[1]) <= 0.001 * max(now[1], 1):
            return current
        if time.monotonic() > deadline:
            return current
        previous = current


def _totals(snapshot: Snapshot) -> tuple[int, int]:
    tallies = snapshot.by_service().values()
    return sum(t.keys for t in tallies), sum(t.bytes for t in tallies)


# --- the tables -------------------------------------------------------------------------------


def _kib(value: float) -> str:
    return f"{value / 1024:.1f}"


def table(results: list[TreeFigures]) -> list[str]:
    """Per service: keys and bytes per active intake and per finished course, the totals
    and the projection, one pair of columns per checkout."""
    head = "| per active intake |" + "".join(
        f" {r.label} (N={r.intakes}): keys | bytes |" for r in results
    )
    lines = [head, "|---|" + "---|---|" * len(results)]
    for service in GROUPS:
        cells = []
        for r in results:
            keys, size = r.per_intake(service)
            cells.append(f" {keys:.2f} | {size:,.0f} |")
        lines.append(f"| {service} |" + "".join(cells))
    totals = [r.per_intake() for r in results]
    lines.append("| **all** |" + "".join(f" **{k:.2f}** | **{b:,.0f}** |" for k, b in totals))
    lines.append("| KiB per active intake |" + "".join(f" | {_kib(b)} |" for _, b in totals))
    lines.append(
        f"| {CLIENTS:,} active clients (GiB) |"
        + "".join(f" | {b * CLIENTS / 2**30:.2f} |" for _, b in totals)
    )
    lines.append("| **per finished course, after its retention period** |" + " | |" * len(results))
    for service in GROUPS:
        cells = []
        for r in results:
            keys, size = r.per_finished(service)
            cells.append(f" {keys:.2f} | {size:,.0f} |")
        lines.append(f"| {service} |" + "".join(cells))
    lines.append(
        "| **all** |"
        + "".join(f" **{k:.2f}** | **{b:,.0f}** |" for k, b in (r.per_finished() for r in results))
    )
    lines.append(
        "| added to chain-wide keys |"
        + "".join(
            f" {k:.2f} | {b:,.0f} |" for k, b in (r.per_finished(chain_wide=True) for r in results)
        )
    )
    lines.append("| retention |" + "".join(f" | {_retention(r)} |" for r in results))
    return lines


def _retention(result: TreeFigures) -> str:
    if not result.retention:
        return "none in this code: a finished course stays hot"
    return f"swept {result.keep.days} days after the end"


def families(result: TreeFigures) -> list[str]:
    """Per key family of one checkout: keys and bytes per active intake and per finished
    course, largest first within each service."""
    lines = [
        f"{result.label}: per key family",
        "",
        "| service | family | keys / intake | bytes / intake "
        "| keys / finished | bytes / finished |",
        "|---|---|---|---|---|---|",
    ]
    groups = set(result.active_families) | set(result.ended_families)
    empty = Tally()

    def order(group: tuple[str, str]) -> tuple[int, int]:
        return GROUPS.index(group[0]), -result.active_families.get(group, empty).bytes

    for group in sorted(groups, key=order):
        active = result.active_families.get(group, empty)
        ended = result.ended_families.get(group, empty)
        if not (active.keys or active.bytes or ended.keys or ended.bytes):
            continue
        n, f = max(result.intakes, 1), max(result.finished, 1)
        lines.append(
            f"| {group[0]} | `{group[1]}` | {active.keys / n:.2f} | {round(active.bytes / n):,} "
            f"| {ended.keys / f:.2f} | {round(ended.bytes / f):,} |"
        )
    return lines


# --- the run ----------------------------------------------------------------------------------


def run(
    trees: list[Path],
    *,
    intakes: int = 100,
    finished: int = 10,
    workdir: Path | None = None,
    log: Log = print,
) -> tuple[list[TreeFigures], list[str]]:
    """Measure each checkout in order; the figures and the markdown report."""
    base = workdir or Path(tempfile.mkdtemp(prefix="bench-footprint-"))
    base.mkdir(parents=True, exist_ok=True)
    copies = max(1, -(-intakes // 50))  # about 25 plans per location: calendars stay open
    chain = base / "chain.yaml"
    write_chain(chain, copies)
    results = [
        measure_tree(
            Path(tree).resolve(),
            intakes=intakes,
            finished=finished,
            chain=chain,
            workdir=base / f"tree-{n}",
            log=log,
        )
        for n, tree in enumerate(trees)
    ]
    report = table(results)
    for result in results:
        report += ["", *families(result)]
    return results, report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", action="append", type=Path, help="a checkout (repeat)")
    parser.add_argument("--intakes", type=int, default=100, help="active intakes")
    parser.add_argument("--finished", type=int, default=10, help="courses driven to their end")
    parser.add_argument("--workdir", type=Path, help="logs and chain file (default: a temp dir)")
    args = parser.parse_args(argv)
    started = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {line}", flush=True)

    trees = args.tree or [PROJECT_ROOT]
    _, report = run(
        trees, intakes=args.intakes, finished=args.finished, workdir=args.workdir, log=log
    )
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    print("\n" + "\n".join(report))
    print(
        f"\n(bench ran {time.monotonic() - started:.0f} s wall, {cpu:.0f} s CPU: this process "
        "and every process it started)"
    )


if __name__ == "__main__":
    main()
