"""Continuity of care as booking delivers it: a stream of plans on the demo chain,
per checkout, in one run.

    git -C /work/main worktree add /tmp/clinicflow-before e4a2c7d
    .venv/bin/python -m bench.continuity --tree /tmp/clinicflow-before --tree . [--plans 200]
    git -C /work/main worktree remove /tmp/clinicflow-before

For each checkout (``--tree``, repeat; default this one) a child process runs this
file as a script with the checkout first on ``PYTHONPATH``, so the planner, the
booking and the demo chain (deploy/dev/chain.yaml, which ``shared.settings`` finds
beside its own code) are that checkout's; the child prints the files it imported.

Per location of the demo chain, ``--plans`` intakes arrive one after another,
``--per-week`` a week from 2027-03-01, each built into a plan by the planner
(``build_plan``) and booked at the moment it arrives onto the location's calendar
as it stands (every earlier plan's visits held), as the scheduler would. The intakes
are the same for every checkout (seeded): one to three complaints, acute or
chronic (3 to 12 sessions), 15% asking for FMM, 20% with two or three preferred
days, 20% with a preferred time of day, 15% at most one visit a week.

Booking is called through whichever API the checkout has (``inspect.signature``):
``book_plan(plan, location=, therapists=[(t, hours)])`` before the directory, and
``book_plan(plan, staffing=directory.staffing(chain, directory.seed(chain), id))``
after it (the seeded directory, as a chain's first start writes it).

Figures per checkout and location:
- one therapist: plans with two or more booked visits whose visits all have the
  same therapist, of those plans;
- therapists per plan: distinct therapists of the booked visits, mean over the
  plans with at least one booked visit;
- sessions booked: booked visits of all sessions (the rest are waitlisted);
- days late: local days after the cadence's target (the previous visit's day plus
  the phase's interval), mean over every booked visit after the first;
- CPU ms per plan: process time of the ``book_plan`` call (p50 and p99).
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START = datetime(2027, 3, 1, 16, tzinfo=UTC)
REGIONS = ["neck", "shoulder", "upper_back", "low_back", "hip", "glute", "thigh", "leg", "arm"]
QUALITIES = ["deep", "ache", "dull", "sharp", "tender"]
TIMES = ["morning", "afternoon", "evening"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


# --- the child: one checkout's code ---------------------------------------------------------


def _intake(rng: random.Random, n: int, location: Any, at: datetime) -> Any:
    from shared.events import IntakeSubmitted
    from shared.events.intake import (
        ClientRecord,
        Complaint,
        Health,
        Preferences,
        Screening,
    )

    complaints = [
        Complaint(
            region=region,
            intensity=rng.randint(3, 9),
            qualities=rng.sample(QUALITIES, rng.randint(1, 2)),
            # acute under 3 months, chronic after: about half each
            onset=at.date()
            - timedelta(days=rng.choice([rng.randint(7, 80), rng.randint(100, 900)])),
        )
        for region in rng.sample(REGIONS, rng.choice([1, 1, 2, 2, 3]))
    ]
    open_days = [d for d in WEEKDAYS if location.hours.get(d)]
    preferences = Preferences(
        modality="fmm" if rng.random() < 0.15 else "either",
        days=sorted(rng.sample(open_days, rng.randint(2, 3)), key=WEEKDAYS.index)
        if rng.random() < 0.2
        else [],
        times=[rng.choice(TIMES)] if rng.random() < 0.2 else [],
        max_sessions_per_week=1 if rng.random() < 0.15 else None,
    )
    return IntakeSubmitted(
        intake_id=f"continuity-{location.id}-{n}",
        client=ClientRecord(client_id=f"client-{location.id}-{n}", name="Bench Client"),
        location_id=location.id,
        complaints=complaints,
        health=Health(),
        preferences=preferences,
        screening=Screening(outcome="clear"),
        submitted_at=at,
    )


def _book(chain: Any, location_id: str) -> Any:
    """``book(plan, existing, now)`` through this checkout's booking API."""
    from services.scheduler import booking

    parameters = inspect.signature(booking.book_plan).parameters
    location = chain.location(location_id)
    policy = chain.policy_for(location_id)
    if "staffing" in parameters:
        from services.scheduler import directory

        seeded = directory.seed(chain)

        def with_staffing(plan: Any, existing: Any, now: datetime) -> Any:
            view = directory.staffing(chain, seeded, location_id)
            return booking.book_plan(plan, staffing=view, policy=policy, existing=existing, now=now)

        return with_staffing
    therapists = [(t, chain.therapist_hours(t, location)) for t in chain.therapists_at(location_id)]

    old_book_plan: Any = booking.book_plan  # the old signature, which this checkout lacks

    def with_therapists(plan: Any, existing: Any, now: datetime) -> Any:
        return old_book_plan(
            plan,
            location=location,
            therapists=therapists,
            policy=policy,
            existing=existing,
            now=now,
        )

    return with_therapists


def _rank(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))]


