"""How long booking one plan takes at one location (the pure ``book_plan``, no I/O).

    .venv/bin/python -m bench.booking [--plans 300]
    .venv/bin/python -m bench.booking --filled 300 [--seed 1]

The first form: plans from the real planner rules for a chronic two-region intake
are booked one after another at Beaverton (demo chain); each row reports the time
per plan for a window of plans and how many visits the location held by then.
Booking should grow with the candidate slots at the location, not with the
number of plans the chain already holds.

The second form (``--filled N``): one location with Beaverton's hours and closed
days from deploy/dev/chain.yaml, 3 rooms and 4 therapists, whose directory holds a
turnover of PT10M, a daily maximum of 5 visits per therapist and a realistic set
of exceptions: each therapist a week of time off and three sick days (one of them
half a day), one an extra Saturday shift and one changed hours, a holiday
closure (Good Friday) and a holiday-hours day. Its calendar is filled to 80% of
what it can hold over the policy horizon (16 weeks): every therapist's day packed
with back-to-back visits under those rules (rooms, turnover, the cap, the 30-minute
grid), then a seeded random fifth of them freed. On that calendar one 12-visit plan
(twice weekly, any day, any time, nmt) is booked N times, each time on the same
calendar (nothing accumulates), for

- ``bare``: the same calendar, the file's hours and closed days only: no
  exceptions, no turnover, no cap (what booking read before the directory);
- ``directory``: with the exceptions, closures, turnover and cap.

Each booking is timed from building the location's ``Staffing`` (the scheduler
builds one per booking from the directory) to the outcome, in CPU ms (process
user+system, ``time.process_time``) and wall ms; the two scenarios alternate, after
five untimed warm-up bookings each. The figure to judge by is CPU: wall moves with
the machine's load.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import yaml

from services.planner import knowledge as kb
from services.planner.course import cadence_phase
from services.planner.domain import build_plan
from services.scheduler.booking import BookedInterval, book_plan, interval_of
from services.scheduler.directory import (
    AddClosure,
    AddException,
    Closure,
    Directory,
    SetPolicy,
    StaffException,
    Staffing,
    StaffPolicy,
    apply,
    plain,
    seed,
    staffing,
)
from services.scheduler.slots import Occupancy, SlotQuery, free_slots_on
from shared.chain import ChainConfig, load_chain_config, parse_chain_config
from shared.events import IntakeSubmitted, PlanCreated
from shared.events.intake import ClientRecord, Complaint, Health, Screening
from shared.settings import DEFAULT_CHAIN_CONFIG

NOW = datetime(2027, 3, 1, 16, tzinfo=UTC)  # a Monday, 08:00 in Beaverton
LOCATION = "beaverton"
TURNOVER = timedelta(minutes=10)
DAILY_CAP = 5
FILL = 0.8
WARM_UP = 5


def intake(n: int) -> IntakeSubmitted:
    return IntakeSubmitted(
        intake_id=f"bench-{n}",
        client=ClientRecord(client_id=f"client-{n}", name="Bench Client"),
        location_id="beaverton",
        complaints=[
            Complaint(region="neck", intensity=7, qualities=["ache"], onset=date(2026, 6, 1)),
            Complaint(region="low_back", intensity=5, qualities=["dull"], onset=date(2026, 9, 1)),
        ],
        health=Health(),
        screening=Screening(outcome="clear"),
        submitted_at=NOW,
    )


# --- the first form: a location filling up ------------------------------------------------


def fill_up(plans: int, window: int, log: Callable[[str], None] = print) -> list[str]:
    chain = load_chain_config(DEFAULT_CHAIN_CONFIG)
    location = chain.location("beaverton")
    policy = chain.policy_for("beaverton")
    therapists = [(t, chain.therapist_hours(t, location)) for t in chain.therapists_at("beaverton")]
    existing: list[BookedInterval] = []
    waitlisted = 0
    lines = [f"{'plans':>6} {'visits held':>12} {'ms/plan':>9} {'waitlisted':>11}"]
    log(lines[0])
    started = time.perf_counter()
    for n in range(1, plans + 1):
        plan = build_plan(intake(n), policy=policy)
        outcome = book_plan(
            plan,
            staffing=plain(location, therapists),
            policy=policy,
            existing=existing,
            now=NOW,
        )
        existing.extend(interval_of(v) for v in outcome.booked)
        waitlisted += len(outcome.waitlisted)
        if n % window == 0:
            per_plan = (time.perf_counter() - started) / window * 1000
            lines.append(f"{n:>6} {len(existing):>12} {per_plan:>9.2f} {waitlisted:>11}")
            log(lines[-1])
            started = time.perf_counter()
    return lines


# --- the second form: one plan on a filled calendar, bare and with the directory ----------


def bench_chain() -> ChainConfig:
    """The demo chain with four therapists at Beaverton (3 rooms)."""
    demo: dict[str, Any] = yaml.safe_load(DEFAULT_CHAIN_CONFIG.read_text())
    beaverton = next(loc for loc in demo["locations"] if loc["id"] == LOCATION)
    staff: list[dict[str, Any]] = [
        {"id": "t-a", "name": "A", "skills": ["nmt", "fmm"]},  # the location's hours
        {
            "id": "t-b",
            "name": "B",
            "hours": {
                "mon": ["12:00-18:00"],
                "wed": ["09:00-18:00"],
                "fri": ["09:00-17:00"],
                "sat": ["10:00-14:00"],
            },
        },
        {"id": "t-c", "name": "C", "hours": {d: ["09:00-18:00"] for d in ("mon", "tue", "wed")}},
        {
            "id": "t-d",
            "name": "D",
            "skills": ["nmt", "fmm"],
            "hours": {
                "tue": ["09:00-18:00"],
                "thu": ["09:00-18:00"],
                "fri": ["09:00-17:00"],
                "sat": ["10:00-14:00"],
            },
        },
    ]
    document = {
        **demo,
        "locations": [beaverton],
        "therapists": [{"locations": [LOCATION], **t} for t in staff],
        "api_keys": [{"key": "bench-admin-key", "role": "admin", "locations": ["*"]}],
    }
    return parse_chain_config(document, source=DEFAULT_CHAIN_CONFIG)


def _exception(
    n: int, therapist: str, kind: str, start: str, end: str, **more: Any
) -> AddException:
    return AddException(
        StaffException.model_validate(
            {
                "id": f"x-{n}",
                "therapist_id": therapist,
                "kind": kind,
                "start_date": start,
                "end_date": end,
                **more,
            }
        )
    )


def bench_directory(chain: ChainConfig) -> Directory:
    """The seeded directory with the turnover, the cap, the exceptions and closures."""
    at = {"location_id": LOCATION}
    changes = [
        SetPolicy(LOCATION, StaffPolicy(turnover=TURNOVER, max_visits_per_day=DAILY_CAP)),
        # a week of time off each, spread over the horizon (two inside the first six weeks)
        _exception(1, "t-a", "time_off", "2027-03-15", "2027-03-20"),
        _exception(2, "t-b", "time_off", "2027-04-05", "2027-04-10"),
        _exception(3, "t-c", "time_off", "2027-05-03", "2027-05-08"),
        _exception(4, "t-d", "time_off", "2027-06-07", "2027-06-12"),
        # three sick days each, one of them half a day
        _exception(5, "t-a", "sick", "2027-03-03", "2027-03-03"),
        _exception(6, "t-a", "sick", "2027-04-13", "2027-04-13", ranges=["13:00-18:00"]),
        _exception(7, "t-a", "sick", "2027-05-19", "2027-05-19"),
        _exception(8, "t-b", "sick", "2027-03-10", "2027-03-10"),
        _exception(9, "t-b", "sick", "2027-03-24", "2027-03-24", ranges=["12:00-18:00"]),
        _exception(10, "t-b", "sick", "2027-05-26", "2027-05-26"),
        _exception(11, "t-c", "sick", "2027-03-09", "2027-03-09"),
        _exception(12, "t-c", "sick", "2027-03-30", "2027-03-30", ranges=["13:00-18:00"]),
        _exception(13, "t-c", "sick", "2027-06-01", "2027-06-01"),
        _exception(14, "t-d", "sick", "2027-03-04", "2027-03-04"),
        _exception(15, "t-d", "sick", "2027-04-20", "2027-04-20", ranges=["09:00-13:00"]),
        _exception(16, "t-d", "sick", "2027-05-13", "2027-05-13"),
        # an extra Saturday shift (t-c does not work Saturdays) and changed hours
        _exception(
            17, "t-c", "extra_shift", "2027-03-13", "2027-03-13", ranges=["10:00-14:00"], **at
        ),
        _exception(
            18, "t-d", "changed_hours", "2027-03-11", "2027-03-11", ranges=["12:00-18:00"], **at
        ),
        # Good Friday closed; the Friday before Memorial Day on holiday hours
        AddClosure(
            Closure(
                id="c-1",
                location_id=LOCATION,
                start_date=date(2027, 3, 26),
                end_date=date(2027, 3, 26),
            )
        ),
        AddClosure(
            Closure(
                id="c-2",
                location_id=LOCATION,
                start_date=date(2027, 5, 28),
                end_date=date(2027, 5, 28),
                hours=["10:00-14:00"],
            )
        ),
    ]
    directory = seed(chain)
    for change in changes:
        directory = apply(directory, change, chain)  # type: ignore[arg-type]
    return directory


@dataclass(frozen=True)
class Calendar:
    existing: list[BookedInterval]
    therapist_hours: float  # working hours at the location inside the horizon (directory)
    capacity: int  # visits the packed calendar holds (directory rules)


def _minutes(ranges: Sequence[tuple[Any, Any]]) -> int:
    return sum((e.hour * 60 + e.minute) - (s.hour * 60 + s.minute) for s, e in ranges)


def _overlap(a: list[tuple[Any, Any]], b: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    out = []
    for s1, e1 in a:
        for s2, e2 in b:
            s, e = max(s1, s2), min(e1, e2)
            if s < e:
                out.append((s, e))
    return out


def filled_calendar(view: Staffing, chain: ChainConfig, seed_: int) -> Calendar:
    """Every therapist's day packed under ``view``'s rules, then a random 20% freed."""
    policy = chain.policy_for(LOCATION)
    zone = view.location.zone
    occupancy = Occupancy.of(view, [])
    earliest, latest = NOW + policy.min_notice, NOW + policy.horizon
    day, last = earliest.astimezone(zone).date(), latest.astimezone(zone).date()
    packed: list[BookedInterval] = []
    minutes = 0
    while day <= last:
        for therapist in view.therapists:
            minutes += _minutes(_overlap(view.working(therapist.id, day), view.opening(day)))
            while True:
                client = f"fill-{len(packed)}"
                query = SlotQuery(
                    earliest=earliest,
                    first_day=day,
                    latest=latest,
                    minutes=policy.visit_minutes,
                    step_minutes=policy.slot_step_minutes,
                    therapists=[therapist],
                    preferred_therapist=None,
                    client_id=client,
                    days=frozenset(),
                    times=frozenset(),
                    weekly_cap=7,
                )
                slot = next(free_slots_on(day, therapist, query, view, occupancy), None)
                if slot is None:
                    break
                interval = BookedInterval(
                    therapist_id=slot.therapist_id,
                    room=slot.room,
                    start=slot.start,
                    end=slot.end,
                    visit_id=f"visit-{client}",
                    client_id=client,
                )
                occupancy.add(interval)
                packed.append(interval)
        day += timedelta(days=1)
    kept = random.Random(seed_).sample(packed, round(FILL * len(packed)))
    kept.sort(key=lambda i: (i.start, i.therapist_id))
    return Calendar(existing=kept, therapist_hours=minutes / 60, capacity=len(packed))


def probe_plan(policy: Any) -> PlanCreated:
    """A 12-visit plan, twice weekly (every 3 days), nmt, any day and time."""
    plan = build_plan(intake(0), policy=policy)
    phase = cadence_phase("intensive", kb.TWICE_WEEKLY, 12, kb.SORENESS_GAP_DAYS)
    return plan.model_copy(
        update={
            "sessions_total": 12,
            "phases": [phase],
            "client_id": "client-probe",
            "review_after_sessions": min(plan.review_after_sessions, 12),
        }
    )


def _rank(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))]


@dataclass(frozen=True)
class Figures:
    name: str
    cpu_ms: list[float]
    wall_ms: list[float]
    booked: int
    waitlisted: int
    therapists: int


def repeat(runs: int, seed_: int = 1, log: Callable[[str], None] = print) -> list[str]:
    chain = bench_chain()
    directory = bench_directory(chain)
    location = chain.location(LOCATION)
    policy = chain.policy_for(LOCATION)
    pairs = [(t, chain.therapist_hours(t, location)) for t in chain.therapists_at(LOCATION)]
    calendar = filled_calendar(staffing(chain, directory, LOCATION), chain, seed_)
    existing = calendar.existing
    plan = probe_plan(policy)
    scenarios: dict[str, Callable[[], Staffing]] = {
        "bare": lambda: plain(location, pairs),
        "directory": lambda: staffing(chain, directory, LOCATION),
    }
    cpu: dict[str, list[float]] = {name: [] for name in scenarios}
    wall: dict[str, list[float]] = {name: [] for name in scenarios}
    last = {}
    for n in range(WARM_UP + runs):
        for name, view in scenarios.items():
            started_cpu, started_wall = time.process_time(), time.perf_counter()
            outcome = book_plan(plan, staffing=view(), policy=policy, existing=existing, now=NOW)
            spent_wall, spent_cpu = time.perf_counter(), time.process_time()
            if n >= WARM_UP:
                cpu[name].append((spent_cpu - started_cpu) * 1000)
                wall[name].append((spent_wall - started_wall) * 1000)
            last[name] = outcome
    visit_hours = len(existing) * policy.visit_minutes / 60
    lines = [
        f"calendar: {len(existing)} visits held ({FILL:.0%} of the {calendar.capacity} the "
        f"packed calendar holds; {visit_hours:.0f} visit-hours of "
        f"{calendar.therapist_hours:.0f} therapist-hours), {runs} bookings per scenario",
        f"{'scenario':<10} {'CPU p50':>8} {'CPU p99':>8} {'CPU max':>8} "
        f"{'wall p50':>9} {'wall p99':>9} {'wall max':>9} {'booked':>7} {'therapists':>11}",
    ]
    for line in lines:
        log(line)
    for name in scenarios:
        outcome = last[name]
        c, w = cpu[name], wall[name]
        lines.append(
            f"{name:<10} {_rank(c, 0.5):>8.2f} {_rank(c, 0.99):>8.2f} {max(c):>8.2f} "
            f"{_rank(w, 0.5):>9.2f} {_rank(w, 0.99):>9.2f} {max(w):>9.2f} "
            f"{len(outcome.booked):>4}/12 {len({v.therapist_id for v in outcome.booked}):>11}"
        )
        log(lines[-1])
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--plans", type=int, default=300)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument(
        "--filled",
        type=int,
        metavar="N",
        help="book one 12-visit plan N times on a filled calendar, bare and with the directory",
    )
    parser.add_argument("--seed", type=int, default=1, help="which fifth of the calendar is freed")
    args = parser.parse_args(argv)
    if args.filled:
        repeat(args.filled, args.seed)
    else:
        fill_up(args.plans, args.window)


if __name__ == "__main__":
    main()
