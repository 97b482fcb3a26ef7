"""How long booking one plan takes as a location's calendar fills up.

    .venv/bin/python -m bench.booking [--plans 300]

Plans come from the real planner rules for a chronic two-region intake and are
booked one after another at Beaverton (demo chain); each row reports the time
per plan for a window of plans and how many visits the location held by then.
Booking should grow with the candidate slots at the location, not with the
number of plans the chain already holds.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, date, datetime

from services.planner.domain import build_plan
from services.scheduler.booking import BookedInterval, book_plan, interval_of
from services.scheduler.directory import plain
from shared.chain import load_chain_config
from shared.events import IntakeSubmitted
from shared.events.intake import ClientRecord, Complaint, Health, Screening
from shared.settings import DEFAULT_CHAIN_CONFIG

NOW = datetime(2027, 3, 1, 16, tzinfo=UTC)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plans", type=int, default=300)
    parser.add_argument("--window", type=int, default=50)
    args = parser.parse_args()
    chain = load_chain_config(DEFAULT_CHAIN_CONFIG)
    location = chain.location("beaverton")
    policy = chain.policy_for("beaverton")
    therapists = [(t, chain.therapist_hours(t, location)) for t in chain.therapists_at("beaverton")]
    existing: list[BookedInterval] = []
    waitlisted = 0
    print(f"{'plans':>6} {'visits held':>12} {'ms/plan':>9} {'waitlisted':>11}")
    started = time.perf_counter()
    for n in range(1, args.plans + 1):
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
        if n % args.window == 0:
            per_plan = (time.perf_counter() - started) / args.window * 1000
            print(f"{n:>6} {len(existing):>12} {per_plan:>9.2f} {waitlisted:>11}")
            started = time.perf_counter()


if __name__ == "__main__":
    main()