def measure_location(
    chain: Any, location_id: str, plans: int, per_week: float, seed: int
) -> dict[str, Any]:
    from services.planner.domain import build_plan
    from services.scheduler.booking import interval_of

    location = chain.location(location_id)
    zone = location.zone
    policy = chain.policy_for(location_id)
    book = _book(chain, location_id)
    rng = random.Random(f"{seed}-{location_id}")
    existing: list[Any] = []
    one = several = with_visits = therapists = booked = sessions = 0
    late: list[int] = []
    cpu_ms: list[float] = []
    for n in range(plans):
        now = START + timedelta(days=7 * n / per_week)
        plan = build_plan(_intake(rng, n, location, now), policy=policy)
        held = [i for i in existing if i.end > now]  # what the scheduler reads: now on
        started = time.process_time()
        outcome = book(plan, held, now)
        cpu_ms.append((time.process_time() - started) * 1000)
        existing.extend(interval_of(v) for v in outcome.booked)
        visits = sorted(outcome.booked, key=lambda v: v.sequence)
        booked += len(visits)
        sessions += len(visits) + len(outcome.waitlisted)
        names = {v.therapist_id for v in visits}
        if visits:
            with_visits += 1
            therapists += len(names)
        if len(visits) >= 2:
            several += 1
            one += len(names) == 1
        interval = {phase.name: phase.interval_days for phase in plan.phases}
        for previous, visit in itertools.pairwise(visits):
            target = previous.start.astimezone(zone).date() + timedelta(days=interval[visit.phase])
            late.append(max(0, (visit.start.astimezone(zone).date() - target).days))
    return {
        "location": location_id,
        "plans": plans,
        "one_therapist": one / several if several else None,
        "therapists_per_plan": therapists / with_visits if with_visits else None,
        "sessions_booked": booked / sessions if sessions else None,
        "days_late": sum(late) / len(late) if late else None,
        "cpu_ms_p50": _rank(cpu_ms, 0.5),
        "cpu_ms_p99": _rank(cpu_ms, 0.99),
        "visits": len(existing),
    }


def child(plans: int, per_week: float, seed: int) -> dict[str, Any]:
    import services.scheduler.booking as booking
    from shared.chain import load_chain_config
    from shared.settings import DEFAULT_CHAIN_CONFIG

    chain = load_chain_config(DEFAULT_CHAIN_CONFIG)
    api = (
        "staffing" if "staffing" in inspect.signature(booking.book_plan).parameters else "location"
    )
    print(f"booking: {booking.__file__} (book_plan(..., {api}=...))", file=sys.stderr)
    print(f"chain:   {DEFAULT_CHAIN_CONFIG}", file=sys.stderr)
    rows = [
        measure_location(chain, loc.id, plans, per_week, seed)
        for loc in sorted(chain.locations, key=lambda loc: loc.id)
    ]
    return {
        "booking": booking.__file__,
        "chain": str(DEFAULT_CHAIN_CONFIG),
        "api": api,
        "rows": rows,
    }


# --- the parent: one child per checkout, one table ------------------------------------------


def _label(tree: Path) -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True)
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--untracked-files=no", "shared", "services", "deploy")
    return f"{tree.name} {git('rev-parse', '--short', 'HEAD')}{'+edits' if changed else ''}"


def measure(tree: Path, plans: int, per_week: float, seed: int) -> dict[str, Any]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child"]
    argv += ["--plans", str(plans), "--per-week", str(per_week), "--seed", str(seed)]
    done = subprocess.run(
        argv,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the continuity child of {tree} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(result["booking"]).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"{tree}: the child imported {result['booking']}, not this tree's")
    return {**result, "label": _label(tree), "imported": done.stderr.strip()}


def _cell(value: float | None, kind: str) -> str:
    if value is None:
        return "-"
    return f"{value:.0%}" if kind == "%" else f"{value:.2f}"


def table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| code | location | plans | one therapist | therapists per plan | sessions booked "
        "| days late | CPU ms per plan p50 / p99 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for row in result["rows"]:
            lines.append(
                f"| {result['label']} | {row['location']} | {row['plans']} "
                f"| {_cell(row['one_therapist'], '%')} "
                f"| {_cell(row['therapists_per_plan'], 'n')} "
                f"| {_cell(row['sessions_booked'], '%')} | {_cell(row['days_late'], 'n')} "
                f"| {row['cpu_ms_p50']:.1f} / {row['cpu_ms_p99']:.1f} |"
            )
    return lines


def run(trees: list[Path], *, plans: int = 200, per_week: float = 6.0, seed: int = 1) -> list[str]:
    results = []
    for tree in trees:
        result = measure(tree, plans, per_week, seed)
        print(f"{result['label']}:\n{result['imported']}", file=sys.stderr, flush=True)
        results.append(result)
    return table(results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", action="append", type=Path, help="a checkout (repeat)")
    parser.add_argument("--plans", type=int, default=200, help="intakes per location")
    parser.add_argument("--per-week", type=float, default=6.0, help="intakes a week per location")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.plans, args.per_week, args.seed)))
        return
    trees = [t.resolve() for t in (args.tree or [PROJECT_ROOT])]
    for line in run(trees, plans=args.plans, per_week=args.per_week, seed=args.seed):
        print(line)


if __name__ == "__main__":
    main()
